#!/usr/bin/env python
"""Clean top-1 accuracy of one model on the prepared test set, as a tidy JSON record."""

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

import argparse

import torch

from noisetrain import datasets, models, results
from noisetrain.cli import run, say, set_threads
from noisetrain.evaluation import accuracy
from noisetrain.training import resolve_device


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="model file (.pt)")
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
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
    data = datasets.load(args.data)
    value = accuracy(model.to(device), datasets.to_float(data.test.images), torch.from_numpy(data.test.labels),
                     batch_size=args.batch_size, device=device)
    row = {"corruption": "clean", "category": "clean", "severity": None, "value": value}
    results.write_record(results.make_record(data.name, args.method, "clean", [row], info.get("spec", {})), args.out)
    say(f"{args.method}: clean accuracy {value:.4f} -> {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
