"""The training images decoded in batches by the training process (``train.decode: gpu``), on its device.

DataLoader workers only read each JPEG's bytes and its size from the header (PIL opens lazily) and
draw the image's crop box and flip exactly as :class:`~noisetrain.data.imagenet_train.AugmentedImages`
does: the same transform object's scale, ratio and flip chance, the global generator forked and seeded
from (seed, epoch, index) (``image_draws``), the same draws in the same order. The training process then decodes the
batch with ``torchvision.io.decode_jpeg`` on its device (nvJPEG on a GPU, libjpeg-turbo on a CPU) and
crops, resizes (bilinear, antialiased) and flips each image there. So both paths see the same images
in the same order with the same boxes and flips, and resume alike; only the decoder's and the
resize's rounding differ (``tests/test_batch_decode.py`` bounds it).

A file that is not a plain baseline-or-progressive JPEG in RGB or grey (a PNG named .JPEG, a CMYK
JPEG: ImageNet's train set holds a few dozen), or whose bytes do not end with the JPEG end marker
(a truncated file, which libjpeg would pad with grey), is augmented in the worker by the PIL path
itself, so it gives the CPU path's pixels exactly, or its error naming the file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import functional as F

from noisetrain.data.imagenet import image_folder, load_rgb
from noisetrain.data.imagenet_train import image_draws, train_transform
from noisetrain.errors import DataError

_END_OF_IMAGE = b"\xff\xd9"
_DECODABLE_MODES = ("RGB", "L")  # what decode_jpeg turns into RGB as PIL's convert("RGB") does


def crop_and_flip(transform: transforms.Compose, width: int, height: int) -> tuple[int, int, int, int, bool]:
    """(top, left, height, width, flip) drawn from the global generator as ``transform`` (a
    RandomResizedCrop, a RandomHorizontalFlip, ...) draws them for an image of this size."""
    crop = next(t for t in transform.transforms if isinstance(t, transforms.RandomResizedCrop))
    flip = next(t for t in transform.transforms if isinstance(t, transforms.RandomHorizontalFlip))
    shape_only = torch.empty((1, 1, 1)).expand(1, height, width)  # get_params reads the size alone
    top, left, h, w = transforms.RandomResizedCrop.get_params(shape_only, crop.scale, crop.ratio)
    return top, left, h, w, bool(torch.rand(1) < flip.p)


def plain_jpeg(path: str | Path) -> tuple[bytes, tuple[int, int]] | None:
    """The file's bytes and (width, height) when decode_jpeg can read it as PIL would, else None."""
    try:
        with Image.open(path) as image:  # reads the header only
            if image.format != "JPEG" or image.mode not in _DECODABLE_MODES:
                return None
            size = image.size
    except (OSError, SyntaxError, ValueError):
        return None  # the PIL path raises the error naming the file
    data = Path(path).read_bytes()
    return (data, size) if data.rstrip(b"\0").endswith(_END_OF_IMAGE) else None


class EncodedImages(Dataset):
    """The training folder as :class:`AugmentedImages` reads it, for batch decoding: an item is
    (payload, box, label, index, path), the payload the JPEG's bytes and the box (top, left,
    height, width, flip); or, for a file decode_jpeg should not read, the PIL path's augmented
    image as a uint8 tensor (the box then unused). Bytes, not tensors: a DataLoader hands each
    tensor over in a shared-memory segment of its own, which made the workers 3x slower."""

    def __init__(self, train_dir: str | Path, seed: int, size: int, classes: list[str] | None = None,
                 files: list[str] | None = None):
        self.images = image_folder(train_dir, classes=classes, files=files)
        self.size, self.transform = size, train_transform(size)
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        path, label = self.images.samples[index]
        jpeg = plain_jpeg(path)
        with image_draws(self.seed, self.epoch, index):
            if jpeg is None:  # ToTensor divided uint8 by 255: multiplying back is exact
                payload = self.transform(load_rgb(path)).mul(255).round().to(torch.uint8)
                return payload, torch.zeros(5, dtype=torch.int64), label, index, path
            box = crop_and_flip(self.transform, *jpeg[1])
        return jpeg[0], torch.tensor(box), label, index, path


def collate_encoded(items: list) -> tuple[list, torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    payloads, boxes, labels, index, paths = zip(*items, strict=True)
    return list(payloads), torch.stack(boxes), torch.tensor(labels), torch.tensor(index), list(paths)


def decode_batch(payloads: list[bytes | torch.Tensor], boxes: torch.Tensor, paths: list[str], size: int,
                 device: torch.device) -> torch.Tensor:
    """The batch in [0, 1], float32 (N, 3, size, size) on ``device``: the JPEGs decoded together
    there, each cropped to its box, resized and flipped; the PIL path's images copied as they are."""
    out = torch.empty((len(payloads), 3, size, size), dtype=torch.uint8, device=device)
    encoded = [i for i, payload in enumerate(payloads) if isinstance(payload, bytes)]
    data = [torch.frombuffer(bytearray(payloads[i]), dtype=torch.uint8) for i in encoded]
    for i, image in zip(encoded, _decode(data, [paths[i] for i in encoded], device), strict=True):
        top, left, h, w, flip = boxes[i].tolist()
        crop = F.resize(image[:, top : top + h, left : left + w], [size, size], antialias=True)
        out[i] = crop.flip(-1) if flip else crop
    for i, payload in enumerate(payloads):
        if isinstance(payload, torch.Tensor):
            out[i] = payload.to(device)
    return out.float().div_(255)


def _decode(data: list[torch.Tensor], paths: list[str], device: torch.device) -> list[torch.Tensor]:
    if not data:
        return []
    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        for one, path in zip(data, paths, strict=True):  # one at a time, to name the file that fails
            try:
                decode_jpeg(one, mode=ImageReadMode.RGB, device=device)
            except RuntimeError as exc:
                raise DataError(f"cannot decode image {path} with torchvision.io.decode_jpeg on {device} ({exc}): "
                                "the file is corrupt; replace it with an intact copy, or train with train.decode: cpu") from exc
        raise
