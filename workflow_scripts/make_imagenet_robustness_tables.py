#!/usr/bin/env python
"""The paper's ImageNet Tables 2, 3 and 5 (epsilon* along noise, attack accuracies) from the
robustness records of the measured models and the accuracy table of the prediction cache, with the
paper's values beside ours."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)
import pandas as pd

from noisetrain.cli import json_arg, run, say
from noisetrain.report.imagenet_robustness_tables import write_robustness_tables
from noisetrain.report.records import read_record


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accuracy", required=True, help="accuracy table (.csv) written by collect_accuracy")
    parser.add_argument("--records", nargs="*", default=[], help="noise_robustness and adversarial records (.json)")
    parser.add_argument("--models", type=json_arg, required=True, help="JSON: name -> {label, paper_model, ...}")
    parser.add_argument("--out-dir", required=True)
    return parser


def main(args) -> None:
    records = [read_record(path) for path in args.records]
    built = write_robustness_tables(records, pd.read_csv(args.accuracy), args.models, args.out_dir)
    say(f"{len(built)} tables from {len(records)} records -> {args.out_dir}")


if __name__ == "__main__":
    run(main, get_parser())
