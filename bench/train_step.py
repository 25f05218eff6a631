#!/usr/bin/env python
"""Throughput of one training step per method on the Madry CNN (batch 300, CPU), as a ratio to
the vanilla step on the same machine. Target (issue 2): every noise method costs at most 1.05x.

    python bench/train_step.py [--steps 20] [--rounds 5] [--threads 2]

Methods are interleaved round by round so that drift in machine load hits all of them alike;
each method's time is the median over rounds. Images are real MNIST when NOISETRAIN_MNIST_ROOT
(or ../shared/data) holds it, else the embedded digits.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from noisetrain import datasets, noise  # noqa: E402
from noisetrain.models import build_model  # noqa: E402

METHODS = {
    "vanilla": {"kind": "vanilla"},
    "gnt": {"kind": "gnt", "sigma": 0.5},
    "gnt_mult": {"kind": "gnt_mult", "sigmas": [0.08, 0.12, 0.18, 0.26, 0.38]},
    "speckle": {"kind": "speckle", "scales": [0.15, 0.2, 0.35, 0.45, 0.6]},
}


def images(batch_size: int) -> torch.Tensor:
    root = os.environ.get("NOISETRAIN_MNIST_ROOT", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    try:
        data = datasets.prepare({"name": "mnist", "root": root, "download": False, "seed": 0, "subset_train": batch_size * 4})
        source = f"MNIST from {root}"
    except datasets.DataError:
        data = datasets.prepare({"name": "digits", "test_fraction": 0.3, "seed": 0})
        source = "embedded digits"
    print(f"images: {source}")
    return datasets.to_float(data.train.images), torch.from_numpy(data.train.labels)


def time_steps(spec, model, optimizer, x, y, steps, batch_size, rng) -> float:
    fn = noise.noise_for(spec)
    start = time.perf_counter()
    for step in range(steps):
        lo = (step * batch_size) % (len(x) - batch_size + 1)
        batch = noise.mix_batch(x[lo : lo + batch_size], fn, 0.5, rng)
        loss = F.cross_entropy(model(batch), y[lo : lo + batch_size])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="steps per method per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=300)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = images(args.batch_size)
    model = build_model("madry_cnn")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    rng = torch.Generator().manual_seed(0)
    for spec in METHODS.values():  # warm-up
        time_steps(spec, model, optimizer, x, y, 3, args.batch_size, rng)
    seconds = {name: [] for name in METHODS}
    for _ in range(args.rounds):
        for name, spec in METHODS.items():
            seconds[name].append(time_steps(spec, model, optimizer, x, y, args.steps, args.batch_size, rng))
    reference = statistics.median(seconds["vanilla"])
    print(f"batch {args.batch_size}, {args.threads} threads, {args.rounds} rounds x {args.steps} steps")
    print(f"{'method':10s} {'images/s':>10s} {'ratio to vanilla':>18s}")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:10s} {args.batch_size / median:10.0f} {median / reference:18.3f}")


if __name__ == "__main__":
    main()
