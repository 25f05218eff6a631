"""Layout checks of ImageNet (ImageFolder) and ImageNet-C (published folders), standard library only.

Kept apart from :mod:`noisetrain.data.imagenet` (torchvision, PIL) and :mod:`noisetrain.data.imagenet_c`
(numpy, imagecorruptions) because the config validation runs them while Snakemake builds its job graph:
a wrong root or a missing ImageNet-C folder stops the run before any job, with one line naming the path
and the expected layout. Both modules re-export these functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from noisetrain.data.corruption_names import IMAGENET_C_CATEGORIES as CATEGORIES
from noisetrain.data.corruption_names import IMAGENET_C_EXTRAS, SEVERITIES
from noisetrain.errors import ConfigError, DataError

LAYOUT = "<root>/{train,val}/<wnid>/<image>.JPEG"
IMAGENET_C_LAYOUT = "<root>/<corruption>/<severity>/<wnid>/<image>.JPEG"
# The extensions torchvision's ImageFolder reads (torchvision.datasets.folder.IMG_EXTENSIONS).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def few(names: Iterable[str], k: int = 3) -> str:
    """'a, b, c and 4 more': a few names for a one-line error."""
    names = list(names)
    if not names:
        return "none"
    return ", ".join(names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "")


def is_image(name: str) -> bool:
    # Hidden files are skipped: atomic_write's temporary files start with a dot.
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def class_folders(split_dir: str | Path) -> list[str]:
    """Sorted names of the class folders (non-hidden sub-folders) of ``split_dir``."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(f"{split_dir} is not a folder: expected one folder per class holding images, {LAYOUT}")
    return sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir() and not entry.name.startswith("."))


def image_files(class_dir: str | Path) -> list[str]:
    """Sorted image file names in one class folder; links that lead to no file are named, never
    left out in silence (the set would shrink unnoticed)."""
    names, broken = [], []
    for entry in os.scandir(class_dir):
        if is_image(entry.name):
            (names if entry.is_file() else broken if entry.is_symlink() else []).append(entry.name)
    if broken:
        raise DataError(f"{class_dir} holds {len(broken)} link(s) that lead to no file ({few(sorted(broken))}): "
                        "restore their targets or remove the links")
    return sorted(names)


def _has_image(class_dir: Path) -> bool:
    # Stops at the first image: a train class folder holds about 1,300 files.
    return any(entry.is_file() and is_image(entry.name) for entry in os.scandir(class_dir))


def check_split(split_dir: str | Path) -> list[str]:
    """The sorted class folders of one split; missing, flat or empty splits are DataErrors."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(f"{split_dir} is missing: expected ImageNet in ImageFolder layout {LAYOUT}")
    classes = class_folders(split_dir)
    if not classes:
        flat = any(is_image(name) for name in os.listdir(split_dir))
        what = "holds its images directly, not in one folder per WordNet id" if flat else "holds no class folders"
        raise DataError(f"{split_dir} {what}: expected ImageFolder layout {LAYOUT}")
    empty = [name for name in classes if not _has_image(split_dir / name)]
    if empty:
        raise DataError(f"{split_dir} has {len(empty)} class folder(s) without images ({few(empty)}): expected {LAYOUT}")
    return classes


def check_imagenet_root(root: str | Path, require_train: bool = True) -> list[str]:
    """Check the ImageFolder layout of ``root`` and return the sorted val class names."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"ImageNet root {root} is not a folder: set dataset.root to a folder laid out as {LAYOUT}")
    val = check_split(root / "val")
    if require_train:
        train = check_split(root / "train")
        if train != val:
            only_train, only_val = sorted(set(train) - set(val)), sorted(set(val) - set(train))
            raise DataError(
                f"{root}/train and {root}/val have different class folders (only in train: {few(only_train)}; "
                f"only in val: {few(only_val)}): both must hold the same <wnid> folders, {LAYOUT}"
            )
    return val


def check_corruption_names(corruptions: Iterable[str], severities: Iterable[int]) -> None:
    unknown = [name for name in corruptions if name not in CATEGORIES]
    if unknown:
        raise ConfigError(f"unknown ImageNet-C corruption(s) {unknown}; known: {', '.join(CATEGORIES)}")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise ConfigError(f"ImageNet-C severities {bad} are not among {list(SEVERITIES)}")


def _describe_missing(missing: dict[str, list[int]]) -> str:
    """'fog/{1,2,3,4,5}, snow/3': every missing folder, grouped by corruption."""
    return ", ".join(
        f"{name}/{severities[0]}" if len(severities) == 1 else f"{name}/{{{','.join(map(str, severities))}}}"
        for name, severities in missing.items()
    )


def check_imagenet_c(
    root: str | Path, corruptions: Iterable[str], severities: Iterable[int], classes: Iterable[str]
) -> dict[tuple[str, int], Path]:
    """Check the published layout; return the folder of each (corruption, severity).

    All missing folders are reported in one error; a folder whose class folders differ from
    ``classes`` (the val classes) is an error naming it and a few of the differing classes.
    """
    root, corruptions, severities = Path(root), list(corruptions), list(severities)
    check_corruption_names(corruptions, severities)
    if not root.is_dir():
        raise DataError(
            f"ImageNet-C root {root} is not a folder: set imagenet_c.root to the folder laid out as {IMAGENET_C_LAYOUT}"
        )
    folders = {(name, s): root / name / str(s) for name in corruptions for s in severities}
    missing: dict[str, list[int]] = {}
    for (name, s), folder in folders.items():
        if not folder.is_dir():
            missing.setdefault(name, []).append(s)
    if missing:
        count = sum(map(len, missing.values()))
        raise DataError(
            f"ImageNet-C at {root} lacks {count} folder(s): {_describe_missing(missing)}: expected {IMAGENET_C_LAYOUT}; "
            "extract the published archives there (or drop these corruptions/severities from the config)"
        )
    expected = set(classes)
    differing = [(folder, set(class_folders(folder))) for folder in folders.values()]
    differing = [(folder, present) for folder, present in differing if present != expected]
    if differing:
        folder, present = differing[0]
        others = f" (and {len(differing) - 1} more folder(s))" if len(differing) > 1 else ""
        raise DataError(
            f"{folder}{others} has class folders that differ from the {len(expected)} val classes "
            f"(missing: {few(sorted(expected - present))}; unexpected: {few(sorted(present - expected))}): "
            "re-extract it from the published archives"
        )
    return folders


def available_extras(root: str | Path) -> list[str]:
    """The extra corruptions (speckle_noise, gaussian_blur, spatter, saturate) that have a folder in ``root``."""
    root = Path(root)
    return [name for name in IMAGENET_C_EXTRAS if (root / name).is_dir()]
