"""Corruption benchmarks: which corruptions exist, their categories, and the corrupted test sets.

A corrupted test set is one ``.npz`` per corruption with uint8 ``images`` (N, C, H, W), ``labels``
and ``severities`` (N,), so a benchmark with five severities (ImageNet-C) and one with a single
severity (MNIST-C) are read and evaluated the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from noisetrain.data.corruption_names import MNIST_C_CATEGORIES as CATEGORIES
from noisetrain.data.corruption_names import MNIST_C_CORRUPTIONS
from noisetrain.data.datasets import PreparedData, load_npz, to_uint8
from noisetrain.errors import DataError, InputError
from noisetrain.storage import atomic_write

# MNIST-C has one severity per corruption (Mu & Gilmer 2019); it is recorded as severity 1.
MNIST_C_SEVERITY = 1


def categories(names: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Category (noise, blur, ...) of each corruption; unknown names are an error."""
    unknown = [name for name in names if name not in CATEGORIES]
    if unknown:
        raise InputError(f"unknown corruption(s) {unknown}; known: {', '.join(MNIST_C_CORRUPTIONS)}")
    return {name: CATEGORIES[name] for name in names}


def noise_corruptions(names) -> list[str]:
    return [name for name, category in categories(names).items() if category == "noise"]


def generate(data: PreparedData, name: str, seed: int) -> dict[str, np.ndarray]:
    """Apply our MNIST-C implementation of ``name`` to the prepared test images."""
    from noisetrain.data import mnist_c  # here: scipy and scikit-image cost the evaluation jobs 0.3 s each

    gray = data.test.images[:, 0].astype(np.float32) / 255.0
    corrupted = mnist_c.corrupt_images(gray, name, seed)
    return {
        "images": to_uint8(corrupted)[:, None],
        "labels": data.test.labels,
        "severities": np.full(len(data.test.labels), MNIST_C_SEVERITY, dtype=np.int64),
    }


def read_published(folder: str | Path, name: str, data: PreparedData) -> dict[str, np.ndarray]:
    """Read the published MNIST-C files of ``name``, keeping the prepared test subset."""
    folder = Path(folder) / name
    try:
        images = np.load(folder / "test_images.npy", allow_pickle=False)
        labels = np.load(folder / "test_labels.npy", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"cannot read the published MNIST-C files in {folder} (test_images.npy, test_labels.npy): {exc}; "
            "fix corruptions.published_path or set it to null to generate the sets"
        ) from exc
    if images.ndim != 4 or images.shape[1:] != (28, 28, 1) or len(images) != len(labels):
        raise DataError(f"{folder}/test_images.npy has shape {images.shape}; expected (N, 28, 28, 1) with N labels")
    if data.test_index.max(initial=0) >= len(labels):
        raise DataError(f"{folder} holds {len(labels)} images, fewer than the prepared test set needs")
    keep = data.test_index
    if not np.array_equal(labels[keep].astype(np.int64), data.test.labels):
        raise DataError(f"labels in {folder} do not follow the MNIST test order; is this MNIST-C?")
    images = images[keep].transpose(0, 3, 1, 2)
    return {
        "images": to_uint8(images / 255.0) if images.dtype != np.uint8 else np.ascontiguousarray(images),
        "labels": labels[keep].astype(np.int64),
        "severities": np.full(len(keep), MNIST_C_SEVERITY, dtype=np.int64),
    }


def save_set(arrays: dict[str, np.ndarray], path: str | Path) -> None:
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")


def load_set(path: str | Path) -> dict[str, np.ndarray]:
    """A corrupted test set, checked: uint8 (N, C, H, W) images with N labels and N severities."""
    arrays = load_npz(path, ("images", "labels", "severities"))
    images, labels, severities = arrays["images"], arrays["labels"], arrays["severities"]
    if images.ndim != 4 or images.dtype != np.uint8 or labels.shape != (len(images),) or severities.shape != labels.shape:
        raise DataError(
            f"{path} holds images {images.dtype} {images.shape}, labels {labels.shape} and severities "
            f"{severities.shape}; expected uint8 (N, C, H, W) with N labels and N severities: delete it and rerun "
            "its corrupt_testset job"
        )
    return arrays
