#!/usr/bin/env python
"""Figs 3 and 8: a test image at each model's median epsilon* along Gaussian noise (Fig 3) and
along Gaussian, uniform and adversarial noise (Fig 8)."""

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

import argparse
from pathlib import Path

import torch

from noisetrain import datasets, figures, models, results
from noisetrain.decision_distance import gaussian_directions, uniform_directions
from noisetrain.generators import NoiseGenerator
from noisetrain.cli import run, say
from noisetrain.tables import LABELS


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--eval-dir", required=True, help="results/<dataset>/eval: <method>/noise_robustness.json, an_generators.pt")
    parser.add_argument("--methods", nargs="+", default=["vanilla", "best_gnt", "ant1x1"],
                        help="folders of --eval-dir shown, one row each (best_gnt: the sweep's best sigma)")
    parser.add_argument("--index", type=int, default=0, help="which test image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fig3", required=True, help="PNG path of Fig 3 (PDF beside it)")
    parser.add_argument("--fig8", required=True, help="PNG path of Fig 8 (PDF beside it)")
    return parser


def main(args) -> None:
    image = datasets.pick_test_image(datasets.load(args.data), args.index)
    shape = (1, *image.shape)
    rows = []
    for name in args.methods:
        folder = Path(args.eval_dir) / name
        record = results.read_record(folder / "noise_robustness.json")
        method = record["method"]  # best_gnt's record names the model it measured
        eps = {row["corruption"]: row["value"] for row in record["rows"]}
        saved = models.safe_load(folder / "an_generators.pt")
        generator = NoiseGenerator(**saved["config"])
        generator.load_state_dict(saved["generators"][0])
        with torch.no_grad():
            adversarial = generator.eval()(torch.from_numpy(image).float()[None] / 255, torch.Generator().manual_seed(args.seed))
        directions = {"gn": gaussian_directions(shape, args.seed), "un": uniform_directions(shape, args.seed), "an": adversarial}
        label = f"GNT σ={record['provenance']['spec']['sigma']:g}" if name == "best_gnt" else LABELS.get(method, method)
        rows.append((label, {k: eps[f"eps_{k}"] for k in ("gn", "un", "an")}, directions))
    figures.save(figures.epsilon_examples(image, [(l, {"gn": e["gn"]}, d) for l, e, d in rows]), args.fig3)
    figures.save(figures.epsilon_examples(image, rows), args.fig8)
    say(f"wrote {args.fig3} and {args.fig8}")


if __name__ == "__main__":
    run(main, get_parser())
