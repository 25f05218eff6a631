#!/usr/bin/env python
"""Cut the smoke study's tiny ImageFolder (train/ and val/, one class per photograph) from the
photographs that ship with scikit-image."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import json_arg, run, say
from noisetrain.data.sample_images import make_sample_imagenet


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", type=json_arg, default={}, help="JSON: classes, train_per_class, val_per_class, seed")
    parser.add_argument("--out", required=True, help="root folder to write (train/ and val/)")
    return parser


def main(args) -> None:
    classes = make_sample_imagenet(args.out, **args.sample)
    say(f"{len(classes)} classes of photographs -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
