#!/usr/bin/env python
"""Accuracy of one model on every corrupted test set (per severity), with the means over all
corruptions and over those outside the noise category, as a tidy JSON record."""

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

import argparse
from pathlib import Path

import torch

from noisetrain import corruptions, datasets, models, results
from noisetrain.cli import run, say, set_threads
from noisetrain.evaluation import corruption_rows, summarize
from noisetrain.training import resolve_device


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="model file (.pt)")
    parser.add_argument("--sets", nargs="+", required=True, help="corrupted sets <corruption>.npz")
    parser.add_argument("--dataset", required=True, help="dataset name recorded with the result")
    parser.add_argument("--method", required=True, help="method name recorded with the result")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, help="output record (.json)")
    return parser


def main(args) -> None:
    set_threads(args.threads)
    device = resolve_device(args.device)
    model, info = models.load_model(args.model)
    model.to(device)
    names = [Path(path).stem for path in args.sets]
    category = corruptions.categories(names)
    rows = []
    for name, path in zip(names, args.sets):
        arrays = corruptions.load_set(path)
        rows += corruption_rows(model, name, category[name], datasets.to_float(arrays["images"]),
                                torch.from_numpy(arrays["labels"]), arrays["severities"],
                                batch_size=args.batch_size, device=device)
    summary = summarize(rows)
    record = results.make_record(args.dataset, args.method, "corruptions", rows + summary, info.get("spec", {}))
    results.write_record(record, args.out)
    say(f"{args.method}: " + ", ".join(f"{row['corruption']} {row['value']:.4f}" for row in summary) + f" -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
