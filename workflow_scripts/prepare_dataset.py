#!/usr/bin/env python
"""Prepare the clean train/test arrays of one dataset (digits from scikit-learn, or MNIST)."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import json_arg, run, say
from noisetrain.data import datasets


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=json_arg, required=True,
                        help="the config's dataset section as JSON, e.g. "
                             '\'{"name": "digits", "test_fraction": 0.3, "seed": 0}\'')
    parser.add_argument("--out", required=True, help="output .npz (uint8 images, labels)")
    return parser


def main(args) -> None:
    cfg = {"test_fraction": 0.3, "seed": 0, **args.dataset}
    data = datasets.prepare(cfg)
    datasets.save(data, args.out)
    say(f"{data.name}: {len(data.train.labels)} train and {len(data.test.labels)} test images "
        f"of shape {data.train.images.shape[1:]} -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
