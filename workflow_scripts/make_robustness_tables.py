#!/usr/bin/env python
"""An image-folder study's robustness tables (Tables 2, 3 and 5: epsilon* along noise, attack
accuracies) from the robustness records of the measured models and the accuracy table of the
prediction cache, with the paper's values beside ours. (The arrays' tables write theirs from the
records alone: make_tables.)"""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)
import pandas as pd

from noisetrain.cli import json_arg, run, say
from noisetrain.report.records import read_record
from noisetrain.report.robustness_tables import clean_from_cache, write_robustness_tables


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accuracy", required=True, help="accuracy table (.csv) written by collect_accuracy")
    parser.add_argument("--records", nargs="*", default=[], help="noise_robustness and adversarial records (.json)")
    parser.add_argument("--models", type=json_arg, required=True, help="JSON: name -> {label, paper_model, ...}")
    parser.add_argument("--dataset", required=True, help="the dataset the records are of (the config's dataset.name)")
    parser.add_argument("--out-dir", required=True)
    return parser


def main(args) -> None:
    records = [read_record(path) for path in args.records]
    clean = clean_from_cache(pd.read_csv(args.accuracy))
    built = write_robustness_tables(records, args.dataset, clean, args.models, args.out_dir, image_folders=True)
    say(f"{len(built)} tables from {len(records)} records -> {args.out_dir}")


if __name__ == "__main__":
    run(main, get_parser())
