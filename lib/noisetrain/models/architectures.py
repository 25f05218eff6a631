"""Architecture registry: each classifier registers itself by name, and ``build_model`` looks it up.

Every model takes images in [0, 1]: noise is added and clipped in pixel space before any
normalisation (paper appendix B), so a normalising model does it inside ``forward``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from noisetrain.errors import ConfigError, InputError

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register_architecture(name: str):
    """Class decorator: ``build_model(name, in_channels, num_classes)`` then builds it."""

    def register(factory):
        if name in ARCHITECTURES:
            raise InputError(f"architecture {name!r} is registered twice")
        ARCHITECTURES[name] = factory
        return factory

    return register


@register_architecture("madry_cnn")
class MadryCNN(nn.Module):
    """The MNIST network of Madry et al. (2018), used by the paper for all MNIST experiments:
    conv 32 5x5, ReLU, max-pool 2, conv 64 5x5, ReLU, max-pool 2, fc 1024, ReLU, fc 10 ('same' padding).

    Each ReLU runs after its max-pool: the two commute exactly (ReLU is monotone), values and
    gradients alike, and the ReLU then touches a quarter of the values (inference about 25% faster
    on a CPU). The parameters keep their names and places."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
        )
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * side * side, 1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_model(name: str, in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    if name not in ARCHITECTURES:
        raise ConfigError(f"unknown model '{name}'; known: {', '.join(ARCHITECTURES)}")
    model = ARCHITECTURES[name](in_channels=in_channels, num_classes=num_classes)
    # Channels-last weights: on CPU the convolutions and max-pooling run ~10% faster, and as fast
    # on noisy images as on clean ones (the NCHW max-pool kernel's speed depends on the data).
    # The weights' values, hence seeds and checkpoints, are unaffected.
    return model.to(memory_format=torch.channels_last)


# The torchvision classifiers register themselves when their module is imported (torchvision itself
# only when one is built): importing it here completes the registry wherever build_model comes from.
from noisetrain.models import torchvision_models  # noqa: E402, F401
