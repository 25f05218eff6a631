#!/usr/bin/env python
"""The eps search's searched method (eps 'search') is its winning candidate: the paper's line
search keeps the model it picked (appendix B.2). Writes the winner's model file (its spec renamed)
and training logs under the searched method's name, so that every rule reads it as that method;
training it again would give the same weights, bit for bit."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.report.sweep_choice import adopt_winner


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--choice", required=True, help="the eps search's choice record (.json)")
    parser.add_argument("--candidates", nargs="+", required=True, help="the candidate methods, in the order of the files")
    parser.add_argument("--models", nargs="+", required=True, help="their model files (.pt)")
    parser.add_argument("--log-csvs", nargs="+", required=True, help="their per-epoch training logs (.csv)")
    parser.add_argument("--steps-csvs", nargs="+", required=True, help="their per-step training logs (.csv)")
    parser.add_argument("--method", required=True, help="the searched method")
    parser.add_argument("--out", nargs=3, required=True, metavar=("MODEL", "LOG_CSV", "STEPS_CSV"),
                        help="the searched method's model file and training logs")
    return parser


def main(args) -> None:
    best = adopt_winner(args.choice, args.candidates, args.models, [args.log_csvs, args.steps_csvs], args.out, args.method)
    say(f"{args.method} is the eps search's winner {best} -> {args.out[0]}")


if __name__ == "__main__":
    run(main, get_parser())
