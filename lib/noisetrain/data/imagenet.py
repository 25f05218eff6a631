"""ImageNet in torchvision's ImageFolder layout, read for evaluation (and fine-tuning) as in the paper.

Layout: ``<root>/{train,val}/<wnid>/<image>.JPEG``, one folder per WordNet id. Images are decoded
to RGB and given to the models in [0, 1]; the model wrapper normalises (appendix B, Preprocessing).
Evaluation preprocessing is torchvision's reference one: resize the short side to 256/224 of the
input size, centre-crop the input size. ImageNet-C files are already 224x224 centre crops.

Corrupt or truncated files are errors naming the file, never silently padded images: PIL's
``ImageFile.LOAD_TRUNCATED_IMAGES`` must stay False.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageFile
from torchvision import transforms
from torchvision.datasets import ImageFolder

# The layout checks are standard-library only (the config validation runs them); re-exported here.
from noisetrain.data.imagenet_layout import (
    LAYOUT,
    check_imagenet_root,
    check_split,
    class_folders,
    few,
    image_files,
)
from noisetrain.data.stratified import stratified_indices
from noisetrain.errors import ConfigError, DataError
from noisetrain.storage import atomic_write, read_json_file, write_json

__all__ = [
    "CROP_SIZE",
    "LAYOUT",
    "ImageFolderSubset",
    "check_imagenet_root",
    "corrupted_transform",
    "eval_crop",
    "eval_transform",
    "image_folder",
    "load_rgb",
    "read_val_list",
    "relative_files",
    "resize_size",
    "save_jpeg",
    "stratified_split_files",
    "write_val_list",
]

# ImageNet-C's images are 224x224 crops of the val images resized to 256 (Hendrycks & Dietterich 2019).
CROP_SIZE = 224
RESIZE_RATIO = 256 / 224


def resize_size(input_size: int) -> int:
    """Short side before the centre crop: 256 for 224, 342 for InceptionV3's 299."""
    if not isinstance(input_size, int) or input_size < 1:
        raise ConfigError(f"input size {input_size!r} is not a positive integer (224 for most models, 299 for inception_v3)")
    return round(input_size * RESIZE_RATIO)


def eval_crop(input_size: int) -> transforms.Compose:
    """PIL -> PIL: resize the short side to ``resize_size`` and centre-crop ``input_size``."""
    return transforms.Compose([transforms.Resize(resize_size(input_size)), transforms.CenterCrop(input_size)])


def eval_transform(input_size: int) -> transforms.Compose:
    """The paper's evaluation preprocessing, to a float tensor in [0, 1] (no normalisation)."""
    return transforms.Compose([eval_crop(input_size), transforms.ToTensor()])


def corrupted_transform(input_size: int) -> transforms.Compose:
    """ImageNet-C files are 224x224 crops already; other input sizes resize them."""
    resize_size(input_size)  # validates input_size
    steps = [] if input_size == CROP_SIZE else [transforms.Resize((input_size, input_size))]
    return transforms.Compose([*steps, transforms.ToTensor()])


def load_rgb(path: str | Path, size: tuple[int, int] | None = None) -> Image.Image:
    """Decode one image fully to RGB; a corrupt or truncated file, pixels deeper than 16 bits, and
    (with ``size``: ImageNet-C's stored crops) an image of another width x height are DataErrors naming it."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise DataError(
            f"PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True (set by other code) while reading {path}: "
            "truncated images would be padded silently; set it back to False"
        )
    if not Path(path).is_file():
        raise DataError(f"image {path} does not exist: the dataset folder changed while it was read; rerun")
    try:
        with Image.open(path) as image:
            image.load()  # decodes now, so a truncated file fails here and not later as grey padding
            rgb = _eight_bit(image, path).convert("RGB")
    except Image.DecompressionBombError as exc:
        raise DataError(
            f"image {path} has more pixels than PIL reads ({exc}): shrink it, or raise PIL.Image.MAX_IMAGE_PIXELS "
            "if you trust the file"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(
            f"cannot read image {path} ({exc.__class__.__name__}: {exc}): the file is corrupt or truncated; "
            "replace it with an intact copy"
        ) from exc
    if size is not None and rgb.size != size:
        raise DataError(f"image {path} is {rgb.size[0]}x{rgb.size[1]}, not the {size[0]}x{size[1]} of the set's other "
                        "images: regenerate or re-extract the set")
    return rgb


def _eight_bit(image: Image.Image, path) -> Image.Image:
    """8-bit pixels: 16-bit grey (PNG) scaled by 255 / 65535, as PIL's own conversion would clip it to white."""
    if image.mode.startswith("I;16"):
        pixels = np.asarray(image, dtype=np.float64) / 257.0
        return Image.fromarray(np.rint(pixels).astype(np.uint8), mode="L")
    if image.mode in ("I", "F"):
        raise DataError(f"image {path} holds {image.mode} pixels (32-bit integer or float): convert it to an 8-bit image")
    return image


