"""One trainer for every method: vanilla and the adversarial-training baselines from scratch, and the
noise methods fine-tuned from the vanilla model, on the small datasets' arrays or on a streamed
ImageNet folder (``noisetrain.train.sources``).

What differs between methods is how one batch becomes one classifier update; that lives in a
*method step* registered by kind (``noisetrain.train.steps``). The trainer owns the rest: data
order, the optimiser and its one LR decay, held-out accuracy, the per-epoch log (the means of
every metric the steps return) and the per-step log (``step_log``), mixed precision on a GPU
(``precision``), checkpoints, and the guards against divergence.

A run is resumable: after every epoch, every ``checkpoint_every`` seconds of work and when the
job is asked to stop (SIGTERM / SIGUSR1, :mod:`noisetrain.train.preemption`), the model, optimiser,
LR schedule, loss scalers, data-order generator, the global random streams (dropout), the method
step's state, the position in the epoch and the log so far are written atomically to
``checkpoint_dir/last.pt``, under a fingerprint of everything that shapes the result (the spec,
the training data, the initial weights and the code version).
A stopped or killed job, rerun, continues from there, mid-epoch too, and ends with exactly the
weights of an uninterrupted run (on CPU); a checkpoint of anything else is ignored.
Once the final model is saved, :func:`discard_checkpoint` removes it, so that a rerun Snakemake
asks for trains afresh.

Data-parallel (an image folder, one process per GPU, :mod:`noisetrain.train.distributed`): each
process trains on its shard with its part of the batch, the classifier under DDP; the processes
agree after every step on saving and stopping and log the means of their metrics; rank 0 writes the
checkpoint (the shared state and every process's own random streams and method state), the logs
and the model, and measures the held-out accuracy.
"""

from __future__ import annotations

import csv
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
from noisetrain.config_names import spec_hash
from noisetrain.data.datasets import PreparedData, array_hash
from noisetrain.errors import CheckpointError, ConfigError, Preempted, TrainingError
from noisetrain.host_values import read_floats
from noisetrain.models import madry_cnn  # noqa: F401  (registers the small datasets' network)
from noisetrain.models.architectures import build_model
from noisetrain.models.devices import resolve_device
from noisetrain.models.model_file import load_weights, save_model
from noisetrain.noise.diagnostics import is_erasing
from noisetrain.storage import atomic_write, load_torch, save_torch
from noisetrain.train.distributed import SINGLE, World, unwrap
from noisetrain.train.epoch_sums import EpochSums
from noisetrain.train.precision import FP32, Precision
from noisetrain.train.preemption import StopRequest
from noisetrain.train.sources import TrainSource, as_source
from noisetrain.train.step_log import StepLog
from noisetrain.train.steps import MethodStep, Metrics, Stream, build_step, seeded, stream_seed

# Every method's columns ("accuracy": on the composed training batches); a method's own metrics follow.
LOG_COLUMNS = ("epoch", "loss", "accuracy", "heldout_accuracy", "lr", "seconds", "images_per_second")


def state_hash(state: dict[str, torch.Tensor] | None) -> str | None:
    return None if state is None else array_hash(*(state[k] for k in sorted(state)))


def run_identity(spec: dict, data: PreparedData | TrainSource, init_state: dict | str | None) -> dict:
    """Everything that shapes a trained model besides the code: recorded with it as provenance.
    ``init_state``: the initial weights, or a fingerprint of them (a torchvision weights name's)."""
    init_hash = init_state if isinstance(init_state, str) or init_state is None else state_hash(init_state)
    return {"spec": spec, "data_hash": as_source(data).identity(), "init_hash": init_hash, "code_version": __version__}


