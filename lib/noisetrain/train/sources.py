"""Where the trainer's batches come from: the small datasets' arrays in memory (here), or an
ImageNet ``ImageFolder`` streamed through DataLoader workers (``folder_source``, which only the
ImageNet jobs import: torchvision costs seconds a job). Both give the trainer and the method steps the
same things: an epoch's batches ``(x, y, index)`` in [0, 1] from a resume position on, the held-out
accuracy, random batches for ANT's fresh generators, and the stylized version of training images
(+SIN), so that every method step serves both.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
from torch import nn

from noisetrain.data.datasets import PreparedData, data_hash, load_npz, to_float
from noisetrain.errors import DataError, InputError
from noisetrain.measure.evaluation import accuracy
from noisetrain.train.precision import FP32, Precision

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # images in [0, 1], labels, training-set indices


class TrainSource(Protocol):
    name: str
    channels: int
    num_classes: int
    world_size: int  # how many processes share the data, each reading its own shard

    def identity(self) -> str: ...
    def steps_per_epoch(self, batch_size: int) -> int: ...
    def epoch_batches(self, state, batch_size: int) -> Iterator[Batch]: ...
    def heldout_accuracy(self, model: nn.Module, device: torch.device, precision: Precision = FP32) -> float: ...
    def check_heldout(self) -> None: ...
    def chance_level(self) -> float: ...
    def random_batches(self, steps: int, size: int, rng: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...
    def stylized(self, index: torch.Tensor) -> torch.Tensor: ...

    @property
    def has_stylized(self) -> bool: ...


def chance_of(labels: torch.Tensor) -> float:
    """Accuracy of always answering the most frequent class."""
    return torch.bincount(labels).max().item() / len(labels)


class ArraySource:
    """A prepared .npz dataset (digits, MNIST) held in memory on ``device`` for the whole job (MNIST
    is 220 MB as float32): a batch is an index gather there, with no loader and no copy per step.
    The epoch order comes from the trainer's checkpointed order stream (``state.order_rng``, on the
    CPU: the same order on every device), moved to the device once an epoch. One process reads it all."""

    world_size = 1

    def __init__(self, data: PreparedData, stylized_path: str | None = None, device: torch.device | str = "cpu"):
        self.data, self.name, self.device = data, data.name, torch.device(device)
        self.channels, self.num_classes = data.channels, data.num_classes
        self.x_train, self.y_train = self._held(data.train)
        self.x_test, self.y_test = self._held(data.test)
        self._stylized = None if stylized_path is None else load_stylized(stylized_path, data)

    def _held(self, split) -> tuple[torch.Tensor, torch.Tensor]:
        return to_float(split.images).to(self.device), torch.from_numpy(split.labels).to(self.device)

    def identity(self) -> str:
        return data_hash(self.data)

    def steps_per_epoch(self, batch_size: int) -> int:
        return math.ceil(len(self.y_train) / batch_size)

    def epoch_batches(self, state, batch_size: int) -> Iterator[Batch]:
        # A resumed epoch draws its permutation again from the generator state saved before it.
        if state.step == 0:
            state.epoch_order_rng = state.order_rng.get_state()
        else:
            state.order_rng.set_state(state.epoch_order_rng)
        order = to_device(torch.randperm(len(self.y_train), generator=state.order_rng), self.device)
        for start in range(state.step * batch_size, len(order), batch_size):
            index = order[start : start + batch_size]
            yield self.x_train[index], self.y_train[index], index

    def heldout_accuracy(self, model: nn.Module, device: torch.device, precision: Precision = FP32) -> float:
        return accuracy(model, self.x_test, self.y_test, device=device)

    def check_heldout(self) -> None:
        """Arrays were checked when they were loaded."""

    def chance_level(self) -> float:
        return chance_of(self.y_test)

    def random_batches(self, steps: int, size: int, rng: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``steps`` minibatches of ``size`` training images, without replacement within a pass."""
        n = len(self.y_train)
        size = min(size, n)
        order = torch.empty(0, dtype=torch.long)
        for _ in range(steps):
            if order.numel() < size:
                order = torch.randperm(n, generator=rng)
            index, order = order[:size], order[size:]
            index = to_device(index, self.device)
            yield self.x_train[index], self.y_train[index]

    @property
    def has_stylized(self) -> bool:
        return self._stylized is not None

    def stylized(self, index: torch.Tensor) -> torch.Tensor:
        if self._stylized is None:
            raise InputError("this method needs stylized images: give stylized_path")
        return to_float(self._stylized[index.cpu()].numpy())


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device`` without waiting for it: a GPU copy from pinned memory is
    asynchronous, one from ordinary memory first waits for everything queued on the device."""
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def load_stylized(path: str, data: PreparedData) -> torch.Tensor:
    """The stylized training images as a uint8 tensor, checked to align with the training set."""
    arrays = load_npz(path, ("images", "labels"))
    labels, shape = data.train.labels, data.train.images.shape
    if arrays["images"].shape != tuple(shape) or arrays["images"].dtype != np.uint8:
        raise DataError(
            f"{path}: stylized images must be uint8 of the training set's shape {tuple(shape)}, "
            f"got {arrays['images'].dtype} {arrays['images'].shape}"
        )
    if arrays["labels"].shape != labels.shape or not np.array_equal(arrays["labels"], labels):
        raise DataError(
            f"{path}: stylized labels do not match the prepared training labels; the file must hold "
            "the stylized version of every training image in the same order - regenerate it"
        )
    return torch.from_numpy(np.ascontiguousarray(arrays["images"]))


def as_source(data, spec: dict | None = None, device: torch.device | str = "cpu") -> TrainSource:
    """A source for ``data``: a PreparedData is wrapped (with the spec's stylized .npz), its arrays
    on ``device``; a source is itself."""
    if isinstance(data, PreparedData):
        return ArraySource(data, (spec or {}).get("stylized_path"), device)
    return data
