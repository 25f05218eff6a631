"""Shared fixtures: the repository root and a small prepared digits set on disk."""

from pathlib import Path

import pytest
import torch

from noisetrain import datasets

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_digits() -> datasets.PreparedData:
    """400 training and 100 test digits (stratified), prepared exactly as the data rule does."""
    return datasets.prepare({"name": "digits", "test_fraction": 0.3, "seed": 0, "subset_train": 400, "subset_test": 100})


@pytest.fixture(scope="session")
def tiny_digits_path(tiny_digits, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "clean.npz"
    datasets.save(tiny_digits, path)
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: a second intra-op thread only adds contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
