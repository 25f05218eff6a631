"""Noise on image tensors in [0, 1] and the clean/noisy composition of training batches.

All noise is added in pixel space and clipped to [0, 1] (paper eq. 1 and appendix B). Every
function takes an explicit ``torch.Generator`` so that training is reproducible and resumable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from noisetrain.errors import InputError

NoiseFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _per_image(value: float | torch.Tensor, x: torch.Tensor) -> float | torch.Tensor:
    """Broadcast a scalar or a (B,) tensor of per-image levels against a (B, C, H, W) batch. A number
    stays a number: as a tensor on a GPU it would be a copy from the host that waits for the device."""
    if not isinstance(value, torch.Tensor):
        return float(value)
    value = value.to(dtype=x.dtype, device=x.device)
    return value.reshape(-1, *([1] * (x.dim() - 1))) if value.dim() == 1 else value


def gaussian_noise(x: torch.Tensor, sigma: float | torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """clip(x + delta, 0, 1) with delta ~ N(0, sigma^2); sigma may differ per image."""
    delta = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return (x + delta * _per_image(sigma, x)).clamp_(0.0, 1.0)


def uniform_noise(x: torch.Tensor, half_width: float | torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """clip(x + delta, 0, 1) with delta ~ U(-half_width, half_width)."""
    delta = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device).mul_(2).sub_(1)
    return (x + delta * _per_image(half_width, x)).clamp_(0.0, 1.0)


def speckle_noise(x: torch.Tensor, scale: float | torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """ImageNet-C's speckle noise: clip(x + x * n, 0, 1) with n ~ N(0, scale^2)."""
    n = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return (x + x * n * _per_image(scale, x)).clamp_(0.0, 1.0)


def draw_levels(levels: Sequence[float], count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """One level per image, drawn uniformly from ``levels`` (GNT_mult, Speckle training)."""
    device = generator.device if generator is not None else None  # a CUDA generator draws on its GPU
    table = torch.as_tensor(list(levels), dtype=torch.float32, device=device)
    return table[torch.randint(len(table), (count,), generator=generator, device=device)]


def _gaussian(spec: dict) -> NoiseFn:
    sigma = float(spec["sigma"])
    return lambda x, g: gaussian_noise(x, sigma, g)


def _gaussian_levels(spec: dict) -> NoiseFn:
    sigmas = spec["sigmas"]
    return lambda x, g: gaussian_noise(x, draw_levels(sigmas, len(x), g).to(x.device), g)


def _speckle_levels(spec: dict) -> NoiseFn:
    scales = spec["scales"]
    return lambda x, g: speckle_noise(x, draw_levels(scales, len(x), g).to(x.device), g)


# The training noise of each pixel-noise method kind (vanilla: none).
TRAINING_NOISE: dict[str, Callable[[dict], NoiseFn | None]] = {
    "vanilla": lambda spec: None, "gnt": _gaussian, "gnt_mult": _gaussian_levels, "speckle": _speckle_levels,
}


def noise_for(spec: dict) -> NoiseFn | None:
    """The training noise of a method spec; None for vanilla (no noise)."""
    if spec["kind"] not in TRAINING_NOISE:
        raise InputError(f"unknown noise method kind '{spec['kind']}'; known: {', '.join(TRAINING_NOISE)}")
    return TRAINING_NOISE[spec["kind"]](spec)


def clean_count(batch_size: int, clean_fraction: float) -> int:
    """How many images of a batch stay clean (the paper keeps 50% of every batch clean)."""
    return int(round(batch_size * clean_fraction))


def mix_batch(x: torch.Tensor, noise: NoiseFn | None, clean_fraction: float, generator: torch.Generator) -> torch.Tensor:
    """First ``clean_fraction`` of the (already shuffled) batch clean, the rest noisy."""
    if noise is None:
        return x
    n_clean = clean_count(len(x), clean_fraction)
    if n_clean == len(x):
        return x
    return torch.cat([x[:n_clean], noise(x[n_clean:], generator)])
