#!/usr/bin/env python
"""Fig 6: corruption accuracy against the sigma of Gaussian noise training, from the records."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.report import records as results
from noisetrain.report import study_tables as report


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", nargs="+", required=True, help="evaluation records (.json)")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", required=True, help="PNG path; the PDF is written beside it")
    return parser


def main(args) -> None:
    report.figure_sigma_sweep([results.read_record(p) for p in args.records], args.dataset, args.out)
    say(f"wrote {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
