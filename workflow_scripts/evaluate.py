#!/usr/bin/env python
"""Evaluate one model through the prediction cache: its top-5 ids on the prepared test set and on
every corrupted test set (each severity a set), then, from the cache, clean top-1 accuracy,
accuracy per corruption and severity with the means over all corruptions and over those outside
the noise category, and per-image correctness. Writes one tidy JSON record per metric."""

import argparse
from pathlib import Path

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)
import numpy as np

from noisetrain.cli import run, say, set_threads
from noisetrain.data import corruptions, datasets
from noisetrain.measure.evaluation import array_sets, correct_in_order, severity_rows, summarize
from noisetrain.measure.prediction_cache import cached_entries, evaluate_model
from noisetrain.models.devices import resolve_device
from noisetrain.models.model_file import load_model
from noisetrain.report import records
from noisetrain.storage import atomic_write, file_fingerprint


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="model file (.pt)")
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--sets", nargs="+", required=True, help="corrupted sets <corruption>.npz")
    parser.add_argument("--method", required=True, help="method name recorded with the results")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--predictions-out", required=True, help="the model's prediction-cache manifest, <method>/manifest.json")
    parser.add_argument("--clean-out", required=True, help="record of the clean accuracy (.json)")
    parser.add_argument("--corruptions-out", required=True, help="record of the corruption accuracies (.json)")
    parser.add_argument("--correct-out", required=True,
                        help="per-image correctness (.npz: one boolean array for 'clean' and one per corruption)")
    return parser


def main(args) -> None:
    set_threads(args.threads)
    names = [Path(path).stem for path in args.sets]
    category = corruptions.categories(names)  # unknown corruption names fail before any work
    model, info = load_model(args.model)
    data = datasets.load(args.data)
    arrays = {"clean": {"images": data.test.images, "labels": data.test.labels, "severities": None}}
    arrays.update({name: corruptions.load_set(path) for name, path in zip(names, args.sets)})
    sets = [s for name, a in arrays.items()
            for s in array_sets(name, a["images"], a["labels"], a["severities"], batch_size=args.batch_size)]
    fingerprint = file_fingerprint(args.model)  # the file's hash: architecture and weights
    evaluate_model(Path(args.predictions_out).parent, fingerprint, lambda: model, sets, data.test.images.shape[-1],
                   resolve_device(args.device), amp=False)

    entries: dict[str, dict] = {}
    for listed, entry in cached_entries(args.predictions_out):
        entries.setdefault(listed["corruption"], {})[listed["severity"]] = entry
    correct = {name: correct_in_order(entries[name], a["severities"], len(a["labels"])) for name, a in arrays.items()}
    clean = float(correct["clean"].mean())
    row = {"corruption": "clean", "category": "clean", "severity": None, "value": clean}
    settings = {"test_data_hash": datasets.array_hash(data.test.images, data.test.labels)}
    records.write_record(records.make_record(data.name, args.method, "clean", [row], info, settings), args.clean_out)

    rows, set_hashes = [], {}
    for name in names:
        a = arrays[name]
        set_hashes[name] = datasets.array_hash(a["images"], a["labels"], a["severities"])
        rows += severity_rows(name, category[name], correct[name], a["severities"])
    atomic_write(args.correct_out, lambda tmp: np.savez_compressed(tmp, **correct), suffix=".npz")
    summary = summarize(rows)
    record = records.make_record(data.name, args.method, "corruptions", rows + summary, info, {"set_hashes": set_hashes})
    records.write_record(record, args.corruptions_out)
    say(f"{args.method}: clean {clean:.4f}, " + ", ".join(f"{r['corruption']} {r['value']:.4f}" for r in summary))


if __name__ == "__main__":
    run(main, get_parser())
