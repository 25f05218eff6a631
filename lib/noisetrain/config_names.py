"""Names and paths a config gives rise to, and the dataset kinds; standard library only (data jobs
and the job graph read them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from noisetrain.data.corruption_names import IMAGENET_C_CORRUPTIONS, IMAGENET_C_EXTRAS
from noisetrain.data.imagenet_layout import available_extras
from noisetrain.models.architecture_names import (
    DEFAULT_INPUT_SIZE,
    SMALL_DATA_ARCHITECTURES,
    TORCHVISION_ARCHITECTURES,
    is_torchvision_weights,
)

# In robustness.methods: the sweep's best single-sigma GNT model, known only once the sweep is evaluated.
BEST_GNT = "best_gnt"
# methods.vanilla.weights on imagenet: a seeded random init (smoke runs).
RANDOM_WEIGHTS = "random"
# evaluation.mce_reference: the published AlexNet errors, rather than an evaluated AlexNet's.
PUBLISHED_MCE_REFERENCE = "published"
# The robustness set is one array of val images at the evaluation crop of ResNet50 and most models.
# epsilon* is an L2 size over an image's pixels, so numbers at another input size (InceptionV3's
# 299) would not compare with these; such models are not measured.
ROBUSTNESS_INPUT_SIZE = DEFAULT_INPUT_SIZE


@dataclass(frozen=True)
class DatasetKind:
    """How a dataset is stored, which decides its networks and its checks (noisetrain.config_validate)."""

    name: str
    image_folders: bool  # torchvision ImageFolder trees streamed from disk; else prepared arrays
    architectures: tuple[str, ...]


@dataclass(frozen=True)
class Dataset:
    """A dataset the pipeline knows: its kind, its images' channels, and whether the paper reports
    numbers on it (the tables then show the paper's values beside ours)."""

    kind: DatasetKind
    channels: int
    in_paper: bool


ARRAYS = DatasetKind("arrays", False, SMALL_DATA_ARCHITECTURES)
IMAGE_FOLDERS = DatasetKind("image_folders", True, TORCHVISION_ARCHITECTURES)
# The one list of datasets (the schema's enum must match it; a test checks).
DATASETS = {
    "digits": Dataset(ARRAYS, channels=1, in_paper=False),  # scikit-learn's bundled 8x8 digits, framed as MNIST
    "mnist": Dataset(ARRAYS, channels=1, in_paper=True),
    "imagenet": Dataset(IMAGE_FOLDERS, channels=3, in_paper=True),
}
DATASET_KINDS = {name: dataset.kind for name, dataset in DATASETS.items()}
IMAGE_FOLDER_DATASETS = frozenset(name for name, kind in DATASET_KINDS.items() if kind.image_folders)
ARRAY_DATASETS = tuple(name for name, kind in DATASET_KINDS.items() if not kind.image_folders)
PAPER_DATASETS = tuple(name for name, dataset in DATASETS.items() if dataset.in_paper)


def dataset_kind(config: dict) -> DatasetKind:
    return DATASET_KINDS[config["dataset"]["name"]]


def is_image_folder_dataset(config: dict) -> bool:
    return dataset_kind(config).image_folders


def study_name(config: dict) -> str:
    """The results folder's name: the dataset's, or imagenet_sample for the photographs' smoke set
    (so that a smoke run never mixes with a real ImageNet study)."""
    dataset = config["dataset"]
    return f"{dataset['name']}_sample" if dataset.get("sample") else dataset["name"]


def image_root(config: dict) -> str:
    """The ImageFolder root holding val/ (and train/): the configured one, or the sample set's."""
    if config["dataset"]["sample"]:
        return f"results/{study_name(config)}/data/images"
    return config["dataset"]["root"]


def sample_stylized_dir(config: dict) -> str:
    """The smoke set's stand-in for Stylized-ImageNet (its training images restyled), made with the sample."""
    return f"{image_root(config)}/stylized"


def model_path(config: dict, method: str) -> str:
    return f"results/{study_name(config)}/models/{method}.pt"


def imagenet_c_corruptions(config: dict) -> list[str]:
    """The ImageNet-C corruptions evaluated: the configured ones, or the 15 plus the extras (those
    present in a published root; all four when generated)."""
    source = config["imagenet_c"]
    if source["corruptions"]:
        return list(source["corruptions"])
    extras = available_extras(source["root"]) if source["root"] else list(IMAGENET_C_EXTRAS)
    return [*IMAGENET_C_CORRUPTIONS, *extras]


def looks_like_file(weights: str) -> bool:
    """Whether a weights entry is a checkpoint file, by the one rule the loader uses too: anything
    but a seeded random init and a torchvision weights name (architecture_names.is_torchvision_weights).
    Such a file is an input of the jobs that read it, so that replacing it reruns them."""
    return weights != RANDOM_WEIGHTS and not is_torchvision_weights(weights)


def sweep_name(sigma: float) -> str:
    """Method name of one point of the sigma sweep, e.g. 0.5 -> 'gnt_s0.5'."""
    return f"gnt_s{sigma:g}"


def eps_candidate_name(method: str, eps: float) -> str:
    """Method name of one candidate of the eps search, e.g. ('ant1x1', 4) -> 'ant1x1_eps4'."""
    return f"{method}_eps{eps:g}"


def replicate_name(method: str, seed: int) -> str:
    """Method name of a model trained again with another seed, e.g. ('ant1x1', 1) -> 'ant1x1_seed1'."""
    return f"{method}_seed{seed}"


def spec_hash(spec: Any) -> str:
    """Short stable hash of a JSON-serialisable spec, recorded as provenance."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]
