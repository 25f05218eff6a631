#!/usr/bin/env python
"""Throughput of one training step per method on the Madry CNN (batch 300, CPU), as a ratio to
the vanilla step on the same machine. Targets: every noise method (GNT, GNT_mult, Speckle) costs
at most 1.05x the vanilla step (issue 2); an ANT step at most 2.1x (issue 3; the floor is 2.0x,
one extra classifier forward and backward for the generator step).

    python bench/train_step.py [--steps 10] [--rounds 5] [--threads 2]

Each method runs through the trainer's own method step (noisetrain.training.NoiseStep,
noisetrain.ant.AntStep), so what is timed is what training runs. ANT's periodic re-initialisation
is switched off here and reported separately, per step, at the given schedule. Methods are
interleaved round by round so that drift in machine load hits all of them alike; each method's
time is the median over rounds. Images are real MNIST when NOISETRAIN_MNIST_ROOT (or
../shared/data) holds it, else the embedded digits.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from noisetrain import datasets, noise  # noqa: E402
from noisetrain.ant import AntStep  # noqa: E402
from noisetrain.models import build_model  # noqa: E402
from noisetrain.training import NoiseStep, classifier_step  # noqa: E402

COMMON = {"seed": 0, "clean_fraction": 0.5}
ANT = {"kind": "ant", "kernel": "1x1", "depth": 4, "eps": 10.0, "replay": True, "generator_lr": 1e-4,
       "reinit_every": 1e9, "reinit_steps": 0, "snapshot_every": 5, "stylized_path": None, "fractions": None}
METHODS = {
    "vanilla": {"kind": "vanilla"},
    "gnt": {"kind": "gnt", "sigma": 0.5},
    "gnt_mult": {"kind": "gnt_mult", "sigmas": [0.08, 0.12, 0.18, 0.26, 0.38]},
    "speckle": {"kind": "speckle", "scales": [0.15, 0.2, 0.35, 0.45, 0.6]},
    "ant1x1": ANT,
    "ant3x3": {**ANT, "kernel": "3x3"},
}


def load_images(batch_size: int) -> datasets.PreparedData:
    root = os.environ.get("NOISETRAIN_MNIST_ROOT", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    try:
        data = datasets.prepare({"name": "mnist", "root": root, "download": False, "seed": 0, "subset_train": batch_size * 4})
        print(f"images: MNIST from {root}")
    except datasets.DataError:
        data = datasets.prepare({"name": "digits", "test_fraction": 0.3, "seed": 0})
        print("images: embedded digits")
    return data


def make_step(spec: dict, data, batch_size: int):
    spec = {**COMMON, **spec, "batch_size": batch_size}
    if spec["kind"] == "ant":
        return AntStep(spec, data, torch.device("cpu"), steps_per_epoch=len(data.train.labels) // batch_size)
    return NoiseStep(spec, torch.device("cpu"))


class _DrawOnly:
    """Only the noise part of a method step: composing the clean/noisy batch."""

    def __init__(self, step):
        self.inner = step

    def step(self, model, optimizer, x, y, index):
        return float(noise.mix_batch(x, self.inner.noise, self.inner.clean_fraction, self.inner.rng).sum())


class _FixedBatch:
    """A plain classifier step on a fixed (noisy) batch, to time the network on noisy input."""

    def __init__(self, batch):
        self.batch = batch

    def step(self, model, optimizer, x, y, index):
        return classifier_step(model, optimizer, self.batch, y)


def time_steps(step, model, optimizer, x, y, steps: int, batch_size: int) -> float:
    start = time.perf_counter()
    for k in range(steps):
        index = torch.arange(k * batch_size, (k + 1) * batch_size) % len(x)
        step.step(model, optimizer, x[index], y[index], index)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="steps per method per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=300)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--reinit-every", type=float, default=0.33, help="ANT schedule for the re-init cost line (epochs)")
    parser.add_argument("--reinit-steps", type=int, default=200)
    parser.add_argument("--epoch-steps", type=int, default=200, help="steps per epoch for the re-init cost line (MNIST: 200)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = load_images(args.batch_size)
    x, y = datasets.to_float(data.train.images), torch.from_numpy(data.train.labels)
    model = build_model("madry_cnn")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    steps = {name: make_step(spec, data, args.batch_size) for name, spec in METHODS.items()}
    for step in steps.values():  # warm-up
        time_steps(step, model, optimizer, x, y, 2, args.batch_size)
    seconds = {name: [] for name in METHODS}
    for _ in range(args.rounds):
        for name, step in steps.items():
            seconds[name].append(time_steps(step, model, optimizer, x, y, args.steps, args.batch_size))
    reference = statistics.median(seconds["vanilla"])
    print(f"batch {args.batch_size}, {args.threads} threads, {args.rounds} rounds x {args.steps} steps, torch {torch.__version__}")
    print(f"{'method':10s} {'images/s':>10s} {'ratio to vanilla':>18s}")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:10s} {args.batch_size / median:10.0f} {median / reference:18.3f}")

    # Where a noise method's extra time goes: drawing the noise itself, or the network running
    # slower on noisy images than on clean digits (data-dependent CPU kernels).
    gnt = steps["gnt"]
    batch = x[: args.batch_size]
    draw = statistics.median(
        time_steps(_DrawOnly(gnt), model, optimizer, x, y, args.steps, args.batch_size) for _ in range(args.rounds))
    noisy = gnt.noise(batch.clone(), torch.Generator().manual_seed(1))
    on_noisy = statistics.median(
        time_steps(_FixedBatch(noisy), model, optimizer, x, y, args.steps, args.batch_size) for _ in range(args.rounds))
    print(f"gnt breakdown: drawing the noise {draw / reference:.3f} of a vanilla step; a vanilla step on an "
          f"all-noisy batch {on_noisy / reference:.3f}")

    # A fresh generator every reinit_every epochs, trained for reinit_steps steps: its cost per step.
    ant = steps["ant1x1"]
    ant.reinit_steps = args.reinit_steps
    start = time.perf_counter()
    ant.reinitialise(model)
    per_reinit = time.perf_counter() - start
    interval = max(1, round(args.reinit_every * args.epoch_steps))
    print(f"ANT re-initialisation: {per_reinit:.2f} s per fresh generator ({args.reinit_steps} steps); every "
          f"{interval} steps that adds {per_reinit / interval / reference:.3f} vanilla steps per step")


if __name__ == "__main__":
    main()
