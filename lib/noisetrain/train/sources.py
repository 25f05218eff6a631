"""Where the trainer's batches come from: the small datasets' arrays in memory, or an ImageNet
``ImageFolder`` streamed through DataLoader workers. Both give the trainer and the method steps the
same things: an epoch's batches ``(x, y, index)`` in [0, 1] from a resume position on, the held-out
accuracy, random batches for ANT's fresh generators, and the stylized version of training images
(+SIN), so that every method step serves both.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from noisetrain.data.datasets import PreparedData, array_hash, data_hash, load_npz, to_float
from noisetrain.data.imagenet import eval_transform, image_folder, relative_files
from noisetrain.data.imagenet_train import AugmentedImages, EpochOrder, seed_of, train_loader, train_transform
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
    def chance_level(self) -> float: ...
    def random_batches(self, steps: int, size: int, rng: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...
    def stylized(self, index: torch.Tensor) -> torch.Tensor: ...

    @property
    def has_stylized(self) -> bool: ...


def _chance(labels: torch.Tensor) -> float:
    """Accuracy of always answering the most frequent class."""
    return torch.bincount(labels).max().item() / len(labels)


class ArraySource:
    """A prepared .npz dataset (digits, MNIST) held in memory; the epoch order comes from the
    trainer's checkpointed order stream (``state.order_rng``). One process reads it all."""

    world_size = 1

    def __init__(self, data: PreparedData, stylized_path: str | None = None):
        self.data, self.name = data, data.name
        self.channels, self.num_classes = data.channels, data.num_classes
        self.x_train, self.y_train = to_float(data.train.images), torch.from_numpy(data.train.labels)
        self.x_test, self.y_test = to_float(data.test.images), torch.from_numpy(data.test.labels)
        self._stylized = None if stylized_path is None else load_stylized(stylized_path, data)

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
        order = torch.randperm(len(self.y_train), generator=state.order_rng)
        for start in range(state.step * batch_size, len(order), batch_size):
            index = order[start : start + batch_size]
            yield self.x_train[index], self.y_train[index], index

    def heldout_accuracy(self, model: nn.Module, device: torch.device, precision: Precision = FP32) -> float:
        return accuracy(model, self.x_test, self.y_test, device=device)

    def chance_level(self) -> float:
        return _chance(self.y_test)

    def random_batches(self, steps: int, size: int, rng: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``steps`` minibatches of ``size`` training images, without replacement within a pass."""
        n = len(self.y_train)
        size = min(size, n)
        order = torch.empty(0, dtype=torch.long)
        for _ in range(steps):
            if order.numel() < size:
                order = torch.randperm(n, generator=rng)
            index, order = order[:size], order[size:]
            yield self.x_train[index], self.y_train[index]

    @property
    def has_stylized(self) -> bool:
        return self._stylized is not None

    def stylized(self, index: torch.Tensor) -> torch.Tensor:
        if self._stylized is None:
            raise InputError("this method needs stylized images: give stylized_path")
        return to_float(self._stylized[index.cpu()].numpy())


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


# Seeds of the folder source's own random streams (beside the training order's).
_STYLIZED_STREAM, _HELDOUT_BATCH = 7, 100


class FolderSource:
    """An ImageNet training folder, streamed: augmented crops drawn from (seed, epoch, image), this
    rank's shard of a seeded epoch order, DataLoader workers and pinned memory on a GPU. The
    held-out accuracy is measured on the listed val images at the evaluation's crop.

    ``stylized_dir`` (+SIN) must mirror the training folder: the stylized version of every
    training image under the same ``<wnid>/<file>``, as Stylized-ImageNet is made.
    """

    name = "imagenet"
    channels = 3

    def __init__(self, train_dir: str | Path, heldout_dir: str | Path, heldout_files: list[str], classes: list[str],
                 seed: int, *, workers: int = 0, pin_memory: bool = False, rank: int = 0, world_size: int = 1,
                 stylized_dir: str | Path | None = None, input_size: int = 224, crop_size: int | None = None):
        self.train_dir, self.seed, self.workers, self.pin_memory = Path(train_dir), seed, workers, pin_memory
        self.num_classes = len(classes)
        transform = train_transform(crop_size or input_size)
        self.dataset = AugmentedImages(train_dir, seed, transform, classes=classes)
        self.files = relative_files(self.dataset.images)
        self.order = EpochOrder(len(self.dataset), seed, rank, world_size)
        self.heldout = image_folder(heldout_dir, eval_transform(input_size), files=heldout_files, classes=classes)
        self._stylized = None
        if stylized_dir is not None:
            self._stylized = AugmentedImages(stylized_dir, seed_of(seed, _STYLIZED_STREAM), transform, classes=classes,
                                             files=self.files)

    @property
    def world_size(self) -> int:
        return self.order.world_size

    def identity(self) -> str:
        return array_hash(np.frombuffer("\n".join(self.files).encode(), np.uint8),
                          np.frombuffer("\n".join(relative_files(self.heldout)).encode(), np.uint8),
                          np.asarray(self.dataset.images.targets))

    def steps_per_epoch(self, batch_size: int) -> int:
        steps = len(self.order) // batch_size
        if steps < 1:
            raise InputError(f"{self.train_dir} gives each of {self.order.world_size} process(es) {len(self.order)} "
                             f"images, fewer than one batch of {batch_size}: lower train.batch_size")
        return steps

    def epoch_batches(self, state, batch_size: int) -> Iterator[Batch]:
        self.order.set_epoch(state.epoch, state.step * batch_size)
        if self._stylized is not None:
            self._stylized.epoch = state.epoch
        yield from train_loader(self.dataset, self.order, batch_size, workers=self.workers, pin_memory=self.pin_memory)

    @torch.no_grad()
    def heldout_accuracy(self, model: nn.Module, device: torch.device, precision: Precision = FP32) -> float:
        loader = DataLoader(self.heldout, batch_size=_HELDOUT_BATCH, num_workers=self.workers, pin_memory=self.pin_memory)
        was_training = model.training
        model.eval()
        correct = 0
        for x, y in loader:
            with precision.autocast():
                predicted = model(precision.prepare_batch(x.to(device, non_blocking=True))).argmax(1)
            correct += (predicted.cpu() == y).sum().item()
        model.train(was_training)
        return correct / len(self.heldout)

    def chance_level(self) -> float:
        return _chance(torch.as_tensor(self.heldout.targets))

    def random_batches(self, steps: int, size: int, rng: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``steps`` batches of ``size`` augmented training images (this rank's shard) in an order
        seeded from ``rng``, passing over the folder as often as needed. A copy of the dataset, so
        that the training epoch's own augmentation stream is untouched."""
        dataset = copy.copy(self.dataset)
        order = EpochOrder(len(dataset), int(torch.randint(0, 2**62, (1,), generator=rng)), self.order.rank,
                           self.order.world_size)
        size = min(size, len(order))
        done, epoch = 0, 0
        while done < steps:
            order.set_epoch(epoch)
            for x, y, _ in train_loader(dataset, order, size, workers=self.workers, pin_memory=self.pin_memory):
                yield x, y
                done += 1
                if done == steps:
                    return
            epoch += 1

    @property
    def has_stylized(self) -> bool:
        return self._stylized is not None

    def stylized(self, index: torch.Tensor) -> torch.Tensor:
        """The stylized versions of the given training images, decoded by a thread pool."""
        if self._stylized is None:
            raise InputError("this method needs Stylized-ImageNet: give stylized_path, a folder mirroring train/")
        with ThreadPoolExecutor(max(1, self.workers)) as pool:
            images = list(pool.map(lambda i: self._stylized[i][0], index.tolist()))
        return torch.stack(images)


def as_source(data, spec: dict | None = None) -> TrainSource:
    """A source for ``data``: a PreparedData is wrapped (with the spec's stylized .npz), a source is itself."""
    if isinstance(data, PreparedData):
        return ArraySource(data, (spec or {}).get("stylized_path"))
    return data
