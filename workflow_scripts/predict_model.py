#!/usr/bin/env python
"""Run one model on every set of the study (the clean test set and each corruption x severity) and
cache its top-5 per image; sets whose cached predictions are still valid (the same model on the
same images) are not read again. The sets are arrays (a prepared dataset and its corrupted test
sets) or image folders (each described by its index, with the val list)."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import json_arg, run, say, set_threads
from noisetrain.errors import InputError
from noisetrain.models.devices import describe_device, resolve_device


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="model file (.pt) of the small datasets")
    model.add_argument("--model-spec", type=json_arg,
                       help="JSON {architecture, weights[, fine_tuned_from]}: an image-folder model")
    parser.add_argument("--sets", nargs="+", required=True,
                        help="corrupted test sets <corruption>.npz (with --data), or each set's index (.json, with --files)")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", help="prepared clean dataset (.npz) of the small datasets")
    data.add_argument("--files", help="val list (.json) written by list_val_images")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=4, help="image folders: DataLoader processes (0: decode in this one)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True, help="image folders: autocast on CUDA")
    parser.add_argument("--out", required=True, help="the model's manifest, <model>/manifest.json; its entries lie beside it")
    return parser


def main(args) -> None:
    set_threads(args.threads)
    device = resolve_device(args.device)
    if (args.model is None) != (args.data is None):
        raise InputError("give --model with --data (arrays), or --model-spec with --files (image folders)")
    if args.files:  # imported here: the image-folder modules import torchvision (seconds a job)
        from noisetrain.measure.imagenet_evaluation import predict_model

        manifest = predict_model(args.model_spec, args.sets, args.files, args.out, batch_size=args.batch_size,
                                 workers=args.workers, device=device, amp=args.amp)
    else:
        from noisetrain.measure.evaluation import predict_arrays

        manifest = predict_arrays(args.model, args.data, args.sets, args.out, batch_size=args.batch_size, device=device)
    computed = [s["entry"][:-4] for s in manifest["sets"] if s["computed"]]
    say(f"{manifest['model']}: {len(manifest['sets'])} sets, computed {len(computed)} ({', '.join(computed[:6]) or 'none'}"
        f"{', ...' if len(computed) > 6 else ''}), reused the rest, on {describe_device(device)} -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
