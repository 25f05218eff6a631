"""The per-image prediction cache: run one model on every image set, keep its top-5 ids per image.

One evaluation job per model reads every image set of the study (the clean test set and each
corruption x severity) and keeps, per image, the model's five best class ids, best first; every
metric (top-1, top-5, CE, mCE, per-severity) is computed later from these ids and the labels,
never by running a model again. A model is thus evaluated as soon as it exists, and replacing one
model recomputes its entries only.

Layout of one model's folder::

    <model_dir>/<corruption>/<severity>.npz   top5 [N, k] int16, labels [N] int16, key, format
    <model_dir>/manifest.json                 the model, and per set: its entry, key, image count,
                                              and whether this run computed it or reused it

An entry's ``key`` is ``<model fingerprint>|<set content>``. The fingerprint, given by the caller,
changes whenever the model's outputs on given pixels can change (its weights, its preprocessing).
The set's content (an :class:`ImageSet`'s ``content``, e.g. :func:`noisetrain.data.set_index.content_hash`
of its files' names and bytes) changes whenever what the images are changes: a regenerated
ImageNet-C, another copy of it, another file order or class list. :func:`evaluate_model` keeps
the entries whose key still matches and runs the model on the other sets only; a rerun that finds
every entry valid builds no model and decodes nothing.

Entries and manifests are written atomically (:func:`noisetrain.storage.atomic_write`), so a file
under an entry's name is always a complete entry of ours. An entry that cannot be read is
therefore not a crash artefact but a foreign or damaged file: :func:`read_entry` refuses it with
a :class:`~noisetrain.errors.DataError` naming it, rather than silently overwriting it.
"""

from __future__ import annotations

import contextlib
import re
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from noisetrain.errors import DataError, InputError
from noisetrain.models.devices import describe_device
from noisetrain.storage import atomic_write, read_json_file, write_json

TOP_K = 5
ENTRY_FORMAT = 1
MANIFEST = "manifest.json"
# Class ids and labels are stored as int16: ImageNet's 1000 classes fit with room to spare.
_MAX_CLASSES = int(np.iinfo(np.int16).max) + 1
# A model name becomes a file name: letters, digits and . _ + - only, not starting with a dot.
_MODEL_NAME = re.compile(r"[A-Za-z0-9_+\-][A-Za-z0-9_.+\-]*")


# ----------------------------------------------------------------------------------------------
# Running the models


def _autocast(device: torch.device, amp: bool):
    """bf16 (or fp16 where bf16 is unsupported) autocast on CUDA when ``amp``; nothing elsewhere."""
    if amp and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()


def _label_array(labels, count: int) -> np.ndarray:
    array = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if array.shape != (count,):
        raise DataError(
            f"a batch of {count} images came with labels of shape {array.shape}: "
            "the loader must yield (images, labels) with one integer label per image"
        )
    if len(array) and (array.min() < 0 or array.max() >= _MAX_CLASSES):
        raise DataError(f"labels must be class ids in [0, {_MAX_CLASSES}), got values from {array.min()} to {array.max()}")
    return array.astype(np.int16)


def _top_ids(name: str, logits: torch.Tensor, count: int) -> torch.Tensor:
    if logits.ndim != 2 or len(logits) != count:
        raise InputError(
            f"model {name!r} returned logits of shape {tuple(logits.shape)} for {count} images; expected [images, classes]"
        )
    if logits.shape[1] > _MAX_CLASSES:
        raise InputError(
            f"model {name!r} has {logits.shape[1]} classes; the cache stores class ids as int16 (at most {_MAX_CLASSES} classes)"
        )
    return logits.topk(min(TOP_K, logits.shape[1]), dim=1).indices.to(torch.int16)


