"""ImageNet's 1,000 classes by index: the sorted WordNet ids (imagenet_wnids.txt, as torchvision's
ImageFolder and every released 1,000-class model order them). A val folder that holds only some of
them (ImageNet-100, a class subset for a quick run) labels its images 0, 1, ... by folder; a
1,000-output model is scored against ImageNet's index of each folder's wnid instead."""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np

from noisetrain.data.imagenet_layout import few
from noisetrain.errors import DataError

IMAGENET_CLASSES = 1000


@cache
def imagenet_wnids() -> tuple[str, ...]:
    text = resources.files("noisetrain.data").joinpath("imagenet_wnids.txt").read_text()
    return tuple(text.split())


def imagenet_labels(classes: list[str], num_classes: int) -> np.ndarray | None:
    """For a model with ``num_classes`` outputs scoring images of the folders ``classes``: ImageNet's
    index of each folder (label k becomes ``map[k]``), or None where folder indices are the model's
    (a model with one output per folder, or the whole of ImageNet's val in its order)."""
    wnids = imagenet_wnids()
    if num_classes != IMAGENET_CLASSES or tuple(classes) == wnids:
        return None
    index = {wnid: position for position, wnid in enumerate(wnids)}
    unknown = [name for name in classes if name not in index]
    if unknown:
        raise DataError(f"{len(unknown)} class folder(s) are not ImageNet classes ({few(unknown)}): a model with "
                        "ImageNet's 1,000 outputs scores ImageNet's classes only; name the folders by their wnid")
    return np.array([index[name] for name in classes], dtype=np.int64)


class Relabel:
    """A DataLoader's target transform (picklable for its workers): folder index k -> ``labels[k]``."""

    def __init__(self, labels: np.ndarray):
        self.labels = labels

    def __call__(self, index: int) -> int:
        return int(self.labels[index])


def relabelled(data, labels: np.ndarray):
    """A prepared set (noisetrain.data.datasets.PreparedData) with every label k replaced by ``labels[k]``."""
    from dataclasses import replace

    from noisetrain.data.datasets import Split

    return replace(data, train=Split(data.train.images, labels[data.train.labels]),
                   test=Split(data.test.images, labels[data.test.labels]))
