#!/usr/bin/env python
"""Run every model of the evaluation set on one image set (clean val, or one ImageNet-C
corruption x severity), reading the images once, and cache each model's top-5 per image. Models
whose cached predictions are still valid are not run again."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import json_arg, run, say, set_threads
from noisetrain.measure.imagenet_evaluation import predict_image_set
from noisetrain.models.devices import resolve_device


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, help="image folder of the set (<wnid>/<image>.JPEG)")
    parser.add_argument("--corruption", default="clean",
                        help="the set's corruption; 'clean' (the default) reads val images with resize + centre crop "
                             "(appendix B), any other ImageNet-C's stored 224 crops")
    parser.add_argument("--severity", type=int, default=0, help="the set's severity (0 for clean)")
    parser.add_argument("--files", required=True, help="val list (.json) written by list_val_images")
    parser.add_argument("--models", type=json_arg, required=True, help="JSON: name -> {architecture, weights, ...}")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=4, help="DataLoader processes (0: decode in this one)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True, help="autocast on CUDA")
    parser.add_argument("--out", required=True, help="the set's manifest (.json); each model's cache lies beside it")
    return parser


def main(args) -> None:
    set_threads(args.threads)
    manifest = predict_image_set(args.source, (args.corruption, args.severity), args.files, args.models, args.out,
                                 batch_size=args.batch_size, workers=args.workers, device=resolve_device(args.device),
                                 amp=args.amp)
    computed = [name for name, entry in manifest["models"].items() if entry["computed"]]
    say(f"{manifest['images']} images: computed {', '.join(computed) or 'none'}, reused the rest -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
