#!/usr/bin/env python
"""Choose from the sigma sweep: the GNT model with the best mean corruption accuracy, and ANT's
eps the paper's way, the mean L2 size of clipped Gaussian noise on the training images at its
sigma (appendix B). Writes the sweep choice record every later step reads."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.data import datasets
from noisetrain.report import records, sweep_choice, tables
from noisetrain.report.study_tables import specs_from_records


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", nargs="+", required=True, help="corruption records of the sweep's models (.json)")
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the Gaussian noise samples")
    parser.add_argument("--out", required=True, help="output .json: the sweep choice (best model, sigma, eps and how)")
    return parser


def main(args) -> None:
    read = [records.read_record(path) for path in args.records]
    summary = tables.method_summary(records.to_frame(read))
    c_means = summary["c_mean"].dropna().to_dict()
    images = datasets.to_float(datasets.load(args.data).train.images)
    choice = sweep_choice.choose(c_means, sweep_choice.sweep_sigmas(specs_from_records(read)), images, args.seed)
    sweep_choice.write_choice(choice, args.out)
    say(f"best sigma {choice.best_value:g} ({choice.best_method}) -> ANT eps {choice.eps:.3f} -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
