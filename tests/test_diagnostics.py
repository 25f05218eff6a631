"""Tests for noisetrain.noise.diagnostics (issue 9: generators that erase the images)."""

import math

import pytest
import torch

from noisetrain.noise import diagnostics as diag


def digits_like(n=8, seed=0):
    """Bright strokes (0.6..1) on a black background, ~70% of the pixels black: not erased."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 9:19] = 0.6 + 0.4 * torch.rand(n, 1, 16, 10, generator=g)
    return x


def test_all_black_perturbed_batch_is_erased_and_its_mean_noise_is_minus_the_mean_image():
    x = digits_like()
    out = diag.perturbation_diagnostics(x, torch.zeros_like(x))
    assert out["erased_fraction"] == 1.0
    assert out["mean_noise"] == pytest.approx(-x.mean().item(), rel=1e-6)
    assert "fooling_rate" not in out
    white = diag.perturbation_diagnostics(x, torch.ones_like(x))
    assert white["erased_fraction"] == 1.0 and white["mean_noise"] == pytest.approx((1 - x).mean().item(), rel=1e-6)


def test_small_noise_erases_nothing():
    x = digits_like()
    noisy = (x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    out = diag.perturbation_diagnostics(x, noisy)
    assert out["erased_fraction"] == 0.0
    assert abs(out["mean_noise"]) < 0.01


def test_erased_counts_per_image_and_only_images_not_black_before():
    x = digits_like(4)
    x[3] = 0.0  # already black: blacking it out again erases nothing
    perturbed = x.clone()
    perturbed[:2] = 0.0
    assert diag.perturbation_diagnostics(x, perturbed)["erased_fraction"] == pytest.approx(2 / 4)
    assert diag.perturbation_diagnostics(x, torch.zeros_like(x))["erased_fraction"] == pytest.approx(3 / 4)


def test_almost_all_means_the_named_share_of_pixels_within_one_level():
    x = digits_like(1)
    pixels = 28 * 28
    keep = math.ceil(pixels * (1 - diag.SATURATED_PIXEL_FRACTION)) - 1  # bright pixels left: just under the share
    almost = torch.zeros_like(x).flatten()
    almost[:keep] = 0.5
    assert diag.saturated(almost.view_as(x)).item()
    almost[: keep + 2] = 0.5  # two more bright pixels: no longer "almost all" black
    assert not diag.saturated(almost.view_as(x)).item()
    dim = torch.full_like(x, diag.SATURATION_TOLERANCE)  # within one uint8 level of black counts as black
    assert diag.saturated(dim).item() and not diag.saturated(dim * 3).item()


def test_fooling_rate_from_logits_or_predictions():
    x = digits_like(4)
    labels = torch.tensor([0, 1, 2, 3])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 0, 0]), 10).float()
    assert diag.perturbation_diagnostics(x, x, logits, labels)["fooling_rate"] == pytest.approx(0.5)
    assert diag.perturbation_diagnostics(x, x, torch.tensor([9, 9, 9, 3]), labels)["fooling_rate"] == pytest.approx(0.75)


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="one shape"):
        diag.perturbation_diagnostics(torch.zeros(2, 1, 4, 4), torch.zeros(3, 1, 4, 4))


def test_is_erasing_uses_the_named_threshold():
    assert diag.is_erasing({"erased_fraction": diag.ERASING_THRESHOLD + 0.01})
    assert not diag.is_erasing({"erased_fraction": diag.ERASING_THRESHOLD})
    assert diag.is_erasing({"erased_fraction": 0.0, "replay_erased_fraction": 0.9})
    assert diag.is_erasing({"an_erased_fraction": 1.0})
    assert not diag.is_erasing({}) and not diag.is_erasing(None) and not diag.is_erasing({"erased_fraction": math.nan})