def predict_top5(
    models: Mapping[str, nn.Module], loader: Iterable, device: str | torch.device, amp: bool = True
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Top-5 class ids of every model on every image of ``loader``, iterating it once.

    ``loader`` yields ``(images, labels)`` batches, images in [0, 1] (models normalise inside
    ``forward``); all models take the same input, so models that need another preprocessing go
    to another call. Each model is put in eval mode and moved to ``device`` (in place, as
    :meth:`nn.Module.to` does) for the call; its training flag is restored afterwards. On CUDA
    with ``amp`` the forward passes run under bf16 autocast (fp16 where bf16 is unsupported).

    Returns ``({name: top5 [N, k] int16}, labels [N] int16)`` with ``k = min(5, classes)``: a
    model with fewer than five classes gets all of its classes, ranked, and no padding; rows are
    ordered best first (ties between equal logits are ordered as :func:`torch.topk` orders them).
    """
    if not models:
        raise InputError("predict_top5 needs at least one model")
    device = torch.device(device)
    was_training = {name: model.training for name, model in models.items()}
    for model in models.values():
        # Outside inference mode: parameters copied inside it would become inference tensors, which
        # the caller could no longer train.
        model.to(device, memory_format=torch.channels_last).eval()
    ids: dict[str, list[torch.Tensor]] = {name: [] for name in models}
    labels: list[np.ndarray] = []
    batches = tqdm(loader, desc="predict", unit="batch", leave=False, disable=not sys.stderr.isatty())
    try:
        with torch.inference_mode(), _autocast(device, amp):
            for batch in batches:
                images = batch[0].to(device, non_blocking=True)
                if images.ndim == 4:
                    images = images.contiguous(memory_format=torch.channels_last)
                labels.append(_label_array(batch[1], len(images)))
                for name, model in models.items():
                    # Kept on the device: one transfer at the end instead of a sync per batch.
                    ids[name].append(_top_ids(name, model(images), len(images)))
    finally:
        for name, model in models.items():
            model.train(was_training[name])
    if not labels:
        raise DataError("the loader yielded no images: an empty set has no accuracy")
    return {name: torch.cat(parts).cpu().numpy() for name, parts in ids.items()}, np.concatenate(labels)


# ----------------------------------------------------------------------------------------------
# Cache entries


def entry_key(fingerprint: str, content: str) -> str:
    """What an entry was computed from: the model's fingerprint and the set's content."""
    for what, value in (("model fingerprint", fingerprint), ("set content", content)):
        if not isinstance(value, str) or not value:
            raise InputError(f"a {what} must be a non-empty string, got {value!r}")
    return f"{fingerprint}|{content}"


def write_entry(path: str | Path, top5: np.ndarray, labels: np.ndarray, key: str) -> Path:
    """Write one model's cache entry atomically (``np.savez``; readable without pickle)."""
    top5, labels = np.asarray(top5), np.asarray(labels)
    if top5.ndim != 2 or not 1 <= top5.shape[1] <= TOP_K or labels.ndim != 1 or len(top5) != len(labels):
        raise InputError(f"an entry needs top5 [N, 1..{TOP_K}] and labels [N], got shapes {top5.shape} and {labels.shape}")
    if not (np.issubdtype(top5.dtype, np.integer) and np.issubdtype(labels.dtype, np.integer)):
        raise InputError(f"class ids must be integers, got {top5.dtype} and {labels.dtype}")
    arrays = {
        "top5": top5.astype(np.int16),
        "labels": labels.astype(np.int16),
        "key": np.array(key),
        "format": np.array(ENTRY_FORMAT),
    }
    return atomic_write(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")


def read_entry(path: str | Path) -> dict | None:
    """``{"top5", "labels", "key"}`` of one entry, or None when the file does not exist.

    Writes are atomic, so an existing file that is not a complete entry was not left by a crash:
    it is refused with a DataError naming it (delete it and rerun), never silently replaced.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            entry = {"top5": data["top5"], "labels": data["labels"], "key": str(data["key"]), "format": int(data["format"])}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path} is not a prediction-cache entry ({exc.__class__.__name__}: {exc}): delete it and rerun the evaluation"
        ) from exc
    top5, labels = entry["top5"], entry["labels"]
    if entry["format"] != ENTRY_FORMAT or top5.ndim != 2 or labels.ndim != 1 or len(top5) != len(labels):
        raise DataError(
            f"{path} is not a prediction-cache entry of format {ENTRY_FORMAT} (top5 {top5.shape}, "
            f"labels {labels.shape}, format {entry['format']}): delete it and rerun the evaluation"
        )
    del entry["format"]
    return entry


# ----------------------------------------------------------------------------------------------
# One model: reuse what is valid, compute the rest


@dataclass(frozen=True)
class ImageSet:
    """One image set as the cache sees it: its name, what its images are, and how to read them.

    ``loader(input_size)`` yields ``(images, labels)`` batches in a fixed order, images in [0, 1]
    at that size; it is called only when a model's entry for the set is missing or stale."""

    corruption: str  # "clean" for the uncorrupted test set
    severity: int  # 0 for clean
    content: str  # changes whenever the images, their order or their labels change
    images: int
    loader: Callable[[int], Iterable]

    @property
    def entry(self) -> str:
        return f"{self.corruption}/{self.severity}.npz"


def _check_model_name(name: str) -> None:
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise InputError(
            f"model name {name!r} cannot name a cache folder: use letters, digits and . _ + - (not starting with a dot)"
        )


def _check_set(image_set: ImageSet) -> None:
    corruption, severity = image_set.corruption, image_set.severity
    if not isinstance(corruption, str) or not _MODEL_NAME.fullmatch(corruption):
        raise InputError(f"set name {corruption!r} cannot name a cache file: use letters, digits and . _ + -")
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer) or severity < 0:
        raise InputError(f"the severity of set {corruption!r} must be a non-negative integer (0 for clean), got {severity!r}")
    if image_set.images < 1:
        raise InputError(f"image set {corruption}/{severity} holds no images: an empty set has no accuracy")


def evaluate_model(
    model_dir: str | Path,
    fingerprint: str,
    factory: Callable[[], nn.Module],
    sets: Sequence[ImageSet],
    input_size: int,
    device: str | torch.device,
    amp: bool = True,
) -> dict:
    """Bring one model's prediction cache up to date on ``sets`` and write its manifest.

    ``factory()`` builds the model; it is called once, and only if some set's entry is missing or
    stale (its key differs, or its image count). Entries of sets no longer listed stay on disk but
    are not listed. Returns the manifest (also written to ``<model_dir>/manifest.json``)."""
    model_dir = Path(model_dir)
    _check_model_name(model_dir.name)
    if not sets:
        raise InputError(f"no image sets to evaluate {model_dir.name} on")
    for image_set in sets:
        _check_set(image_set)
    model = None
    listed = []
    for image_set in sets:
        path, key = model_dir / image_set.entry, entry_key(fingerprint, image_set.content)
        entry = read_entry(path)
        computed = entry is None or entry["key"] != key or len(entry["labels"]) != image_set.images
        if computed:
            model = model if model is not None else factory()
            top5, labels = predict_top5({model_dir.name: model}, image_set.loader(input_size), device, amp)
            if len(labels) != image_set.images:
                raise DataError(
                    f"the loader of set {image_set.entry[:-4]} yielded {len(labels)} images but the set lists {image_set.images}"
                )
            write_entry(path, top5[model_dir.name], labels, key)
        listed.append(
            {
                "corruption": image_set.corruption,
                "severity": int(image_set.severity),
                "entry": image_set.entry,
                "key": key,
                "images": image_set.images,
                "computed": computed,
            }
        )
    # Where the sets computed now ran (the others keep their entries from before).
    where = describe_device(torch.device(device))
    manifest = {"model": model_dir.name, "fingerprint": fingerprint, "device": where, "sets": listed}
    write_json(manifest, model_dir / MANIFEST)
    return manifest


# ----------------------------------------------------------------------------------------------
# Metrics from the cache


def top1_correct(entry: Mapping) -> np.ndarray:
    """Whether each image's first cached id is its label (the per-image record the bootstrap resamples)."""
    return np.asarray(entry["top5"])[:, 0] == np.asarray(entry["labels"])


def accuracies(top5: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(top-1, top-5) accuracy in percent from cached ids: top-1 is the first id, top-5 any of
    them (for a model with k < 5 classes: any of its k ids)."""
    top5, labels = np.asarray(top5), np.asarray(labels)
    if top5.ndim != 2 or labels.shape != (len(top5),):
        raise InputError(f"top5 [N, k] and labels [N] expected, got shapes {top5.shape} and {labels.shape}")
    if len(labels) == 0:
        raise InputError("accuracy of an empty set is undefined")
    hits = top5 == labels[:, None]
    return 100.0 * float(hits[:, 0].mean()), 100.0 * float(hits.any(axis=1).mean())


def read_manifest(path: str | Path) -> dict:
    return read_json_file(path, "a model's prediction-cache manifest",
                          lambda m: isinstance(m, dict) and isinstance(m.get("sets"), list) and "model" in m,
                          "a mapping with 'model' and 'sets'")


def cached_entries(manifest_path: str | Path) -> Iterable[tuple[dict, dict]]:
    """(set listing, entry) of every set of one model's manifest; an entry missing or rewritten
    since the manifest is a DataError (rerun that model's evaluation)."""
    manifest_path = Path(manifest_path)
    for listed in read_manifest(manifest_path)["sets"]:
        entry_path = manifest_path.parent / listed["entry"]
        entry = read_entry(entry_path)
        if entry is None or entry["key"] != listed["key"]:
            raise DataError(f"{entry_path} is missing or was rewritten after {manifest_path}: rerun that model's evaluation")
        yield listed, entry


def accuracy_records(manifest_paths: Sequence[str | Path]):
    """Tidy top-1 / top-5 accuracy (percent) of every model on every set, from the cache alone: a
    DataFrame with columns model, corruption, severity, top1, top5, images."""
    import pandas as pd  # the report's need; evaluation jobs import the cache without it

    rows = []
    for manifest_path in manifest_paths:
        model = read_manifest(manifest_path)["model"]
        for listed, entry in cached_entries(manifest_path):
            top1, top5 = accuracies(entry["top5"], entry["labels"])
            rows.append(
                {
                    "model": model,
                    "corruption": listed["corruption"],
                    "severity": listed["severity"],
                    "top1": top1,
                    "top5": top5,
                    "images": len(entry["labels"]),
                }
            )
    return pd.DataFrame(rows, columns=["model", "corruption", "severity", "top1", "top5", "images"])