@dataclass
class TrainState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    order_rng: torch.Generator
    method: MethodStep
    precision: Precision = FP32
    epoch: int = 0
    log: list[dict] = field(default_factory=list)
    # Mid-epoch: the batches of the current epoch done, the order generator's state before this
    # epoch's permutation was drawn (to draw it again), and the epoch's running metric sums (floats,
    # ``EpochSums.totals``: the steps read so far; run_epoch reads them all before a checkpoint).
    step: int = 0
    epoch_order_rng: torch.Tensor | None = None
    totals: dict[str, float] = field(default_factory=dict)

    def state_dict(self, fingerprint: str) -> dict:
        return {
            "fingerprint": fingerprint,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "scalers": self.precision.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "epoch_order_rng": self.epoch_order_rng,
            "totals": dict(self.totals),
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "order_rng": self.order_rng.get_state(),
            "method": self.method.state_dict(),
            "log": self.log,
        }

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.precision.load_state_dict(state["scalers"])
        self.epoch = state["epoch"]
        unwrap(self.model).load_state_dict(state["model"])
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


def initial_model(spec: dict, data: PreparedData, init_state: dict | None) -> nn.Module:
    """The small datasets' classifier: a seeded init, or the initial model's weights."""
    torch.manual_seed(stream_seed(spec["seed"], Stream.INIT))
    model = build_model(spec["model"], data.channels, data.num_classes)
    if init_state is not None:
        load_weights(model, init_state, "the initial model")
    return model


def build_state(spec: dict, data: PreparedData | TrainSource, init_state: dict | None, device: torch.device,
                model: nn.Module | None = None, precision: Precision = FP32, world: World = SINGLE) -> TrainState:
    """The run's state before its first step; ``model`` (an ImageNet classifier with its initial
    weights) or, on the small datasets, one built from the spec and ``init_state``. With several
    processes the classifier is wrapped in DistributedDataParallel."""
    source = as_source(data, spec)
    if model is None:
        model = initial_model(spec, data, init_state)  # one process: the small datasets
    else:  # the global stream (dropout) starts at the seed; every further process has its own
        torch.manual_seed(stream_seed(spec["seed"], Stream.INIT, world.rank))
    model = world.wrap(precision.prepare_model(model), device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=spec["lr"], momentum=spec["momentum"], weight_decay=spec["weight_decay"]
    )
    milestones = [spec["lr_decay_epoch"]] if spec.get("lr_decay_epoch") else []
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    method = build_step(spec, source, device, source.steps_per_epoch(spec["batch_size"]), precision, world)
    return TrainState(model, optimizer, scheduler, seeded(spec["seed"], Stream.ORDER), method, precision)


PROGRESS_SECONDS = 60.0  # a plain progress line in the rule's log this often within an epoch


def run_epoch(state: TrainState, source: TrainSource, batch_size: int, label: str,
              save: Callable[[], None] = lambda: None, stop: StopRequest | None = None,
              checkpoint_every: float = math.inf, step_log: StepLog | None = None,
              log: Callable[[str], None] = print, world: World = SINGLE) -> dict[str, float]:
    """One pass over the training set in the source's seeded order, from ``state.step`` on (a
    resumed epoch continues the same order); returns every step metric's mean over images, and
    ``images``, how many the epoch had. After a step it calls ``save`` when ``checkpoint_every``
    seconds have passed since the last save, and when ``stop`` is requested, then raises Preempted.
    With several processes (``world``) the metrics are the means over all of them, and any one's
    save or stop is every one's.

    The steps' metrics stay on the training device until they are summed (``EpochSums``): once every
    PROGRESS_SECONDS, before a save and at the end, so that one process's steps never wait for the
    device and the trainer launches no work of its own between them."""
    state.model.train()
    sums = EpochSums(state.totals if state.step else {})
    steps = source.steps_per_epoch(batch_size)
    saved_at = shown_at = last = time.monotonic()
    terminal = sys.stderr.isatty() and world.is_main
    # A bar on a terminal; Snakemake log files get a plain line every PROGRESS_SECONDS and per epoch.
    for x, y, index in tqdm(source.epoch_batches(state, batch_size), desc=label, leave=False, disable=not terminal,
                            total=steps, initial=state.step):
        metrics = state.method.step(state.model, state.optimizer, x, y, index)
        now = time.monotonic()
        metrics, save_now, stop_now = _agree(world, metrics, now - saved_at >= checkpoint_every,
                                             stop is not None and stop.requested)
        images = len(index) * world.size  # the whole step's, over all processes
        state.step += 1
        sums.add(metrics, images, None if step_log is None else _step_row(state, steps, images / max(now - last, 1e-9)))
        last = now
        if now - shown_at >= PROGRESS_SECONDS:  # the one wait for the device within an epoch
            _settle(state, sums, step_log)
            if step_log is not None:
                step_log.flush()
            if not terminal:
                log(f"{label}: step {state.step}/{steps}, loss {sums.last['loss']:.4g}")
            shown_at = now
        if save_now or stop_now:
            _settle(state, sums, step_log)
            save()
            saved_at = time.monotonic()
            if stop_now:
                cause = stop.received if stop is not None and stop.received else "another process's stop request"
                raise Preempted(f"{label}: stopped by {cause} after step {state.step}; the checkpoint holds "
                                "the run so far: rerun the job to resume")
    _settle(state, sums, step_log)
    state.step, state.totals = 0, {}
    return sums.means()


