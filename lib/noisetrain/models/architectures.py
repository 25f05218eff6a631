"""Architecture registry: each classifier registers itself by name, and ``build_model`` looks it up.

The registry does not import the networks: a caller that builds one imports the module that
registers it (:mod:`noisetrain.models.madry_cnn`, :mod:`noisetrain.models.torchvision_models`).
The names are :mod:`noisetrain.models.architecture_names`' (torch-free, for the job graph); only
those register.

Every model takes images in [0, 1]: noise is added and clipped in pixel space before any
normalisation (paper appendix B), so a normalising model does it inside ``forward``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from noisetrain.errors import ConfigError, InputError
from noisetrain.models.architecture_names import SMALL_DATA_ARCHITECTURES, TORCHVISION_ARCHITECTURES

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register_architecture(name: str):
    """Class decorator: ``build_model(name, in_channels, num_classes)`` then builds it."""
    if name not in (*SMALL_DATA_ARCHITECTURES, *TORCHVISION_ARCHITECTURES):
        raise InputError(f"architecture {name!r} is not in noisetrain.models.architecture_names: add it there")

    def register(factory):
        if name in ARCHITECTURES:
            raise InputError(f"architecture {name!r} is registered twice")
        ARCHITECTURES[name] = factory
        return factory

    return register


def build_model(name: str, in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    if name not in ARCHITECTURES:
        raise ConfigError(f"unknown model '{name}'; known: {', '.join(ARCHITECTURES)}")
    model = ARCHITECTURES[name](in_channels=in_channels, num_classes=num_classes)
    # Channels-last weights: on CPU the convolutions and max-pooling run ~10% faster, and as fast
    # on noisy images as on clean ones (the NCHW max-pool kernel's speed depends on the data).
    # The weights' values, hence seeds and checkpoints, are unaffected.
    return model.to(memory_format=torch.channels_last)
