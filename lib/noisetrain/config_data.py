"""Checks of the data and files a config names, before any job: dataset roots and their layout
(ImageNet's and ImageNet-C's on disk), corruption names, checkpoint files, Stylized-ImageNet, the
released models. Each is one line naming the path or key and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from noisetrain.config_names import imagenet_c_corruptions, looks_like_file, sample_stylized_dir
from noisetrain.data.corruption_names import IMAGENET_C_CORRUPTIONS, IMAGENET_C_EXTRAS, MNIST_C_CORRUPTIONS
from noisetrain.data.imagenet_layout import check_imagenet_c, check_imagenet_root
from noisetrain.errors import ConfigError
from noisetrain.models.architecture_names import TORCHVISION_ARCHITECTURES

IMAGENET_C_NAMES = (*IMAGENET_C_CORRUPTIONS, *IMAGENET_C_EXTRAS)
# Off while a config is read only to plan the study (its cost), on a machine without its data.
_FILES_CHECKED = ContextVar("files_checked", default=True)


@contextmanager
def files_unchecked() -> Iterator[None]:
    """Validate configs without looking for the data and checkpoint files they name (every other check runs)."""
    token = _FILES_CHECKED.set(False)
    try:
        yield
    finally:
        _FILES_CHECKED.reset(token)


def check_corruption_names(config: dict) -> None:
    """Corruption names become file names and select MNIST-C functions: only the known ones, once."""
    names = config["corruptions"]["names"]
    for index, name in enumerate(names):
        where = f"config error at 'corruptions.names.{index}'"
        if name not in MNIST_C_CORRUPTIONS:
            raise ConfigError(f"{where}: unknown MNIST-C corruption {name!r}; known: {', '.join(MNIST_C_CORRUPTIONS)}")
        if name in names[:index]:
            raise ConfigError(f"{where}: '{name}' is listed twice; list every corruption once")


def check_dataset_root(config: dict) -> None:
    """torchvision reads MNIST from root/MNIST/raw (and downloads it there): without a root the
    data job would fail, or download into the working directory."""
    dataset = config["dataset"]
    if dataset["name"] == "mnist" and dataset["root"] is None:
        raise ConfigError(
            "config error at 'dataset.root': MNIST needs root, the folder holding MNIST/raw/ "
            "(with download: true, the folder to download into), e.g. root: data"
        )


def check_image_data(config: dict) -> None:
    """The ImageNet root (or the sample set) and ImageNet-C (published or generated)."""
    dataset = config["dataset"]
    if dataset["sample"] and dataset["root"]:
        raise ConfigError(
            "config error at 'dataset': give root (your ImageNet) or sample (the smoke set made from "
            "scikit-image's photographs), not both"
        )
    if not dataset["sample"] and dataset["root"] is None:
        raise ConfigError(
            "config error at 'dataset.root': imagenet needs root, the folder holding val/ (and "
            "train/) in ImageFolder layout <root>/val/<wnid>/<image>.JPEG"
        )
    # The sample set does not exist before its data rule runs: its layout is the rule's business.
    # train/ is needed too: the fresh adversarial-noise generators of epsilon* learn on its images.
    on_disk = not dataset["sample"] and _FILES_CHECKED.get()
    classes = check_imagenet_root(dataset["root"], require_train=True) if on_disk else None
    source = config["imagenet_c"]
    if bool(source["root"]) == source["generate"]:
        raise ConfigError(
            "config error at 'imagenet_c': give either root (the published files) or generate: true "
            "(made from the val images), exactly one of them"
        )
    for index, name in enumerate(source["corruptions"] or ()):
        if name not in IMAGENET_C_NAMES:
            raise ConfigError(f"config error at 'imagenet_c.corruptions.{index}': unknown {name!r}; "
                              f"known: {', '.join(IMAGENET_C_NAMES)}")
    if source["root"] and classes is not None:
        check_imagenet_c(source["root"], imagenet_c_corruptions(config), source["severities"], classes)


def check_stylized(config: dict, name: str, path: str) -> None:
    """Stylized-ImageNet is the user's (the pipeline does not make it); the smoke set has a stand-in."""
    where = f"config error at 'methods.{name}.stylized_path'"
    if config["dataset"]["sample"]:
        if path != sample_stylized_dir(config):
            raise ConfigError(f"{where}: the sample set's stylized stand-in is {sample_stylized_dir(config)}; use that path")
        return
    if _FILES_CHECKED.get() and not Path(path).is_dir():
        raise ConfigError(
            f"{where}: {path} is not a folder. Stylized-ImageNet is not made by this pipeline: make it with Geirhos "
            "et al.'s stylization code and give its train folder, which mirrors ImageNet's train/ (<wnid>/<file>)"
        )


def check_weights(weights: str, where: str) -> None:
    if _FILES_CHECKED.get() and looks_like_file(weights) and not Path(weights).is_file():
        raise ConfigError(
            f"config error at '{where}': checkpoint file {weights} does not exist; download it there or correct the path"
        )


def check_external_models(config: dict) -> None:
    for name, spec in config["external_models"].items():
        where = f"external_models.{name}"
        if name in config["methods"]:
            raise ConfigError(f"config error at '{where}': the name is also a method's; rename one of them")
        if spec["architecture"] not in TORCHVISION_ARCHITECTURES:
            raise ConfigError(
                f"config error at '{where}.architecture': unknown {spec['architecture']!r}; "
                f"known: {', '.join(TORCHVISION_ARCHITECTURES)}"
            )
        check_weights(spec["weights"], f"{where}.weights")
        unknown = [c for c in spec["trained_on"] if c not in IMAGENET_C_NAMES]
        if unknown:
            raise ConfigError(f"config error at '{where}.trained_on': unknown ImageNet-C corruption {unknown[0]!r}")
