"""One trainer for every method: vanilla and the adversarial-training baselines from scratch, and the
noise methods fine-tuned from the vanilla model.

What differs between methods is how one batch becomes one classifier update; that lives in a
*method step* registered by kind (``noisetrain.train.steps``). The trainer owns the rest: data
order, the optimiser and its one LR decay, held-out accuracy, the per-epoch log (the means of
every metric the steps return), checkpoints, and the guards against divergence.

A run is resumable: after every epoch the model, optimiser, LR schedule, data-order generator,
the method step's state and the log so far are written atomically to ``checkpoint_dir/last.pt``,
under a fingerprint of everything that shapes the result (the spec, the prepared data, the
initial weights and the code version). A killed job, rerun, continues from there and ends with
exactly the weights of an uninterrupted run (on CPU); a checkpoint of anything else is ignored.
Once the final model is saved, :func:`discard_checkpoint` removes it, so that a rerun Snakemake
asks for trains afresh.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from noisetrain import __version__
from noisetrain.config import spec_hash
from noisetrain.data.datasets import PreparedData, array_hash, data_hash, to_float
from noisetrain.errors import CheckpointError, TrainingError
from noisetrain.measure.evaluation import accuracy
from noisetrain.models.architectures import build_model
from noisetrain.models.devices import resolve_device
from noisetrain.models.model_file import load_weights
from noisetrain.noise.diagnostics import is_erasing
from noisetrain.storage import load_torch, save_torch
from noisetrain.train import adversarial_training, ant, noise_step  # noqa: F401  (register their method kinds)
from noisetrain.train.steps import MethodStep, Stream, build_step, seeded

LOG_COLUMNS = ("epoch", "loss", "heldout_accuracy", "lr", "seconds", "images_per_second")


def state_hash(state: dict[str, torch.Tensor] | None) -> str | None:
    return None if state is None else array_hash(*(state[k] for k in sorted(state)))


def run_identity(spec: dict, data: PreparedData, init_state: dict | None) -> dict:
    """Everything that shapes a trained model besides the code: recorded with it as provenance."""
    return {"spec": spec, "data_hash": data_hash(data), "init_hash": state_hash(init_state), "code_version": __version__}


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

    def log_columns(self) -> list[str]:
        """The fixed columns, then every metric the method step reported, in first-seen order."""
        extra = dict.fromkeys(key for row in self.log for key in row if key not in LOG_COLUMNS)
        return [*LOG_COLUMNS, *extra]


def training_diagnostics(log: list[dict]) -> dict:
    """What the model file records of its method's own metrics (ANT: generator loss, fooling
    rate, erased fraction, mean noise, the replay part's): the last epoch's values, and
    ``epochs_erasing``, how many epochs' generators erased most of their images
    (``noisetrain.noise.diagnostics.is_erasing``). Empty for a method with no metrics of its own."""
    if not log:
        return {}
    final = {key: value for key, value in log[-1].items() if key not in LOG_COLUMNS}
    if not final:
        return {}
    return {"epoch": log[-1]["epoch"], **final, "epochs_erasing": sum(is_erasing(row) for row in log)}


def steps_per_epoch(spec: dict, data: PreparedData) -> int:
    return math.ceil(len(data.train.labels) / spec["batch_size"])


def build_state(spec: dict, data: PreparedData, init_state: dict | None, device: torch.device) -> TrainState:
    torch.manual_seed(spec["seed"] * 1000 + Stream.INIT)
    model = build_model(spec["model"], data.channels, data.num_classes)
    if init_state is not None:
        load_weights(model, init_state, "the initial model")
    model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=spec["lr"], momentum=spec["momentum"], weight_decay=spec["weight_decay"]
    )
    milestones = [spec["lr_decay_epoch"]] if spec.get("lr_decay_epoch") else []
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    method = build_step(spec, data, device, steps_per_epoch(spec, data))
    return TrainState(model, optimizer, scheduler, seeded(spec["seed"], Stream.ORDER), method)


def run_epoch(state: TrainState, x: torch.Tensor, y: torch.Tensor, batch_size: int, label: str) -> dict[str, float]:
    """One pass over the training set in a seeded order; returns every step metric's mean over images."""
    state.model.train()
    order = torch.randperm(len(x), generator=state.order_rng)
    totals: dict[str, float] = defaultdict(float)
    # A bar on a terminal; Snakemake log files get the plain per-epoch line instead.
    for start in tqdm(range(0, len(order), batch_size), desc=label, leave=False, disable=not sys.stderr.isatty()):
        index = order[start : start + batch_size]
        for key, value in state.method.step(state.model, state.optimizer, x[index], y[index], index).items():
            totals[key] += value * len(index)
    return {key: total / max(len(order), 1) for key, total in totals.items()}


