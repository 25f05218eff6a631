#!/usr/bin/env python
"""The prepared GPU check (issue 21): one run on a lent GPU that measures what the pipeline's GPU jobs
depend on and writes one JSON and a short text report, within a time budget.

    python bench/gpu_check.py [--out DIR] [--budget-s 480] [--smallest] [--device auto|cpu|cuda]
                              [--weights NAME_OR_FILE] [--mnist-root DIR] [--sections card train_synthetic ...]

(``bash bench/gpu_check.sh`` is the one command: it finds or installs a Python with torch first.)

Sections, in order (each a function below; ``SECTIONS`` gives their share of the budget):

- card: the device, its memory, driver, CUDA, cuDNN and torch versions, and the TF32 / cuDNN settings.
- sample_folder: a temporary ImageFolder of scikit-image photographs (hard links up to the size needed).
- train_synthetic: images/s of whole training steps of the trainer's own method steps (build_step): vanilla,
  GNT sigma 0.5, ANT 1x1 and ANT 3x3 (config/imagenet.yaml's, re-initialisation off), torchvision's ResNet50
  at random init, AMP as the trainer runs it (Precision(amp=True): bf16 where supported), channels_last,
  on synthetic batches already on the device.
- ant_profile: torch.profiler over a few ANT 1x1 steps: the operators that take the device's time, the
  host's waits for the device and the operations a step dispatches.
- ant_phases: an ANT 1x1 step's phases each timed alone (generator update, the batch's composition, the
  classifier step; inside the update, the fixed classifier's pass, also with BatchNorm in train mode, the
  generator's and the rescaling's passes; the diagnostics): where its time beyond vanilla's goes.
- loader: the streaming loader alone (FolderSource: DataLoader workers = CPU cores, seeded
  RandomResizedCrop), images/s and images/s per worker, after its prefetched batches are drained; then
  the same with train.decode: gpu (workers read the JPEG bytes, this process decodes each batch with
  torchvision.io.decode_jpeg on the device; on a CPU run that is the CPU, and the row says so).
- train_streamed: the same four steps, each fed by the streaming loader (one stream for all, warmed up).
- inference: forward images/s in fp32, bf16 and fp16 autocast on the sample photographs (eval crop),
  and each low precision's top-1 agreement with fp32 on the same images.
- mnist: one epoch of the small-data trainer (trainer.fit, config/mnist.yaml's vanilla, batch 300, fp32
  as the pipeline runs it), once with the arrays in host memory (each batch copied) and once as the
  trainer runs a prepared dataset (its arrays on the device for the whole job); then each Table 11
  method's step on the device-resident arrays (build_step of config/mnist.yaml's gnt_s0.5, ant1x1 with its
  re-initialisations, pgd_at, ddn_at), the training time its paper-budget schedule projects and the
  operations one step dispatches (noisetrain.op_count: each a kernel launch the small network waits for).
- ddp: the vanilla AMP step under DistributedDataParallel, one process per GPU present (one GPU: a
  process group of one, recorded as such), in a child process that is killed if it outlasts its time.

Every section is time-boxed (its share of what is left of the budget, a hard stop a little later) and
every failure is caught and recorded; the JSON and the text are rewritten after each section, so a
run cut short still leaves what it measured. ``--smallest`` runs it all on the CPU at tiny sizes
(resnet18 at 64 px, batch 2, a MNIST subset): what the tests run. No number is made up: on a CPU the
report says device cpu.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import itertools
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402

NUM_CLASSES = 1000
IMAGENET_TRAIN_IMAGES = 1_281_167
# In the timed ANT steps: no re-initialisation (the first generator untrained); the bank is filled
# first with a snapshot every step (``with_bank``), then snapshots come at the config's rate.
NO_REINIT = {"reinit_every": 1e9, "reinit_steps": 0, "snapshot_every": 1}
WRITE_RESERVE_S = 2.0  # kept back from the budget for the last write of the report


@dataclass(frozen=True)
class Setting:
    """The sizes of one run: the GPU run, or the smallest (CPU, for the tests)."""

    name: str
    model: str
    image: int
    batch: int
    steps: int  # timed steps per row at most (fewer when its time runs out)
    warmup: int
    classes: int  # sample photographs, one class each
    distinct: int  # distinct training photos per class (the rest hard links)
    val_per_class: int  # the inference images
    short_side: int
    mnist_train: int | None  # None: all of it
    mnist_test: int | None
    mnist_method_batch: int | None  # the timed method steps' batch (None: the config's)
    min_section_s: float  # a section with less time than this left is skipped


FULL = Setting("full", "resnet50", 224, 70, 50, 3, 8, 12, 32, 344, None, None, None, 8.0)
SMALLEST = Setting("smallest", "resnet18", 64, 2, 1, 1, 2, 2, 2, 72, 600, 200, 10, 0.5)


class SectionTimeout(BaseException):
    """A section's hard stop (SIGALRM); a BaseException, so that no ``except Exception`` on the way swallows it."""


@dataclass
class Context:
    """What every section sees: the run's settings and device, its time, and what earlier sections left."""

    args: argparse.Namespace
    setting: Setting
    device: torch.device
    workdir: Path
    report: dict
    ends_at: float = math.inf  # this section's soft end (time.monotonic)
    folder: SimpleNamespace | None = None  # the sample ImageFolder, once made
    folder_error: str | None = None

    def left(self) -> float:
        return max(0.0, self.ends_at - time.monotonic())

    @property
    def workers(self) -> int:
        if self.args.workers is not None:
            return self.args.workers
        cores = os.cpu_count() or 1
        return min(2, cores) if self.setting.name == "smallest" else cores


# ------------------------------------------------------------------------------------------------ helpers


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(step: Callable[[], object], images_per_step: int, device: torch.device, *, steps: int, seconds: float,
                warmup: int = 0) -> dict:
    """Images/s of ``step`` over at most ``steps`` calls, stopping early once ``seconds`` have passed
    (at least one timed call). Warm-up calls are not timed, and stop early once half of ``seconds``
    is spent (a slow first step must not eat the row's time); the clock is read after a synchronize."""
    warm_start = time.perf_counter()
    for _ in range(warmup):
        step()
        if time.perf_counter() - warm_start >= seconds / 2:
            break
    sync(device)
    start = time.perf_counter()
    done = 0
    while done < steps:
        step()
        done += 1
        if time.perf_counter() - start >= seconds:
            break
    sync(device)
    elapsed = max(time.perf_counter() - start, 1e-9)
    return {"steps": done, "seconds": elapsed, "images_per_s": images_per_step * done / elapsed,
            "ms_per_step": 1000 * elapsed / done}


def with_ratios(rows: dict, reference: str = "vanilla") -> dict:
    """Each row's time per step as a ratio to the reference row's (the cost in vanilla steps)."""
    ref = rows.get(reference, {}).get("ms_per_step")
    for row in rows.values():
        if ref and "ms_per_step" in row:
            row["ratio_to_vanilla"] = row["ms_per_step"] / ref
    return rows


def _schema_defaults(kind: str) -> dict:
    """A method kind's defaults read straight from the config schema: where jsonschema (which the
    project's own reader needs) is not installed, as on the lent GPU machine."""
    import yaml

    schema = yaml.safe_load((ROOT / "lib" / "noisetrain" / "config_schema.yaml").read_text())
    for branch in schema["$defs"]["method"]["allOf"]:
        if branch["if"]["properties"]["kind"].get("const") == kind:
            return {key: value["default"] for key, value in branch["then"]["properties"].items()
                    if isinstance(value, dict) and "default" in value}
    raise KeyError(kind)


