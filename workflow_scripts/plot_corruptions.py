#!/usr/bin/env python
"""One test image under every corruption of the benchmark."""

import argparse
from pathlib import Path

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.data import corruptions, datasets
from noisetrain.report import figures


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--sets", nargs="+", required=True, help="corrupted sets <corruption>.npz")
    parser.add_argument("--index", type=int, default=0, help="which test image")
    parser.add_argument("--out", required=True, help="PNG path; the PDF is written beside it")
    return parser


def main(args) -> None:
    clean = datasets.pick_test_image(datasets.load(args.data), args.index)
    corrupted = {Path(p).stem: corruptions.load_set(p)["images"][args.index] for p in args.sets}
    figures.save(figures.corruption_examples(clean, corrupted), args.out)
    say(f"wrote {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
