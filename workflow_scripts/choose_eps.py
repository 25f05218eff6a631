#!/usr/bin/env python
"""Choose ANT's eps by line search (appendix B.2): of the ANT models trained at every candidate eps,
the one with the best mean corruption accuracy. Writes the choice record that methods with eps
'search' (and robustness.an_eps 'search') read."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import json_arg, run, say
from noisetrain.report import records, sweep_choice, tables


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", nargs="+", required=True, help="corruption records of the candidate models (.json)")
    parser.add_argument("--candidates", type=json_arg, required=True, help='candidate model -> eps, e.g. \'{"ant1x1_eps4": 4}\'')
    parser.add_argument("--out", required=True, help="output .json: the chosen eps and how")
    return parser


def main(args) -> None:
    summary = tables.method_summary(records.to_frame([records.read_record(path) for path in args.records]))
    choice = sweep_choice.choose_eps(summary["c_mean"].dropna().to_dict(), args.candidates)
    sweep_choice.write_choice(choice, args.out)
    say(f"eps search: {choice.how} ({choice.best_method}) -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
