"""Names and input sizes of the torchvision classifiers, importable without torch.

Config validation and the Snakefile need only the names; building a network goes through
:mod:`noisetrain.models.torchvision_models`.
"""

from __future__ import annotations

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
