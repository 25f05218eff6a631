#!/usr/bin/env python
"""Cost of one ImageNet training step per method, as a ratio to the vanilla step on the same
machine (issue 11). Targets: a GNT step (sigma 0.5) at most 1.05x the vanilla step, as on MNIST
(bench/train_step.py); an ANT 1x1 step at most 1.9x (issue 21; issue 11 asked 2.1x). ANT's floor
is one extra classifier forward and backward for the generator step, a backward without weight
gradients, so a little under 2x on a GPU and 1.5-1.75x measured here on two CPU cores.

    python bench/imagenet_train_step.py [--model resnet18] [--batch-size 16] [--steps 2] [--rounds 9]
                                        [--workers 2] [--threads 2]
    python bench/imagenet_train_step.py --device cuda [--batch-size 70] [--steps 10] [--rounds 3]

Each method runs through the trainer's own method step (noisetrain.train.steps.build_step), built
from the specs below: GNT sigma 0.5, ANT 1x1 and ANT 3x3 as config/imagenet.yaml sets them (eps 135 and 70, the
authors' re-initialisation budget; ANT 3x3 is timed without a target of its own), half of every batch clean.
Classifiers are torchvision's at random init (a step's time does not depend on the weights). ANT's periodic
re-initialisation is switched off in the timed steps and reported separately, per step, at the configured
schedule (a fresh generator every 0.33 epochs of ImageNet's 1,281,167 images, trained for the config's
reinit_steps, 1,001); its time is measured over --reinit-steps steps and scaled to that. The replay bank takes a
snapshot every step, so that the replay part of the batch is drawn from bank states from the first timed step on, as
in a run.

CPU mode (the default): a small torchvision net (resnet18: of the small nets, the closest to
ResNet50 in compute per pixel, which is what ANT's per-pixel overhead is measured against; about
1 s a step at batch 16 on two cores) on a temporary ImageFolder of scikit-image's photographs
(short side 344-430 pixels, about ImageNet's; few distinct photos, hard-linked to the count
needed), streamed by the trainer's loader (FolderSource: DataLoader workers, seeded
RandomResizedCrop 224 and flip). A step's time is the whole step, fetching its batch included:
one loader stream feeds every streamed row, so decoding competes with the step for the cores as in
training. Reference rows: "loader only" fetches batches and does nothing else (its own loader,
prefetched batches drained first), "vanilla in memory" is the vanilla step on a batch already in
memory; if loader only is much faster than vanilla in memory, compute dominates. "ant floor" is an
ANT step's two classifier passes alone (input gradient, then the classifier step) with no
generator, rescaling or composition: ant1x1 minus ant floor is ANT's own overhead. "gnt draw only"
is GNT's own work (noise drawn, batch composed) on the batch in memory.
--profile-ant prints torch.profiler's top operators over a few ANT steps.

--device cuda (or --mode throughput): ResNet50 at batch 70 (appendix B.1), random init, 1000
classes, channels_last; images/s of the vanilla, GNT, ANT 1x1 and ANT 3x3 steps with AMP (Precision(device,
amp=True): bf16 autocast where the card has it, else fp16 with loss scaling) and in fp32 (TF32 as
torch's defaults set it; printed), on synthetic batches already on the GPU (uint8 levels / 255)
so that the figure is the step's own; warm-up steps are not timed and the clocks are read after
torch.cuda.synchronize. Then the same vanilla AMP step fed by the streaming loader (--stream-steps,
--workers), beside the loader alone. Issue 11 wants this mode under 3 minutes on one GPU; it
has not run on a GPU yet (no device was lent when it was written).
``--mode throughput --device cpu --model resnet18 --batch-size 4 --steps 1 --rounds 1`` runs that
code path on a CPU (the tests do).

All rows of a table are interleaved round by round so that drift in machine load hits them alike;
each row's time is the median over rounds.
"""

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
from ant_checkpoint import ant_methods  # noqa: E402

from noisetrain.data.sample_images import make_sample_imagenet, pad_train_images  # noqa: E402
from noisetrain.models.torchvision_models import load_classifier  # noqa: E402
from noisetrain.noise import pixel_noise  # noqa: E402
from noisetrain.noise.adversarial_noise import weights_fixed  # noqa: E402
from noisetrain.train.folder_source import FolderSource  # noqa: E402
from noisetrain.train.precision import Precision  # noqa: E402
from noisetrain.train.steps import build_step, classifier_step  # noqa: E402

