#!/usr/bin/env python
"""Choose ANT's eps the paper's way: the mean L2 size of clipped Gaussian noise on the training
images at the sigma of the sweep with the best mean corruption accuracy (appendix B)."""

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

import argparse
import json

from noisetrain import datasets, report, results, selection, tables
from noisetrain.cli import run, say


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", nargs="+", required=True, help="corruption records of the sweep's models (.json)")
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the Gaussian noise samples")
    parser.add_argument("--out", required=True, help="output .json: best sigma, eps and how it was computed")
    return parser


def main(args) -> None:
    records = [results.read_record(path) for path in args.records]
    summary = tables.method_summary(results.to_frame(records))
    sigmas = selection.sweep_sigmas(report.specs_from_records(records))
    best = selection.best_gnt(summary, sigmas)
    if best is None:
        raise ValueError("no single-sigma GNT model among the records: configure sigma_sweep or give ANT a numeric eps")
    images = datasets.to_float(datasets.load(args.data).train.images)
    eps = selection.mean_gaussian_change_norm(images, sigmas[best], args.seed)
    choice = {
        "best_method": best,
        "best_sigma": sigmas[best],
        "best_c_mean": float(summary.at[best, "c_mean"]),
        "eps": eps,
        "how": f"mean over the {len(images)} training images of |clip(x + N(0, {sigmas[best]:g}^2), 0, 1) - x|_2 "
               f"(seed {args.seed}); sigma {sigmas[best]:g} has the best mean corruption accuracy of the sweep "
               f"({', '.join(sorted(sigmas))})",
    }
    with open(args.out, "w") as handle:
        json.dump(choice, handle, indent=1)
    say(f"best sigma {sigmas[best]:g} ({best}) -> ANT eps {eps:.3f} -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
