#!/usr/bin/env python
"""Operations (each a kernel launch on a GPU) of an MNIST ANT 1x1 step on the GPU's code path, counted on
the CPU (issue 21): on a GPU the Madry CNN's small steps wait for the host's launches, so their number
predicts the step's time there without a GPU.

    python bench/ant_launches.py [--bank 200] [--steps 5]

The step is config/mnist.yaml's ant1x1 (batch 300) with a full bank of --bank states. Where the code
chooses by device, the GPU's choice is forced: the dense matmul generator map (not the CPU's piecewise
one), the rescaling's full-sort search (not the CPU's buckets), replay in one pass (``replay_each``).
Host-only operations (a read of a CPU scalar, a Python number made a tensor) launch nothing and are
left out. It prints the joint step's count (median over --steps), a fresh-generator update's, and both
together at the config's rate (``reinit_steps`` updates every ``reinit_every`` epochs). The counts are
the same on any machine; ``bash bench/gpu_check.sh`` counts the real GPU path beside its timings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))
from train_step import load_images  # noqa: E402  (real MNIST where it is on disk, else the digits)

from noisetrain.config import load_config, train_spec  # noqa: E402
from noisetrain.noise import rescaling  # noqa: E402
from noisetrain.noise.generators import NoiseGenerator  # noqa: E402
from noisetrain.op_count import OpCount  # noqa: E402
from noisetrain.train import trainer  # noqa: E402
from noisetrain.train.ant import AntStep  # noqa: E402
from noisetrain.train.sources import as_source  # noqa: E402

HOST_ONLY = ("aten._local_scalar_dense", "aten.scalar_tensor")  # on a GPU: host work, no kernel


def gpu_code_path() -> None:
    """Force the GPU's choices where the code picks by device (for this process)."""
    NoiseGenerator.as_function = NoiseGenerator.dense_function
    rescaling._last_saturating = rescaling._last_sorted


def launches(run) -> int:
    with OpCount() as count:
        run()
    return count.ops - sum(count.by_op[name] for name in HOST_ONLY)


def count_rows(bank: int, steps: int) -> dict:
    gpu_code_path()
    data = load_images(3000)
    config = load_config(ROOT / "config" / "mnist.yaml", {"sigma_sweep": [0.5]})
    spec = train_spec(config, "ant1x1")
    epoch_steps = -(-60_000 // spec["batch_size"])
    fresh_rate = spec["reinit_steps"] / max(1, round(spec["reinit_every"] * epoch_steps))
    spec = {**spec, "reinit_every": 1e9, "reinit_steps": 0, "snapshot_every": 1}
    source = as_source(data, spec)
    ant = AntStep(spec, source, "cpu", epoch_steps)
    ant.replay_each = True
    ant.reinits = 1  # the step's own first fresh generator is not counted here
    model = trainer.initial_model(spec, data, None)
    # The optimisers as on a GPU: foreach (one launch per operation for all parameters).
    optimizer = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=spec["momentum"], foreach=True)
    ant.optimizer = torch.optim.Adam(ant.generator.parameters(), lr=spec["generator_lr"], foreach=True)
    picks = torch.Generator().manual_seed(0)

    def batch():
        index = torch.randint(len(source.y_train), (spec["batch_size"],), generator=picks)
        return source.x_train[index], source.y_train[index], index

    for _ in range(bank):  # a snapshot every step fills the bank
        ant.step(model, optimizer, *batch())
    ant.snapshot_every = 10**9
    joint = statistics.median(launches(lambda: ant.step(model, optimizer, *batch())) for _ in range(steps))
    x, y, _ = batch()
    fresh = launches(lambda: ant._generator_update(model, ant.generator, ant.optimizer, x, y, diagnose=False))
    return {"joint_step": joint, "fresh_generator_update": fresh, "fresh_updates_per_step": fresh_rate,
            "per_step": joint + fresh_rate * fresh, "bank": len(ant.bank), "batch_size": spec["batch_size"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bank", type=int, default=200, help="states in the replay bank")
    parser.add_argument("--steps", type=int, default=5, help="joint steps counted")
    args = parser.parse_args()
    row = count_rows(args.bank, args.steps)
    print(f"MNIST ANT 1x1 on the GPU's code path, batch {row['batch_size']}, a bank of {row['bank']} states")
    print(f"joint step {row['joint_step']:.0f} operations, fresh-generator update {row['fresh_generator_update']}, "
          f"{row['fresh_updates_per_step']:.2f} updates a step: {row['per_step']:.0f} operations a step")


if __name__ == "__main__":
    main()
