"""Architecture registry and the model checkpoint format.

Every model takes images in [0, 1]: noise is added and clipped in pixel space before any
normalisation (paper appendix B), so a normalising model does it inside ``forward``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


class MadryCNN(nn.Module):
    """The MNIST network of Madry et al. (2018), used by the paper for all MNIST experiments:
    conv 32 5x5, max-pool 2, conv 64 5x5, max-pool 2, fc 1024, fc 10 (ReLU between, 'same' padding)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * side * side, 1024),
            nn.ReLU(),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


ARCHITECTURES = {"madry_cnn": MadryCNN}


def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    """The device a model's weights live on (``fallback`` for a model without any)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return fallback


def build_model(name: str, in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model '{name}'; known: {', '.join(ARCHITECTURES)}")
    model = ARCHITECTURES[name](in_channels=in_channels, num_classes=num_classes)
    # Channels-last weights: on CPU the convolutions and max-pooling run ~10% faster, and as fast
    # on noisy images as on clean ones (the NCHW max-pool kernel's speed depends on the data).
    # The weights' values, hence seeds and checkpoints, are unaffected.
    return model.to(memory_format=torch.channels_last)


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt or of another architecture."""


def atomic_save(obj, path: str | Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def safe_load(path: str | Path) -> dict:
    """torch.load with weights_only=True and an error that names the file and the remedy."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist: run the rule that writes it (snakemake {path})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path} is not a readable checkpoint ({exc.__class__.__name__}): delete it and rerun") from exc


def save_model(model: nn.Module, path: str | Path, *, arch: str, in_channels: int, num_classes: int, info: dict,
               extras: dict | None = None) -> None:
    """``extras`` holds what a method learned besides the classifier (ANT: its noise generators)."""
    atomic_save(
        {
            "arch": arch,
            "in_channels": in_channels,
            "num_classes": num_classes,
            "state_dict": model.state_dict(),
            "info": info,
            "extras": extras or {},
        },
        path,
    )


def load_extras(path: str | Path) -> dict:
    return safe_load(path).get("extras", {})


def load_model(path: str | Path) -> tuple[nn.Module, dict]:
    """Rebuild a model saved by ``save_model``; returns it in eval mode with its stored info."""
    payload = safe_load(path)
    missing = {"arch", "in_channels", "num_classes", "state_dict"} - set(payload)
    if missing:
        raise CheckpointError(f"{path} is not a noisetrain model file (lacks {sorted(missing)})")
    model = build_model(payload["arch"], payload["in_channels"], payload["num_classes"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not match architecture {payload['arch']}: {exc}") from exc
    return model.eval(), payload.get("info", {})
