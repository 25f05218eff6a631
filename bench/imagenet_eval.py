#!/usr/bin/env python
"""Decode once, evaluate many: the ImageNet evaluation's prediction cache against a per-model,
per-folder loop like the official ImageNet-C code's (one ImageFolder loader per model and folder),
both evaluating the same models on the same generated ImageNet-C tree; prints the ratio.

    python bench/imagenet_eval.py [--classes 4] [--images-per-class 16] [--corruptions ...]
                                  [--severities 1 3] [--device cpu] [--throughput]

The tree is cut from scikit-image's photographs (one class each) and corrupted with
imagecorruptions-imaug, made once in a temporary folder. Both ways
read the same files with the same transform and run the same networks (random init; the time of a
forward pass does not depend on the weights); the reference also normalises in the loader, as the
official code does, while ours normalises inside the model.

What bounds the ratio: with d the cost of decoding an image and f of one model's forward pass, n
models cost n (d + f) per image in the loop and d + n f in ours, so the ratio is at most
n (d + f) / (d + n f): large where decoding dominates (a GPU evaluating on JPEGs decoded by the
CPU), close to 1 where the forward passes dominate (CNNs on a CPU). ``--throughput`` adds
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
from noisetrain.data.imagenet import corrupted_transform, image_folder, write_val_list  # noqa: E402
from noisetrain.data.imagenet_c import generate_corruption  # noqa: E402
from noisetrain.data.sample_images import make_sample_imagenet  # noqa: E402
from noisetrain.measure.imagenet_evaluation import predict_image_set  # noqa: E402
from noisetrain.measure.prediction_cache import _autocast  # noqa: E402
from noisetrain.models.torchvision_models import IMAGENET_MEAN, IMAGENET_STD, load_classifier  # noqa: E402

MODELS = ["mobilenet_v3_small", "squeezenet1_1", "resnet18", "alexnet", "mobilenet_v3_small"]


def make_tree(root: Path, args) -> tuple[Path, list[Path]]:
    make_sample_imagenet(root / "images", classes=args.classes, train_per_class=1, val_per_class=args.images_per_class)
    listing = root / "val_files.json"
    write_val_list(root / "images" / "val", None, 0, listing)
    folders = []
    for corruption in args.corruptions:
        for severity in args.severities:
            folder = root / "imagenet_c" / corruption / str(severity)
            generate_corruption(root / "images" / "val", folder, corruption, severity)
            folders.append(folder)
    return listing, folders


def model_specs(gpu: bool) -> dict[str, dict]:
    names = ["resnet50"] * 5 if gpu else MODELS
    return {f"m{i}_{name}": {"architecture": name, "weights": "random"} for i, name in enumerate(names)}


def ours(listing, folders, specs, out: Path, args, device) -> float:
    start = time.perf_counter()
    for folder in folders:
        corruption, severity = folder.parent.name, int(folder.name)
        predict_image_set(folder, (corruption, severity), listing, specs, out / corruption / str(severity) / "manifest.json",
                          batch_size=args.batch_size, workers=args.workers, device=device, amp=True)
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
        listing, folders = make_tree(tmp, args)
        specs = model_specs(device.type == "cuda")
        images = args.classes * args.images_per_class * len(folders)
        reference = official_loop(folders, specs, args.classes, args, device)
        cached = ours(listing, folders, specs, tmp / "predictions", args, device)
        again = ours(listing, folders, specs, tmp / "predictions", args, device)  # every entry cached
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else f'{args.threads} threads'}), "
          f"{len(specs)} models, {len(folders)} folders x {images // len(folders)} images, workers {args.workers}")
    print(f"per-model, per-folder loop: {reference:7.2f} s  ({len(specs) * images / reference:7.1f} model-images/s)")
    print(f"decode once + cache:        {cached:7.2f} s  ({len(specs) * images / cached:7.1f} model-images/s)")
    print(f"ratio (loop / ours):        {reference / cached:7.2f}x")
    print(f"rerun, every entry cached:  {again:7.2f} s")
    if args.throughput:
        print(f"ResNet50 inference, batch 256, autocast: {resnet50_throughput(device):.0f} images/s")


if __name__ == "__main__":
    main()
