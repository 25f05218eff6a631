#!/usr/bin/env python
"""Cost and accuracy of the epsilon* line search (noisetrain.measure.decision_distance): model
evaluations per image at relative tolerance 1e-3 (target: at most 12, issue 18), and, with --scan,
how many images it reports later than the first decision change that a dense scan of the ray
finds (norms n_max * 1e-4 ... n_max, a factor 1.01 apart).

    python bench/eps_search.py [--images 256] [--scan]

Two classifiers, each along Gaussian and uniform directions: a random linear 10-class model on
3x32x32 images of mid-grey level plus pixel noise (no response to brightness), and a small CNN
trained for 400 Adam steps on the embedded digits (evaluated on their test split).
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
from noisetrain.data import datasets  # noqa: E402
from noisetrain.measure import decision_distance as dd  # noqa: E402

TARGET_PASSES = 12
REL_TOL = 1e-3


def linear_case(images: int):
    g = torch.Generator().manual_seed(0)
    dim = 3 * 32 * 32
    model = nn.Sequential(nn.Flatten(), nn.Linear(dim, 10))
    with torch.no_grad():
        weight = torch.randn(10, dim, generator=g) / math.sqrt(dim) * 25
        model[1].weight.copy_(weight - weight.mean(1, keepdim=True))
        model[1].bias.zero_()
    x = (0.3 + 0.4 * torch.rand(images, 1, 1, 1, generator=g) + 0.1 * torch.randn(images, 3, 32, 32, generator=g)).clamp(0, 1)
    return model.eval(), x, model(x).argmax(1).detach()


def digits_case(images: int):
    data = datasets.prepare({"name": "digits", "test_fraction": 0.3, "seed": 0})
    x_train, y_train = datasets.to_float(data.train.images), torch.from_numpy(data.train.labels)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(32 * 49, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)
    for _ in range(400):
        batch = torch.randint(0, len(x_train), (64,))
        loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x, y = datasets.to_float(data.test.images)[:images], torch.from_numpy(data.test.labels)[:images]
    return model.eval(), x, y


@torch.no_grad()
def first_change_by_scan(model, x, y, directions, ratio=1.01) -> np.ndarray:
    rays = dd._Rays(x.float(), directions.float())
    steps = math.ceil(math.log(1e4) / math.log(ratio))
    grid = np.minimum(np.concatenate([[0.0], 1e-4 * ratio ** np.arange(steps + 1)]), 1.0)
    first = np.full(len(x), np.inf)
    for i, n_max in enumerate(rays.n_max.cpu().numpy()):
        points = rays.points(torch.full((len(grid),), i), grid * n_max)
        changed = (model(points.view(-1, *x.shape[1:])).argmax(1) != y[i]).nonzero()
        if len(changed):
            first[i] = grid[int(changed[0])] * n_max
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--scan", action="store_true", help="count results later than a dense scan's first change")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"{'case':<22} {'passes/image':>12} {'median eps*':>12} {'seconds':>8}  target <= {TARGET_PASSES}"
          + ("   later than the first change" if args.scan else ""))
    for name, (model, x, y) in (("linear 3x32x32", linear_case(args.images)), ("digits CNN", digits_case(args.images))):
        for kind, directions in (("gauss", dd.gaussian_directions), ("unif", dd.uniform_directions)):
            d = directions(x.shape, 5)
            start = time.perf_counter()
            result = dd.decision_distances(model, x, y, d, rel_tol=REL_TOL)
            seconds = time.perf_counter() - start
            passes = result.forward_passes_per_image
            line = (f"{name + ' ' + kind:<22} {passes:>12.2f} {dd.median_epsilon(result.distances):>12.3f} "
                    f"{seconds:>8.1f}  {'ok' if passes <= TARGET_PASSES else 'MISSED'}")
            if args.scan:
                first = first_change_by_scan(model, x, y, d)
                found = result.distances
                late = (found > first * (1 + REL_TOL) * 1.01 + 1e-9) | (np.isinf(found) & np.isfinite(first))
                line += f"   {int(late.sum())}/{len(x)}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