def ant_specs() -> tuple[dict[str, dict], str]:
    """config/imagenet.yaml's ANT 1x1 and 3x3 with the schema's defaults, and how they were read."""
    path = ROOT / "config" / "imagenet.yaml"
    try:
        from ant_checkpoint import ant_methods

        methods, how = ant_methods(path)[1], "config/imagenet.yaml through the schema (noisetrain.config)"
    except ImportError as exc:
        import yaml

        defaults = _schema_defaults("ant")
        entries = yaml.safe_load(path.read_text())["methods"]
        methods = {name: {**defaults, **entry} for name, entry in entries.items() if entry.get("kind") == "ant"}
        how = f"config/imagenet.yaml with the schema's defaults read as plain YAML ({exc})"
    drop = ("schedule", "architecture", "init_weights")
    return {name: {k: v for k, v in methods[name].items() if k not in drop} for name in ("ant1x1", "ant3x3")}, how


def method_specs(batch_size: int, image: int) -> tuple[dict[str, dict], str]:
    """The four timed methods as the trainer builds them, half of every batch clean. Below 224 px ANT's
    eps (an L2 size over the whole image) is scaled by the side, so the noise per pixel stays the same."""
    common = {"batch_size": batch_size, "clean_fraction": 0.5, "seed": 0, "stylized_path": None}
    ants, how = ant_specs()
    scale = image / 224
    specs = {"vanilla": {"method": "vanilla", "kind": "vanilla", **common},
             "gnt": {"method": "gnt_s0.5", "kind": "gnt", "sigma": 0.5, **common}}
    for name, spec in ants.items():
        specs[name] = {"method": name, **spec, **common, **NO_REINIT, "eps": float(spec["eps"]) * scale}
    return specs, how


def with_bank(ctx: Context, step, batches, model, optimizer):
    """An ANT step as a run's: its bank filled with a state a step (24: a replay part of a batch of
    70, 21 images, draws from about as many distinct states as from a full bank), then a snapshot
    every config/imagenet.yaml snapshot_every steps. Other steps as they are."""
    if not hasattr(step, "bank"):
        return step
    for _ in range(24 if ctx.setting.name == "full" else 1):
        step.step(model, optimizer, *next(batches))
    step.snapshot_every = ant_specs()[0]["ant1x1"]["snapshot_every"]
    return step


def imagenet_batch_size() -> int:
    import yaml

    return int(yaml.safe_load((ROOT / "config" / "imagenet.yaml").read_text()).get("train", {}).get("batch_size", 70))


class SyntheticSource:
    """Random images already on the device, for ANT's fresh generators (a duck-typed TrainSource)."""

    name, channels, has_stylized = "synthetic", 3, False

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], num_classes: int):
        self.batches, self.num_classes = batches, num_classes

    def random_batches(self, steps: int, size: int, rng: torch.Generator):
        for k in range(steps):
            x, y, _ = self.batches[k % len(self.batches)]
            yield x[:size], y[:size]

    def stylized(self, index):
        raise NotImplementedError("no stylized images in the synthetic source")


def synthetic_batches(count: int, batch_size: int, image: int, device: torch.device, seed: int = 0) -> list:
    """uint8 levels / 255, as decoded images are, made on the CPU with a seed and moved once."""
    rng = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        x = torch.randint(0, 256, (batch_size, 3, image, image), generator=rng).float().div_(255)
        y = torch.randint(0, NUM_CLASSES, (batch_size,), generator=rng)
        out.append((x.to(device), y.to(device), torch.arange(batch_size)))
    return out


def train_model(arch: str, precision, seed: int = 0):
    from noisetrain.models.torchvision_models import load_classifier

    model = precision.prepare_model(load_classifier(arch, None, num_classes=NUM_CLASSES, seed=seed)).train()
    return model, torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)


def prefetched(workers: int) -> int:
    """Batches a fresh DataLoader iterator queues ahead (torch's default prefetch factor 2)."""
    return 2 * workers


def folder_source(ctx: Context, workers: int, decode: str = "cpu"):
    from noisetrain.train.folder_source import FolderSource

    if ctx.folder is None:
        raise RuntimeError(f"no sample folder: {ctx.folder_error or 'the sample_folder section did not run'}")
    f = ctx.folder
    return FolderSource(f.train, f.val, f.val_files, f.classes, seed=0, workers=workers,
                        pin_memory=ctx.device.type == "cuda", input_size=ctx.setting.image, decode=decode,
                        decode_device=ctx.device)


def stream(source, batch_size: int):
    """The trainer's batches, epoch after epoch."""
    epoch = 0
    while True:
        yield from source.epoch_batches(SimpleNamespace(epoch=epoch, step=0), batch_size)
        epoch += 1


def folder_images_needed(setting: Setting, workers: int) -> int:
    """Enough training images that neither the loader nor the streamed rows start a second epoch."""
    warm = prefetched(workers) + 1
    loader = warm + 2 * setting.steps
    streamed = warm + 4 * (setting.warmup + setting.steps) + 2
    return (max(loader, streamed) + 2) * setting.batch


# ----------------------------------------------------------------------------------------------- sections


def section_card(ctx: Context, out: dict) -> None:
    out["device"] = ctx.device.type
    out["torch"] = torch.__version__
    with contextlib.suppress(Exception):
        import torchvision

        out["torchvision"] = torchvision.__version__
    out["python"] = platform.python_version()
    out["cpu_cores"] = os.cpu_count()
    out["cuda_available"] = torch.cuda.is_available()
    with contextlib.suppress(OSError):  # DataLoader workers hand batches over through it: a small one breaks them
        out["shm_gib"] = shutil.disk_usage("/dev/shm").total / 2**30
    if ctx.device.type != "cuda":
        out["name"] = _cpu_name()
        return
    out["gpus"] = torch.cuda.device_count()
    props = torch.cuda.get_device_properties(ctx.device)
    out["name"] = torch.cuda.get_device_name(ctx.device)
    out["memory_gib"] = props.total_memory / 2**30
    out["compute_capability"] = f"{props.major}.{props.minor}"
    out["multiprocessors"] = props.multi_processor_count
    out["cuda_runtime"] = torch.version.cuda
    out["cudnn"] = torch.backends.cudnn.version()
    out["bf16_supported"] = torch.cuda.is_bf16_supported()
    out["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
    out["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    out["cudnn_benchmark"] = torch.backends.cudnn.benchmark
    if shutil.which("nvidia-smi"):
        with contextlib.suppress(Exception):
            line = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm,power.limit",
                                   "--format=csv,noheader"], capture_output=True, text=True, timeout=15).stdout
            driver, clock, power = (part.strip() for part in line.splitlines()[0].split(","))
            out.update(driver=driver, max_sm_clock=clock, power_limit=power)


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "cpu"


def section_sample_folder(ctx: Context, out: dict) -> None:
    """Photographs at about ImageNet's size (the bench's short side 344); hard links up to the count."""
    from noisetrain.data.sample_images import make_sample_imagenet, pad_train_images

    s = ctx.setting
    root = ctx.workdir / "images"
    classes = make_sample_imagenet(root, classes=s.classes, train_per_class=s.distinct, val_per_class=s.val_per_class,
                                   size=s.short_side)
    per_class = math.ceil(folder_images_needed(s, ctx.workers) / len(classes))
    pad_train_images(root / "train", classes, per_class)
    val_files = [f"{name}/{file.name}" for name in classes for file in sorted((root / "val" / name).iterdir())]
    ctx.folder = SimpleNamespace(train=root / "train", val=root / "val", val_files=val_files, classes=classes)
    out.update(classes=len(classes), distinct_train_images=s.distinct * len(classes),
               train_images=per_class * len(classes), val_images=len(val_files), short_side=s.short_side)


