#!/usr/bin/env python
"""Index one image set (clean val, or one ImageNet-C corruption x severity): the hash of its files'
names and bytes that keys the prediction cache, so regenerated or replaced images are evaluated anew."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.data.imagenet import read_val_list
from noisetrain.data.set_index import write_set_index


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, help="image folder of the set (<wnid>/<image>.JPEG)")
    parser.add_argument("--files", required=True, help="val list (.json) written by list_val_images")
    parser.add_argument("--corruption", default="clean", help="the set's corruption ('clean' for the val images)")
    parser.add_argument("--severity", type=int, default=0, help="the set's severity (0 for clean)")
    parser.add_argument("--out", required=True, help="the set's index (.json)")
    return parser


def main(args) -> None:
    listing = read_val_list(args.files)
    index = write_set_index(args.source, listing["files"], listing["classes"], args.corruption, args.severity, args.out)
    say(f"{args.corruption}/{args.severity}: {index['images']} images, {index['bytes'] / 1e6:.1f} MB, "
        f"content {index['content'][:12]} -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
