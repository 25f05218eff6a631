"""Stratified subsets of labelled items, every sampler of the pipeline in one place, without
torchvision (the small datasets' jobs need none, and importing the ImageNet modules costs seconds).

Two algorithms, each kept for the draws it has always made (the tables depend on them):

- :func:`stratified_subset`: scikit-learn's stratified split, for the small datasets' train and
  test subsets and their measured images;
- :func:`stratified_indices`: equal shares per class by water-filling, for image folders, whose
  sets hold as few as one image per class (scikit-learn's split refuses those). The val list, the
  held-out training images and the robustness set draw their files through it.
"""

from __future__ import annotations

import numpy as np

from noisetrain.config_names import IMAGE_FOLDER_DATASETS
from noisetrain.errors import ConfigError


def stratified_subset(labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """Indices of a class-balanced subset of ``size`` items (all indices when size is None)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    if size is None or size >= len(labels):
        return index
    chosen, _ = train_test_split(index, train_size=size, stratify=labels, random_state=seed)
    return np.sort(chosen)


def _quotas(counts: dict[str, int], n: int, rng: np.random.Generator) -> dict[str, int]:
    """Per-class sample sizes summing to ``n``, as equal as the class sizes allow (water-filling)."""
    quota, open_classes, left = {}, list(counts), n
    while open_classes:
        share = left // len(open_classes)
        full = [name for name in open_classes if counts[name] <= share]
        if not full:
            break
        for name in full:
            quota[name] = counts[name]
            left -= counts[name]
        open_classes = [name for name in open_classes if counts[name] > share]
    if open_classes:
        share, extra = divmod(left, len(open_classes))
        # Every open class holds more than `share` images, so each can take one of the `extra` images.
        lucky = {open_classes[i] for i in rng.permutation(len(open_classes))[:extra]}
        quota.update({name: share + (name in lucky) for name in open_classes})
    return quota


def stratified_indices(labels, n: int, seed: int) -> np.ndarray:
    """Sorted indices of ``n`` items stratified by label: equal per class, the remainder to classes
    drawn with the seed, items within a class drawn with it (all indices when ``n`` covers them).

    Unlike scikit-learn's stratified split it works with one item per class and with fewer items
    than classes (1,000 ImageNet images of 1,000 classes, a subset of them for the attacks)."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    if n < 1:
        raise ConfigError(f"a stratified subset needs at least one item, got {n}")
    rng = np.random.default_rng(seed)
    members = {label: np.flatnonzero(labels == label) for label in np.unique(labels)}
    quota = _quotas({label: len(index) for label, index in members.items()}, n, rng)
    chosen = [rng.choice(index, size=quota[label], replace=False) for label, index in members.items()]
    return np.sort(np.concatenate(chosen))


def measured_subset(labels: np.ndarray, n: int, seed: int, dataset: str) -> np.ndarray:
    """Indices of the ``n`` test images measured, stratified by class. ImageNet's robustness set holds
    about one image per class, which scikit-learn's stratified split (the small datasets') refuses."""
    if dataset in IMAGE_FOLDER_DATASETS:
        return stratified_indices(labels, n, seed)
    return stratified_subset(labels, n, seed)
