"""One trainer for every method: vanilla from scratch, and the noise methods fine-tuned from it.

What differs between methods is how one batch becomes one classifier update; that lives in a
*method step* object (``NoiseStep`` here for vanilla / GNT / GNT_mult / Speckle, ``AntStep`` in
``noisetrain.ant`` for Adversarial Noise Training). The trainer owns the rest: data order, the
optimiser and its one LR decay, held-out accuracy, the log, and checkpoints.

A run is fully described by its spec (``noisetrain.config.train_spec``) and is resumable: after
every epoch the model, optimiser, LR schedule, data-order generator, the method step's state and
the log so far are written atomically to ``checkpoint_dir/last.pt``. A killed job, rerun,
continues from there and ends with exactly the weights of an uninterrupted run (on CPU).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import noise as noise_lib
from .config import spec_hash
from .datasets import PreparedData, to_float
from .evaluation import accuracy
from .models import atomic_save, build_model, safe_load

LOG_COLUMNS = ("epoch", "loss", "heldout_accuracy", "lr", "seconds", "images_per_second")

# Distinct, fixed offsets so the random streams never coincide for one seed.
INIT_STREAM, ORDER_STREAM, NOISE_STREAM = 0, 1, 2


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA GPU is visible; use device: auto or cpu")
    return torch.device(name)


def seeded(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1000 + stream)


def classifier_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor, target: torch.Tensor) -> float:
    """One SGD update of the classifier on a composed batch; returns the batch loss."""
    loss = F.cross_entropy(model(batch), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


class MethodStep(Protocol):
    """How one training batch becomes one classifier update, and the state that must survive a restart."""

    def step(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> float: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class NoiseStep:
    """Vanilla, GNT, GNT_mult, Speckle: a ``clean_fraction`` of the batch stays clean, the rest
    gets the method's noise (clipped to [0, 1]); vanilla adds none."""

    def __init__(self, spec: dict, device: torch.device):
        self.noise = noise_lib.noise_for(spec)
        self.clean_fraction = spec["clean_fraction"]
        self.rng = seeded(spec["seed"], NOISE_STREAM)
        self.device = device

    def step(self, model, optimizer, x, y, index) -> float:
        batch = noise_lib.mix_batch(x, self.noise, self.clean_fraction, self.rng)
        return classifier_step(model, optimizer, batch.to(self.device), y.to(self.device))

    def state_dict(self) -> dict:
        return {"rng": self.rng.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.rng.set_state(state["rng"])


def read_sweep_choice(path: str | Path | None, setting: str) -> dict:
    """What choose_ant_eps.py chose from the sigma sweep (best_method, eps, how), for a
    ``setting`` that defers to it."""
    if path is None:
        raise ValueError(f"{setting} is 'auto' but no eps file was given (choose_ant_eps.py writes it)")
    return json.loads(Path(path).read_text())


def resolve_eps(spec: dict, eps_file: str | Path | None) -> dict:
    """ANT with eps 'auto': take the eps chosen from the sigma sweep (times eps_factor)."""
    if spec.get("eps") != "auto":
        return spec
    chosen = read_sweep_choice(eps_file, f"{spec['method']}: eps")
    return {**spec, "eps": chosen["eps"] * spec.get("eps_factor", 1.0), "eps_source": chosen["how"]}


def build_step(spec: dict, data: PreparedData, device: torch.device, steps_per_epoch: int) -> MethodStep:
    if spec["kind"] == "ant":
        from .ant import AntStep

        return AntStep(spec, data, device, steps_per_epoch)
    return NoiseStep(spec, device)


@dataclass
class TrainState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    order_rng: torch.Generator
    method: MethodStep
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
            "method": self.method.state_dict(),
            "log": self.log,
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.order_rng.set_state(state["order_rng"])
        self.method.load_state_dict(state["method"])
        self.log = list(state["log"])


def steps_per_epoch(spec: dict, data: PreparedData) -> int:
    return math.ceil(len(data.train.labels) / spec["batch_size"])


def build_state(spec: dict, data: PreparedData, init_state: dict | None, device: torch.device) -> TrainState:
    torch.manual_seed(spec["seed"] * 1000 + INIT_STREAM)
    model = build_model(spec["model"], data.channels, data.num_classes)
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=spec["lr"], momentum=spec["momentum"], weight_decay=spec["weight_decay"]
    )
    milestones = [spec["lr_decay_epoch"]] if spec.get("lr_decay_epoch") else []
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    method = build_step(spec, data, device, steps_per_epoch(spec, data))
    return TrainState(model, optimizer, scheduler, seeded(spec["seed"], ORDER_STREAM), method)


def run_epoch(state: TrainState, x: torch.Tensor, y: torch.Tensor, batch_size: int, label: str) -> float:
    """One pass over the training set in a seeded order; returns the mean training loss."""
    state.model.train()
    order = torch.randperm(len(x), generator=state.order_rng)
    starts = range(0, len(order), batch_size)
    total = 0.0
    # A bar on a terminal; Snakemake log files get the plain per-epoch line instead.
    for start in tqdm(starts, desc=label, leave=False, disable=not sys.stderr.isatty()):
        index = order[start : start + batch_size]
        total += state.method.step(state.model, state.optimizer, x[index], y[index], index) * len(index)
    return total / max(len(order), 1)


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
    fingerprint = spec_hash(spec)
    state = build_state(spec, data, init_state, device)
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
        loss = run_epoch(state, x_train, y_train, spec["batch_size"], f"{spec['method']} epoch {state.epoch + 1}")
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
