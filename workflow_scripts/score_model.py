#!/usr/bin/env python
"""Score one model of the small datasets from its cached predictions (predict_model): clean top-1
accuracy, accuracy per corruption and severity with the means over all corruptions and over those
outside the noise category, and per-image correctness. Writes one tidy JSON record per metric."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)
import numpy as np

from noisetrain.cli import run, say
from noisetrain.data import corruptions, datasets
from noisetrain.measure.evaluation import correct_by_set, severity_rows, summarize, test_arrays
from noisetrain.models.model_file import read_info
from noisetrain.report import records
from noisetrain.storage import atomic_write


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--predictions", required=True, help="the model's prediction-cache manifest, <method>/manifest.json")
    parser.add_argument("--model", required=True, help="model file (.pt): its provenance goes into the records")
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--sets", nargs="+", required=True, help="corrupted sets <corruption>.npz")
    parser.add_argument("--method", required=True, help="method name recorded with the results")
    parser.add_argument("--clean-out", required=True, help="record of the clean accuracy (.json)")
    parser.add_argument("--corruptions-out", required=True, help="record of the corruption accuracies (.json)")
    parser.add_argument("--correct-out", required=True,
                        help="per-image correctness (.npz: one boolean array for 'clean' and one per corruption)")
    return parser


def main(args) -> None:
    data = datasets.load(args.data)
    arrays = test_arrays(data, args.sets)
    info = read_info(args.model)
    correct = correct_by_set(args.predictions, args.model, arrays)
    clean = float(correct["clean"].mean())
    row = {"corruption": "clean", "category": "clean", "severity": None, "value": clean}
    settings = {"test_data_hash": datasets.array_hash(data.test.images, data.test.labels)}
    records.write_record(records.make_record(data.name, args.method, "clean", [row], info, settings), args.clean_out)

    names = [name for name in arrays if name != "clean"]
    category = corruptions.categories(names)
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