IMAGENET_TRAIN_IMAGES = 1_281_167
IMAGENET_CLASSES = 1000
CROP = 224
# The paper config's ANT 1x1, as a run trains it (schedule keys are the trainer's, not the step's).
ANT_SPECS = {name: {key: value for key, value in spec.items() if key not in ("schedule", "architecture", "init_weights")}
             for name, spec in ant_methods(ROOT / "config" / "imagenet.yaml")[1].items() if name in ("ant1x1", "ant3x3")}
ANT_1X1 = ANT_SPECS["ant1x1"]
# In the timed steps: no re-initialisation (timed on its own; the first generator untrained), a bank
# snapshot every step.
NO_REINIT = {"reinit_every": 1e9, "reinit_steps": 0, "snapshot_every": 1}
TARGETS = {"gnt": 1.05, "ant1x1": 1.9}
# Sample photographs: short side drawn from [344, 430], about ImageNet's training images (~400x350 on
# average), so that decoding and resizing cost about what they cost on ImageNet.
SAMPLE_SHORT_SIDE = 344
SAMPLE_CLASSES = 8
SAMPLE_DISTINCT = 12  # distinct photos per class; the rest are hard links to them
NAME_WIDTH = 22


def method_specs(batch_size: int) -> dict[str, dict]:
    common = {"batch_size": batch_size, "clean_fraction": 0.5, "seed": 0, "stylized_path": None}
    return {
        "vanilla": {"method": "vanilla", "kind": "vanilla", **common},
        "gnt": {"method": "gnt_s0.5", "kind": "gnt", "sigma": 0.5, **common},
        **{name: {"method": name, **spec, **common, **NO_REINIT} for name, spec in ANT_SPECS.items()},
    }


def sample_folder(root: Path, images: int) -> tuple[Path, Path, list[str], list[str]]:
    """A training folder of at least ``images`` JPEGs (hard links to a few distinct photos per class)
    and one val image per class; returns train/, val/, the val files and the classes."""
    classes = make_sample_imagenet(root, classes=SAMPLE_CLASSES, train_per_class=SAMPLE_DISTINCT, val_per_class=1,
                                   size=SAMPLE_SHORT_SIDE)
    per_class = math.ceil(images / len(classes))
    pad_train_images(root / "train", classes, per_class)
    val_files = [f"{name}/{file.name}" for name in classes for file in sorted((root / "val" / name).iterdir())]
    return root / "train", root / "val", val_files, classes


def folder_source(folder, workers: int, pin_memory: bool) -> FolderSource:
    train, val, val_files, classes = folder
    return FolderSource(train, val, val_files, classes, seed=0, workers=workers, pin_memory=pin_memory)


def stream(source: FolderSource, batch_size: int) -> Iterator[tuple]:
    """The trainer's batches, epoch after epoch (the folder is made large enough for one)."""
    epoch = 0
    while True:
        yield from source.epoch_batches(SimpleNamespace(epoch=epoch, step=0), batch_size)
        epoch += 1


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _AntClassifierPasses:
    """An ANT step's two classifier passes and nothing else: the input gradient on the batch (weights
    fixed, eval mode, as the generator step's backward), then the classifier step on it."""

    def __init__(self, device: torch.device, precision: Precision):
        self.device, self.precision = device, precision

    def step(self, model, optimizer, x, y, index):
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        model.eval()
        noisy = x.detach().clone().requires_grad_()
        with weights_fixed(model):
            with self.precision.autocast():
                loss = F.cross_entropy(model(self.precision.prepare_batch(noisy)), y)
            torch.autograd.grad(loss, [noisy])
        model.train()
        return classifier_step(model, optimizer, x, y, self.precision)


class _DrawOnly:
    """Only GNT's own work in its step: drawing the noise and composing the clean/noisy batch."""

    def __init__(self, gnt):
        self.inner = gnt

    def step(self, model, optimizer, x, y, index):
        return pixel_noise.mix_batch(x, self.inner.noise, self.inner.clean_fraction, self.inner.rng)


class SyntheticSource:
    """Random images in [0, 1] already on the device: what ANT's fresh generators train on in the
    throughput mode (a duck-typed TrainSource)."""

    name, channels, has_stylized = "synthetic", 3, False

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]], num_classes: int):
        self.batches, self.num_classes = batches, num_classes

    def random_batches(self, steps: int, size: int, rng: torch.Generator):
        for k in range(steps):
            x, y = self.batches[k % len(self.batches)]
            yield x[:size], y[:size]

    def stylized(self, index):
        raise NotImplementedError("no stylized images in the synthetic source")


