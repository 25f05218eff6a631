"""What a noise generator does to the images it perturbs: a cheap check for every generator the
pipeline trains (ANT's current generator and its replay, the fresh generators of eps*_AN).

A learned noise of L2 size ``eps`` can do something other than add noise: where ``eps`` reaches
the image's own L2 norm, the generator can push every pixel to 0 (erase the image) or to 1
(saturate it) and fool the classifier without any noise pattern at all (issue 9: on the digits,
whose mean L2 norm is 8.9, ANT's 'auto' eps is 13.8). :func:`perturbation_diagnostics` measures,
on tensors the caller already has:

- ``erased_fraction``: the fraction of perturbed images that are erased or saturated (at least
  :data:`SATURATED_PIXEL_FRACTION` of their pixels within :data:`SATURATION_TOLERANCE` of 0, or
  of 1), counting only images whose clean version was not already so;
- ``mean_noise``: the mean change ``x' - x`` over all pixels (negative: the noise darkens);
- ``fooling_rate`` (when logits or predictions and labels are given): the fraction of perturbed
  images misclassified.

A generator whose erased fraction exceeds :data:`ERASING_THRESHOLD` is flagged in the tables
and figures (:func:`is_erasing`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the thresholds and is_erasing serve the tables, which need no torch (seconds a job)
    import torch

SATURATION_TOLERANCE = 1.0 / 255.0  # a pixel within one uint8 level of 0 (or of 1) is black (white)
SATURATED_PIXEL_FRACTION = 0.95  # an image with at least this share of black (or white) pixels is erased
ERASING_THRESHOLD = 0.5  # a generator that erases more than this fraction of its images is flagged

# The metric keys that hold an erased fraction (ANT's training log: current generator and replay).
ERASED_KEYS = ("erased_fraction", "replay_erased_fraction")


def saturated(images: torch.Tensor) -> torch.Tensor:
    """(B,) bool: images with at least SATURATED_PIXEL_FRACTION of their pixels black, or of them white."""
    import torch

    flat = images.detach().flatten(1)
    # a mean with a dtype: the values of a cast and a mean, one kernel launch fewer on a GPU
    black = torch.mean(flat <= SATURATION_TOLERANCE, 1, dtype=torch.float32)
    white = torch.mean(flat >= 1.0 - SATURATION_TOLERANCE, 1, dtype=torch.float32)
    return (black >= SATURATED_PIXEL_FRACTION) | (white >= SATURATED_PIXEL_FRACTION)


def diagnostic_tensors(clean: torch.Tensor, perturbed: torch.Tensor, logits: torch.Tensor | None = None,
                       labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The diagnostics as 0-d tensors on the images' device (no host synchronisation); see
    :func:`perturbation_diagnostics`. ``logits`` may also be (B,) predicted classes."""
    import torch

    if clean.shape != perturbed.shape or clean.dim() < 2 or len(clean) == 0:
        raise ValueError(f"need clean and perturbed images of one shape (B, ...), B >= 1; got "
                         f"{tuple(clean.shape)} and {tuple(perturbed.shape)}")
    clean, perturbed = clean.detach(), perturbed.detach()
    erased = saturated(perturbed) & ~saturated(clean)
    out = {"erased_fraction": torch.mean(erased, dtype=torch.float32), "mean_noise": (perturbed - clean).mean()}
    if logits is not None and labels is not None:
        predicted = logits.detach().argmax(1) if logits.dim() > 1 else logits
        out["fooling_rate"] = torch.mean(predicted != labels, dtype=torch.float32)
    return out


def perturbation_diagnostics(clean: torch.Tensor, perturbed: torch.Tensor, logits: torch.Tensor | None = None,
                             labels: torch.Tensor | None = None) -> dict[str, float]:
    """Erased fraction, mean noise and (with ``logits`` or predictions and ``labels``) fooling rate
    of a batch of perturbed images ``perturbed`` of the clean images ``clean`` (both in [0, 1])."""
    from noisetrain.host_values import read_floats

    return read_floats(diagnostic_tensors(clean, perturbed, logits, labels))


def is_erasing(metrics: Mapping[str, float] | None) -> bool:
    """Whether a generator's diagnostics (a training log row, a record's values) show erasing:
    an erased fraction above ERASING_THRESHOLD under any of ERASED_KEYS or ``an_erased_fraction``."""
    if not metrics:
        return False
    values = [metrics.get(key) for key in (*ERASED_KEYS, "an_erased_fraction")]
    return any(v is not None and isinstance(v, (int, float)) and math.isfinite(v) and v > ERASING_THRESHOLD
               for v in values)
