#!/usr/bin/env python
"""Make one ImageNet-C folder (one corruption at one severity) from the listed val images, in the
published layout <wnid>/<image>.JPEG: the 224 centre crop, corrupted with imagecorruptions-imaug,
saved as JPEG at the published set's quality."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.data.imagenet import read_val_list
from noisetrain.data.imagenet_c import generate_corruption


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--val", required=True, help="ImageNet val folder")
    parser.add_argument("--files", required=True, help="val list (.json) written by list_val_images")
    parser.add_argument("--corruption", required=True)
    parser.add_argument("--severity", type=int, required=True, choices=range(1, 6))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality")
    parser.add_argument("--out", required=True, help="folder to write")
    return parser


def main(args) -> None:
    files = read_val_list(args.files)["files"]
    written = generate_corruption(args.val, args.out, args.corruption, args.severity, files=files, seed=args.seed,
                                  quality=args.quality)
    say(f"{written} images of {args.corruption} at severity {args.severity} -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
