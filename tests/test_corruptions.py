import numpy as np
import pytest

from noisetrain.data import corruptions, datasets, mnist_c
from noisetrain.errors import DataError


def test_categories_and_noise_subset():
    cats = corruptions.categories(mnist_c.MNIST_C_CORRUPTIONS)
    assert len(cats) == 15
    assert corruptions.noise_corruptions(mnist_c.MNIST_C_CORRUPTIONS) == ["shot_noise", "impulse_noise"]
    with pytest.raises(ValueError, match=r"unknown corruption\(s\) \['snow'\]"):
        corruptions.categories(["fog", "snow"])


def test_generate_matches_the_test_set(tiny_digits):
    arrays = corruptions.generate(tiny_digits, "stripe", seed=0)
    assert arrays["images"].shape == tiny_digits.test.images.shape and arrays["images"].dtype == np.uint8
    assert np.array_equal(arrays["labels"], tiny_digits.test.labels)
    assert set(arrays["severities"]) == {corruptions.MNIST_C_SEVERITY}
    # stripe inverts columns: an inverted pixel equals 255 minus the original (up to rounding)
    changed = arrays["images"] != tiny_digits.test.images
    diff = arrays["images"][changed].astype(int) + tiny_digits.test.images[changed].astype(int)
    assert np.abs(diff - 255).max() <= 1


def _publish(folder, name, images_uint8, labels):
    (folder / name).mkdir(parents=True)
    np.save(folder / name / "test_images.npy", images_uint8[:, 0, :, :, None])
    np.save(folder / name / "test_labels.npy", labels)


def test_published_files_are_read_and_subset(tmp_path):
    full = datasets.prepare({"name": "digits", "test_fraction": 0.3, "seed": 0})
    sub = datasets.prepare({"name": "digits", "test_fraction": 0.3, "seed": 0, "subset_test": 50})
    fake = 255 - full.test.images  # stands in for a published corruption of the full test set
    _publish(tmp_path, "fog", fake, full.test.labels)
    arrays = corruptions.read_published(tmp_path, "fog", sub)
    assert arrays["images"].shape == (50, 1, 28, 28)
    assert np.array_equal(arrays["images"], 255 - sub.test.images)
    assert np.array_equal(arrays["labels"], sub.test.labels)


def test_published_files_with_wrong_shape_or_order_are_rejected(tmp_path):
    data = datasets.prepare({"name": "digits", "test_fraction": 0.3, "seed": 0})
    (tmp_path / "fog").mkdir()
    np.save(tmp_path / "fog" / "test_images.npy", np.zeros((540, 28, 28), np.uint8))
    np.save(tmp_path / "fog" / "test_labels.npy", data.test.labels)
    with pytest.raises(datasets.DataError, match=r"expected \(N, 28, 28, 1\)"):
        corruptions.read_published(tmp_path, "fog", data)
    _publish(tmp_path, "zigzag", data.test.images, np.roll(data.test.labels, 1))
    with pytest.raises(datasets.DataError, match="do not follow the MNIST test order"):
        corruptions.read_published(tmp_path, "zigzag", data)
    with pytest.raises(datasets.DataError, match="fix corruptions.published_path"):
        corruptions.read_published(tmp_path, "rotate", data)


def test_set_roundtrip(tiny_digits, tmp_path):
    arrays = corruptions.generate(tiny_digits, "fog", seed=1)
    corruptions.save_set(arrays, tmp_path / "fog.npz")
    back = corruptions.load_set(tmp_path / "fog.npz")
    assert all(np.array_equal(back[k], arrays[k]) for k in arrays)


def test_corruption_set_of_the_wrong_shape_is_a_one_line_error(tmp_path):
    path = tmp_path / "fog.npz"
    np.savez(path, images=np.zeros((5, 28, 28), np.uint8), labels=np.zeros(5, np.int64), severities=np.ones(5, np.int64))
    with pytest.raises(DataError, match=r"fog.npz holds images uint8 \(5, 28, 28\).*expected uint8 \(N, C, H, W\).*rerun"):
        corruptions.load_set(path)
    np.savez(path, images=np.zeros((5, 1, 28, 28), np.uint8), labels=np.zeros(4, np.int64), severities=np.ones(5, np.int64))
    with pytest.raises(DataError, match="labels \\(4,\\)"):
        corruptions.load_set(path)
