"""Clean and corruption-benchmark accuracy of a trained classifier.

The small datasets evaluate through the same prediction cache as ImageNet
(:mod:`noisetrain.measure.prediction_cache`): the clean test set and each corrupted set, split by
severity, are image sets of arrays (:func:`array_sets`), and per-image correctness and every
accuracy follow from the cached top-5 ids and labels (:func:`correct_in_order`)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from noisetrain.data import corruptions, datasets
from noisetrain.data.datasets import array_hash, to_float
from noisetrain.errors import InputError
from noisetrain.measure.corruption_error import benchmark_mean
from noisetrain.measure.prediction_cache import ImageSet, cached_entries, entry_key, evaluate_model, top1_correct
from noisetrain.models.model_file import load_model
from noisetrain.storage import file_fingerprint


@torch.no_grad()
def predictions(model: nn.Module, images: torch.Tensor, *, batch_size: int = 1000,
                device: str | torch.device = "cpu") -> torch.Tensor:
    """Top-1 class of every image (float tensor in [0, 1]), computed in batches."""
    was_training = model.training
    model.eval()
    out = [model(images[i : i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def correct_flags(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1000,
                  device: str | torch.device = "cpu") -> np.ndarray:
    """Whether each image is classified correctly (the per-image record the bootstrap resamples)."""
    if len(images) != len(labels):
        raise InputError(f"{len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise InputError("accuracy of an empty set is undefined")
    return (predictions(model, images, batch_size=batch_size, device=device) == labels.cpu()).numpy()


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1000,
             device: str | torch.device = "cpu") -> float:
    return float(correct_flags(model, images, labels, batch_size=batch_size, device=device).mean())


def severity_rows(name: str, category: str, correct: np.ndarray, severities: np.ndarray) -> list[dict]:
    """Top-1 accuracy on one corruption, one row per severity present in the set."""
    return [
        {"corruption": name, "category": category, "severity": int(level), "value": float(correct[severities == level].mean())}
        for level in np.unique(severities)
    ]


def summarize(rows: list[dict]) -> list[dict]:
    """The benchmark means of a model's per-severity rows: over every corruption, and over those
    outside the noise category (the paper's 'IN-C w/o Noises' column)."""
    per_severity: dict[str, dict[int, float]] = {}
    for row in rows:
        per_severity.setdefault(row["corruption"], {})[row["severity"]] = row["value"]
    names = list(per_severity)
    without_noise = [row["corruption"] for row in rows if row["category"] != "noise"]
    summary = [{"corruption": "mean", "category": "aggregate", "severity": None, "value": benchmark_mean(per_severity, names)}]
    if without_noise:
        summary.append({"corruption": "mean_without_noise", "category": "aggregate", "severity": None,
                        "value": benchmark_mean(per_severity, list(dict.fromkeys(without_noise)))})
    return summary


def _levels(severities: np.ndarray | None, count: int) -> np.ndarray:
    """Each image's severity: 0 throughout for a set without severities (the clean test set)."""
    return np.zeros(count, dtype=np.int64) if severities is None else np.asarray(severities)


def _batches(images: np.ndarray, labels: np.ndarray, batch_size: int, _input_size: int):
    """(images, labels) batches of uint8 arrays as floats in [0, 1]; the input size is the arrays' own."""
    for i in range(0, len(images), batch_size):
        yield to_float(images[i : i + batch_size]), torch.from_numpy(np.asarray(labels[i : i + batch_size], dtype=np.int64))


def array_sets(corruption: str, images: np.ndarray, labels: np.ndarray, severities: np.ndarray | None = None,
               batch_size: int = 1000) -> list[ImageSet]:
    """The cache's image sets of one array set: one per severity present (0 for a clean set without
    severities), each holding its images in their order in the arrays."""
    levels = _levels(severities, len(labels))
    sets = []
    for level in np.unique(levels):
        mask = levels == level
        part_images, part_labels = images[mask], labels[mask]
        sets.append(ImageSet(corruption, int(level), content=array_hash(part_images, part_labels), images=int(mask.sum()),
                             loader=partial(_batches, part_images, part_labels, batch_size)))
    return sets


def correct_in_order(entries: Mapping[int, dict], severities: np.ndarray | None, count: int) -> np.ndarray:
    """Per-image top-1 correctness of one array set in the arrays' order, from the cache's entries
    of its severities (``entries``: severity -> entry)."""
    levels = _levels(severities, count)
    correct = np.zeros(count, dtype=bool)
    for level, entry in entries.items():
        correct[levels == level] = top1_correct(entry)
    return correct


def test_arrays(data: datasets.PreparedData, set_paths: list[str | Path]) -> dict[str, dict]:
    """The clean test arrays and each corrupted test set (<corruption>.npz), by name: images,
    labels and each image's severity (None for the clean set). Unknown corruption names fail first."""
    names = [Path(path).stem for path in set_paths]
    corruptions.categories(names)
    arrays = {"clean": {"images": data.test.images, "labels": data.test.labels, "severities": None}}
    arrays.update({name: corruptions.load_set(path) for name, path in zip(names, set_paths)})
    return arrays


def predict_arrays(model_path: str | Path, data_path: str | Path, set_paths: list[str | Path], out: str | Path, *,
                   batch_size: int, device: torch.device) -> dict:
    """Bring the prediction cache of one model file up to date on the clean test set and every
    corrupted set, each severity a set; ``out`` is its manifest, ``<model>/manifest.json``."""
    model, _ = load_model(model_path)
    data = datasets.load(data_path)
    arrays = test_arrays(data, set_paths)
    sets = [s for name, a in arrays.items()
            for s in array_sets(name, a["images"], a["labels"], a["severities"], batch_size=batch_size)]
    fingerprint = file_fingerprint(model_path)  # the file's hash: architecture and weights
    return evaluate_model(Path(out).parent, fingerprint, lambda: model, sets, data.test.images.shape[-1], device, amp=False)


def correct_by_set(manifest: str | Path, model_path: str | Path, arrays: Mapping[str, dict]) -> dict[str, np.ndarray]:
    """Per-image top-1 correctness of each array set, in the arrays' order, from the cache of the
    model in ``model_path``; predictions of another model file or of other images are refused."""
    entries: dict[str, dict] = {}
    for listed, entry in cached_entries(manifest):
        entries.setdefault(listed["corruption"], {})[listed["severity"]] = entry
    fingerprint = file_fingerprint(model_path)
    for name, a in arrays.items():
        for image_set in array_sets(name, a["images"], a["labels"], a["severities"]):
            entry = entries.get(name, {}).get(image_set.severity)
            if entry is None or entry["key"] != entry_key(fingerprint, image_set.content):
                raise InputError(f"{manifest} holds no predictions of {model_path} on the current {name} set "
                                 f"(severity {image_set.severity}): rerun predict_model for this model")
    return {name: correct_in_order(entries[name], a["severities"], len(a["labels"])) for name, a in arrays.items()}
