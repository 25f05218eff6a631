#!/usr/bin/env python
"""The paper's ImageNet figures: Fig 5 (top-1 per corruption and severity, from the accuracy table)
and Fig 9 (an ImageNet-C JPEG image beside the same crop posterized, as AugMix trains with)."""

import argparse
from pathlib import Path

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)
import pandas as pd

from noisetrain.cli import json_arg, run, say
from noisetrain.data.imagenet import read_val_list
from noisetrain.errors import InputError
from noisetrain.report.imagenet_figures import write_fig2, write_fig5, write_fig9


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accuracy", required=True, help="accuracy table (.csv) written by collect_accuracy")
    parser.add_argument("--models", type=json_arg, required=True, help="JSON: name -> {label, ...}")
    parser.add_argument("--val", required=True, help="ImageNet val folder")
    parser.add_argument("--files", required=True, help="val list (.json) written by list_val_images")
    parser.add_argument("--jpeg-dir", default=None, help="ImageNet-C jpeg_compression folder of one severity (Fig 9)")
    parser.add_argument("--example-index", type=int, default=0, help="which listed val image Fig 9 shows")
    parser.add_argument("--out-dir", required=True)
    return parser


def main(args) -> None:
    out = Path(args.out_dir)
    accuracy = pd.read_csv(args.accuracy)
    write_fig5(accuracy, args.models, out / "fig5_accuracy_per_severity.png")
    if any(spec.get("sigmas") for spec in args.models.values()):
        write_fig2(accuracy, args.models, out / "fig2_accuracy_vs_sigma.png")
    if args.jpeg_dir:
        files = read_val_list(args.files)["files"]
        if not 0 <= args.example_index < len(files):
            raise InputError(f"report.example_index {args.example_index} is outside the {len(files)} listed val images")
        name = Path(files[args.example_index])
        jpeg = Path(args.jpeg_dir) / name.parent / f"{name.stem}.JPEG"
        write_fig9(jpeg, Path(args.val) / name, out / "fig9_jpeg_vs_posterize.png",
                   jpeg_title=f"ImageNet-C JPEG, severity {Path(args.jpeg_dir).name}")
    else:
        say("Fig 9 not drawn: imagenet_c.corruptions leaves out jpeg_compression, whose images it shows")
    say(f"figures -> {out}")


if __name__ == "__main__":
    run(main, get_parser())