def save_jpeg(path: str | Path, image: np.ndarray, quality: int = 85) -> Path:
    """Write a uint8 HWC array as JPEG, atomically (ImageNet-C's settings: quality 85, optimize)."""
    picture = Image.fromarray(image)
    return atomic_write(path, lambda tmp: picture.save(tmp, format="JPEG", quality=quality, optimize=True))


def _relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if len(rel.parts) != 2 or ".." in rel.parts or rel.is_absolute():
        raise ConfigError(f"image list entry {name!r} is not a relative path <wnid>/<image>.JPEG")
    return rel


class ImageFolderSubset(ImageFolder):
    """An ImageFolder with a forced class list, an optional subset of files and a loader that fails loudly.

    ``classes`` fixes the label indices (an ImageNet-C folder uses the val classes); ``files`` keeps only
    these ``<wnid>/<image>`` paths; ``size`` (width, height) is every image's, where the set stores crops.
    Samples are sorted by class index, then file name.
    """

    def __init__(
        self, root: str | Path, transform=None, files: Iterable[str] | None = None, classes: Iterable[str] | None = None,
        size: tuple[int, int] | None = None, target_transform=None,
    ):
        self._files = None if files is None else sorted({str(_relative(name)) for name in files})
        self._forced = None if classes is None else list(classes)
        super().__init__(str(root), transform=transform, target_transform=target_transform, loader=partial(load_rgb, size=size))

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        present = class_folders(directory)
        classes = present if self._forced is None else self._forced
        extra = sorted(set(present) - set(classes))
        if extra:
            raise DataError(
                f"{directory} holds class folders outside the {len(classes)} expected classes ({few(extra)}): "
                "it must use the val classes' <wnid> folders"
            )
        missing = [name for name in classes if name not in present]
        if self._files is None and missing:
            raise DataError(
                f"{directory} lacks {len(missing)} of the {len(classes)} class folders ({few(missing)}): "
                "the set is incomplete; re-extract or regenerate it"
            )
        if not classes:
            raise DataError(f"{directory} holds no class folders: expected <folder>/<wnid>/<image>.JPEG")
        return list(classes), {name: index for index, name in enumerate(classes)}

    def make_dataset(self, directory, class_to_idx, extensions=None, is_valid_file=None, allow_empty=False):
        directory = Path(directory)
        if self._files is None:
            per_class = {name: image_files(directory / name) for name in class_to_idx}
            empty = [name for name, files in per_class.items() if not files]
            if empty:
                raise DataError(
                    f"{directory} has {len(empty)} class folder(s) without images ({few(empty)}): "
                    "the set is incomplete; re-extract or regenerate it"
                )
            relative = [f"{name}/{file}" for name, files in per_class.items() for file in files]
        else:
            unknown = [rel for rel in self._files if rel.split("/")[0] not in class_to_idx]
            missing = [rel for rel in self._files if rel.split("/")[0] in class_to_idx and not (directory / rel).is_file()]
            if unknown or missing:
                raise DataError(
                    f"{directory} lacks {len(unknown) + len(missing)} of the {len(self._files)} listed images "
                    f"({few(unknown + missing)}): regenerate the folder or the image list"
                )
            relative = self._files
        relative = sorted(relative, key=lambda rel: (class_to_idx[rel.split("/")[0]], rel))
        return [(str(directory / rel), class_to_idx[rel.split("/")[0]]) for rel in relative]


def image_folder(
    split_dir: str | Path, transform=None, files: Iterable[str] | None = None, classes: Iterable[str] | None = None,
    size: tuple[int, int] | None = None, target_transform=None,
) -> ImageFolderSubset:
    """Factory for :class:`ImageFolderSubset`."""
    return ImageFolderSubset(split_dir, transform=transform, files=files, classes=classes, size=size,
                             target_transform=target_transform)


def relative_files(dataset: ImageFolder) -> list[str]:
    """Each sample's ``<wnid>/<image>`` path, in sample order."""
    root = Path(dataset.root)
    return [Path(path).relative_to(root).as_posix() for path, _ in dataset.samples]


def split_files(split_dir: str | Path) -> list[str]:
    """Every ``<wnid>/<image>`` of an ImageFolder split, by class, then file name."""
    split_dir = Path(split_dir)
    return [f"{name}/{file}" for name in class_folders(split_dir) for file in image_files(split_dir / name)]


def stratified_split_files(split_dir: str | Path, n: int, seed: int) -> list[str]:
    """``n`` images of ``split_dir`` stratified by class (equal per class, remainder by the seed), sorted."""
    files = split_files(split_dir)
    if not isinstance(n, int | np.integer) or not 1 <= n <= len(files):
        raise ConfigError(
            f"a subset of {n} images was asked from {split_dir}, which holds {len(files)}: ask for 1 to {len(files)} "
            "images (null for all)"
        )
    return stratified_files(files, n, seed)


