#!/usr/bin/env python
"""Fig 4: learned adversarial noise of ANT 1x1 (densities of saved generator states, noisy
images) and of ANT 3x3 (noise patches, noisy images), from the generators in the model files."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.data import datasets
from noisetrain.models.model_file import load_extras
from noisetrain.noise.generator_bank import GeneratorBank
from noisetrain.report import figures


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--uncorrelated", required=True, help="ANT 1x1 model file (.pt)")
    parser.add_argument("--correlated", default=None, help="ANT 3x3 model file (.pt), optional")
    parser.add_argument("--images", type=int, default=6, help="how many test images to show")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="PNG path; the PDF is written beside it")
    return parser


def main(args) -> None:
    data = datasets.load(args.data)
    banks = {role: GeneratorBank.from_dict(load_extras(path).get("generators"), path)
             for role, path in (("uncorrelated", args.uncorrelated), ("correlated", args.correlated)) if path}
    fig = figures.adversarial_noise(data.test.images[: args.images], banks["uncorrelated"], banks.get("correlated"), args.seed)
    figures.save(fig, args.out)
    say(f"wrote {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
