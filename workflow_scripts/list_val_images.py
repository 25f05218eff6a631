#!/usr/bin/env python
"""List the val images the ImageNet evaluation reads: every one, or a subset stratified by class
with a fixed seed (the subset protocol). Every image set (clean and ImageNet-C) uses this list."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.data.imagenet import write_val_list


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--val", required=True, help="ImageNet val folder (<wnid>/<image>.JPEG)")
    parser.add_argument("--images", type=int, default=0, help="stratified subset of this many images; 0 for all")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset")
    parser.add_argument("--out", required=True, help="output .json: classes and files")
    return parser


def main(args) -> None:
    listing = write_val_list(args.val, args.images or None, args.seed, args.out)
    say(f"{len(listing['files'])} images of {len(listing['classes'])} classes -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