def _settle(state: TrainState, sums: EpochSums, step_log: StepLog | None) -> None:
    """The pending steps' metrics read into the epoch's sums (which a checkpoint saves) and the step log."""
    rows = sums.settle()
    state.totals = sums.totals
    if step_log is not None:
        step_log.write(rows)


def _agree(world: World, metrics: Metrics, save: bool, stop: bool) -> tuple[Metrics, bool, bool]:
    """One all-reduce a step (nothing for one process): every process saves and stops at the same
    step, whichever one's clock or signal asks, and each metric becomes its mean over the processes.
    Every process's step returns the same keys (the batch split depends on the batch size only)."""
    if world.size == 1:
        return metrics, save, stop
    *sums, saves, stops = world.sum([*read_floats(metrics).values(), float(save), float(stop)])
    return {key: total / world.size for key, total in zip(metrics, sums)}, saves > 0, stops > 0


def _step_row(state: TrainState, steps: int, images_per_second: float) -> dict:
    """A step's per-step log row; its metrics join it when they are read (``EpochSums.settle``)."""
    device = state.precision.device
    memory = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else ""
    return {"epoch": state.epoch + 1, "step": state.epoch * steps + state.step,
            "lr": state.optimizer.param_groups[0]["lr"], "images_per_second": images_per_second,
            "gpu_memory_mb": memory}


# What each process of a data-parallel run has of its own: its random streams and its method step's state.
RANK_STATE = ("torch_rng", "cuda_rng", "method")


def _save_checkpoint(state: TrainState, fingerprint: str, checkpoint: Path, step_log: StepLog | None,
                     world: World) -> None:
    """One file, written by rank 0: the shared state, and with several processes each one's own
    part (``ranks``). The others wait until it is written (under torchrun, a process that stopped
    first would end the job)."""
    saved = state.state_dict(fingerprint)
    ranks = world.gather({key: saved[key] for key in RANK_STATE})
    if world.is_main:
        step_log.flush()
        save_torch({**saved, "world_size": world.size, **({"ranks": ranks} if world.size > 1 else {})}, checkpoint)
    world.barrier()


def _resume(state: TrainState, checkpoint: Path, fingerprint: str, method: str, log: Callable[[str], None],
            world: World = SINGLE) -> None:
    if not checkpoint.exists():
        return
    saved = load_torch(checkpoint)
    if saved.get("fingerprint") != fingerprint:
        log(f"ignoring {checkpoint}: it belongs to another configuration, data, initial model or code version of {method}")
        return
    processes = saved.get("world_size", 1)
    if processes != world.size:
        raise CheckpointError(f"{checkpoint} was written by {processes} training process(es), this run has {world.size}: "
                              f"rerun with {processes} (torchrun --nproc_per_node {processes}) to resume it, "
                              "or delete it to train afresh")
    try:
        state.load_state_dict({**saved, **saved["ranks"][world.rank]} if world.size > 1 else saved)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{checkpoint} does not fit {method} ({exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0][:200]}): delete it and rerun") from exc
    where = f"after epoch {state.epoch}" if state.step == 0 else f"in epoch {state.epoch + 1} after step {state.step}"
    log(f"resuming {method} from {checkpoint} {where}")


