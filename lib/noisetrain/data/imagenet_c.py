"""ImageNet-C (Hendrycks & Dietterich 2019): the published folders, or the same layout generated here.

Layout: ``<root>/<corruption>/<severity>/<wnid>/<image>.JPEG``, each image a 224x224 centre crop of a
val image (resize 256, crop 224), corrupted, saved as JPEG at quality 85, as ``make_imagenet_c.py``
of hendrycks/robustness made the published set.

Generation follows that script. 16 of the 19 corruptions come from the ``imagecorruptions-imaug``
package (``imagecorruptions.corrupt``), which matches the script up to randomness for them; it
draws from numpy's global random state (and takes an explicit seed for impulse noise and glass
blur). ``elastic_transform``, ``frost`` and ``snow`` come from :mod:`noisetrain.data.imagenet_c_recipe`,
because the package changed them: its elastic transform has no affine step and a far weaker field
(severities 1-2 about 4x closer to the clean image), its frost draws among six textures enlarged by
1.1 (4-11 grey levels darker) and its snow blurs a float layer one pixel too large (brightness and
border differences). Those three draw from a ``RandomState`` of their own. :func:`corrupt_image`
seeds both sources from ``(seed, corruption, severity, image)`` so one image's result does not
depend on the others.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

# Names live in a numpy-free module, so the config validation can import them.
from noisetrain.data.corruption_names import (
    ALL_CORRUPTIONS,
    IMAGENET_C_CORRUPTIONS,
    IMAGENET_C_EXTRAS,
    NOISE_CORRUPTIONS,
    SEVERITIES,
)
from noisetrain.data.corruption_names import IMAGENET_C_CATEGORIES as CATEGORIES
from noisetrain.data.imagenet import CROP_SIZE, eval_crop, image_folder, relative_files, save_jpeg

# The layout checks are standard-library only (the config validation runs them); re-exported here.
from noisetrain.data.imagenet_layout import IMAGENET_C_LAYOUT, available_extras, check_corruption_names, check_imagenet_c
from noisetrain.errors import InputError
from noisetrain.storage import name_bytes

__all__ = [
    "ALL_CORRUPTIONS",
    "CATEGORIES",
    "IMAGENET_C_LAYOUT",
    "IMAGENET_C_CORRUPTIONS",
    "IMAGENET_C_EXTRAS",
    "NOISE_CORRUPTIONS",
    "SEVERITIES",
    "available_extras",
    "check_imagenet_c",
    "corrupt_image",
    "generate_corruption",
]

# Corruptions of imagecorruptions that ignore np.random and seed their own generator from a `seed`
# argument (skimage's random_noise; a numba-compiled pixel shuffle); without it they are irreproducible.
_SEED_ARGUMENT = frozenset({"impulse_noise", "glass_blur"})
# Corruptions the package re-parameterised: made by noisetrain.data.imagenet_c_recipe as make_imagenet_c.py does
# (kept in step with imagenet_c_recipe.RECIPE_CORRUPTIONS, which a test checks; not imported here, as it imports cv2).
_RECIPE = frozenset({"elastic_transform", "frost", "snow"})


def _seed_state(seed: int, corruption: str, severity: int, key: str) -> np.ndarray:
    entropy = [int(seed) % 2**64, zlib.crc32(corruption.encode()), int(severity), zlib.crc32(name_bytes(key))]
    return np.random.SeedSequence(entropy).generate_state(4)  # uint32 words


def corrupt_image(image: np.ndarray, corruption: str, severity: int, seed: int, key: str = "") -> np.ndarray:
    """Corrupt one uint8 HxWx3 image as ImageNet-C was made; uint8 of the input's shape, deterministic.

    ``key`` names the image (its ``<wnid>/<image>`` path) so every image gets its own random stream,
    whatever else is corrupted in the same process.
    """
    check_corruption_names([corruption], [severity])
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 32:
        raise InputError(f"corrupt_image needs a uint8 HxWx3 image of at least 32x32, got {image.dtype} {image.shape}")
    state = _seed_state(seed, corruption, severity, key)
    if corruption in _RECIPE:
        from noisetrain.data import imagenet_c_recipe  # imports cv2 and scipy: only when corrupting

        # RandomState(state) is the stream np.random.seed(state) would give; the global state is untouched.
        return _like(imagenet_c_recipe.corrupt(image, corruption, severity, np.random.RandomState(state)), image.shape)
    from imagecorruptions import corrupt  # imports numba and cv2: only when corrupting

    np.random.seed(state)  # the package draws from numpy's global random state
    extra = {"seed": int(state[0])} if corruption in _SEED_ARGUMENT else {}
    out = np.asarray(corrupt(image, severity=severity, corruption_name=corruption, **extra))
    return _like(out, image.shape)


def _like(out: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """uint8, clipped, with ``shape`` (some corruptions return floats, grey or a slightly different size)."""
    if out.dtype != np.uint8:
        out = np.clip(out, 0, 255).astype(np.uint8)  # truncation, as np.uint8() in make_imagenet_c.py
    if out.ndim == 2:
        out = np.stack([out] * 3, axis=-1)
    if out.shape != tuple(shape):
        out = np.asarray(Image.fromarray(out[..., :3]).resize((shape[1], shape[0]), Image.BILINEAR))
    return out


def generate_corruption(
    val_dir: str | Path,
    out_dir: str | Path,
    corruption: str,
    severity: int,
    files: Iterable[str] | None = None,
    seed: int = 0,
    quality: int = 85,
) -> int:
    """Write ``out_dir/<wnid>/<stem>.JPEG`` for each val image (or each of ``files``); return the count.

    Only the classes of the written images get a folder; readers pass the val classes to fix the labels.
    """
    check_corruption_names([corruption], [severity])
    out_dir = Path(out_dir)
    dataset = image_folder(val_dir, transform=eval_crop(CROP_SIZE), files=files)
    names = relative_files(dataset)
    progress = tqdm(names, desc=f"{corruption}/{severity}", unit="img", leave=False, disable=not sys.stderr.isatty())
    for index, rel in enumerate(progress):
        crop, _ = dataset[index]  # a corrupt source image is a DataError naming it (load_rgb)
        corrupted = corrupt_image(np.asarray(crop), corruption, severity, seed, key=rel)
        wnid, name = rel.split("/")
        save_jpeg(out_dir / wnid / f"{Path(name).stem}.JPEG", corrupted, quality)
    return len(names)
