"""A tiny ImageNet-like ImageFolder made of the colour photographs shipped inside scikit-image.

For the ImageNet smoke study and the tests: real photographs (JPEG-compressed, natural statistics),
so the evaluation path (decode, resize, centre crop, ImageNet-C generation) runs as on ImageNet,
with no download. Each class is one photograph; its images are random crops, flips and scales of it,
drawn from separate random streams for train and val, resized so the short side is at least
``size`` (256: the evaluation transform then resizes and crops as on ImageNet).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageFilter, ImageOps

from noisetrain.data.imagenet import save_jpeg
from noisetrain.errors import ConfigError


def _photo(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        if name == "motorcycle":
            return data.stereo_motorcycle()[0]
        return getattr(data, name)()

    return load


# Colour photographs whose files ship in the scikit-image wheel (no pooch download), most distinct first.
PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    name: _photo(name)
    for name in ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "hubble_deep_field", "retina", "immunohistochemistry")
}


def wnid(index: int) -> str:
    """Fake WordNet-style class id of class ``index``: n00000000, n00000001, ..."""
    return f"n{index:08d}"


def _view(photo: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop (35-90% of the short side, aspect 3:4 to 4:3), maybe flipped, short side >= size."""
    height, width = photo.shape[:2]
    side = rng.uniform(0.35, 0.9) * min(height, width)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    crop_h, crop_w = min(height, round(side / np.sqrt(aspect))), min(width, round(side * np.sqrt(aspect)))
    top, left = rng.integers(0, height - crop_h + 1), rng.integers(0, width - crop_w + 1)
    crop = photo[top : top + crop_h, left : left + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    short = size * rng.uniform(1.0, 1.25)
    scale = short / min(crop_h, crop_w)
    shape = (max(size, round(crop_w * scale)), max(size, round(crop_h * scale)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize(shape, Image.BICUBIC))


def make_sample_imagenet(
    out_root: str | Path, classes: int = 4, train_per_class: int = 6, val_per_class: int = 4, size: int = 256, seed: int = 0
) -> list[str]:
    """Write ``out_root/{train,val}/<wnid>/<image>.JPEG``; return the class names. Deterministic in ``seed``."""
    if not 1 <= classes <= len(PHOTOS):
        raise ConfigError(
            f"{classes} sample classes were asked, but only {len(PHOTOS)} offline photographs exist "
            f"({', '.join(PHOTOS)}): ask for 1 to {len(PHOTOS)}"
        )
    if min(train_per_class, val_per_class) < 1 or size < 32:
        raise ConfigError(
            f"sample ImageNet needs at least one train and one val image per class and size >= 32, "
            f"got train_per_class={train_per_class}, val_per_class={val_per_class}, size={size}"
        )
    out_root, names = Path(out_root), []
    for index, load in enumerate(list(PHOTOS.values())[:classes]):
        photo, name = load()[..., :3], wnid(index)
        for split_index, (split, count) in enumerate((("train", train_per_class), ("val", val_per_class))):
            rng = np.random.default_rng([int(seed) % 2**64, index, split_index])  # own stream per class and split
            for i in range(count):
                # File names as in ImageNet: n01440764_10026.JPEG in train, ILSVRC2012_val_00000001.JPEG in val.
                file = f"{name}_{i}.JPEG" if split == "train" else f"ILSVRC2012_val_{index * count + i + 1:08d}.JPEG"
                save_jpeg(out_root / split / name / file, _view(photo, rng, size), quality=90)
        names.append(name)
    write_stylized_stand_in(out_root / "train", out_root / "stylized")
    return names


def pad_train_images(train_dir: str | Path, classes: list[str], per_class: int) -> None:
    """Fill every class of a sample training folder up to ``per_class`` images with hard links to its
    photographs (copies where the file system has none): a folder of any size from a few photos."""
    for name in classes:
        folder = Path(train_dir) / name
        originals = sorted(folder.iterdir())
        for i in range(len(originals), per_class):
            original, target = originals[i % len(originals)], folder / f"{name}_{i}.JPEG"
            try:
                os.link(original, target)
            except OSError:
                shutil.copyfile(original, target)


def write_stylized_stand_in(train_dir: Path, out_dir: Path) -> None:
    """The smoke set's stand-in for Stylized-ImageNet: every training image under the same
    ``<wnid>/<file>``, restyled by fixed colour and texture changes (posterised, colours rotated,
    edges embossed in). Not a style transfer: it only lets the +SIN methods run end to end."""
    for path in sorted(train_dir.glob("*/*.JPEG")):
        image = Image.open(path).convert("RGB")
        restyled = ImageOps.posterize(image, 3)
        r, g, b = restyled.split()
        restyled = Image.merge("RGB", (b, r, g))
        restyled = ImageChops.multiply(restyled, image.filter(ImageFilter.EMBOSS))
        save_jpeg(out_dir / path.parent.name / path.name, np.asarray(restyled), quality=90)
