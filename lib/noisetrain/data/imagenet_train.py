"""Streaming ImageNet training data: an ImageFolder read batch by batch with the standard
augmentation (RandomResizedCrop 224, horizontal flip), in [0, 1] (noise is added on the device,
before the model normalises).

Everything random is a function of (seed, epoch, image index), never of which DataLoader worker
read the image or how far an earlier run got: the epoch's order is a seeded permutation, each
image's crop and flip come from its own seed, and a resumed run starts the same order at a given
position. So a run resumed after preemption sees exactly the batches an uninterrupted one would,
and with several processes each rank reads its own interleaved shard of the same order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import transforms

from noisetrain.data.imagenet import CROP_SIZE, image_folder
from noisetrain.errors import InputError
from noisetrain.seeding import seed_of


def train_transform(size: int = CROP_SIZE) -> transforms.Compose:
    """Appendix B.1's fine-tuning augmentation, torchvision's standard: a random resized crop and a
    horizontal flip; pixels in [0, 1]."""
    return transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(), transforms.ToTensor()])


@contextmanager
def image_draws(seed: int, epoch: int, index: int) -> Iterator[None]:
    """The global CPU generator, which torchvision's random transforms draw from, seeded for one
    image and restored after (forked), so that a worker's own stream is untouched and the draw
    depends on the image alone. The CPU generator only: torch.manual_seed also reseeds every
    accelerator's generators, which costs 0.4 ms an image and, without workers, would reset the
    training process's own CUDA streams."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed_of(seed, epoch, index))
        yield


class EpochOrder(Sampler[int]):
    """A seeded permutation of ``size`` images per epoch, this rank's shard of it (every
    ``world_size``-th image from ``rank``), started at ``start`` images into the shard.

    Each rank gets ``size // world_size`` images (the last few of an epoch's permutation are left
    out, so that every rank takes the same number of steps).
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1):
        if size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise InputError(f"an epoch order needs size >= 1 and 0 <= rank < world_size, got {size}, {rank}, {world_size}")
        if size < world_size:
            raise InputError(f"{size} images cannot be shared among {world_size} processes")
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """The epoch to draw, and how many of this rank's images of it were already used (resume)."""
        if not 0 <= start <= len(self):
            raise InputError(f"resume position {start} is outside this rank's {len(self)} images of the epoch")
        self.epoch, self.start = epoch, start

    def shard(self) -> list[int]:
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(seed_of(self.seed, self.epoch)))
        return order[: len(self) * self.world_size][self.rank :: self.world_size].tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.shard()[self.start :])

    def __len__(self) -> int:
        return self.size // self.world_size


class AugmentedImages(Dataset):
    """Images of a training ImageFolder (``files``: only these ``<wnid>/<file>``) with a random
    augmentation drawn from (seed, epoch, index); an item is (image, label, index)."""

    def __init__(self, train_dir: str | Path, seed: int, transform=None, classes: list[str] | None = None,
                 files: list[str] | None = None):
        self.images = image_folder(train_dir, classes=classes, files=files)
        self.transform = transform or train_transform()
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        image, label = self.images[index]  # decoded; a broken file raises DataError naming it
        with image_draws(self.seed, self.epoch, index):
            return self.transform(image), label, index


def train_loader(dataset: Dataset, order: EpochOrder, batch_size: int, *, workers: int = 0,
                 pin_memory: bool = False, collate_fn=None) -> DataLoader:
    """The loader of the epoch ``order`` is set to (``dataset``, an AugmentedImages or an
    EncodedImages, is set to the same epoch). Only whole batches: a step always sees ``batch_size``
    images, so a resume position is step * batch."""
    dataset.epoch = order.epoch
    # The loader's own generator: without one, each new iterator draws its workers' base seed from
    # the global stream, which the training's noise and initialisation use.
    generator = torch.Generator().manual_seed(seed_of(order.seed, order.epoch, order.rank))
    return DataLoader(dataset, batch_size=batch_size, sampler=order, num_workers=workers, pin_memory=pin_memory,
                      drop_last=True, persistent_workers=False, generator=generator, collate_fn=collate_fn)
