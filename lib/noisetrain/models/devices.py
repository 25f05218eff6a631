"""Where models run: the configured device, and the device a model's weights live on."""

from __future__ import annotations

import torch
from torch import nn

from noisetrain.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """'auto' takes the GPU when one is visible; 'cuda' without one is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config error at 'device': 'cuda' was asked for but this job sees no CUDA GPU; "
                          "use device: auto (GPU when present) or cpu, or give the job a GPU")
    return torch.device(name)


def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    """The device a model's weights live on (``fallback`` for a model without any)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return fallback
