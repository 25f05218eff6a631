#!/usr/bin/env python
"""Write the study's tables (markdown and LaTeX) from the tidy evaluation records alone."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.report import records, study_tables
from noisetrain.report.outputs import TABLE_NAMES
from noisetrain.report.sweep_choice import read_choice


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", nargs="+", required=True, help="evaluation records (.json)")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--corruptions", nargs="+", required=True, help="corruption columns, in order")
    parser.add_argument("--methods", nargs="+", required=True, help="methods in the order their rows appear")
    parser.add_argument("--sweep-choice", default=None, help="the sweep choice (.json): its best model is the GNT row")
    parser.add_argument("--out-dir", required=True, help=f"folder for {', '.join(TABLE_NAMES)} (.md, .tex, .html)")
    return parser


def main(args) -> None:
    read = [records.read_record(path) for path in args.records]
    best = read_choice(args.sweep_choice).best_method if args.sweep_choice else None
    built = study_tables.write_tables(read, args.dataset, args.corruptions, args.methods, args.out_dir, best)
    for name, table in built.items():
        say(f"{name}: {len(table)} rows -> {args.out_dir}/{name}.md")


if __name__ == "__main__":
    run(main, get_parser())