def fit(
    spec: dict,
    data: PreparedData | TrainSource,
    *,
    checkpoint_dir: str | Path,
    init_state: dict | None = None,
    model: nn.Module | None = None,
    init_id: str | None = None,
    device: str = "cpu",
    amp: bool = False,
    divergence_guard: bool = True,
    checkpoint_every: float = math.inf,
    stop: StopRequest | None = None,
    log: Callable[[str], None] = print,
    world: World = SINGLE,
) -> TrainState:
    """Train (or resume training) the model described by ``spec`` on ``data`` (a prepared dataset
    or a training source), from ``init_state`` (small datasets) or the given ``model`` with its
    initial weights, fingerprinted by ``init_id`` (ImageNet). ``amp``: autocast on a GPU.

    Checkpoints after every epoch and every ``checkpoint_every`` seconds of work, and writes the
    per-step log ``checkpoint_dir/steps.csv``. While it runs, SIGTERM or SIGUSR1 (or ``stop``,
    when given) make it checkpoint after the current step and raise Preempted. Raises
    TrainingError when the loss becomes non-finite or, with ``divergence_guard``, when the final
    model is no better than always answering the most frequent held-out class.

    ``world``: this process's place in a data-parallel run (:mod:`noisetrain.train.distributed`,
    the process group joined): each process trains on its shard of the source with its part of
    ``spec['batch_size']``; rank 0 alone logs, writes the checkpoint and the per-step log and
    measures the held-out accuracy.
    """
    device = resolve_device(device)
    source = as_source(data, spec, device)  # a prepared dataset's arrays live on the training device
    _check_shards(source, world)
    fingerprint = spec_hash(run_identity(spec, source, init_id if model is not None else init_state))
    spec = _per_process(spec, world)
    if not world.is_main:
        log = _silent
    if world.is_main:
        source.check_heldout()  # before any work that a corrupt held-out image would throw away
    state = build_state(spec, source, init_state, device, model, Precision(device, amp), world)
    checkpoint = Path(checkpoint_dir) / "last.pt"
    _resume(state, checkpoint, fingerprint, spec["method"], log, world)
    step_log = StepLog(step_log_path(checkpoint_dir)) if world.is_main else None
    if step_log is not None:
        step_log.keep_until(state.epoch * source.steps_per_epoch(spec["batch_size"]) + state.step)

    def save() -> None:
        _save_checkpoint(state, fingerprint, checkpoint, step_log, world)

    try:
        with stop or StopRequest() as stop:
            while state.epoch < spec["epochs"]:
                _train_epoch(state, spec, source, checkpoint_every, stop, save, step_log, log, world)
    finally:
        if step_log is not None:
            step_log.close()
    if divergence_guard:
        _check_not_chance(spec, state.log[-1]["heldout_accuracy"], source.chance_level())
    return state


def _silent(message: str) -> None:
    """The log of every process but rank 0: one process speaks for the run."""


def _check_shards(source: TrainSource, world: World) -> None:
    if source.world_size != world.size:
        fix = ("the small datasets train in one process: run it without torchrun or srun tasks" if source.world_size == 1
               else "give the source this process's rank and the world size")
        raise ConfigError(f"{world.size} processes train but the {source.name} training data is split for "
                          f"{source.world_size}: {fix}")


