#!/usr/bin/env python
"""Run one model on every image set of the study (clean val and each ImageNet-C corruption x
severity) and cache its top-5 per image; sets whose cached predictions are still valid (the same
model on the same images) are not read again."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import json_arg, run, say, set_threads
from noisetrain.measure.imagenet_evaluation import predict_model
from noisetrain.models.devices import resolve_device


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=json_arg, required=True, help="JSON: {architecture, weights[, fine_tuned_from]}")
    parser.add_argument("--sets", nargs="+", required=True, help="index (.json) of every image set, by index_image_set")
    parser.add_argument("--files", required=True, help="val list (.json) written by list_val_images")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=4, help="DataLoader processes (0: decode in this one)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True, help="autocast on CUDA")
    parser.add_argument("--out", required=True, help="the model's manifest, <model>/manifest.json; its entries lie beside it")
    return parser


def main(args) -> None:
    set_threads(args.threads)
    manifest = predict_model(args.model, args.sets, args.files, args.out, batch_size=args.batch_size,
                             workers=args.workers, device=resolve_device(args.device), amp=args.amp)
    computed = [s["entry"][:-4] for s in manifest["sets"] if s["computed"]]
    say(f"{manifest['model']}: {len(manifest['sets'])} sets, computed {len(computed)} ({', '.join(computed[:6]) or 'none'}"
        f"{', ...' if len(computed) > 6 else ''}), reused the rest -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
