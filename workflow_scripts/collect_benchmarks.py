#!/usr/bin/env python
"""Collect every job's Snakemake benchmark file (wall seconds, max RSS, CPU time) into one
compute-cost table with a total row, headed by the git commit of this checkout."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.report import benchmarks


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--benchmarks", required=True, help="folder of the benchmark files (*.tsv, nested per rule)")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--md", required=True, help="output markdown table (.md)")
    parser.add_argument("--html", required=True, help="output HTML table for the Snakemake report (.html)")
    return parser


def main(args) -> None:
    jobs = benchmarks.collect(args.benchmarks)
    table = benchmarks.cost_table(jobs)
    benchmarks.write(table, args.dataset, args.md, args.html)
    total = table.iloc[-1]
    say(f"{len(jobs)} jobs, {total[benchmarks.COLUMNS['s']]:.1f} s wall in all -> {args.md}, {args.html}")


if __name__ == "__main__":
    run(main, get_parser())