def _per_process(spec: dict, world: World) -> dict:
    """The spec one process trains with: its share of ``batch_size``, the whole step's batch."""
    if world.size == 1:
        return spec
    if spec["batch_size"] % world.size:
        raise ConfigError(f"config error at 'train.batch_size': {spec['batch_size']} images cannot be split evenly "
                          f"over {world.size} training processes; make it a multiple")
    return {**spec, "batch_size": spec["batch_size"] // world.size}


STEP_LOG = "steps.csv"  # the per-step log, beside the checkpoint until the run is done


def step_log_path(checkpoint_dir: str | Path) -> Path:
    return Path(checkpoint_dir) / STEP_LOG


def _train_epoch(state: TrainState, spec: dict, source: TrainSource, checkpoint_every: float, stop: StopRequest,
                 save: Callable[[], None], step_log: StepLog | None, log: Callable[[str], None],
                 world: World = SINGLE) -> None:
    """One epoch (or the rest of a resumed one), its log row and its checkpoint."""
    started = time.perf_counter()
    label = f"{spec['method']} epoch {state.epoch + 1}"
    metrics = run_epoch(state, source, spec["batch_size"], label, save, stop, checkpoint_every, step_log, log, world)
    seconds = time.perf_counter() - started
    if not math.isfinite(metrics["loss"]):
        raise TrainingError(f"{spec['method']}: training loss became {metrics['loss']} in epoch {state.epoch + 1}; lower lr")
    lr = state.optimizer.param_groups[0]["lr"]
    state.scheduler.step()
    state.epoch += 1
    heldout = _heldout_accuracy(state, source, world)
    images = metrics.pop("images")
    row = {"epoch": state.epoch, "loss": metrics.pop("loss"), "heldout_accuracy": heldout, "lr": lr,
           "seconds": seconds, "images_per_second": images / seconds, **metrics}
    state.log.append(row)
    log(f"{spec['method']} epoch {state.epoch}/{spec['epochs']}: "
        + ", ".join(f"{key.replace('_', ' ')} {value:.4g}" for key, value in row.items()
                    if key not in ("epoch", "lr", "seconds")))
    save()


def _heldout_accuracy(state: TrainState, source: TrainSource, world: World) -> float:
    """Measured by rank 0 alone, on the plain module (a DDP forward would wait for the others), and
    given to every process (all take the same divergence decision)."""
    heldout = None
    if world.is_main:
        heldout = source.heldout_accuracy(unwrap(state.model), state.precision.device, state.precision)
    return world.broadcast(heldout)


CHANCE_MARGIN = 0.01  # a point above chance is noise, not learning


def _check_not_chance(spec: dict, heldout: float, chance: float) -> None:
    if heldout <= chance + CHANCE_MARGIN:
        raise TrainingError(
            f"{spec['method']}: held-out accuracy {heldout:.4f} after {spec['epochs']} epochs is no better than "
            f"always answering the most frequent class ({chance:.4f}): training diverged or did not learn; "
            f"lower lr (now {spec['lr']:g}) or train longer. No model was written"
        )


def write_log(state: TrainState, path: str | Path) -> None:
    """The per-epoch log as CSV."""
    def write(tmp):
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=state.log_columns())
            writer.writeheader()
            writer.writerows(state.log)

    atomic_write(path, write)


def finish(state: TrainState, checkpoint_dir: str | Path, info: dict, out: str | Path, log_csv: str | Path,
           steps_csv: str | Path, **model_file) -> None:
    """Write a finished run's outputs (the logs first, the model last: a model file means the run
    is complete) and remove its checkpoint; rank 0's job in a data-parallel run. The method's final
    diagnostics travel with the model into every record's provenance (the tables flag ANT models
    whose generators erased the images, issue 9)."""
    write_log(state, log_csv)
    atomic_write(steps_csv, lambda tmp: shutil.copyfile(step_log_path(checkpoint_dir), tmp))
    info = {**info, "training_diagnostics": training_diagnostics(state.log)}
    save_model(unwrap(state.model).cpu(), out, info=info, extras=state.method.export(), **model_file)
    discard_checkpoint(checkpoint_dir)


def discard_checkpoint(checkpoint_dir: str | Path) -> None:
    """After the final model is saved: a later rerun must train afresh, not resume a finished run."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
