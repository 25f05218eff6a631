"""Real MNIST through torchvision's MNIST class, found as bench/ finds it (datasets.local_mnist_root:
NOISETRAIN_MNIST_ROOT, else ../shared/data beside the checkout); when the variable is set, an empty
or wrong folder is a failure, not a skip."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from noisetrain.data import datasets

ROOT = datasets.local_mnist_root()
pytestmark = pytest.mark.skipif(not ROOT, reason="no MNIST: set NOISETRAIN_MNIST_ROOT to a folder holding MNIST/raw")

# Canonical MD5 sums of the uncompressed IDX files (as torchvision and the data README give them).
MD5 = {
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def test_root_holds_mnist():
    raw = Path(ROOT) / "MNIST" / "raw"
    assert raw.is_dir(), f"{ROOT} (NOISETRAIN_MNIST_ROOT) has no MNIST/raw folder"
    for name, digest in MD5.items():
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == digest


def test_prepare_reads_real_mnist_offline():
    data = datasets.prepare({"name": "mnist", "root": ROOT, "download": False, "seed": 0})
    assert data.train.images.shape == (60000, 1, 28, 28) and data.test.images.shape == (10000, 1, 28, 28)
    assert data.train.images.dtype == np.uint8
    assert np.bincount(data.test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert data.train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert np.array_equal(data.test_index, np.arange(10000))


def test_subset_keeps_source_positions():
    data = datasets.prepare({"name": "mnist", "root": ROOT, "download": False, "seed": 0,
                             "subset_train": 1000, "subset_test": 500})
    full = datasets.prepare({"name": "mnist", "root": ROOT, "download": False, "seed": 0})
    assert np.array_equal(full.test.images[data.test_index], data.test.images)
