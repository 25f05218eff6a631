import numpy as np
import pytest

from noisetrain.data import datasets


def test_digits_are_framed_like_mnist():
    images, labels = datasets.digits_images()
    assert images.shape == (1797, 1, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (1797,) and set(labels) == set(range(10))
    # the 20x20 box is centred: a 4-pixel empty margin on every side
    margin = np.concatenate([images[:, :, :4].ravel(), images[:, :, -4:].ravel(),
                             images[:, :, :, :4].ravel(), images[:, :, :, -4:].ravel()])
    assert margin.max() == 0
    assert images.max() == 255  # sklearn's value 16 maps to 1.0


def test_digits_split_is_stratified_deterministic_and_disjoint():
    a = datasets.prepare({"name": "digits", "test_fraction": 0.3, "seed": 0})
    b = datasets.prepare({"name": "digits", "test_fraction": 0.3, "seed": 0})
    assert len(a.train.labels) == 1257 and len(a.test.labels) == 540
    assert np.array_equal(a.test.images, b.test.images)
    shares = np.bincount(a.test.labels) / len(a.test.labels)
    assert np.abs(shares - 0.1).max() < 0.01
    train_rows = {img.tobytes() for img in a.train.images}
    assert sum(img.tobytes() in train_rows for img in a.test.images) < 5  # only exact duplicates in sklearn's set


def test_subsets_are_stratified():
    data = datasets.prepare({"name": "digits", "test_fraction": 0.3, "seed": 0, "subset_train": 200, "subset_test": 50})
    assert len(data.train.labels) == 200 and len(data.test.labels) == 50
    assert np.bincount(data.train.labels).min() >= 19
    assert len(data.test_index) == 50 and data.test_index.max() < 540


def test_save_load_roundtrip(tiny_digits, tmp_path):
    path = tmp_path / "clean.npz"
    datasets.save(tiny_digits, path)
    back = datasets.load(path)
    assert np.array_equal(back.train.images, tiny_digits.train.images)
    assert np.array_equal(back.test.labels, tiny_digits.test.labels)
    assert back.name == "digits" and back.num_classes == 10 and back.channels == 1
    x = datasets.to_float(back.test.images)
    assert x.dtype.is_floating_point and x.min() >= 0 and x.max() <= 1


def test_corrupt_file_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "clean.npz"
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(datasets.DataError, match=r"clean.npz is unreadable or corrupt.*delete it and rerun"):
        datasets.load(path)
    assert path.read_bytes() == b"not a zip file at all"  # nothing destroyed


def test_missing_file_says_which_rule(tmp_path):
    with pytest.raises(datasets.DataError, match="does not exist: run the data rule"):
        datasets.load(tmp_path / "nope.npz")


def test_mnist_without_files_gives_a_clear_error(tmp_path):
    with pytest.raises(datasets.DataError, match=r"MNIST not found under .*MNIST/raw.*download: true"):
        datasets.prepare({"name": "mnist", "root": str(tmp_path), "download": False, "seed": 0})
    with pytest.raises(datasets.DataError, match="dataset.root is not set"):
        datasets.prepare({"name": "mnist", "root": None, "seed": 0})
