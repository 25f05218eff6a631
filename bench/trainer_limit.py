#!/usr/bin/env python
"""The small-data trainer against its limit (issue 21): images/s of trainer.run_epoch for vanilla and
GNT sigma 0.5 (config/mnist.yaml's specs, the Madry CNN, batch 300, arrays on the device) against a
minimal hand-written torch loop over the same arrays, model, batch and noise. Goal: at least 0.9x.

    python bench/trainer_limit.py [--device cpu|cuda] [--steps 20] [--rounds 5] [--threads N] [--host]

The minimal loop per step: an index gather, for GNT Gaussian noise on the second half of the batch
(clipped to [0, 1]), forward, cross-entropy, zero_grad, backward, SGD step; nothing is read back until
the epoch ends. The trainer's epoch is what a training job runs (the method step from build_step, its
metrics kept and summed at the end, the progress timer), without the per-step log, the checkpoint and the
held-out pass (once an epoch each). Each round times one epoch of --steps batches of each, the rows
interleaved so that drift in the machine's load hits them alike; the ratio is of the medians. Images
are real MNIST where NOISETRAIN_MNIST_ROOT (or ../shared/data) holds it, else the embedded digits.

Beside the times, the operations each loop dispatches per step (``noisetrain.op_count``, one untimed
epoch): a GPU launches a kernel for each, and at 2 ms a step the launches are what a small network's
step waits for, so the count says on any machine what the GPU's ratio can only measure. ``--host``
swaps the network for a 784-to-10 linear layer at batch 8, so that a step's time is the host's work
(Python, dispatch): the trainer's own cost per step, in microseconds, on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))
from train_step import load_images  # noqa: E402  (bench/train_step.py: real MNIST, else the digits)

from noisetrain.config import load_config, train_spec  # noqa: E402
from noisetrain.data import datasets  # noqa: E402
from noisetrain.op_count import OpCount  # noqa: E402
from noisetrain.train import trainer  # noqa: E402
from noisetrain.train.precision import Precision  # noqa: E402
from noisetrain.train.sources import as_source  # noqa: E402

METHODS = {"vanilla": None, "gnt_s0.5": 0.5}  # name in config/mnist.yaml: GNT's sigma


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def host_model() -> torch.nn.Module:
    """--host's network: next to nothing for the device to do."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))


def trainer_epoch(spec: dict, data, device: torch.device, model: torch.nn.Module | None = None):
    """One epoch of the trainer's own loop, as a callable (``model``: instead of the spec's)."""
    source = as_source(data, spec, device)
    state = trainer.build_state(spec, source, None, device, model, precision=Precision(device))

    def epoch() -> None:
        trainer.run_epoch(state, source, spec["batch_size"], "bench", log=lambda _: None)
        sync(device)

    return epoch


def minimal_epoch(spec: dict, data, device: torch.device, sigma: float | None, model: torch.nn.Module | None = None):
    """The same epoch as a minimal torch loop, as a callable (the model as the trainer builds it, or ``model``)."""
    source = as_source(data, spec, device)
    model = (trainer.initial_model(spec, data, None) if model is None else model).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=spec["momentum"])
    order_rng, noise_rng = torch.Generator().manual_seed(0), torch.Generator(device=device).manual_seed(0)
    batch = spec["batch_size"]

    def epoch() -> None:
        order = torch.randperm(len(source.y_train), generator=order_rng).to(device)
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            x, y = source.x_train[index], source.y_train[index]
            if sigma is not None:
                half = len(x) // 2
                noise = torch.randn(x[half:].shape, generator=noise_rng, device=device)
                x = torch.cat([x[:half], (x[half:] + sigma * noise).clamp_(0.0, 1.0)])
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync(device)

    return epoch


def _ops_per_step(epoch, steps: int) -> float:
    with OpCount() as count:
        epoch()
    return count.ops / steps


def limit_rows(data, device: torch.device, steps: int, rounds: int, host: bool = False) -> dict[str, dict]:
    """Per method: the trainer's and the minimal loop's images/s (medians over the rounds) and their ratio;
    ``host``: --host's network and batch."""
    config = load_config(ROOT / "config" / "mnist.yaml", {"sigma_sweep": [0.5], **({"train": {"batch_size": 8}} if host else {})})
    batch = config["train"]["batch_size"]
    images = min(steps * batch, len(data.train.labels))
    data = datasets.PreparedData(datasets.Split(data.train.images[:images], data.train.labels[:images]), data.test,
                                 data.test_index, data.name)
    runs = {}
    for name, sigma in METHODS.items():
        spec = train_spec(config, name)
        models = (host_model(), host_model()) if host else (None, None)
        runs[name] = (trainer_epoch(spec, data, device, models[0]), minimal_epoch(spec, data, device, sigma, models[1]))
    ops = {}
    for name, pair in runs.items():  # warm-up (allocator, cuDNN's choices), then an epoch counted
        for run in pair:
            run()
        ops[name] = [_ops_per_step(run, math.ceil(images / batch)) for run in pair]
    seconds = {name: ([], []) for name in runs}
    for _ in range(rounds):
        for name, pair in runs.items():
            for run, times in zip(pair, seconds[name], strict=True):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
    rows = {}
    for name, (trained, minimal) in seconds.items():
        trained, minimal = statistics.median(trained), statistics.median(minimal)
        rows[name] = {"trainer_images_per_s": images / trained, "minimal_images_per_s": images / minimal,
                      "ratio": minimal / trained, "images": images, "batch_size": batch,
                      "trainer_ops_per_step": ops[name][0], "minimal_ops_per_step": ops[name][1]}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20, help="batches per timed epoch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--host", action="store_true", help="a linear model at batch 8: the host's cost a step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = load_images(args.steps * 300)
    rows = limit_rows(data, device, args.steps, args.rounds, args.host)
    first = next(iter(rows.values()))
    print(f"{data.name}, {first['images']} images a timed epoch, batch {first['batch_size']}, {device}, "
          f"{args.threads} threads, {args.rounds} rounds, torch {torch.__version__}")
    print(f"{'method':10s} {'trainer images/s':>17s} {'minimal loop':>13s} {'ratio':>6s} {'ops/step':>9s} {'minimal':>8s}")
    for name, row in rows.items():
        print(f"{name:10s} {row['trainer_images_per_s']:17.0f} {row['minimal_images_per_s']:13.0f} {row['ratio']:6.3f} "
              f"{row['trainer_ops_per_step']:9.1f} {row['minimal_ops_per_step']:8.1f}")
        if args.host:
            per_step = {loop: 1e6 * row["batch_size"] / row[f"{loop}_images_per_s"] for loop in ("trainer", "minimal")}
            print(f"{'':10s} host time a step: trainer {per_step['trainer']:.0f} us, minimal loop {per_step['minimal']:.0f} us "
                  f"(+{per_step['trainer'] - per_step['minimal']:.0f} us)")


if __name__ == "__main__":
    main()