def _resume(state: TrainState, checkpoint: Path, fingerprint: str, method: str, log: Callable[[str], None]) -> None:
    if not checkpoint.exists():
        return
    saved = load_torch(checkpoint)
    if saved.get("fingerprint") != fingerprint:
        log(f"ignoring {checkpoint}: it belongs to another configuration, data, initial model or code version of {method}")
        return
    try:
        state.load_state_dict(saved)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{checkpoint} does not fit {method} ({exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0][:200]}): delete it and rerun") from exc
    log(f"resuming {method} from {checkpoint} after epoch {state.epoch}")


def chance_level(labels: torch.Tensor) -> float:
    """Accuracy of always answering the most frequent class."""
    return torch.bincount(labels).max().item() / len(labels)


def fit(
    spec: dict,
    data: PreparedData,
    *,
    checkpoint_dir: str | Path,
    init_state: dict | None = None,
    device: str = "cpu",
    divergence_guard: bool = True,
    log: Callable[[str], None] = print,
) -> TrainState:
    """Train (or resume training) the model described by ``spec`` on ``data``.

    Raises TrainingError when the loss becomes non-finite or, with ``divergence_guard``, when the
    final model is no better than always answering the most frequent held-out class.
    """
    device = resolve_device(device)
    fingerprint = spec_hash(run_identity(spec, data, init_state))
    state = build_state(spec, data, init_state, device)
    checkpoint = Path(checkpoint_dir) / "last.pt"
    _resume(state, checkpoint, fingerprint, spec["method"], log)

    x_train, y_train = to_float(data.train.images), torch.from_numpy(data.train.labels)
    x_test, y_test = to_float(data.test.images), torch.from_numpy(data.test.labels)
    while state.epoch < spec["epochs"]:
        started = time.perf_counter()
        metrics = run_epoch(state, x_train, y_train, spec["batch_size"], f"{spec['method']} epoch {state.epoch + 1}")
        seconds = time.perf_counter() - started
        if not math.isfinite(metrics["loss"]):
            raise TrainingError(f"{spec['method']}: training loss became {metrics['loss']} in epoch {state.epoch + 1}; lower lr")
        lr = state.optimizer.param_groups[0]["lr"]
        state.scheduler.step()
        state.epoch += 1
        heldout = accuracy(state.model, x_test, y_test, device=device)
        row = {"epoch": state.epoch, "loss": metrics.pop("loss"), "heldout_accuracy": heldout, "lr": lr,
               "seconds": seconds, "images_per_second": len(x_train) / seconds, **metrics}
        state.log.append(row)
        log(f"{spec['method']} epoch {state.epoch}/{spec['epochs']}: "
            + ", ".join(f"{key.replace('_', ' ')} {value:.4g}" for key, value in row.items()
                        if key not in ("epoch", "lr", "seconds")))
        save_torch(state.state_dict(fingerprint), checkpoint)
    if divergence_guard:
        _check_not_chance(spec, state.log[-1]["heldout_accuracy"], chance_level(y_test))
    return state


CHANCE_MARGIN = 0.01  # a point above chance is noise, not learning


def _check_not_chance(spec: dict, heldout: float, chance: float) -> None:
    if heldout <= chance + CHANCE_MARGIN:
        raise TrainingError(
            f"{spec['method']}: held-out accuracy {heldout:.4f} after {spec['epochs']} epochs is no better than "
            f"always answering the most frequent class ({chance:.4f}): training diverged or did not learn; "
            f"lower lr (now {spec['lr']:g}) or train longer. No model was written"
        )


def discard_checkpoint(checkpoint_dir: str | Path) -> None:
    """After the final model is saved: a later rerun must train afresh, not resume a finished run."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
