#!/usr/bin/env python
"""The ImageNet evaluation's layouts on one generated ImageNet-C tree, the same models on the same files:

- per model (the pipeline now): one job per model runs it on every set, through the cache;
- per set (0.6's "decode once"): each folder read once, every model run on each batch;
- a per-model, per-folder loop like the official ImageNet-C code's (one ImageFolder loader per
  model and folder, accuracy counted per batch), the reference.

    python bench/imagenet_eval.py [--classes 4] [--images-per-class 16] [--corruptions ...]
                                  [--severities 1 3] [--device cpu] [--throughput]

The tree is cut from scikit-image's photographs (one class each) and corrupted with
imagecorruptions-imaug, made once in a temporary folder. Both ways
read the same files with the same transform and run the same networks (random init; the time of a
forward pass does not depend on the weights); the reference also normalises in the loader, as the
official code does, while ours normalises inside the model.

What bounds the ratios: with d the cost of decoding an image and f of one model's forward pass,
n models cost n (d + f) per image per model (the loop and the per-model layout alike) and d + n f
per set, so decoding once gains at most n (d + f) / (d + n f): much where decoding dominates (a GPU
fed by CPU decoding), nothing where the forward passes dominate (CNNs on a CPU). ``--throughput`` adds
ResNet50 inference images/s (batch 256, autocast on CUDA) on random tensors.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import transforms

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
from noisetrain.data.imagenet import corrupted_transform, image_folder, read_val_list, write_val_list  # noqa: E402
from noisetrain.data.imagenet_c import generate_corruption  # noqa: E402
from noisetrain.data.sample_images import make_sample_imagenet  # noqa: E402
from noisetrain.data.set_index import write_set_index  # noqa: E402
from noisetrain.measure.imagenet_evaluation import cache_model, folder_sets, predict_model  # noqa: E402
from noisetrain.measure.prediction_cache import _autocast, predict_top5  # noqa: E402
from noisetrain.models.torchvision_models import IMAGENET_MEAN, IMAGENET_STD, load_classifier  # noqa: E402

MODELS = ["mobilenet_v3_small", "squeezenet1_1", "resnet18", "alexnet", "mobilenet_v3_small"]


def make_tree(root: Path, args) -> tuple[Path, list[Path], list[Path]]:
    """The val list, the ImageNet-C folders and their indexes."""
    make_sample_imagenet(root / "images", classes=args.classes, train_per_class=1, val_per_class=args.images_per_class)
    listing = root / "val_files.json"
    files = write_val_list(root / "images" / "val", None, 0, listing)
    folders, indexes = [], []
    for corruption in args.corruptions:
        for severity in args.severities:
            folder = root / "imagenet_c" / corruption / str(severity)
            generate_corruption(root / "images" / "val", folder, corruption, severity)
            index = root / "sets" / corruption / f"{severity}.json"
            write_set_index(folder, files["files"], files["classes"], corruption, severity, index)
            folders.append(folder)
            indexes.append(index)
    return listing, folders, indexes


def model_specs(gpu: bool) -> dict[str, dict]:
    names = ["resnet50"] * 5 if gpu else MODELS
    return {f"m{i}_{name}": {"architecture": name, "weights": "random"} for i, name in enumerate(names)}


def per_model(listing, indexes, specs, out: Path, args, device) -> float:
    """The pipeline: each model's own job over every set."""
    start = time.perf_counter()
    for name, spec in specs.items():
        predict_model(spec, indexes, listing, out / name / "manifest.json", batch_size=args.batch_size,
                      workers=args.workers, device=device, amp=True)
    return time.perf_counter() - start


def per_set(listing, indexes, specs, args, device) -> float:
    """0.6's layout: each set read once, every model run on each of its batches."""
    files = read_val_list(listing)
    start = time.perf_counter()
    for image_set in folder_sets(indexes, files, batch_size=args.batch_size, workers=args.workers,
                                 pin_memory=device.type == "cuda"):
        models = {name: cache_model(spec, files["classes"])[1]() for name, spec in specs.items()}
        predict_top5(models, image_set.loader(224), device, amp=True)
    return time.perf_counter() - start


def official_loop(folders, specs, classes, args, device) -> float:
    """One loader per model and folder, normalisation in the transform, accuracy counted per batch."""
    normalise = transforms.Compose([corrupted_transform(224), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    start = time.perf_counter()
    for spec in specs.values():
        model = load_classifier(spec["architecture"], None, num_classes=classes).net.to(device).eval()
        model = model.to(memory_format=torch.channels_last)
        for folder in folders:
            loader = DataLoader(image_folder(folder, normalise), batch_size=args.batch_size, num_workers=args.workers,
                                pin_memory=device.type == "cuda")
            correct = 0
            with torch.inference_mode(), _autocast(device, True):
                for images, labels in loader:
                    logits = model(images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last))
                    correct += (logits.argmax(1).cpu() == labels).sum().item()
    return time.perf_counter() - start


def resnet50_throughput(device, batch: int = 256, steps: int = 20) -> float:
    model = load_classifier("resnet50", None).to(device)
    images = torch.rand(batch, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), _autocast(device, True):
        for _ in range(3):
            model(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            model(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=4, help="photographs, one class each (at most 8)")
    parser.add_argument("--images-per-class", type=int, default=16)
    parser.add_argument("--corruptions", nargs="+", default=["gaussian_noise", "defocus_blur", "jpeg_compression"])
    parser.add_argument("--severities", nargs="+", type=int, default=[1, 3])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--throughput", action="store_true", help="also ResNet50 inference images/s")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        listing, folders, indexes = make_tree(tmp, args)
        specs = model_specs(device.type == "cuda")
        images = args.classes * args.images_per_class * len(folders)
        reference = official_loop(folders, specs, args.classes, args, device)
        once = per_set(listing, indexes, specs, args, device)
        ours = per_model(listing, indexes, specs, tmp / "predictions", args, device)
        again = per_model(listing, indexes, specs, tmp / "predictions", args, device)  # every entry cached
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else f'{args.threads} threads'}), "
          f"{len(specs)} models, {len(folders)} folders x {images // len(folders)} images, workers {args.workers}")
    for label, seconds in [("per-model, per-folder loop", reference), ("per set, decode once (0.6)", once),
                           ("per model + cache (now)", ours)]:
        print(f"{label:27s} {seconds:7.2f} s  ({len(specs) * images / seconds:7.1f} model-images/s, "
              f"loop / this {reference / seconds:5.2f}x)")
    print(f"per model / per set:        {ours / once:7.2f}x the time")
    print(f"rerun, every entry cached:  {again:7.2f} s")
    if args.throughput:
        print(f"ResNet50 inference, batch 256, autocast: {resnet50_throughput(device):.0f} images/s")


if __name__ == "__main__":
    main()
