#!/usr/bin/env python
"""Top-1 and top-5 accuracy of every model on every image set, from the prediction cache alone
(no model is run): one tidy CSV row per model, corruption and severity."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.measure.prediction_cache import accuracy_records
from noisetrain.storage import atomic_write


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifests", nargs="+", required=True, help="manifest.json of every model")
    parser.add_argument("--out", required=True, help="output .csv")
    return parser


def main(args) -> None:
    frame = accuracy_records(args.manifests)
    atomic_write(args.out, lambda path: frame.to_csv(path, index=False), suffix=".csv")
    say(f"{len(frame)} rows ({frame['model'].nunique()} models) -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
