#!/usr/bin/env python
"""Evaluate one model: clean top-1 accuracy on the prepared test set, and accuracy on every
corrupted test set (per severity) with the means over all corruptions and over those outside
the noise category. Writes one tidy JSON record per metric."""

import argparse
from pathlib import Path

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)
import numpy as np
import torch

from noisetrain.cli import run, say, set_threads
from noisetrain.data import corruptions, datasets
from noisetrain.measure.evaluation import correct_flags, severity_rows, summarize
from noisetrain.models.devices import resolve_device
from noisetrain.models.model_file import load_model
from noisetrain.report import records
from noisetrain.storage import atomic_write


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="model file (.pt)")
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--sets", nargs="+", required=True, help="corrupted sets <corruption>.npz")
    parser.add_argument("--method", required=True, help="method name recorded with the results")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clean-out", required=True, help="record of the clean accuracy (.json)")
    parser.add_argument("--corruptions-out", required=True, help="record of the corruption accuracies (.json)")
    parser.add_argument("--correct-out", required=True,
                        help="per-image correctness (.npz: one boolean array for 'clean' and one per corruption)")
    return parser


def main(args) -> None:
    set_threads(args.threads)
    device = resolve_device(args.device)
    names = [Path(path).stem for path in args.sets]
    category = corruptions.categories(names)  # unknown corruption names fail before any work
    model, info = load_model(args.model)
    model.to(device)
    data = datasets.load(args.data)
    evaluate = dict(batch_size=args.batch_size, device=device)

    correct = {"clean": correct_flags(model, datasets.to_float(data.test.images), torch.from_numpy(data.test.labels), **evaluate)}
    clean = float(correct["clean"].mean())
    row = {"corruption": "clean", "category": "clean", "severity": None, "value": clean}
    settings = {"test_data_hash": datasets.array_hash(data.test.images, data.test.labels)}
    records.write_record(records.make_record(data.name, args.method, "clean", [row], info, settings), args.clean_out)

    rows, set_hashes = [], {}
    for name, path in zip(names, args.sets):
        arrays = corruptions.load_set(path)
        set_hashes[name] = datasets.array_hash(arrays["images"], arrays["labels"], arrays["severities"])
        correct[name] = correct_flags(model, datasets.to_float(arrays["images"]), torch.from_numpy(arrays["labels"]), **evaluate)
        rows += severity_rows(name, category[name], correct[name], arrays["severities"])
    atomic_write(args.correct_out, lambda tmp: np.savez_compressed(tmp, **correct), suffix=".npz")
    summary = summarize(rows)
    record = records.make_record(data.name, args.method, "corruptions", rows + summary, info, {"set_hashes": set_hashes})
    records.write_record(record, args.corruptions_out)
    say(f"{args.method}: clean {clean:.4f}, " + ", ".join(f"{r['corruption']} {r['value']:.4f}" for r in summary))


if __name__ == "__main__":
    run(main, get_parser())
