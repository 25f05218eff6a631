"""Names and input sizes of the torchvision classifiers, importable without torch.

Config validation and the Snakefile need only the names; building a network goes through
:mod:`noisetrain.models.torchvision_models`.
"""

from __future__ import annotations

import os
import re

from noisetrain.errors import ConfigError

# The paper's ImageNet models (ResNet50, ResNet152, DenseNet121, InceptionV3), AlexNet (the mCE
# reference of Hendrycks and Dietterich), and small networks that keep CPU tests fast.
TORCHVISION_ARCHITECTURES = (
    "resnet18",
    "resnet50",
    "resnet152",
    "densenet121",
    "inception_v3",
    "alexnet",
    "mobilenet_v3_small",
    "squeezenet1_1",
)

# The 1-channel 28x28 networks of the small datasets (digits, mnist), defined in architectures.py.
SMALL_DATA_ARCHITECTURES = ("madry_cnn",)

DEFAULT_INPUT_SIZE = 224
# Side of the square crop a network is evaluated at; the others take 224.
INPUT_SIZE = {name: DEFAULT_INPUT_SIZE for name in TORCHVISION_ARCHITECTURES} | {"inception_v3": 299}


def input_size(architecture: str) -> int:
    """Side of the square image ``architecture`` is evaluated at (299 for InceptionV3, else 224)."""
    if architecture not in INPUT_SIZE:
        raise ConfigError(f"unknown torchvision architecture {architecture!r}; known: {', '.join(TORCHVISION_ARCHITECTURES)}")
    return INPUT_SIZE[architecture]


# Files whose name ends so are checkpoints, never a torchvision weights name.
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".tar", ".ckpt", ".bin", ".pkl", ".gz", ".zip", ".safetensors")
_WEIGHTS_NAME = re.compile(r"(?:[A-Za-z0-9_]+_weights\.)?[A-Za-z_][A-Za-z0-9_]*", re.IGNORECASE)


def is_torchvision_weights(weights: str) -> bool:
    """Whether ``weights`` names torchvision weights (``DEFAULT``, ``IMAGENET1K_V2``,
    ``ResNet50_Weights.IMAGENET1K_V1``) rather than a checkpoint file.

    An existing file, or a string that looks like a path (a folder separator, a checkpoint suffix
    such as .pt / .pth / .tar), is a file, whether or not it exists.
    """
    if not isinstance(weights, str) or not weights:
        return False
    if "/" in weights or "\\" in weights or weights.startswith(("~", ".")) or weights.lower().endswith(_CHECKPOINT_SUFFIXES):
        return False
    if _WEIGHTS_NAME.fullmatch(weights) is None:
        return False
    return not os.path.exists(weights)
