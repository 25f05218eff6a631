"""The per-image prediction cache: decode an image set once, run every model on it, keep top-5 ids.

One evaluation job per image set (the clean validation set, or one ImageNet-C corruption x
severity folder) reads its folder once and runs every model of the evaluation on each batch. What
it keeps per model and image is the model's five best class ids, best first; every metric (top-1,
top-5, CE, mCE) is computed later from these ids, never by running a model again.

Layout of one set's folder::

    <set_dir>/<model>.npz     top5 [N, k] int16, labels [N] int16, key (str), format (int)
    <set_dir>/manifest.json   every model of the set: its entry file, key, image count, and
                              whether this run computed it or reused it

An entry's ``key`` is ``<model fingerprint>|<files hash>``: the fingerprint, given by the caller,
must change whenever the model's outputs on a given file can change (its weights, its
preprocessing); the files hash (:func:`files_hash`) changes whenever the set's ordered file list
does. :func:`evaluate_set` keeps the entries whose key still matches and runs only the other
models, in one pass over the set: adding a model to an evaluation decodes the set once for that
model alone, and a rerun that finds every entry valid decodes nothing.

Entries and manifests are written atomically (:func:`noisetrain.storage.atomic_write`), so a file
under an entry's name is always a complete entry of ours. An entry that cannot be read is
therefore not a crash artefact but a foreign or damaged file: :func:`read_entry` refuses it with
a :class:`~noisetrain.errors.DataError` naming it, rather than silently overwriting it.

Models that need different inputs (e.g. 299 px for Inception V3) name their preprocessing: the set
is read once per preprocessing that a missing model needs, and one manifest lists them all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from noisetrain.errors import DataError, InputError
from noisetrain.storage import atomic_write, write_json

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


def files_hash(files: Sequence[str]) -> str:
    """SHA-256 of the ordered list of the set's relative file paths (order matters: the i-th
    cached row belongs to the i-th file)."""
    if isinstance(files, str):
        raise InputError("files_hash takes a list of relative file paths, not one string")
    digest = hashlib.sha256()
    for name in files:
        if not isinstance(name, str):
            raise InputError(f"file names must be strings, got {name!r}")
        digest.update(name.encode("utf-8", "surrogateescape"))
        digest.update(b"\0")  # no path contains NUL, so the joined list is unambiguous
    return digest.hexdigest()


def entry_key(fingerprint: str, set_files_hash: str) -> str:
    """What an entry was computed from: the model's fingerprint and the set's files hash."""
    if not isinstance(fingerprint, str) or not fingerprint:
        raise InputError(f"a model fingerprint must be a non-empty string, got {fingerprint!r}")
    return f"{fingerprint}|{set_files_hash}"


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
# One set: reuse what is valid, compute the rest in one pass


def _check_model_names(names: Iterable[str]) -> None:
    for name in names:
        if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
            raise InputError(
                f"model name {name!r} cannot name a cache file: use letters, digits and . _ + - (not starting with a dot)"
            )


def _check_set_name(set_name, where) -> tuple[str, int]:
    try:
        corruption, severity = set_name
    except (TypeError, ValueError):
        corruption, severity = None, None
    if (
        not isinstance(corruption, str)
        or not corruption
        or isinstance(severity, bool)
        or not isinstance(severity, int | np.integer)
    ):
        raise InputError(f"the set name of {where} must be (corruption, severity), e.g. ('clean', 0), got {set_name!r}")
    if severity < 0:
        raise InputError(f"severity of {where} must be a non-negative integer (0 for clean), got {severity!r}")
    return corruption, int(severity)


def evaluate_set(
    set_dir: str | Path,
    models: Mapping[str, tuple],
    make_loader: Callable[..., Iterable],
    files: Sequence[str],
    device: str | torch.device,
    amp: bool = True,
    set_name: tuple[str, int] | None = None,
) -> dict:
    """Bring the prediction cache of one image set up to date for ``models`` and write its manifest.

    ``models`` maps name -> (fingerprint, factory) or (fingerprint, factory, preprocessing): the
    factory builds the model and is called only for a model whose entry is missing or stale.
    ``make_loader(preprocessing)`` (``make_loader()`` when no model names one) builds the set's
    loader for that preprocessing, which must yield its images in the order of ``files``
    (relative paths); it is called once per preprocessing that a missing model needs, and not at
    all when every entry is valid. Entries of models no longer in ``models`` are left on disk but
    not listed. ``set_name``, the set's (corruption, severity) (("clean", 0) for the clean
    validation set), is recorded in the manifest so that :func:`accuracy_from_manifests` needs
    nothing else. Returns the manifest (also written to ``<set_dir>/manifest.json``).
    """
    if set_name is not None:
        set_name = _check_set_name(set_name, set_dir)
    if not models:
        raise InputError(f"no models to evaluate on {set_dir}")
    _check_model_names(models)
    if not files:
        raise InputError(f"the image set of {set_dir} lists no files")
    set_dir = Path(set_dir)
    set_hash = files_hash(files)
    keys = {name: entry_key(spec[0], set_hash) for name, spec in models.items()}

    entries: dict[str, dict] = {}
    for name in models:
        entry = read_entry(set_dir / f"{name}.npz")
        if entry is not None and entry["key"] == keys[name] and len(entry["labels"]) == len(files):
            entries[name] = entry
    reused = [name for name in models if name in entries]
    missing = [name for name in models if name not in entries]

    for preprocessing, names in _by_preprocessing(models, missing).items():
        built = {name: models[name][1]() for name in names}
        top5, labels = predict_top5(built, make_loader() if preprocessing is None else make_loader(preprocessing), device, amp)
        del built
        if len(labels) != len(files):
            raise DataError(f"the loader of {set_dir} yielded {len(labels)} images but the set lists {len(files)} files")
        for name in entries:
            if not np.array_equal(entries[name]["labels"], labels):
                raise DataError(
                    f"the labels the loader of {set_dir} yields differ from those cached in {name}.npz for the "
                    "same files: the class-to-index mapping changed; delete the folder and rerun"
                )
        for name in names:
            write_entry(set_dir / f"{name}.npz", top5[name], labels, keys[name])
            entries[name] = {"top5": top5[name], "labels": labels, "key": keys[name]}

    manifest = {
        **({"corruption": set_name[0], "severity": set_name[1]} if set_name is not None else {}),
        "files_hash": set_hash,
        "images": len(files),
        "models": {
            name: {
                "entry": f"{name}.npz",
                "key": keys[name],
                "images": int(len(entries[name]["labels"])),
                "computed": name in missing,
            }
            for name in models
        },
        "computed": missing,
        "reused": reused,
    }
    write_json(manifest, set_dir / MANIFEST)
    return manifest


def _by_preprocessing(models: Mapping[str, tuple], names: list[str]) -> dict:
    """The missing models grouped by the preprocessing they name (None when they name none)."""
    groups: dict = {}
    for name in names:
        groups.setdefault(models[name][2] if len(models[name]) > 2 else None, []).append(name)
    return groups


# ----------------------------------------------------------------------------------------------
# Metrics from the cache


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
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DataError(f"{path} does not exist: run the evaluation rule that writes it (snakemake {path})") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable prediction-cache manifest ({exc}): delete it and rerun") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), dict):
        raise DataError(f"{path} is not a prediction-cache manifest (no 'models' mapping): delete it and rerun")
    return manifest


def accuracy_records(manifest_paths: Sequence[str | Path], set_names: Sequence[tuple[str, int]] | None = None) -> pd.DataFrame:
    """Tidy top-1 / top-5 accuracy (percent) of every model of every set, from the cache alone.

    ``set_names[i]`` is the (corruption, severity) of the set whose manifest is
    ``manifest_paths[i]``: ("clean", 0) for the clean validation set; without ``set_names`` each
    manifest's own (written by :func:`evaluate_set` with ``set_name``) is used. Columns: model,
    corruption, severity, top1, top5, images. An entry whose key differs from its manifest's
    (rewritten since) is a DataError: rerun that set's evaluation.
    """
    if set_names is not None and len(manifest_paths) != len(set_names):
        raise InputError(f"{len(manifest_paths)} manifests but {len(set_names)} (corruption, severity) names")
    rows = []
    for i, manifest_path in enumerate(manifest_paths):
        manifest_path = Path(manifest_path)
        manifest = read_manifest(manifest_path)
        if set_names is not None:
            corruption, severity = _check_set_name(set_names[i], manifest_path)
        elif "corruption" in manifest and "severity" in manifest:
            corruption, severity = _check_set_name((manifest["corruption"], manifest["severity"]), manifest_path)
        else:
            raise DataError(
                f"{manifest_path} does not say which corruption and severity its set is: rerun its evaluation "
                "(evaluate_set with set_name) or pass the set names"
            )
        for model, listed in manifest["models"].items():
            entry_path = manifest_path.parent / listed["entry"]
            entry = read_entry(entry_path)
            if entry is None or entry["key"] != listed["key"]:
                raise DataError(
                    f"{entry_path} is missing or was rewritten after {manifest_path}: rerun the evaluation of that set"
                )
            top1, top5 = accuracies(entry["top5"], entry["labels"])
            rows.append(
                {
                    "model": model,
                    "corruption": corruption,
                    "severity": severity,
                    "top1": top1,
                    "top5": top5,
                    "images": len(entry["labels"]),
                }
            )
    return pd.DataFrame(rows, columns=["model", "corruption", "severity", "top1", "top5", "images"])


def accuracy_from_manifests(manifest_paths: Sequence[str | Path]) -> pd.DataFrame:
    """:func:`accuracy_records` of sets whose manifests name their own corruption and severity."""
    return accuracy_records(manifest_paths)
