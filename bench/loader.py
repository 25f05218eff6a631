#!/usr/bin/env python
"""The streaming training loader's cost per CPU core (issue 21), on real JPEGs at about ImageNet's size.

    python bench/loader.py [--images 768] [--short-side 330] [--batch 64] [--workers 1 2] [--device cpu|cuda]

Three parts, on a temporary ImageFolder of scikit-image photographs (sample_images; distinct photos
hard-linked up to --images, so reads come from the page cache, as a warm ImageNet on local disk would):

1. per image, one process, one thread: what one worker core does for each image on each path.
   cpu path: PIL decode alone, and decode + RandomResizedCrop + flip + to-tensor (AugmentedImages).
   gpu path: the worker's part (read the bytes, the header's size, draw the box and flip), and the
   training process's part (decode_jpeg, crop, resize, flip) on --device, per image of a --batch batch.
2. the loader (FolderSource) with 1 and 2 worker processes: images/s and per worker. The gpu path's
   workers are timed without the decode (their share of the work); its whole loader, decode on --device.
3. the two paths' pixel difference (levels of 255) on every distinct image's crop.

Rates depend on the machine and its load: rerun the cpu rows where the training will run.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.io import ImageReadMode, decode_jpeg  # noqa: E402

from noisetrain.data.batch_decode import EncodedImages, collate_encoded, crop_and_flip, decode_batch, plain_jpeg  # noqa: E402
from noisetrain.data.imagenet import load_rgb  # noqa: E402
from noisetrain.data.imagenet_train import AugmentedImages, EpochOrder, image_draws, train_loader  # noqa: E402
from noisetrain.data.sample_images import make_sample_imagenet, pad_train_images  # noqa: E402
from noisetrain.train.folder_source import FolderSource  # noqa: E402

warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision are deprecated")


def sample_folder(root: Path, images: int, short_side: int, classes: int = 8, distinct: int = 8) -> SimpleNamespace:
    names = make_sample_imagenet(root, classes=classes, train_per_class=distinct, val_per_class=1, size=short_side)
    per_class = math.ceil(images / classes)
    pad_train_images(root / "train", names, per_class)
    photos = sorted((root / "train").glob(f"*/*_[0-{distinct - 1}].JPEG"))
    sizes = [_size(path) for path in photos]
    return SimpleNamespace(root=root, classes=names, photos=photos, train_images=per_class * classes,
                           mean_kb=sum(p.stat().st_size for p in photos) / len(photos) / 1000,
                           mean_size=tuple(sum(s[k] for s in sizes) / len(sizes) for k in (0, 1)))


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def per_image_rate(work, items: list, seconds: float) -> float:
    """Images/s of ``work(item)`` over the items, repeated for at least ``seconds`` (one untimed pass first)."""
    for item in items:
        work(item)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for item in items:
            work(item)
        done += len(items)
    return done / (time.perf_counter() - started)


def one_core_rows(folder: SimpleNamespace, crop: int, batch: int, device: torch.device, seconds: float) -> dict:
    augmented = AugmentedImages(folder.root / "train", 0, classes=folder.classes)
    encoded = EncodedImages(folder.root / "train", 0, crop, classes=folder.classes)
    distinct = [i for i, (path, _) in enumerate(augmented.images.samples) if Path(path) in set(folder.photos)]
    paths = [augmented.images.samples[i][0] for i in distinct]
    items = [encoded[i] for i in distinct]
    batches = [collate_encoded(list(itertools.islice(itertools.cycle(items), k, k + batch)))
               for k in range(0, len(items), batch)]

    def decode_only(b):
        out = decode_jpeg([torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in b[0]], mode=ImageReadMode.RGB,
                          device=device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out

    def decode_and_crop(b):
        out = decode_batch(b[0], b[1], b[4], crop, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out

    def worker_part(path):
        data, size = plain_jpeg(path)
        with image_draws(0, 0, 0):
            return data, crop_and_flip(encoded.transform, *size)

    return {
        "cpu path: PIL decode alone": per_image_rate(load_rgb, paths, seconds),
        "cpu path: PIL decode + RandomResizedCrop + flip + to-tensor": per_image_rate(augmented.__getitem__, distinct, seconds),
        "gpu path, worker: read bytes + header + box": per_image_rate(worker_part, paths, seconds),
        f"gpu path, training process on {device.type}: decode_jpeg alone": batch * per_image_rate(decode_only, batches, seconds),
        f"gpu path, training process on {device.type}: decode_jpeg + crop + resize + flip":
            batch * per_image_rate(decode_and_crop, batches, seconds),
    }


def loader_rate(batches, batch: int, skip: int, limit: int, device: torch.device) -> float:
    """Images/s after the first ``skip`` batches (the workers' start and their prefetched queue)."""
    if limit < skip + 2:
        raise SystemExit(f"{limit} batches cannot time a loader that queues {skip}: raise --images")
    count, started = 0, None
    for k, _ in enumerate(itertools.islice(batches, limit)):
        if k == skip - 1:
            started = time.perf_counter()
        elif k >= skip:
            count += batch
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return count / (time.perf_counter() - started)


def loader_rows(folder: SimpleNamespace, crop: int, batch: int, workers: list[int], device: torch.device) -> dict:
    state = SimpleNamespace(epoch=0, step=0)
    rows = {}
    for w in workers:
        skip, limit = 2 * w + 1, folder.train_images // batch
        for decode in ("cpu", "gpu"):
            source = FolderSource(folder.root / "train", folder.root / "val", None, folder.classes, 0, workers=w,
                                  input_size=crop, decode=decode, decode_device=device)
            label = "cpu path (PIL in the workers)" if decode == "cpu" else f"gpu path, decode on {device.type}"
            rows[f"{label}, {w} worker(s)"] = loader_rate(source.epoch_batches(state, batch), batch, skip, limit,
                                                          device if decode == "gpu" else torch.device("cpu"))
        order = EpochOrder(len(source.dataset), 0)
        workers_only = train_loader(source.dataset, order, batch, workers=w, collate_fn=collate_encoded)
        rows[f"gpu path, workers alone (no decode), {w} worker(s)"] = loader_rate(iter(workers_only), batch, skip, limit,
                                                                                  torch.device("cpu"))
    return rows


def pixel_difference(folder: SimpleNamespace, crop: int, device: torch.device) -> tuple[float, float]:
    """Max and mean |PIL path - decode path| in levels of 255 over every distinct photo's crop."""
    cpu, gpu = (FolderSource(folder.root / "train", folder.root / "val", None, folder.classes, 0, input_size=crop,
                             decode=decode, decode_device=device) for decode in ("cpu", "gpu"))
    state = SimpleNamespace(epoch=0, step=0)
    largest, total, count = 0.0, 0.0, 0
    for (xc, _, _), (xg, _, _) in itertools.islice(zip(cpu.epoch_batches(state, 32), gpu.epoch_batches(state, 32)), 4):
        levels = (xc - xg.cpu()).abs() * 255
        largest, total, count = max(largest, levels.max().item()), total + levels.sum().item(), count + levels.numel()
    return largest, total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=768, help="training images (distinct photos hard-linked up to it)")
    parser.add_argument("--short-side", type=int, default=330, help="photos' least short side (ImageNet's mean is ~400x350)")
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=3.0, help="per one-core row")
    parser.add_argument("--device", default="cpu", help="where the gpu path decodes (cpu: its logic, timed on a CPU)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        folder = sample_folder(Path(tmp), args.images, args.short_side)
        print(f"{len(folder.photos)} distinct photos, mean {folder.mean_size[0]:.0f}x{folder.mean_size[1]:.0f} px, "
              f"{folder.mean_kb:.0f} KB; {folder.train_images} training images; crop {args.crop}, batch {args.batch}; "
              f"{os.cpu_count()} CPU cores; torch {torch.__version__}"
              + (f"; {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""))
        print("\n1. one process, one thread (images/s = images/s per core for the CPU rows):")
        for name, rate in one_core_rows(folder, args.crop, args.batch, device, args.seconds).items():
            print(f"  {rate:9.1f}  {name}")
        print("\n2. the loader (FolderSource), images/s and per worker:")
        for name, rate in loader_rows(folder, args.crop, args.batch, args.workers, device).items():
            w = int(name.rsplit(", ", 1)[1].split()[0])
            print(f"  {rate:9.1f}  ({rate / w:7.1f} per worker)  {name}")
        largest, mean = pixel_difference(folder, args.crop, device)
        print(f"\n3. PIL path - decode path on {device.type}: max {largest:.0f}, mean {mean:.3f} levels of 255")


if __name__ == "__main__":
    main()
