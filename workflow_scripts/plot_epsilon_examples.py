#!/usr/bin/env python
"""Figs 3 and 8: a test image at each model's median epsilon* along Gaussian noise (Fig 3) and
along Gaussian, uniform and adversarial noise (Fig 8)."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)
import torch

from noisetrain.cli import run, say
from noisetrain.data import datasets
from noisetrain.errors import InputError
from noisetrain.measure.decision_distance import gaussian_directions, uniform_directions
from noisetrain.noise.generator_bank import read_bank
from noisetrain.report import figures, records


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--records", nargs="+", required=True, help="noise_robustness.json of each model shown, one row each")
    parser.add_argument("--generators", nargs="+", required=True, help="an_generators.pt of the same models, in the same order")
    parser.add_argument("--labels", nargs="+", required=True, help="each model's row label, in the same order")
    parser.add_argument("--index", type=int, default=0, help="which test image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fig3", required=True, help="PNG path of Fig 3 (PDF beside it)")
    parser.add_argument("--fig8", required=True, help="PNG path of Fig 8 (PDF beside it)")
    return parser


def main(args) -> None:
    if not len(args.records) == len(args.generators) == len(args.labels):
        raise InputError(f"{len(args.records)} --records, {len(args.generators)} --generators and {len(args.labels)} --labels: "
                         "give one of each per model")
    image = datasets.pick_test_image(datasets.load(args.data), args.index)
    x = torch.from_numpy(image).float()[None] / 255
    rows = []
    for record_path, bank_path, label in zip(args.records, args.generators, args.labels):
        record = records.read_record(record_path)
        eps = {row["corruption"]: row["value"] for row in record["rows"]}
        with torch.no_grad():
            adversarial = read_bank(bank_path).build(0)(x, torch.Generator().manual_seed(args.seed))
        directions = {"gn": gaussian_directions(x.shape, args.seed), "un": uniform_directions(x.shape, args.seed),
                      "an": adversarial}
        rows.append((label, {k: eps[f"eps_{k}"] for k in ("gn", "un", "an")}, directions))
    figures.save(figures.epsilon_examples(image, [(label, {"gn": e["gn"]}, d) for label, e, d in rows]), args.fig3)
    figures.save(figures.epsilon_examples(image, rows), args.fig8)
    say(f"wrote {args.fig3} and {args.fig8}")


if __name__ == "__main__":
    run(main, get_parser())
