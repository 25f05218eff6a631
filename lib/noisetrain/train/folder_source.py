"""The streamed ImageNet training folder as a training source (see ``noisetrain.train.sources``)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from noisetrain.data.batch_decode import EncodedImages, collate_encoded, decode_batch
from noisetrain.data.datasets import array_hash
from noisetrain.data.imagenet import eval_transform, image_folder, relative_files
from noisetrain.data.imagenet_train import AugmentedImages, EpochOrder, train_loader, train_transform
from noisetrain.errors import InputError
from noisetrain.seeding import seed_of
from noisetrain.storage import name_bytes
from noisetrain.train.precision import FP32, Precision
from noisetrain.train.preemption import worker_batches
from noisetrain.train.sources import Batch, chance_of

_STYLIZED_STREAM = 7  # the stylized images' own augmentation stream (beside the training order's)
_HELDOUT_BATCH = 100
DECODERS = ("cpu", "gpu")


class FolderSource:
    """An ImageNet training folder, streamed: augmented crops drawn from (seed, epoch, image), this
    rank's shard of a seeded epoch order, DataLoader workers and pinned memory on a GPU. The
    held-out accuracy is measured on the listed val images at the evaluation's crop.

    ``stylized_dir`` (+SIN) must mirror the training folder: the stylized version of every
    training image under the same ``<wnid>/<file>``, as Stylized-ImageNet is made.

    ``decode``: 'cpu', the workers decode with PIL and augment; 'gpu', the workers read the JPEGs'
    bytes and draw the same boxes and flips, and this process decodes and augments each batch on
    ``decode_device`` (:mod:`noisetrain.data.batch_decode`). The held-out and stylized images are
    decoded with PIL either way.
    """

    name = "imagenet"
    channels = 3

    def __init__(self, train_dir: str | Path, heldout_dir: str | Path, heldout_files: list[str], classes: list[str],
                 seed: int, *, workers: int = 0, pin_memory: bool = False, rank: int = 0, world_size: int = 1,
                 stylized_dir: str | Path | None = None, input_size: int = 224, crop_size: int | None = None,
                 decode: str = "cpu", decode_device: torch.device | str = "cpu"):
        if decode not in DECODERS:
            raise InputError(f"train.decode is {decode!r}: use one of {', '.join(DECODERS)}")
        self.train_dir, self.seed, self.workers, self.pin_memory = Path(train_dir), seed, workers, pin_memory
        self.decode, self.decode_device = decode, torch.device(decode_device)
        self.num_classes = len(classes)
        transform = train_transform(crop_size or input_size)
        if decode == "gpu":
            self.dataset = EncodedImages(train_dir, seed, crop_size or input_size, classes=classes)
        else:
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
        # The decoders' pixels differ in rounding: a checkpoint resumes only with the decoder it began with.
        decoder = [] if self.decode == "cpu" else [np.frombuffer(self.decode.encode(), np.uint8)]
        return array_hash(np.frombuffer(name_bytes("\n".join(self.files)), np.uint8),
                          np.frombuffer(name_bytes("\n".join(relative_files(self.heldout))), np.uint8),
                          np.asarray(self.dataset.images.targets), *decoder)

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
        yield from self._batches(self.dataset, self.order, batch_size)

    def _batches(self, dataset, order: EpochOrder, batch_size: int) -> Iterator[Batch]:
        if self.decode == "cpu":
            yield from worker_batches(train_loader(dataset, order, batch_size, workers=self.workers,
                                                   pin_memory=self.pin_memory))
            return
        # Unpinned: decode_jpeg copies the bytes itself, and pinning many small tensors costs more than it saves.
        loader = train_loader(dataset, order, batch_size, workers=self.workers, collate_fn=collate_encoded)
        for payloads, boxes, labels, index, paths in worker_batches(loader):
            yield decode_batch(payloads, boxes, paths, dataset.size, self.decode_device), labels, index

    @torch.no_grad()
    def heldout_accuracy(self, model: nn.Module, device: torch.device, precision: Precision = FP32) -> float:
        was_training = model.training
        model.eval()
        correct = 0
        for x, y in self._heldout_batches():
            with precision.autocast():
                predicted = model(precision.prepare_batch(x.to(device, non_blocking=True))).argmax(1)
            correct += (predicted.cpu() == y).sum().item()
        model.train(was_training)
        return correct / len(self.heldout)

    def check_heldout(self) -> None:
        """Decode every held-out image once before training: a corrupt one is named now, not after an
        epoch whose work its error would lose."""
        for _ in self._heldout_batches():
            pass

    def _heldout_batches(self):
        return worker_batches(DataLoader(self.heldout, batch_size=_HELDOUT_BATCH, num_workers=self.workers,
                                         pin_memory=self.pin_memory))

    def chance_level(self) -> float:
        return chance_of(torch.as_tensor(self.heldout.targets))

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
            for x, y, _ in self._batches(dataset, order, size):
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
