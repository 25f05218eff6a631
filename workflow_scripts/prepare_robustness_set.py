#!/usr/bin/env python
"""The ImageNet robustness set (Tables 2, 3, 5): N val images of the evaluation's list and N
training images, each stratified by class with a fixed seed, after the evaluation preprocessing
(resize, centre crop), as uint8 arrays. epsilon* and the attacks are measured on the val images;
the fresh adversarial-noise generators learn on the training images."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import run, say
from noisetrain.data.imagenet import CROP_SIZE, prepare_robustness_set, save_robustness_set


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--val", required=True, help="ImageNet val folder (<wnid>/<image>.JPEG)")
    parser.add_argument("--train", required=True, help="ImageNet train folder (<wnid>/<image>.JPEG)")
    parser.add_argument("--files", required=True, help="the evaluation's val image list (.json, list_val_images)")
    parser.add_argument("--images", type=int, required=True, help="val images, and as many training images")
    parser.add_argument("--seed", type=int, default=0, help="seed of both stratified subsets")
    parser.add_argument("--input-size", type=int, default=CROP_SIZE, help="side of the centre crop (224)")
    parser.add_argument("--out", required=True, help="output .npz (the prepared-data format, plus the class names)")
    return parser


def main(args) -> None:
    data, classes = prepare_robustness_set(args.val, args.train, args.files, args.images, args.seed, args.input_size, log=say)
    save_robustness_set(data, classes, args.out)
    say(
        f"{len(data.test.labels)} val and {len(data.train.labels)} training images of {len(classes)} classes, "
        f"{args.input_size}x{args.input_size} -> {args.out}"
    )


if __name__ == "__main__":
    run(main, get_parser())
