"""One trainer for every method: vanilla from scratch, and GNT / GNT_mult / Speckle fine-tuning.

A run is fully described by its spec (``noisetrain.config.train_spec``) and is resumable: after
every epoch the model, optimiser, LR schedule, the data-order and noise generators and the log
so far are written atomically to ``checkpoint_dir/last.pt``. A killed job, rerun, continues from
there and ends with exactly the weights of an uninterrupted run (on CPU).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import noise as noise_lib
from .config import spec_hash
from .datasets import PreparedData, to_float
from .evaluation import accuracy
from .models import atomic_save, build_model, safe_load

LOG_COLUMNS = ("epoch", "loss", "heldout_accuracy", "lr", "seconds", "images_per_second")

# Distinct, fixed offsets so the three random streams never coincide for one seed.
INIT_STREAM, ORDER_STREAM, NOISE_STREAM = 0, 1, 2


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA GPU is visible; use device: auto or cpu")
    return torch.device(name)


def seeded(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1000 + stream)


@dataclass
class TrainState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    order_rng: torch.Generator
    noise_rng: torch.Generator
    epoch: int = 0
    log: list[dict] = field(default_factory=list)

    def state_dict(self, fingerprint: str) -> dict:
        return {
            "fingerprint": fingerprint,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "order_rng": self.order_rng.get_state(),
            "noise_rng": self.noise_rng.get_state(),
            "log": self.log,
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.order_rng.set_state(state["order_rng"])
        self.noise_rng.set_state(state["noise_rng"])
        self.log = list(state["log"])


def build_state(spec: dict, in_channels: int, num_classes: int, init_state: dict | None, device: torch.device) -> TrainState:
    torch.manual_seed(spec["seed"] * 1000 + INIT_STREAM)
    model = build_model(spec["model"], in_channels, num_classes)
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=spec["lr"], momentum=spec["momentum"], weight_decay=spec["weight_decay"]
    )
    milestones = [spec["lr_decay_epoch"]] if spec.get("lr_decay_epoch") else []
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    return TrainState(model, optimizer, scheduler, seeded(spec["seed"], ORDER_STREAM), seeded(spec["seed"], NOISE_STREAM))


def run_epoch(state: TrainState, x: torch.Tensor, y: torch.Tensor, spec: dict, noise: noise_lib.NoiseFn | None, device: torch.device) -> float:
    """One pass over the training set in a seeded order; returns the mean training loss."""
    model, optimizer = state.model, state.optimizer
    model.train()
    order = torch.randperm(len(x), generator=state.order_rng)
    total, seen = 0.0, 0
    for start in range(0, len(order), spec["batch_size"]):
        idx = order[start : start + spec["batch_size"]]
        batch = noise_lib.mix_batch(x[idx], noise, spec["clean_fraction"], state.noise_rng).to(device)
        target = y[idx].to(device)
        loss = F.cross_entropy(model(batch), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / max(seen, 1)


def fit(
    spec: dict,
    data: PreparedData,
    *,
    checkpoint_dir: str | Path,
    init_state: dict | None = None,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> TrainState:
    """Train (or resume training) the model described by ``spec`` on ``data``."""
    device = resolve_device(device)
    noise = noise_lib.noise_for(spec)
    fingerprint = spec_hash(spec)
    state = build_state(spec, data.channels, data.num_classes, init_state, device)
    checkpoint = Path(checkpoint_dir) / "last.pt"
    if checkpoint.exists():
        saved = safe_load(checkpoint)
        if saved.get("fingerprint") == fingerprint:
            state.load_state_dict(saved)
            log(f"resuming {spec['method']} from {checkpoint} after epoch {state.epoch}")
        else:
            log(f"ignoring {checkpoint}: it belongs to another configuration of {spec['method']}")

    x_train, y_train = to_float(data.train.images), torch.from_numpy(data.train.labels)
    x_test, y_test = to_float(data.test.images), torch.from_numpy(data.test.labels)
    while state.epoch < spec["epochs"]:
        started = time.perf_counter()
        loss = run_epoch(state, x_train, y_train, spec, noise, device)
        seconds = time.perf_counter() - started
        if not math.isfinite(loss):
            raise FloatingPointError(f"{spec['method']}: training loss became {loss} in epoch {state.epoch + 1}; lower lr")
        lr = state.optimizer.param_groups[0]["lr"]
        state.scheduler.step()
        state.epoch += 1
        heldout = accuracy(state.model, x_test, y_test, device=device)
        row = dict(zip(LOG_COLUMNS, (state.epoch, loss, heldout, lr, seconds, len(x_train) / seconds)))
        state.log.append(row)
        log(
            f"{spec['method']} epoch {state.epoch}/{spec['epochs']}: loss {loss:.4f}, "
            f"held-out accuracy {heldout:.4f}, {row['images_per_second']:.0f} images/s"
        )
        atomic_save(state.state_dict(fingerprint), checkpoint)
    return state
