#!/usr/bin/env python
"""Write the claims table: each qualitative claim of the paper this study can test, with our numbers
and a verdict (paired bootstrap intervals over seeds and test images for accuracy claims, over the
measured images for epsilon* claims)."""

import argparse
from pathlib import Path

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)
import numpy as np

from noisetrain.cli import run, say
from noisetrain.data import corruptions as corruption_sets
from noisetrain.report import claims, records, tables
from noisetrain.report.study_tables import claims_caption, correct_by_method, specs_from_records
from noisetrain.report.sweep_choice import read_choice, sweep_sigmas


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", nargs="+", required=True, help="evaluation records (.json)")
    parser.add_argument("--correct", nargs="+", required=True, help="per-image correctness eval/<method>/correct.npz")
    parser.add_argument("--distances", nargs="*", default=[], help="per-image epsilon* eval/<model>/distances.npz")
    parser.add_argument("--corruptions", nargs="+", required=True, help="the benchmark's corruptions")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--sweep-choice", default=None, help="the sigma sweep's choice (.json)")
    parser.add_argument("--out-dir", required=True, help="folder for claims.md, .tex, .html")
    return parser


def main(args) -> None:
    read = [records.read_record(path) for path in args.records]
    summary = tables.method_summary(records.to_frame(read))
    specs = specs_from_records(read)
    correct = correct_by_method({Path(path).parent.name: path for path in args.correct}, specs)
    distances = {Path(path).parent.name: dict(np.load(path)) for path in args.distances}
    choice = read_choice(args.sweep_choice) if args.sweep_choice else None
    noise = set(corruption_sets.noise_corruptions(args.corruptions))
    noise_free = [c for c in args.corruptions if c not in noise]
    label = lambda m: tables.method_label(m, specs.get(m, {}))  # noqa: E731
    found = claims.study_claims(summary, correct, distances, choice, sweep_sigmas(specs), args.corruptions, noise_free, label)
    tables.write(claims.as_table(found), claims_caption(args.dataset, correct), args.out_dir, "claims")
    say(f"{len(found)} claims: " + ", ".join(f"{c.verdict}" for c in found) + f" -> {args.out_dir}/claims.md")


if __name__ == "__main__":
    run(main, get_parser())