def section_train_synthetic(ctx: Context, out: dict) -> None:
    from noisetrain.train.precision import Precision
    from noisetrain.train.steps import build_step

    s, device = ctx.setting, ctx.device
    precision = Precision(device, amp=True)
    model, optimizer = train_model(s.model, precision)
    batches = synthetic_batches(2, s.batch, s.image, device)
    source = SyntheticSource(batches, NUM_CLASSES)
    specs, how = method_specs(s.batch, s.image)
    out.update(model=s.model, batch_size=s.batch, image_size=s.image, precision=precision.name,
               channels_last=precision.channels_last, device=str(device), ant_specs_from=how,
               ant_eps={name: specs[name]["eps"] for name in ("ant1x1", "ant3x3")})
    rows = out["rows"] = {}
    feed = itertools.cycle(batches)
    for k, (name, spec) in enumerate(specs.items()):
        step = with_bank(ctx, build_step(spec, source, device, IMAGENET_TRAIN_IMAGES // s.batch, precision), feed, model,
                         optimizer)

        def one(step=step):
            x, y, index = next(feed)
            step.step(model, optimizer, x, y, index)

        seconds = 0.8 * ctx.left() / (len(specs) - k)
        rows[name] = {"precision": precision.name,
                      **timed_steps(one, s.batch, device, steps=s.steps, seconds=seconds, warmup=s.warmup)}
        with_ratios(rows)
    if device.type == "cuda":
        out["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30


def ant_step_with_bank(ctx: Context):
    """The ANT 1x1 step as train_synthetic times it (its bank filled, cuDNN's kernels picked), with its
    precision, classifier, optimiser and synthetic batches."""
    from noisetrain.train.precision import Precision
    from noisetrain.train.steps import build_step

    s, device = ctx.setting, ctx.device
    precision = Precision(device, amp=True)
    model, optimizer = train_model(s.model, precision)
    batches = synthetic_batches(2, s.batch, s.image, device)
    specs, _ = method_specs(s.batch, s.image)
    step = build_step(specs["ant1x1"], SyntheticSource(batches, NUM_CLASSES), device, IMAGENET_TRAIN_IMAGES // s.batch,
                      precision)
    with_bank(ctx, step, itertools.cycle(batches), model, optimizer)
    return precision, model, optimizer, batches, step


def section_ant_profile(ctx: Context, out: dict) -> None:
    """torch.profiler over a few ANT 1x1 steps as train_synthetic runs them: where an ANT step's time
    goes on this device beyond vanilla's two passes, and how often it waits for the device
    (aten::_local_scalar_dense: a value read to the host; cudaStreamSynchronize / DtoH copies)."""
    from torch.profiler import ProfilerActivity, profile

    from noisetrain.op_count import OpCount

    s, device = ctx.setting, ctx.device
    _, model, optimizer, batches, step = ant_step_with_bank(ctx)
    feed = itertools.cycle(batches)
    sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    steps = 5
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step.step(model, optimizer, *next(feed))
        sync(device)
    events = prof.key_averages()
    device_key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"

    def top(key: str) -> list[dict]:
        ranked = sorted(events, key=lambda e: getattr(e, key, 0), reverse=True)[:15]
        return [{"op": e.key, "calls": e.count, "self_cpu_ms": e.self_cpu_time_total / 1e3,
                 "self_device_ms": getattr(e, "self_device_time_total", 0) / 1e3} for e in ranked]

    with OpCount() as count:  # the operations one step dispatches: each a kernel launch on a GPU
        step.step(model, optimizer, *next(feed))
    waits = ("aten::_local_scalar_dense", "cudaStreamSynchronize", "cudaDeviceSynchronize", "aten::nonzero", "aten::unique")
    out.update(model=s.model, batch_size=s.batch, steps=steps, ops_per_step=count.ops,
               by_self_cpu=top("self_cpu_time_total"), by_self_device=top(device_key),
               waits_per_step={e.key: e.count / steps for e in events if e.key in waits})


def section_ant_phases(ctx: Context, out: dict) -> None:
    """An ANT 1x1 step's phases, each timed alone as train_synthetic times a step: where its time beyond
    vanilla's goes on this device. The step is the generator update, the composition of the classifier's
    batch and the classifier step (a vanilla step); the generator update is a pass of the fixed classifier
    (eval mode, input gradients only) around the generator's and the rescaling's own passes. The fixed
    pass is also timed with BatchNorm on batch statistics (train mode; on a copy of the classifier), to tell
    whether eval-mode BatchNorm's backward, which the H200's profile put near the top, is what costs."""
    import copy

    import torch.nn.functional as F

    from noisetrain.noise.adversarial_noise import weights_fixed
    from noisetrain.noise.diagnostics import diagnostic_tensors
    from noisetrain.noise.rescaling import rescale_to_norm
    from noisetrain.train.steps import classifier_step

    s, device = ctx.setting, ctx.device
    precision, model, optimizer, batches, step = ant_step_with_bank(ctx)
    feed = itertools.cycle(batches)
    x, y, index = batches[0]
    delta = step.generator.transform(step._noise_input(step.generator, x.shape)).detach()
    noisy = rescale_to_norm(x, delta, step.eps)
    with torch.no_grad(), precision.autocast():
        logits = model(precision.prepare_batch(noisy))
    bn_model = copy.deepcopy(model)

    def fixed_pass(net, train_mode: bool):
        def run():
            net.train(train_mode)
            with weights_fixed(net):
                inputs = noisy.detach().requires_grad_()
                with precision.autocast():
                    loss = F.cross_entropy(net(precision.prepare_batch(inputs)), y)
                loss.backward()
            net.train()
        return run

    def generator_pass():
        step.generator.zero_grad(set_to_none=True)
        step.generator.transform(step._noise_input(step.generator, x.shape)).square().sum().backward()

    def rescale_pass():
        rescale_to_norm(x, delta.requires_grad_(), step.eps).sum().backward()
        delta.grad = None

    phases = {
        "ant_step": lambda: step.step(model, optimizer, *next(feed)),
        "classifier_step": lambda: classifier_step(model, optimizer, x, y, precision),
        "generator_update": lambda: step._generator_update(model, step.generator, step.optimizer, x, y),
        "compose": lambda: step.compose(x, y, index),
        "fixed_classifier_pass": fixed_pass(model, False),
        "fixed_classifier_pass_train_bn": fixed_pass(bn_model, True),
        "generator_forward_backward": generator_pass,
        "rescale_forward_backward": rescale_pass,
        "diagnostics": lambda: diagnostic_tensors(x, noisy, logits, y),
    }
    out.update(model=s.model, batch_size=s.batch, image_size=s.image, precision=precision.name)
    rows = out["rows"] = {}
    for k, (name, run) in enumerate(phases.items()):
        seconds = 0.8 * ctx.left() / (len(phases) - k)
        rows[name] = timed_steps(run, s.batch, device, steps=s.steps, seconds=seconds, warmup=s.warmup)
    with_ratios(rows, reference="classifier_step")  # the classifier step is a vanilla step
    ms = {name: row["ms_per_step"] for name, row in rows.items()}
    # The step's parts timed apart; what they leave of the whole step is the rest of it (the replay
    # part's diagnostics, the bank's snapshots, the metrics) and the overlap lost between the parts.
    parts = ms["generator_update"] + ms["compose"] + ms["classifier_step"]
    out["parts_ms"] = parts
    out["rest_of_step_ms"] = ms["ant_step"] - parts


def section_loader(ctx: Context, out: dict) -> None:
    """Batches fetched and nothing else; the loader's workers start and fill its queue untimed. The
    PIL path (train.decode: cpu) first, then the batch decode path (gpu) on the run's device."""
    s, workers = ctx.setting, ctx.workers
    source = folder_source(ctx, workers)
    out.update(workers=workers, batch_size=s.batch, image_size=s.image, pin_memory=source.pin_memory)
    timed = timed_loader(ctx, source, seconds=0.45 * ctx.left())
    out.update(timed)
    out["images_per_s_per_worker"] = timed["images_per_s"] / max(workers, 1)
    gpu = timed_loader(ctx, folder_source(ctx, workers, decode="gpu"), seconds=0.8 * ctx.left())
    out["gpu_decode"] = {"decode_device": ctx.device.type, **gpu,
                         "images_per_s_per_worker": gpu["images_per_s"] / max(workers, 1)}


def timed_loader(ctx: Context, source, seconds: float) -> dict:
    s, workers = ctx.setting, ctx.workers
    batches = iter(source.epoch_batches(SimpleNamespace(epoch=0, step=0), s.batch))
    device = ctx.device if source.decode == "gpu" else torch.device("cpu")  # a decode on the GPU is waited for
    try:
        for _ in range(prefetched(workers) + 1):
            next(batches)
        return timed_steps(lambda: next(batches), s.batch, device, steps=2 * s.steps, seconds=seconds)
    finally:
        batches.close()  # its workers stop


def section_train_streamed(ctx: Context, out: dict) -> None:
    """Whole steps, fetching the batch included: one loader stream feeds every row in turn, warmed
    up first (its prefetched batches drained) so that each row sees the loader's steady rate."""
    from noisetrain.train.precision import Precision
    from noisetrain.train.steps import build_step

    s, device, workers = ctx.setting, ctx.device, ctx.workers
    source = folder_source(ctx, workers)
    precision = Precision(device, amp=True)
    model, optimizer = train_model(s.model, precision)
    specs, _ = method_specs(s.batch, s.image)
    out.update(model=s.model, batch_size=s.batch, image_size=s.image, precision=precision.name, workers=workers)
    steps = {name: build_step(spec, source, device, IMAGENET_TRAIN_IMAGES // s.batch, precision)
             for name, spec in specs.items()}
    batches = stream(source, s.batch)
    try:
        for _ in range(prefetched(workers) + 1):
            x, y, index = next(batches)
            steps["vanilla"].step(model, optimizer, x, y, index)
        rows = out["rows"] = {}
        for k, (name, step) in enumerate(steps.items()):
            with_bank(ctx, step, batches, model, optimizer)
            def one(step=step):
                x, y, index = next(batches)
                step.step(model, optimizer, x, y, index)

            seconds = 0.8 * ctx.left() / (len(steps) + 1 - k)
            rows[name] = {"precision": precision.name,
                          **timed_steps(one, s.batch, device, steps=s.steps, seconds=seconds, warmup=s.warmup)}
            with_ratios(rows)
    finally:
        batches.close()  # its loader's workers stop before the folder goes
    rows["vanilla_gpu_decode"] = streamed_gpu_decode(ctx, model, optimizer, steps["vanilla"], precision.name)
    synthetic = ctx.report["sections"].get("train_synthetic", {}).get("results", {}).get("rows", {})
    for name, row in out["rows"].items():
        reference = synthetic.get(name.removesuffix("_gpu_decode"), {}).get("images_per_s")
        if reference and "images_per_s" in row:
            row["fraction_of_synthetic"] = row["images_per_s"] / reference


def streamed_gpu_decode(ctx: Context, model, optimizer, step, precision: str) -> dict:
    """The vanilla step fed by the batch decode path (train.decode: gpu) on the run's device."""
    s, workers = ctx.setting, ctx.workers
    batches = stream(folder_source(ctx, workers, decode="gpu"), s.batch)
    try:
        for _ in range(prefetched(workers) + 1):
            next(batches)

        def one():
            x, y, index = next(batches)
            step.step(model, optimizer, x, y, index)

        row = timed_steps(one, s.batch, ctx.device, steps=s.steps, seconds=0.8 * ctx.left(), warmup=s.warmup)
        return {"precision": precision, "decode_device": ctx.device.type, **row}
    finally:
        batches.close()


def _stored_weights(arch: str) -> str | None:
    """torchvision's pretrained file when it is already in torch's cache (nothing is downloaded)."""
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(checkpoints.glob(f"{arch}-*.pth")) if checkpoints.is_dir() else []
    return str(found[0]) if found else None


def section_inference(ctx: Context, out: dict) -> None:
    """The same images in every precision: images/s on one batch of them, and each one's top-1 on
    all of them against fp32's (TF32 as torch's defaults set it: card.tf32_*)."""
    from torch.utils.data import DataLoader

    from noisetrain.data.imagenet import eval_transform, image_folder
    from noisetrain.models.torchvision_models import load_classifier

    s, device = ctx.setting, ctx.device
    if ctx.folder is None:
        raise RuntimeError(f"no sample folder: {ctx.folder_error or 'the sample_folder section did not run'}")
    weights = ctx.args.weights or _stored_weights(s.model)
    model = load_classifier(s.model, weights, num_classes=NUM_CLASSES)
    dataset = image_folder(ctx.folder.val, eval_transform(s.image), files=ctx.folder.val_files, classes=ctx.folder.classes)
    images = torch.cat([x for x, _ in DataLoader(dataset, batch_size=64, num_workers=min(ctx.workers, 8))])
    images = images.to(device).contiguous(memory_format=torch.channels_last)
    model = model.to(device, memory_format=torch.channels_last)
    if weights is None:
        # Random init: BatchNorm's running statistics taken from these images (one train-mode pass),
        # so activations keep their size through the net (default statistics let them grow, in fp16 to inf).
        calibrate_batchnorm(model, images)
    model.eval()
    size = infer_batch(s)
    batch = images.repeat(math.ceil(size / len(images)), 1, 1, 1)[:size].contiguous(memory_format=torch.channels_last)
    out.update(model=s.model, weights=weights or "random init, BatchNorm statistics from these images",
               batch_size=len(batch), image_size=s.image, agreement_images=len(images))
    rows = out["rows"] = {}
    reference = None
    precisions = [("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)]
    for k, (name, dtype) in enumerate(precisions):
        seconds = 0.8 * ctx.left() / (len(precisions) - k)
        try:
            autocast = contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)
            with torch.inference_mode(), autocast:
                row = timed_steps(lambda: model(batch), len(batch), device, steps=3 * s.steps, seconds=seconds,
                                  warmup=s.warmup)
                logits = torch.cat([model(chunk).float() for chunk in images.split(len(batch))])
            if not torch.isfinite(logits).all():
                row["non_finite_logits"] = int((~torch.isfinite(logits)).any(1).sum())
            top1 = logits.argmax(1)
            if reference is None:
                reference = top1
                top2 = logits.topk(2, dim=1).values
                row["median_top1_margin"] = float((top2[:, 0] - top2[:, 1]).median())
            else:
                row["top1_agreement_with_fp32"] = float((top1 == reference).float().mean())
            rows[name] = {"precision": name, **row}
        except (RuntimeError, NotImplementedError) as exc:  # a precision the device lacks is one row's failure
            rows[name] = {"precision": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}


def infer_batch(setting: Setting) -> int:
    return 256 if setting.name == "full" else setting.classes * setting.val_per_class


@torch.no_grad()
def calibrate_batchnorm(model: torch.nn.Module, images: torch.Tensor) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over the passes
    model.train()
    for chunk in images.split(256):
        model(chunk)
    model.eval()


def find_mnist(explicit: str | None) -> tuple[str | None, str]:
    """A folder holding MNIST/raw: --mnist-root, the project's own lookup (datasets.local_mnist_root:
    NOISETRAIN_MNIST_ROOT, else ../shared/data beside the checkout), else shared/data inside the
    checkout (what travels to a lent machine). Gzipped IDX files are unpacked to a temporary folder."""
    from noisetrain.data.datasets import local_mnist_root

    candidates = [(explicit, "--mnist-root"), (local_mnist_root(), "datasets.local_mnist_root()"),
                  (str(ROOT / "shared" / "data"), "shared/data in the checkout")]
    for root, how in candidates:
        if root and (Path(root) / "MNIST" / "raw").is_dir():
            return root, how
    return None, "no MNIST found (--mnist-root, NOISETRAIN_MNIST_ROOT, ../shared/data, shared/data)"


def _unpacked(root: str, workdir: Path) -> str:
    """``root`` itself when its raw files are unpacked, else a copy with the .gz files unpacked
    (torchvision reads only the unpacked IDX files when it may not download)."""
    import gzip

    raw = Path(root) / "MNIST" / "raw"
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    if all((raw / name).exists() for name in names) or not all((raw / f"{name}.gz").exists() for name in names):
        return root
    target = workdir / "mnist" / "MNIST" / "raw"
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        with gzip.open(raw / f"{name}.gz", "rb") as src, open(target / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return str(workdir / "mnist")


def mnist_data(ctx: Context, out: dict):
    import numpy as np

    from noisetrain.data import datasets

    s = ctx.setting
    root, how = find_mnist(ctx.args.mnist_root)
    if root is not None:
        data = datasets.prepare({"name": "mnist", "root": _unpacked(root, ctx.workdir), "download": False, "seed": 0,
                                 "subset_train": s.mnist_train, "subset_test": s.mnist_test})
        out["data"] = f"real MNIST from {root} ({how})"
        return data
    # MNIST's shape and sizes with random pixels and labels: the epoch's time, not its accuracy.
    rng = np.random.default_rng(0)

    def split(n: int) -> datasets.Split:
        return datasets.Split(rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64))

    train, test = split(s.mnist_train or 60_000), split(s.mnist_test or 10_000)
    out["data"] = f"synthetic MNIST-shaped uint8 images and labels ({how})"
    return datasets.PreparedData(train=train, test=test, test_index=np.arange(len(test.labels)), name="mnist")


def mnist_spec() -> tuple[dict, str]:
    """config/mnist.yaml's vanilla training spec, as the pipeline builds it (or from plain YAML)."""
    path = ROOT / "config" / "mnist.yaml"
    try:
        from noisetrain.config import load_config, train_spec

        return train_spec(load_config(path), "vanilla"), "config/mnist.yaml through noisetrain.config.train_spec"
    except ImportError as exc:
        import yaml

        config = yaml.safe_load(path.read_text())
        train = config["train"]
        spec = {"method": "vanilla", "kind": "vanilla", "weight_decay": 0.0, **train["vanilla"],
                "batch_size": train["batch_size"], "clean_fraction": train["clean_fraction"], "divergence_guard": True,
                "model": config["model"], "seed": config.get("seed", 0)}
        return spec, f"config/mnist.yaml read as plain YAML ({exc})"


def section_mnist(ctx: Context, out: dict) -> None:
    """trainer.fit for one epoch: its log's epoch seconds (the steps; the held-out pass and the
    checkpoint are outside them) and the whole call's wall time."""
    from noisetrain.train import trainer
    from noisetrain.train.sources import ArraySource

    device = ctx.device
    data = mnist_data(ctx, out)
    spec, how = mnist_spec()
    spec = {**spec, "epochs": 1}
    out.update(spec_from=how, batch_size=spec["batch_size"], model=spec["model"], train_images=len(data.train.labels),
               precision="fp32 (the small-data jobs run without AMP)", device=str(device))

    def epoch(source, name: str) -> dict:
        started = time.perf_counter()
        state = trainer.fit(spec, source, checkpoint_dir=ctx.workdir / f"mnist_{name}", device=device,
                            divergence_guard=False, log=lambda _: None)
        wall = time.perf_counter() - started
        row = state.log[-1]
        return {"epoch_s": row["seconds"], "images_per_s": row["images_per_second"], "fit_wall_s": wall,
                "heldout_accuracy": row["heldout_accuracy"]}

    if device.type == "cuda":  # untimed: a few steps first, so the first timed epoch does not pay for CUDA's start
        from noisetrain.data.datasets import PreparedData, Split

        few = 2 * spec["batch_size"]
        warm = PreparedData(Split(data.train.images[:few], data.train.labels[:few]), data.test, data.test_index,
                            data.name)
        trainer.fit(spec, warm, checkpoint_dir=ctx.workdir / "mnist_warm", device=device, divergence_guard=False,
                    log=lambda _: None)
    rows = out["rows"] = {}
    rows["host_arrays"] = {"what": "arrays in host memory, each batch copied to the device", **epoch(ArraySource(data), "host")}
    rows["device_arrays"] = {"what": "as the trainer runs a prepared dataset: its arrays on the device for the whole job",
                             **epoch(data, "device")}
    if device.type == "cpu":
        rows["device_arrays"]["what"] += " (on a CPU both are host memory)"
    out["methods"] = mnist_method_steps(ctx, data)
    from trainer_limit import limit_rows  # bench/trainer_limit.py

    steps, rounds = (2, 1) if ctx.setting.mnist_method_batch else (200, 3)  # a whole MNIST epoch on a GPU
    out["limit"] = {"what": "trainer.run_epoch against a minimal torch loop, arrays on the device (bench/trainer_limit.py)",
                    "rows": limit_rows(data, device, steps, rounds)}


# Table 11's trained MNIST models, by their names in config/mnist.yaml (gnt_s0.5: the sweep's 0.5 point).
MNIST_METHODS = ("vanilla", "gnt_s0.5", "ant1x1", "pgd_at", "ddn_at")


def mnist_method_steps(ctx: Context, data) -> dict:
    """Each method's step (the trainer's own, build_step) on the device-resident arrays, random batches,
    fp32; ANT over one re-initialisation interval after its first generator's training, so that its
    fresh generators are paid at the config's rate. The projection multiplies by the paper-budget
    schedule's epochs and steps (the held-out pass per epoch left out: ~0.1 s of 10,000 images)."""
    from noisetrain.config import load_config, train_spec
    from noisetrain.op_count import OpCount
    from noisetrain.train.sources import ArraySource
    from noisetrain.train.steps import build_step
    from noisetrain.train.trainer import initial_model

    device, config = ctx.device, load_config(ROOT / "config" / "mnist.yaml", {"sigma_sweep": [0.5]})
    batch = ctx.setting.mnist_method_batch or config["train"]["batch_size"]
    source = ArraySource(data, device=device)
    epoch_steps = math.ceil(60_000 / config["train"]["batch_size"])  # the full training set's, at the config's batch
    picks = torch.Generator(device=device).manual_seed(0)
    rows = {}
    smallest = ctx.setting.mnist_method_batch is not None
    for k, name in enumerate(MNIST_METHODS):
        spec = train_spec(config, name)
        if smallest and spec["kind"] == "ant":  # a CPU test: no fresh generator's 100 steps
            spec = {**spec, **NO_REINIT}
        model = initial_model(spec, data, None).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=spec["momentum"])
        step = build_step(spec, source, device, source.steps_per_epoch(batch))

        def one(step=step, model=model, optimizer=optimizer):
            index = torch.randint(len(source.y_train), (batch,), device=device, generator=picks)
            step.step(model, optimizer, source.x_train[index], source.y_train[index], index)

        steps = ctx.setting.steps if smallest else max(ctx.setting.steps, getattr(step, "reinit_interval", 0))
        seconds = 0.8 * ctx.left() / (len(MNIST_METHODS) - k)
        row = rows[name] = {"epochs": spec["epochs"],
                            **timed_steps(one, batch, device, steps=steps, seconds=seconds, warmup=1 if smallest else 2)}
        with OpCount() as count:  # the kernel launches a step waits for where the network is small
            one()
        row["ops_per_step"] = count.ops
        if batch == config["train"]["batch_size"]:
            row["projected_h"] = spec["epochs"] * epoch_steps * row["ms_per_step"] / 3.6e6
    return {"batch_size": batch, "epoch_steps": epoch_steps, "rows": with_ratios(rows)}


def section_ddp(ctx: Context, out: dict) -> None:
    """A child process runs it (a hung collective is killed with it, not with this run)."""
    s, device = ctx.setting, ctx.device
    processes = torch.cuda.device_count() if device.type == "cuda" else 1
    result_file = ctx.workdir / "ddp.json"
    config = {"processes": processes, "device": device.type, "model": s.model, "batch": s.batch, "image": s.image,
              "steps": s.steps, "warmup": s.warmup, "seconds": max(1.0, 0.6 * ctx.left()), "port": free_port(),
              "threads": torch.get_num_threads(),
              "result": str(result_file)}
    out.update(processes=processes, backend="nccl" if device.type == "cuda" else "gloo", model=s.model,
               batch_per_process=s.batch, image_size=s.image,
               note=("one process: a DDP wrapper over a process group of one (its all-reduce runs, nothing is "
                     "exchanged)" if processes == 1 else f"{processes} processes, one per GPU, each its own batch"))
    child = subprocess.Popen([sys.executable, __file__, "--ddp-worker", json.dumps(config)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = child.communicate(timeout=max(1.0, ctx.left()))
    finally:
        if child.poll() is None:  # timed out, or this section was stopped: the child's whole group goes
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    if child.returncode != 0 or not result_file.exists():
        raise RuntimeError(f"the DDP child exited with {child.returncode}: {output[-1500:]}")
    out.update(json.loads(result_file.read_text()))
    single = ctx.report["sections"].get("train_synthetic", {}).get("results", {}).get("rows", {}).get("vanilla", {})
    if single.get("images_per_s"):
        out["scaling_vs_single_process"] = out["images_per_s"] / (processes * single["images_per_s"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ddp_worker(rank: int, config: dict) -> None:
    """One process of the DDP check: the trainer's vanilla AMP step on its DDP-wrapped classifier.
    Several processes go through the trainer's own path (distributed.joined, World.wrap); one, which
    the trainer runs without DDP, gets its process group of one and the wrapper here."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from noisetrain.train.distributed import World, joined
    from noisetrain.train.precision import Precision
    from noisetrain.train.steps import build_step

    size = config["processes"]
    torch.set_num_threads(config["threads"])
    device = torch.device("cuda", rank) if config["device"] == "cuda" else torch.device("cpu")
    world = World(rank, size, rank, f"tcp://127.0.0.1:{config['port']}")
    with contextlib.ExitStack() as stack:
        if size > 1:
            stack.enter_context(joined(world, device))
        else:
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method=world.init_method,
                                    rank=0, world_size=1)
            stack.callback(dist.destroy_process_group)
        precision = Precision(device, amp=True)
        model, _ = train_model(config["model"], precision)
        if size > 1:
            model = world.wrap(model, device)
        else:
            model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        spec = {"method": "vanilla", "kind": "vanilla", "batch_size": config["batch"], "clean_fraction": 0.5, "seed": 0,
                "stylized_path": None}
        step = build_step(spec, None, device, IMAGENET_TRAIN_IMAGES // config["batch"], precision, world)
        feed = itertools.cycle(synthetic_batches(2, config["batch"], config["image"], device, seed=rank))

        def one():
            x, y, index = next(feed)
            step.step(model, optimizer, x, y, index)

        # Every process must take the same number of steps (each waits for the others' gradients):
        # rank 0 sizes the timed run from a timed warm-up and tells the others.
        warm = timed_steps(one, config["batch"], device, steps=max(1, config["warmup"]), seconds=math.inf, warmup=1)
        steps = torch.tensor([max(1, min(3 * config["steps"], int(0.7 * config["seconds"] / warm["seconds"]
                                                                      * warm["steps"])))])
        if device.type == "cuda":
            steps = steps.to(device)
        dist.broadcast(steps, src=0)
        timed = timed_steps(one, config["batch"], device, steps=int(steps.item()), seconds=math.inf)
        if rank == 0:
            Path(config["result"]).write_text(json.dumps({
                "steps": timed["steps"], "ms_per_step": timed["ms_per_step"], "precision": precision.name,
                "images_per_s": size * timed["images_per_s"], "images_per_s_per_process": timed["images_per_s"],
                "ddp_wrapper": type(model).__name__}))


def ddp_main(config: dict) -> None:
    if config["processes"] == 1:
        ddp_worker(0, config)
    else:
        torch.multiprocessing.spawn(ddp_worker, args=(config,), nprocs=config["processes"])


# The sections in order: their share of the budget (of what is left when each starts, in proportion
# to the shares still to come) and the fewest seconds worth starting one with (the smallest setting's
# min_section_s where that is less).
SECTIONS: list[tuple[str, Callable[[Context, dict], None], float, float]] = [
    ("card", section_card, 0.02, 2.0),
    ("sample_folder", section_sample_folder, 0.06, 8.0),
    ("train_synthetic", section_train_synthetic, 0.24, 15.0),
    ("ant_profile", section_ant_profile, 0.05, 8.0),
    ("ant_phases", section_ant_phases, 0.06, 8.0),
    ("loader", section_loader, 0.07, 8.0),
    ("train_streamed", section_train_streamed, 0.20, 15.0),
    ("inference", section_inference, 0.11, 8.0),
    ("mnist", section_mnist, 0.15, 8.0),
    ("ddp", section_ddp, 0.18, 20.0),
]
NEED_FOLDER = {"loader", "train_streamed", "inference"}  # --sections with any of these runs sample_folder too


# ------------------------------------------------------------------------------------------------ running


def _on_alarm(signum, frame):
    raise SectionTimeout()


def run_section(name: str, fn: Callable[[Context, dict], None], ctx: Context, soft_s: float, hard_s: float) -> dict:
    """One section with its failures caught: status ok, failed or timed_out, and what it measured
    (``results``, kept also when it failed or was stopped part way)."""
    results: dict = {}
    entry = {"status": "ok", "reason": None, "allotted_s": soft_s, "results": results}
    start = time.monotonic()
    ctx.ends_at = start + soft_s
    alarm = threading.current_thread() is threading.main_thread()
    previous = None
    if alarm:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, max(hard_s, 0.01))
    try:
        fn(ctx, results)
    except SectionTimeout:
        entry.update(status="timed_out", reason=f"stopped at its hard limit of {hard_s:.1f} s (allotted {soft_s:.1f} s)")
    except BaseException as exc:  # noqa: BLE001  (a section's failure is a result, not the run's end)
        if isinstance(exc, KeyboardInterrupt):
            raise
        entry.update(status="failed", reason=f"{type(exc).__name__}: {str(exc)[:1500]}",
                     traceback=traceback.format_exc(limit=-8)[-4000:])
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    entry["seconds"] = time.monotonic() - start
    if name == "sample_folder" and entry["status"] != "ok":
        ctx.folder_error = entry["reason"]
    return entry


def run_check(args: argparse.Namespace, sections=None, grace: Callable[[float], float] | None = None) -> dict:
    """Every section within ``args.budget_s``; the report (also written to args.out after each section)."""
    sections = SECTIONS if sections is None else sections
    grace = grace or (lambda soft: max(5.0, 0.3 * soft))
    setting = SMALLEST if args.smallest else FULL
    if not args.smallest and args.batch_size is None:
        with contextlib.suppress(Exception):
            setting = Setting(**{**asdict(setting), "batch": imagenet_batch_size()})
    if args.batch_size:
        setting = Setting(**{**asdict(setting), "batch": args.batch_size})
    if args.model:
        setting = Setting(**{**asdict(setting), "model": args.model})
    device = pick_device(args)
    previous_threads = torch.get_num_threads()
    threads = args.threads or (1 if args.smallest else previous_threads)
    # One thread in the smallest setting: on a shared CPU, more threads than free cores spin and stall.
    torch.set_num_threads(threads)
    try:
        return _run(args, sections, grace, setting, device, threads)
    finally:
        torch.set_num_threads(previous_threads)


def _run(args, sections, grace, setting: Setting, device: torch.device, threads: int) -> dict:
    started = time.monotonic()
    # The budget is the whole command's: gpu_check.sh says when it started (its Python probes, this
    # interpreter's own start and imports count too).
    before = 0.0
    with contextlib.suppress(ValueError):
        before = min(max(0.0, time.time() - float(os.environ.get("GPU_CHECK_STARTED", "nan"))), args.budget_s)
    before = before if math.isfinite(before) else 0.0
    deadline = started + args.budget_s - before
    setup = os.environ.get("GPU_CHECK_SETUP", "python bench/gpu_check.py (no setup step)")
    report = {"check": "noisetrain GPU check (issue 21)", "started": now_iso(), "finished": None,
              "setting": setting.name, "sizes": asdict(setting), "device": str(device), "torch_threads": threads,
              "budget_s": args.budget_s, "spent_before_python_s": before, "elapsed_s": before, "setup": setup,
              "python": sys.executable, "sections": {}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        ctx = Context(args, setting, device, Path(tmp), report)
        wanted = set(args.sections or [item[0] for item in sections])
        if wanted & NEED_FOLDER:
            wanted.add("sample_folder")
        chosen = [item for item in sections if item[0] in wanted]
        for i, (name, fn, share, *least) in enumerate(chosen):
            least = min(least[0], setting.min_section_s) if least else setting.min_section_s
            left = deadline - time.monotonic() - WRITE_RESERVE_S
            soft = left * share / sum(item[2] for item in chosen[i:])
            if soft < least:
                report["sections"][name] = {
                    "status": "skipped", "results": {}, "seconds": 0.0, "allotted_s": max(soft, 0.0),
                    "reason": f"budget: {max(left, 0):.1f} s of {args.budget_s:g} s left, its share {max(soft, 0):.1f} s "
                              f"is under the {least:g} s it needs"}
            else:
                print(f"[gpu_check] {name}: up to {soft:.0f} s", flush=True)
                report["sections"][name] = run_section(name, fn, ctx, soft, min(soft + grace(soft), max(left, 0.01)))
                entry = report["sections"][name]
                print(f"[gpu_check] {name}: {entry['status']} in {entry['seconds']:.1f} s"
                      + (f" ({entry['reason'][:200]})" if entry["reason"] else ""), flush=True)
                _release(device)
            report["elapsed_s"] = before + time.monotonic() - started
            write_report(report, out)
    report["finished"] = now_iso()
    report["elapsed_s"] = before + time.monotonic() - started
    write_report(report, out)
    return report


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def pick_device(args: argparse.Namespace) -> torch.device:
    if args.smallest and args.device == "auto":
        return torch.device("cpu")
    if args.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(args.device)


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _jsonable(value):
    """Non-finite floats as strings (JSON has none), everything else as it is."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None or isinstance(value, float):
        return value
    return str(value)


def write_report(report: dict, out: Path) -> None:
    """Both files, each replaced whole (a reader never sees half of one)."""
    for name, text in (("gpu_check.json", json.dumps(_jsonable(report), indent=1)), ("gpu_check.txt", text_report(report))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text + "\n")
        os.replace(tmp, out / name)


# ----------------------------------------------------------------------------------------------- the text


def _n(value, digits: int = 0) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else "?"


def _rows(rows: dict, extra: Callable[[dict], str] = lambda row: "") -> list[str]:
    lines = []
    for name, row in rows.items():
        if "error" in row:
            lines.append(f"  {name:18s} failed: {row['error']}")
            continue
        ratio = f"  x{row['ratio_to_vanilla']:.2f} vanilla" if "ratio_to_vanilla" in row else ""
        lines.append(f"  {name:18s} {_n(row.get('images_per_s'), 1):>10s} images/s {_n(row.get('ms_per_step'), 1):>9s} ms/step"
                     f"  ({row.get('steps', '?')} steps){ratio}{extra(row)}")
    return lines


def _section_lines(name: str, r: dict) -> list[str]:
    if name == "card":
        if r.get("device") == "cuda":
            return [f"card: {r.get('name')} x{r.get('gpus')}, {_n(r.get('memory_gib'), 1)} GiB, compute "
                    f"{r.get('compute_capability')}, driver {r.get('driver', '?')}, CUDA {r.get('cuda_runtime')}, "
                    f"cuDNN {r.get('cudnn')}, torch {r.get('torch')}, torchvision {r.get('torchvision')}, "
                    f"TF32 conv {r.get('tf32_cudnn')} / matmul {r.get('tf32_matmul')}, {r.get('cpu_cores')} CPU cores, "
                    f"/dev/shm {_n(r.get('shm_gib'), 1)} GiB"]
        return [f"card: none - device cpu ({r.get('name')}, {r.get('cpu_cores')} cores), torch {r.get('torch')}, "
                f"torchvision {r.get('torchvision')}, /dev/shm {_n(r.get('shm_gib'), 1)} GiB"]
    if name == "sample_folder":
        return [f"sample folder: {r.get('train_images')} training images ({r.get('distinct_train_images')} distinct "
                f"photos), {r.get('val_images')} val images, short side {r.get('short_side')}"]
    if name in ("train_synthetic", "train_streamed"):
        how = ("synthetic batches on the device" if name == "train_synthetic"
               else f"fed by the streaming loader, {r.get('workers')} workers")
        head = (f"train, {how}: {r.get('model')}, batch {r.get('batch_size')} at {r.get('image_size')} px, "
                f"precision {r.get('precision')} (Precision(amp=True))")
        def share(row):
            return f"  {100 * row['fraction_of_synthetic']:.0f}% of synthetic" if "fraction_of_synthetic" in row else ""

        return [head, *_rows(r.get("rows", {}), share)]
    if name == "loader":
        lines = [f"loader alone: {_n(r.get('images_per_s'), 1)} images/s, {_n(r.get('images_per_s_per_worker'), 1)} per "
                 f"worker ({r.get('workers')} workers, batch {r.get('batch_size')} at {r.get('image_size')} px)"]
        if "gpu_decode" in r:
            g = r["gpu_decode"]
            lines.append(f"  decode: gpu (decode_jpeg on {g.get('decode_device')}): {_n(g.get('images_per_s'), 1)} images/s, "
                         f"{_n(g.get('images_per_s_per_worker'), 1)} per worker")
        return lines
    if name == "inference":
        def agree(row):
            if "top1_agreement_with_fp32" in row:
                return f"  top-1 agrees with fp32 on {100 * row['top1_agreement_with_fp32']:.1f}%"
            return f"  median top-1 margin {row['median_top1_margin']:.3g}" if "median_top1_margin" in row else ""

        return [f"inference: {r.get('model')} ({r.get('weights')}), batch {r.get('batch_size')} at "
                f"{r.get('image_size')} px, agreement over {r.get('agreement_images')} images",
                *_rows(r.get("rows", {}), agree)]
    if name == "mnist":
        lines = [f"mnist: {r.get('data')}; {r.get('model')}, vanilla, batch {r.get('batch_size')}, "
                 f"{r.get('train_images')} training images, {r.get('precision')}"]
        for key, row in r.get("rows", {}).items():
            lines.append(f"  {key:13s} epoch {_n(row.get('epoch_s'), 2)} s, {_n(row.get('images_per_s'))} images/s "
                         f"(fit() {_n(row.get('fit_wall_s'), 2)} s)")
        methods = r.get("methods", {})
        if methods:
            lines.append(f"  method steps on the device, batch {methods.get('batch_size')}; paper-budget projection at "
                         f"{methods.get('epoch_steps')} steps an epoch:")

            def projected(row):
                ops = f"  {row['ops_per_step']} operations a step" if "ops_per_step" in row else ""
                return (f"  {row['epochs']} epochs: {row['projected_h']:.2f} h" if "projected_h" in row else "") + ops

            lines += _rows(methods.get("rows", {}), projected)
        for key, row in r.get("limit", {}).get("rows", {}).items():
            lines.append(f"  {key:13s} trainer {_n(row['trainer_images_per_s'])} images/s, minimal torch loop "
                         f"{_n(row['minimal_images_per_s'])}: {row['ratio']:.2f}x the limit ({row['images']} images an epoch; "
                         f"operations a step {_n(row.get('trainer_ops_per_step'), 1)} against "
                         f"{_n(row.get('minimal_ops_per_step'), 1)})")
        return lines
    if name == "ant_profile":
        lines = [f"ANT 1x1 profiled over {r.get('steps')} steps ({r.get('model')}, batch {r.get('batch_size')}); "
                 f"host waits per step: {r.get('waits_per_step')}; {r.get('ops_per_step')} operations a step",
                 "  top by self device (CPU on a CPU) time:"]
        lines += [f"    {row['op'][:48]:48s} {row['calls']:6d} calls  cpu {row['self_cpu_ms']:8.1f} ms  "
                  f"device {row['self_device_ms']:8.1f} ms" for row in r.get("by_self_device", [])[:10]]
        return lines
    if name == "ant_phases":
        lines = [f"ANT 1x1 step in phases, each timed alone ({r.get('model')}, batch {r.get('batch_size')}, "
                 f"{r.get('precision')}): generator update + compose + classifier step = {_n(r.get('parts_ms'), 1)} ms, "
                 f"the rest of the step {_n(r.get('rest_of_step_ms'), 1)} ms"]
        for key, row in r.get("rows", {}).items():
            lines.append(f"  {key:30s} {_n(row.get('ms_per_step'), 2):>9s} ms  x{row.get('ratio_to_vanilla', 0):.2f} "
                         f"the classifier (vanilla) step  ({row.get('steps')} steps)")
        return lines
    if name == "ddp":
        scaling = (f", {100 * r['scaling_vs_single_process']:.0f}% of the single-process vanilla per process"
                   if "scaling_vs_single_process" in r else "")
        return [f"ddp: {r.get('processes')} process(es), {r.get('backend')}, {r.get('model')} batch "
                f"{r.get('batch_per_process')} each, {r.get('precision')}: {_n(r.get('images_per_s'), 1)} images/s, "
                f"{_n(r.get('ms_per_step'), 1)} ms/step{scaling}; {r.get('note')}"]
    return [f"{name}: {json.dumps(_jsonable(r))[:300]}"]


def text_report(report: dict) -> str:
    lines = [f"{report['check']}: {report['started']}, setting {report['setting']}, device {report['device']}, "
             f"budget {report['budget_s']:g} s, elapsed {report['elapsed_s']:.0f} s"
             + ("" if report.get("finished") else " (still running or cut short)"),
             f"setup: {report['setup']}"]
    for name, entry in report["sections"].items():
        if entry["results"]:
            try:
                lines += _section_lines(name, entry["results"])
            except Exception as exc:  # noqa: BLE001  (the text must not lose the JSON's run)
                lines.append(f"{name}: (text failed: {exc!r}; see the JSON)")
        if entry["status"] != "ok":
            lines.append(f"{name}: {entry['status'].upper()} - {entry['reason']}")
    return "\n".join(lines)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "bench" / "out"),
                        help="folder of gpu_check.json and gpu_check.txt (default: $OUT, else bench/out)")
    parser.add_argument("--budget-s", type=float, default=None, help="the whole run's time (default 480; smallest 120)")
    parser.add_argument("--smallest", action="store_true", help="everything on the CPU at tiny sizes (the tests)")
    parser.add_argument("--device", default="auto", help="auto (cuda when there is one; cpu with --smallest), cpu, cuda")
    parser.add_argument("--sections", nargs="+", choices=[item[0] for item in SECTIONS], default=None,
                        help="run only these")
    parser.add_argument("--model", default=None, help="torchvision architecture (default resnet50; smallest resnet18)")
    parser.add_argument("--batch-size", type=int, default=None, help="training batch (default: config/imagenet.yaml's)")
    parser.add_argument("--workers", type=int, default=None, help="loader workers (default: the CPU cores)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's; smallest 1)")
    parser.add_argument("--weights", default=None,
                        help="inference weights: a torchvision name or a file (default: a cached torchvision file, "
                             "else random init)")
    parser.add_argument("--mnist-root", default=None, help="a folder holding MNIST/raw (IDX files, plain or .gz)")
    parser.add_argument("--ddp-worker", default=None, help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = get_parser().parse_args()
    if args.ddp_worker:
        ddp_main(json.loads(args.ddp_worker))
        return
    if args.budget_s is None:
        args.budget_s = 120.0 if args.smallest else 480.0
    report = run_check(args)
    print(text_report(report))
    print(f"[gpu_check] wrote {Path(args.out) / 'gpu_check.json'} and gpu_check.txt")


if __name__ == "__main__":
    main()