def time_batches(step, model, optimizer, batches: Iterator, steps: int, device: torch.device) -> float:
    """Seconds per step of ``step`` on the next ``steps`` batches, fetching them included."""
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        x, y, index = next(batches)
        step.step(model, optimizer, x, y, index)
    sync(device)
    return (time.perf_counter() - start) / max(steps, 1)


def repeat(batch) -> Iterator:
    while True:
        yield from batch


def rotated(names: list[str], round_: int) -> list[str]:
    """Round ``round_``'s row order: each round starts one row later, so that a burst of load from
    elsewhere does not always fall on the same row's place in the round."""
    k = round_ % len(names)
    return names[k:] + names[:k]


def prefetched(workers: int) -> int:
    """Batches a fresh DataLoader iterator queues ahead (torch's default prefetch factor 2)."""
    return 2 * workers


class LoaderOnly:
    """Fetching batches from a loader of its own and nothing else: its workers start and fill the
    queue untimed; the timed batches are then decoded at the loader's own rate."""

    def __init__(self, folder, batch_size: int, workers: int, pin_memory: bool):
        self.source = folder_source(folder, workers, pin_memory)
        self.batch_size, self.workers, self.epoch = batch_size, workers, 0

    def seconds_per_batch(self, steps: int) -> float:
        batches = iter(self.source.epoch_batches(SimpleNamespace(epoch=self.epoch, step=0), self.batch_size))
        self.epoch += 1
        for _ in range(prefetched(self.workers) + 1):
            next(batches)
        start = time.perf_counter()
        for _ in range(steps):
            next(batches)
        seconds = (time.perf_counter() - start) / steps
        del batches  # its workers stop
        return seconds


def print_table(title: str, seconds: dict[str, list[float]], batch_size: int, precisions: dict[str, str],
                reference: dict[str, str], targets: dict[str, float]) -> None:
    """One row per timed thing: images/s and ms per step (medians over rounds), the spread of its
    rounds ((max - min) / median, %) and the ratio of medians to its reference (vanilla) row."""
    print(title)
    print(f"{'row':{NAME_WIDTH}s} {'precision':>9s} {'images/s':>10s} {'ms/step':>10s} {'spread%':>8s} {'ratio':>8s}"
          "  target")
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    for name, median in medians.items():
        ratio = median / medians[reference[name]]
        spread = 100 * (max(seconds[name]) - min(seconds[name])) / median
        limit = targets.get(name)
        target = "" if limit is None else f"<= {limit:g} {'ok' if ratio <= limit else 'MISSED'}"
        print(f"{name:{NAME_WIDTH}s} {precisions[name]:>9s} {batch_size / median:10.1f} {1000 * median:10.1f} "
              f"{spread:8.0f} {ratio:8.3f}  {target}")


