#!/usr/bin/env python
"""The paper's ImageNet tables (1, 4, 8, 9, 10, 13, 14, 15) from the accuracy table that the
prediction cache gave, with the paper's values beside ours."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)
import pandas as pd

from noisetrain.cli import json_arg, run, say
from noisetrain.report.paper_tables import write_imagenet_tables


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accuracy", required=True, help="accuracy table (.csv) written by collect_accuracy")
    parser.add_argument("--models", type=json_arg, required=True, help="JSON: name -> {label, paper_model, trained_on, ...}")
    parser.add_argument("--mce-reference", default="published", help="'published' (AlexNet's errors) or an evaluated AlexNet")
    parser.add_argument("--out-dir", required=True)
    return parser


def main(args) -> None:
    built = write_imagenet_tables(pd.read_csv(args.accuracy), args.models, args.out_dir, args.mce_reference)
    say(f"{len(built)} tables -> {args.out_dir}")


if __name__ == "__main__":
    run(main, get_parser())
