"""One trainer for every method: vanilla and the adversarial-training baselines from scratch, and the
noise methods fine-tuned from the vanilla model.

What differs between methods is how one batch becomes one classifier update; that lives in a
*method step* registered by kind (``noisetrain.train.steps``). The trainer owns the rest: data
order, the optimiser and its one LR decay, held-out accuracy, the per-epoch log (the means of
every metric the steps return), checkpoints, and the guards against divergence.

A run is resumable: after every epoch, every ``checkpoint_every`` seconds of work and when the
job is asked to stop (SIGTERM / SIGUSR1, :mod:`noisetrain.train.preemption`), the model, optimiser,
LR schedule, data-order generator, the method step's state, the position in the epoch and the log
so far are written atomically to ``checkpoint_dir/last.pt``, under a fingerprint of everything
that shapes the result (the spec, the prepared data, the initial weights and the code version).
A stopped or killed job, rerun, continues from there, mid-epoch too, and ends with exactly the
weights of an uninterrupted run (on CPU); a checkpoint of anything else is ignored.
Once the final model is saved, :func:`discard_checkpoint` removes it, so that a rerun Snakemake
asks for trains afresh.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from noisetrain import __version__
from noisetrain.config import spec_hash
from noisetrain.data.datasets import PreparedData, array_hash, data_hash, to_float
from noisetrain.errors import CheckpointError, Preempted, TrainingError
from noisetrain.measure.evaluation import accuracy
from noisetrain.models.architectures import build_model
from noisetrain.models.devices import resolve_device
from noisetrain.models.model_file import load_weights
from noisetrain.noise.diagnostics import is_erasing
from noisetrain.storage import load_torch, save_torch
from noisetrain.train import adversarial_training, ant, noise_step  # noqa: F401  (register their method kinds)
from noisetrain.train.preemption import StopRequest
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
    # Mid-epoch: the batches of the current epoch done, the order generator's state before this
    # epoch's permutation was drawn (to draw it again), and the epoch's running metric sums.
    step: int = 0
    epoch_order_rng: torch.Tensor | None = None
    totals: dict[str, float] = field(default_factory=dict)

    def state_dict(self, fingerprint: str) -> dict:
        return {
            "fingerprint": fingerprint,
            "epoch": self.epoch,
            "step": self.step,
            "epoch_order_rng": self.epoch_order_rng,
            "totals": dict(self.totals),
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
        self.step, self.epoch_order_rng, self.totals = state["step"], state["epoch_order_rng"], dict(state["totals"])

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


def run_epoch(state: TrainState, x: torch.Tensor, y: torch.Tensor, batch_size: int, label: str,
              save: Callable[[], None] = lambda: None, stop: StopRequest | None = None,
              checkpoint_every: float = math.inf) -> dict[str, float]:
    """One pass over the training set in a seeded order, from ``state.step`` on (a resumed epoch
    draws the same order again); returns every step metric's mean over images. After a step it
    calls ``save`` when ``checkpoint_every`` seconds have passed since the last save, and when
    ``stop`` is requested, then raises Preempted."""
    state.model.train()
    if state.step == 0:
        state.epoch_order_rng, state.totals = state.order_rng.get_state(), {}
    else:
        state.order_rng.set_state(state.epoch_order_rng)
    order = torch.randperm(len(x), generator=state.order_rng)
    saved_at = time.monotonic()
    # A bar on a terminal; Snakemake log files get the plain per-epoch line instead.
    for start in tqdm(range(state.step * batch_size, len(order), batch_size), desc=label, leave=False,
                      disable=not sys.stderr.isatty()):
        index = order[start : start + batch_size]
        for key, value in state.method.step(state.model, state.optimizer, x[index], y[index], index).items():
            state.totals[key] = state.totals.get(key, 0.0) + value * len(index)
        state.step += 1
        if (stop is not None and stop.requested) or time.monotonic() - saved_at >= checkpoint_every:
            save()
            saved_at = time.monotonic()
            if stop is not None and stop.requested:
                raise Preempted(f"{label}: stopped by {stop.received} after step {state.step}; the checkpoint holds "
                                "the run so far: rerun the job to resume")
    metrics = {key: total / max(len(order), 1) for key, total in state.totals.items()}
    state.step, state.totals = 0, {}
    return metrics


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
    where = f"after epoch {state.epoch}" if state.step == 0 else f"in epoch {state.epoch + 1} after step {state.step}"
    log(f"resuming {method} from {checkpoint} {where}")


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
    checkpoint_every: float = math.inf,
    stop: StopRequest | None = None,
    log: Callable[[str], None] = print,
) -> TrainState:
    """Train (or resume training) the model described by ``spec`` on ``data``.

    Checkpoints after every epoch and every ``checkpoint_every`` seconds of work. While it runs,
    SIGTERM or SIGUSR1 (or ``stop``, when given) make it checkpoint after the current step and
    raise Preempted. Raises TrainingError when the loss becomes non-finite or, with
    ``divergence_guard``, when the final model is no better than always answering the most
    frequent held-out class.
    """
    device = resolve_device(device)
    fingerprint = spec_hash(run_identity(spec, data, init_state))
    state = build_state(spec, data, init_state, device)
    checkpoint = Path(checkpoint_dir) / "last.pt"
    _resume(state, checkpoint, fingerprint, spec["method"], log)

    x_train, y_train = to_float(data.train.images), torch.from_numpy(data.train.labels)
    x_test, y_test = to_float(data.test.images), torch.from_numpy(data.test.labels)
    with stop or StopRequest() as stop:
        while state.epoch < spec["epochs"]:
            _train_epoch(state, spec, x_train, y_train, x_test, y_test, device, checkpoint_every, stop,
                         lambda: save_torch(state.state_dict(fingerprint), checkpoint), log)
    if divergence_guard:
        _check_not_chance(spec, state.log[-1]["heldout_accuracy"], chance_level(y_test))
    return state


def _train_epoch(state: TrainState, spec: dict, x_train, y_train, x_test, y_test, device, checkpoint_every: float,
                 stop: StopRequest, save: Callable[[], None], log: Callable[[str], None]) -> None:
    """One epoch (or the rest of a resumed one), its log row and its checkpoint."""
    started = time.perf_counter()
    metrics = run_epoch(state, x_train, y_train, spec["batch_size"], f"{spec['method']} epoch {state.epoch + 1}",
                        save, stop, checkpoint_every)
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
    save()


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