def reinit_line(ant, model, steps: int, batch_size: int, vanilla_seconds: float, device: torch.device) -> None:
    """ANT's fresh generator: measured over ``steps`` of its Adam steps, scaled to the schedule's."""
    ant.reinit_steps = steps
    sync(device)
    start = time.perf_counter()
    ant.reinitialise(model)
    sync(device)
    measured = time.perf_counter() - start
    per_reinit = measured / max(steps, 1) * ANT_1X1["reinit_steps"]
    interval = max(1, round(ANT_1X1["reinit_every"] * (IMAGENET_TRAIN_IMAGES // batch_size)))
    print(f"ANT re-initialisation: {measured:.2f} s for {steps} generator steps, so {per_reinit:.1f} s per fresh "
          f"generator ({ANT_1X1['reinit_steps']} steps); one every {interval} steps (0.33 ImageNet epochs at batch "
          f"{batch_size}) adds {per_reinit / interval / vanilla_seconds:.4f} vanilla steps per step")


def profile_ant(ant, model, optimizer, batches: Iterator, steps: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            x, y, index = next(batches)
            ant.step(model, optimizer, x, y, index)
    print(f"ANT 1x1, {steps} steps, operators by self CPU time:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def stream_bench(args, device: torch.device, started: float) -> None:
    """CPU: whole steps fed by the streaming loader, beside the loader alone and vanilla in memory."""
    streamed = ["vanilla", "gnt", "ant1x1", "ant3x3", "ant floor"]
    batches_needed = len(streamed) * (args.warmup + args.rounds * args.steps) + args.profile_ant + prefetched(args.workers) + 2
    with tempfile.TemporaryDirectory(prefix="bench_imagenet_train_") as tmp:
        folder = sample_folder(Path(tmp), batches_needed * args.batch_size)
        source = folder_source(folder, args.workers, pin_memory=False)
        model = load_classifier(args.model, None, num_classes=source.num_classes, seed=0).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        fp32 = Precision(device, amp=False)
        steps_per_epoch = IMAGENET_TRAIN_IMAGES // args.batch_size
        rows = {name: build_step(spec, source, device, steps_per_epoch, fp32)
                for name, spec in method_specs(args.batch_size).items()}
        rows["ant floor"] = _AntClassifierPasses(device, fp32)
        batches = stream(source, args.batch_size)
        for step in rows.values():  # warm-up; it also starts ANT's replay bank
            time_batches(step, model, optimizer, batches, args.warmup, device)
        x, y, index = next(batches)
        in_memory = repeat([(x.clone(), y.clone(), index.clone())])
        loader = LoaderOnly(folder, args.batch_size, args.workers, pin_memory=False)
        timed = {"loader only": None, "vanilla in memory": rows["vanilla"], "gnt draw only": _DrawOnly(rows["gnt"]),
                 **rows}
        seconds = {name: [] for name in timed}
        for r in range(args.rounds):
            for name in rotated(list(timed), r):
                step = timed[name]
                if step is None:
                    seconds[name].append(loader.seconds_per_batch(args.steps))
                else:
                    feed = in_memory if name in ("vanilla in memory", "gnt draw only") else batches
                    seconds[name].append(time_batches(step, model, optimizer, feed, args.steps, device))
        print(f"{args.model}, random init, {source.num_classes} classes, batch {args.batch_size} at {CROP}x{CROP}, "
              f"{args.threads} threads, {args.workers} loader workers, {args.rounds} rounds x {args.steps} steps, "
              f"torch {torch.__version__}, CPU")
        print_table("whole steps with the streaming loader (ratio: to vanilla)", seconds, args.batch_size,
                    {name: "-" if name == "loader only" else fp32.name for name in seconds}, dict.fromkeys(seconds, "vanilla"),
                    TARGETS)
        vanilla = statistics.median(seconds["vanilla"])
        reinit_line(rows["ant1x1"], model, args.reinit_steps, args.batch_size, vanilla, device)
        if args.profile_ant:
            profile_ant(rows["ant1x1"], model, optimizer, batches, args.profile_ant)
        batches.close()  # its loader's workers stop before the folder goes
        print(f"total {time.perf_counter() - started:.0f} s")


def synthetic_batches(count: int, batch_size: int, num_classes: int, device: torch.device) -> list:
    rng = torch.Generator().manual_seed(0)
    out = []
    for _ in range(count):
        x = torch.randint(0, 256, (batch_size, 3, CROP, CROP), generator=rng).float().div_(255)
        y = torch.randint(0, num_classes, (batch_size,), generator=rng)
        out.append((x.to(device), y.to(device), torch.arange(batch_size)))
    return out


def throughput_bench(args, device: torch.device, started: float) -> None:
    """GPU: the steps on batches already on the device, AMP and fp32; then the streamed vanilla step."""
    num_classes = IMAGENET_CLASSES
    batches = synthetic_batches(2, args.batch_size, num_classes, device)
    amp, fp32 = Precision(device, amp=True), Precision(device, amp=False)
    model = amp.prepare_model(load_classifier(args.model, None, num_classes=num_classes, seed=0)).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    source = SyntheticSource([(x, y) for x, y, _ in batches], num_classes)
    steps_per_epoch = IMAGENET_TRAIN_IMAGES // args.batch_size
    rows, precisions, reference = {}, {}, {}
    for tag, precision in (("amp", amp), ("fp32", fp32)):
        specs = method_specs(args.batch_size)
        for method, spec in specs.items():
            rows[f"{method} {tag}"] = build_step(spec, source, device, steps_per_epoch, precision)
        rows[f"ant floor {tag}"] = _AntClassifierPasses(device, precision)
        for name in list(rows)[-len(specs) - 1:]:
            precisions[name], reference[name] = precision.name, f"vanilla {tag}"
    feed = repeat(batches)
    for step in rows.values():  # warm-up (cuDNN's algorithm choice, the allocator); starts ANT's bank
        time_batches(step, model, optimizer, feed, args.warmup, device)
    seconds = {name: [] for name in rows}
    for r in range(args.rounds):
        for name in rotated(list(rows), r):
            seconds[name].append(time_batches(rows[name], model, optimizer, feed, args.steps, device))
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    tf32 = (f", TF32 in fp32: cuDNN convolutions {torch.backends.cudnn.allow_tf32}, matmuls "
            f"{torch.backends.cuda.matmul.allow_tf32}" if device.type == "cuda" else "")
    print(f"{card}: {args.model}, random init, {num_classes} classes, batch {args.batch_size} at {CROP}x{CROP}, "
          f"channels_last {amp.channels_last}, AMP as {amp.name}{tf32}, {args.rounds} rounds x {args.steps} steps, "
          f"torch {torch.__version__}")
    print_table("steps on batches already on the device (ratio: to vanilla of the same precision)", seconds,
                args.batch_size, precisions, reference,
                {f"{method} {tag}": limit for method, limit in TARGETS.items() for tag in ("amp", "fp32")})
    reinit_line(rows["ant1x1 amp"], model, args.reinit_steps, args.batch_size,
                statistics.median(seconds["vanilla amp"]), device)
    if args.stream_steps:
        stream_rows(args, device, model, optimizer, amp, rows["vanilla amp"], statistics.median(seconds["vanilla amp"]))
    print(f"total {time.perf_counter() - started:.0f} s")


def stream_rows(args, device, model, optimizer, precision, vanilla_step, vanilla_seconds: float) -> None:
    """The vanilla AMP step fed by the streaming loader (one timed run), and the loader alone."""
    pin = device.type == "cuda"
    warm = prefetched(args.workers) + 1
    with tempfile.TemporaryDirectory(prefix="bench_imagenet_train_") as tmp:
        folder = sample_folder(Path(tmp), (warm + args.stream_steps + 1) * args.batch_size)
        loader = LoaderOnly(folder, args.batch_size, args.workers, pin)
        loader_seconds = loader.seconds_per_batch(args.stream_steps)
        batches = stream(folder_source(folder, args.workers, pin), args.batch_size)
        time_batches(vanilla_step, model, optimizer, batches, warm, device)
        streamed = time_batches(vanilla_step, model, optimizer, batches, args.stream_steps, device)
        batches.close()
    seconds = {"loader only": [loader_seconds], "vanilla amp synthetic": [vanilla_seconds],
               "vanilla amp streamed": [streamed]}
    print_table(f"the streaming loader, {args.workers} workers, one run of {args.stream_steps} steps "
                "(ratio: to vanilla amp synthetic)", seconds, args.batch_size,
                {"loader only": "-", "vanilla amp synthetic": precision.name, "vanilla amp streamed": precision.name},
                dict.fromkeys(seconds, "vanilla amp synthetic"), {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:k]")
    parser.add_argument("--mode", choices=["stream", "throughput"], default=None,
                        help="stream: CPU ratios with the streaming loader; throughput: images/s on device-resident "
                             "batches, AMP and fp32 (default: throughput on cuda, else stream)")
    parser.add_argument("--model", default=None, help="torchvision architecture (default: resnet18 stream, resnet50 "
                                                      "throughput)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 16 stream, 70 throughput")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row per round (default: 2 stream, "
                                                                "10 throughput)")
    parser.add_argument("--rounds", type=int, default=None, help="default: 9 stream, 3 throughput")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per row first (default: 1 stream, "
                                                                 "3 throughput)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: 2 stream, up to 8 "
                                                                  "throughput)")
    parser.add_argument("--reinit-steps", type=int, default=None, help="generator steps the re-initialisation line is "
                                                                       "measured over (default: 2 stream, 20 throughput)")
    parser.add_argument("--stream-steps", type=int, default=None, help="throughput mode: steps of the streamed row "
                                                                       "(default 10; 0 leaves it out)")
    parser.add_argument("--profile-ant", type=int, default=0, help="stream mode: profile this many ANT steps")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    throughput = (args.mode or ("throughput" if device.type == "cuda" else "stream")) == "throughput"
    defaults = ({"model": "resnet50", "batch_size": 70, "steps": 10, "rounds": 3, "warmup": 3, "reinit_steps": 20,
                 "workers": min(8, os.cpu_count() or 1), "stream_steps": 10} if throughput else
                {"model": "resnet18", "batch_size": 16, "steps": 2, "rounds": 9, "warmup": 1, "reinit_steps": 2,
                 "workers": 2, "stream_steps": 0})
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.batch_size, args.steps, args.rounds) < 1 or min(args.warmup, args.workers, args.reinit_steps) < 0:
        parser.error("batch size, steps and rounds must be >= 1; warmup, workers and reinit steps >= 0")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    started = time.perf_counter()
    (throughput_bench if throughput else stream_bench)(args, device, started)


if __name__ == "__main__":
    main()
