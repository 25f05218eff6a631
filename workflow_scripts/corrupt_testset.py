#!/usr/bin/env python
"""Write one corrupted test set: our MNIST-C implementation, or the published files if given."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.data import corruptions, datasets


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--corruption", required=True, help="corruption name, e.g. fog")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random corruption parameters")
    parser.add_argument("--published", default=None, help="folder of published MNIST-C files to read instead")
    parser.add_argument("--out", required=True, help="output .npz (images, labels, severities)")
    return parser


def main(args) -> None:
    corruptions.categories([args.corruption])  # unknown names fail before any work
    data = datasets.load(args.data)
    if args.published:
        arrays = corruptions.read_published(args.published, args.corruption, data)
        source = f"published files in {args.published}"
    else:
        arrays = corruptions.generate(data, args.corruption, args.seed)
        source = f"generated with seed {args.seed}"
    corruptions.save_set(arrays, args.out)
    say(f"{args.corruption}: {len(arrays['labels'])} images, {source} -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
