#!/usr/bin/env python
"""Fig 7: one test image with Gaussian noise at every sigma of the sweep."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.data import datasets
from noisetrain.report import figures


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--sigmas", type=float, nargs="+", required=True)
    parser.add_argument("--index", type=int, default=0, help="which test image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="PNG path; the PDF is written beside it")
    return parser


def main(args) -> None:
    image = datasets.pick_test_image(datasets.load(args.data), args.index)
    figures.save(figures.noise_levels(image, args.sigmas, args.seed), args.out)
    say(f"wrote {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
