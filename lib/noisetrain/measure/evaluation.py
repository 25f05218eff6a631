"""Clean and corruption-benchmark accuracy of a trained classifier."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from noisetrain.errors import InputError


@torch.no_grad()
def predictions(model: nn.Module, images: torch.Tensor, *, batch_size: int = 1000,
                device: str | torch.device = "cpu") -> torch.Tensor:
    """Top-1 class of every image (float tensor in [0, 1]), computed in batches."""
    was_training = model.training
    model.eval()
    out = [model(images[i : i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def correct_flags(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1000,
                  device: str | torch.device = "cpu") -> np.ndarray:
    """Whether each image is classified correctly (the per-image record the bootstrap resamples)."""
    if len(images) != len(labels):
        raise InputError(f"{len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise InputError("accuracy of an empty set is undefined")
    return (predictions(model, images, batch_size=batch_size, device=device) == labels.cpu()).numpy()


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1000,
             device: str | torch.device = "cpu") -> float:
    return float(correct_flags(model, images, labels, batch_size=batch_size, device=device).mean())


def severity_rows(name: str, category: str, correct: np.ndarray, severities: np.ndarray) -> list[dict]:
    """Top-1 accuracy on one corruption, one row per severity present in the set."""
    return [
        {"corruption": name, "category": category, "severity": int(level), "value": float(correct[severities == level].mean())}
        for level in np.unique(severities)
    ]


def summarize(rows: list[dict]) -> list[dict]:
    """Mean over corruptions (each first averaged over its severities), and the same without noise.

    'Without noise' drops the noise category, as the paper's 'IN-C w/o Noises' column does.
    """
    per_corruption: dict[str, tuple[str, list[float]]] = {}
    for row in rows:
        per_corruption.setdefault(row["corruption"], (row["category"], []))[1].append(row["value"])
    means = {name: (category, float(np.mean(values))) for name, (category, values) in per_corruption.items()}
    summary = [{"corruption": "mean", "category": "aggregate", "severity": None,
                "value": float(np.mean([v for _, v in means.values()]))}]
    without_noise = [v for category, v in means.values() if category != "noise"]
    if without_noise:
        summary.append({"corruption": "mean_without_noise", "category": "aggregate", "severity": None,
                        "value": float(np.mean(without_noise))})
    return summary
