"""Dataset registry: preparing the clean train/test arrays once, and reading them back.

Prepared data is one ``.npz`` file of uint8 images (N, C, H, W), int64 labels and the indices of
the chosen test images in the source test set (so published corruption files, which follow the
source order, can be subset the same way). Images become float tensors in [0, 1] only on load.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from noisetrain.config_names import ARRAY_DATASETS
from noisetrain.data.stratified import stratified_subset
from noisetrain.errors import DataError, InputError
from noisetrain.storage import atomic_write

if TYPE_CHECKING:  # torch is imported where tensors are made: the corruption and report jobs need none
    import torch


# sklearn's digits are 8x8 with values 0..16. MNIST digits were size-normalised into a 20x20 box
# and centred in a 28x28 frame (LeCun et al.); doing the same keeps the MNIST-C affine
# corruptions (shear, scale, rotate, translate) from pushing the digit out of the frame.
DIGITS_BOX = 20
IMAGE_SIZE = 28


@dataclass
class Split:
    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray  # int64 (N,)


@dataclass
class PreparedData:
    train: Split
    test: Split
    test_index: np.ndarray  # position of each test image in the source test set
    name: str

    @property
    def num_classes(self) -> int:
        return int(max(self.train.labels.max(), self.test.labels.max())) + 1

    @property
    def channels(self) -> int:
        return int(self.train.images.shape[1])


def pick_test_image(data: PreparedData, index: int) -> np.ndarray:
    """One prepared test image (uint8, C x H x W), with an error naming the valid range."""
    if not 0 <= index < len(data.test.labels):
        raise InputError(f"test image index {index} is outside the {len(data.test.labels)} test images")
    return data.test.images[index]


def to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 tensor in [0, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)


def as_array(values) -> np.ndarray:
    """A numpy view of an array or a tensor (a tensor is copied to the host first)."""
    if hasattr(values, "detach"):  # a torch.Tensor, told apart without importing torch
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def to_uint8(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """Float images in [0, 1] -> uint8, rounding to the nearest level."""
    return np.clip(np.rint(as_array(images) * 255.0), 0, 255).astype(np.uint8)


def array_hash(*arrays) -> str:
    """Short hash of arrays or tensors (their bytes, shapes and dtypes): the data's identity."""
    digest = hashlib.sha256()
    for array in arrays:
        array = as_array(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:12]


def data_hash(data: PreparedData) -> str:
    return array_hash(data.train.images, data.train.labels, data.test.images, data.test.labels)


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 1,797 bundled digits as uint8 (N, 1, 28, 28) images, MNIST-style framed."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    box = F.interpolate(small, size=(DIGITS_BOX, DIGITS_BOX), mode="bilinear", align_corners=False)
    pad = (IMAGE_SIZE - DIGITS_BOX) // 2
    framed = F.pad(box, (pad, pad, pad, pad))
    return to_uint8(framed.clamp(0, 1)), bunch.target.astype(np.int64)


def prepare_digits(test_fraction: float, seed: int) -> tuple[Split, Split, np.ndarray]:
    from sklearn.model_selection import train_test_split

    images, labels = digits_images()
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed
    )
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    train = Split(images[train_idx], labels[train_idx])
    test = Split(images[test_idx], labels[test_idx])
    return train, test, np.arange(len(test_idx))


def local_mnist_root() -> str | None:
    """Where the tests and bench/ read real MNIST: ``NOISETRAIN_MNIST_ROOT`` when set (then it must
    hold MNIST), else ``../shared/data`` beside this checkout when it holds ``MNIST/raw``; else None."""
    import os

    if os.environ.get("NOISETRAIN_MNIST_ROOT"):
        return os.environ["NOISETRAIN_MNIST_ROOT"]
    beside = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    return str(beside) if (beside / "MNIST" / "raw").is_dir() else None


def prepare_mnist(root: str | None, download: bool) -> tuple[Split, Split, np.ndarray]:
    from torchvision.datasets import MNIST

    if not root:
        raise DataError("dataset.root is not set: point it at a folder holding MNIST/raw/ (or set download: true)")
    try:
        train = MNIST(root, train=True, download=download)
        test = MNIST(root, train=False, download=download)
    except RuntimeError as exc:
        raise DataError(
            f"MNIST not found under {Path(root) / 'MNIST' / 'raw'}: put the four IDX files there "
            "or set dataset.download: true to let torchvision fetch them"
        ) from exc

    def split(dataset) -> Split:
        return Split(dataset.data.numpy()[:, None].copy(), dataset.targets.numpy().astype(np.int64))

    test_split = split(test)
    return split(train), test_split, np.arange(len(test_split.labels))


# How each array dataset of the registry (config_names.DATASETS) reads its source.
PREPARERS = {
    "digits": lambda cfg: prepare_digits(cfg["test_fraction"], cfg["seed"]),
    "mnist": lambda cfg: prepare_mnist(cfg.get("root"), cfg.get("download", False)),
}


def prepare(dataset_cfg: dict) -> PreparedData:
    """Build the clean train/test arrays described by the config's ``dataset`` section."""
    name = dataset_cfg["name"]
    if name not in PREPARERS:
        raise DataError(f"unknown dataset '{name}'; known: {', '.join(ARRAY_DATASETS)}")
    train, test, test_index = PREPARERS[name](dataset_cfg)
    keep_train = stratified_subset(train.labels, dataset_cfg.get("subset_train"), dataset_cfg["seed"])
    keep_test = stratified_subset(test.labels, dataset_cfg.get("subset_test"), dataset_cfg["seed"])
    return PreparedData(
        train=Split(train.images[keep_train], train.labels[keep_train]),
        test=Split(test.images[keep_test], test.labels[keep_test]),
        test_index=test_index[keep_test],
        name=name,
    )


def save(data: PreparedData, path: str | Path) -> None:
    """Write atomically: a half-written file never takes the final name."""
    arrays = dict(x_train=data.train.images, y_train=data.train.labels, x_test=data.test.images,
                  y_test=data.test.labels, test_index=data.test_index, name=np.array(data.name))
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")


def load_npz(path: str | Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read the named arrays of an ``.npz`` file, with an error that says how to repair it."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist: run the data rule that writes it (snakemake {path})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise DataError(f"{path} lacks arrays {missing}: delete it and rerun the rule that writes it")
            return {key: archive[key] for key in keys}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path} is unreadable or corrupt ({exc}): delete it and rerun the rule that writes it") from exc


def load(path: str | Path) -> PreparedData:
    arrays = load_npz(path, ("x_train", "y_train", "x_test", "y_test", "test_index", "name"))
    return PreparedData(
        train=Split(arrays["x_train"], arrays["y_train"]),
        test=Split(arrays["x_test"], arrays["y_test"]),
        test_index=arrays["test_index"],
        name=str(arrays["name"]),
    )
