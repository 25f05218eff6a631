"""Choices the study makes from its own results: the best sigma of the sweep, and ANT's eps
chosen the paper's way from it (appendix B: eps is the average L2 size of the Gaussian noise
perturbation at the chosen sigma)."""

from __future__ import annotations

import math

import pandas as pd
import torch

from .noise import gaussian_noise


def sweep_sigmas(specs: dict[str, dict]) -> dict[str, float]:
    """Method -> sigma of every single-sigma GNT model (the points of Fig 6)."""
    return {method: float(spec["sigma"]) for method, spec in specs.items() if spec.get("kind") == "gnt"}


def best_gnt(summary: pd.DataFrame, sigmas: dict[str, float]) -> str | None:
    """The single-sigma GNT model with the highest mean corruption accuracy (ties: smaller sigma)."""
    scored = [(summary.at[m, "c_mean"], -s, m) for m, s in sigmas.items()
              if m in summary.index and not math.isnan(summary.at[m, "c_mean"])]
    return max(scored)[2] if scored else None


def mean_gaussian_change_norm(images: torch.Tensor, sigma: float, seed: int, batch_size: int = 1000) -> float:
    """Mean over images of |clip(x + N(0, sigma^2), 0, 1) - x|_2: Gaussian noise's size as the
    classifier sees it. The paper's ImageNet eps 135 is this at sigma 0.5; on MNIST it is ~10."""
    generator = torch.Generator().manual_seed(seed)
    norms = [
        (gaussian_noise(chunk, sigma, generator) - chunk).flatten(1).norm(dim=1)
        for chunk in images.split(batch_size)
    ]
    return torch.cat(norms).mean().item()
