#!/usr/bin/env python
"""Write the study's tables (markdown and LaTeX) from the tidy evaluation records alone."""

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

import argparse

from noisetrain import report, results
from noisetrain.cli import run, say


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", nargs="+", required=True, help="evaluation records (.json)")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--corruptions", nargs="+", required=True, help="corruption columns, in order")
    parser.add_argument("--methods", nargs="+", required=True, help="methods in the order their rows appear")
    parser.add_argument("--out-dir", required=True, help=f"folder for {', '.join(report.TABLE_NAMES)} (.md, .tex)")
    return parser


def main(args) -> None:
    records = [results.read_record(path) for path in args.records]
    built = report.write_tables(records, args.dataset, args.corruptions, args.methods, args.out_dir)
    for name, table in built.items():
        say(f"{name}: {len(table)} rows -> {args.out_dir}/{name}.md")


if __name__ == "__main__":
    run(main, get_parser())