def write_val_list(val_dir: str | Path, n: int | None, seed: int, out: str | Path) -> dict:
    """Write the val images the evaluation reads (all, or ``n`` stratified by class) as JSON; return it.

    ``classes`` (all val classes, sorted) fixes the label indices of every image set read with the list.
    """
    val_dir = Path(val_dir)
    classes = check_split(val_dir)
    files = split_files(val_dir) if n is None else stratified_split_files(val_dir, n, seed)
    listing = {"val": str(val_dir), "images": n, "seed": seed, "classes": classes, "files": files}
    write_json(listing, out)
    return listing


def read_val_list(path: str | Path) -> dict:
    """The listing written by :func:`write_val_list`; a missing or malformed file is a DataError."""
    return read_json_file(
        path, "the val image list",
        lambda listing: isinstance(listing, dict) and all(isinstance(listing.get(k), list) for k in ("classes", "files")),
        "a mapping with classes and files",
    )


# ---------------------------------------------------------------------------------------------
# The robustness set: the images epsilon* and the attacks are measured on (Tables 2, 3, 5)


def stratified_files(files: list[str], n: int, seed: int) -> list[str]:
    """``n`` of the listed ``<wnid>/<image>`` files, stratified by class (their ``<wnid>``), sorted."""
    if not 1 <= n <= len(files):
        raise ConfigError(f"a subset of {n} images was asked from a list of {len(files)}: ask for 1 to {len(files)} images")
    classes = [str(_relative(name).parts[0]) for name in files]
    return sorted(files[i] for i in stratified_indices(classes, n, seed))


def read_images(
    split_dir: str | Path, files: list[str], classes: list[str], input_size: int = CROP_SIZE, log=lambda _: None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The listed images of ``split_dir`` after the evaluation preprocessing (resize, centre crop):
    uint8 (N, 3, S, S) exactly as the models see them (``ToTensor`` only divides by 255), int64
    labels (index in ``classes``) and the files, in the dataset's order (class, then file name)."""
    dataset = image_folder(split_dir, eval_crop(input_size), files=files, classes=classes)
    images = np.empty((len(dataset), 3, input_size, input_size), dtype=np.uint8)
    for i in range(len(dataset)):
        picture, _ = dataset[i]
        images[i] = np.asarray(picture, dtype=np.uint8).transpose(2, 0, 1)
        if (i + 1) % 500 == 0:
            log(f"{split_dir}: {i + 1} of {len(dataset)} images read")
    return images, np.asarray(dataset.targets, dtype=np.int64), relative_files(dataset)


def prepare_robustness_set(
    val_dir: str | Path,
    train_dir: str | Path,
    val_list: str | Path,
    n: int,
    seed: int,
    input_size: int = CROP_SIZE,
    name: str = "imagenet",
    log=lambda _: None,
):
    """The images of epsilon* and the attacks, as a :class:`~noisetrain.data.datasets.PreparedData`:
    ``n`` val images of the evaluation's list (stratified by class, ``seed``) as the test part, and
    ``n`` images of ``train_dir`` (stratified the same way) as the training part, on which the fresh
    adversarial-noise generators learn. Both preprocessed as for evaluation at ``input_size``.

    Returns ``(data, classes)``: the labels index ``classes``, the val list's classes. ``test_index``
    holds each test image's position in the val list."""
    from noisetrain.data.datasets import PreparedData, Split

    listing = read_val_list(val_list)
    classes, listed = listing["classes"], listing["files"]
    val_files = stratified_files(listed, n, seed)
    train_files = stratified_split_files(Path(train_dir), n, seed)
    test_x, test_y, val_files = read_images(val_dir, val_files, classes, input_size, log)
    train_x, train_y, _ = read_images(train_dir, train_files, classes, input_size, log)
    position = {file: i for i, file in enumerate(listed)}
    test_index = np.asarray([position[file] for file in val_files], dtype=np.int64)
    return PreparedData(train=Split(train_x, train_y), test=Split(test_x, test_y), test_index=test_index, name=name), classes


def save_robustness_set(data, classes: list[str], path: str | Path) -> None:
    """:func:`noisetrain.data.datasets.save`'s file (``datasets.load`` reads it) plus the class names,
    which fix the label indices and a random-init model's output count. Written atomically."""
    arrays = dict(
        x_train=data.train.images,
        y_train=data.train.labels,
        x_test=data.test.images,
        y_test=data.test.labels,
        test_index=data.test_index,
        name=np.array(data.name),
        classes=np.array(classes, dtype=str),
    )
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")


def robustness_classes(path: str | Path) -> list[str]:
    """The class names saved by :func:`save_robustness_set`."""
    from noisetrain.data.datasets import load_npz

    return [str(name) for name in load_npz(path, ("classes",))["classes"]]
