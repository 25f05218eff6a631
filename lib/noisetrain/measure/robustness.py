"""Noise and adversarial robustness of a trained classifier, as tidy rows.

Noise robustness (paper sections 3.4, 4.3, 4.4; Tables 2 and 3): the median over test images of
epsilon*, the L2 size of the smallest clipped change along a noise direction that flips the
decision, for Gaussian (GN), uniform (UN) and adversarial noise (AN). For AN, several fresh
noise generators (one per seed) are trained against the final classifier and each one's median
is measured; the table reports their mean and standard deviation. What each generator does to
the measured images at the eps it was trained at is recorded beside it (category
``noise_robustness_detail``, the eps as severity): the fraction of them it erases or saturates,
its mean noise value and its fooling rate (``noisetrain.noise.diagnostics``), per generator
(``an_erased_fraction_seed0``, ...) and as the mean over generators (``an_erased_fraction``,
``an_mean_noise``, ``an_fooling_rate``). A generator that erases the images measures how far
erasing is from the decision, not noise (issue 9); the tables flag it.

Adversarial robustness (section 4.6, appendix F; Tables 5 and 12): accuracy under L-infinity
PGD and L2 DDN at the paper's budgets.

Everything runs where the classifier's weights are (CPU or a CUDA GPU): the images are moved
there, the noise directions are drawn from CPU generators (so a seed gives the same directions on
either device) and transformed there. On the CPU the numbers are bit-identical to a run without
a GPU in sight; on a GPU they agree up to float rounding (and the generators' training noise,
which comes from a device stream).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from noisetrain.errors import TrainingError
from noisetrain.measure.attacks import adversarial_accuracy
from noisetrain.measure.decision_distance import (
    decision_distances,
    fraction_inf,
    gaussian_directions,
    median_epsilon,
    uniform_directions,
)
from noisetrain.measure.evaluation import predictions
from noisetrain.models.devices import model_device
from noisetrain.noise.adversarial_noise import fit_generator
from noisetrain.noise.diagnostics import perturbation_diagnostics
from noisetrain.noise.generators import NoiseGenerator
from noisetrain.noise.rescaling import rescale_to_norm

NOISE_TYPES = ("gn", "un", "an")
# Values (images x pixels x channels) handled at once where a whole test set would not fit a GPU
# comfortably: 2^24 is ~21,000 MNIST images (the small datasets' sets stay one piece) or ~110
# ImageNet images at 224 x 224.
CHUNK_VALUES = 1 << 24


def _chunks(x: torch.Tensor) -> int:
    """Images per piece for tensors shaped like ``x``."""
    return max(1, CHUNK_VALUES // max(1, x[0].numel())) if len(x) else 1


def _row(quantity: str, value: float, category: str, severity=None) -> dict:
    return {"corruption": quantity, "category": category, "severity": severity, "value": float(value)}


def _distance_rows(name: str, result) -> list[dict]:
    return [
        _row(f"eps_{name}", median_epsilon(result.distances), "noise_robustness"),
        _row(f"eps_{name}_fraction_inf", fraction_inf(result.distances), "noise_robustness_detail"),
        _row(f"eps_{name}_passes_per_image", result.forward_passes_per_image, "noise_robustness_detail"),
    ]


AN_DIAGNOSTICS = ("erased_fraction", "mean_noise", "fooling_rate")


def generator_diagnostics(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, directions: torch.Tensor, eps: float
) -> dict[str, float]:
    """Erased fraction, mean noise and fooling rate of the images ``x`` moved along a generator's
    ``directions`` to L2 size ``eps`` (one classifier pass over the measured images)."""
    size, parts = _chunks(x), []
    for start in range(0, len(x), size):
        xs, ys = x[start : start + size], y[start : start + size].to(x.device)
        perturbed = rescale_to_norm(xs, directions[start : start + size].to(x.device, x.dtype), eps)
        predicted = predictions(model, perturbed, device=x.device).to(x.device)
        parts.append((len(xs), perturbation_diagnostics(xs, perturbed, predicted, ys)))
    if len(parts) == 1:
        return parts[0][1]
    # Every quantity is a mean over images (mean_noise: over pixels, the same count per image).
    total = sum(n for n, _ in parts)
    return {key: sum(n * part[key] for n, part in parts) / total for key in parts[0][1]}


@torch.no_grad()
def generator_directions(generator: NoiseGenerator, shape, seed: int) -> torch.Tensor:
    """One noise sample of ``generator`` per image of ``shape`` (NCHW), on the generator's device.

    The input noise is drawn on the CPU from ``seed`` (the same as ``generator(shape, CPU
    generator)`` there) and transformed in pieces on the generator's device, so a seed gives the
    same directions on any device and an ImageNet test set never needs all hidden activations at once.
    """
    z = torch.randn(generator.input_shape(shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    weights = next(generator.parameters())
    transform = generator.eval().as_function()
    size = _chunks(z)
    pieces = [transform(z[i : i + size].to(weights.device, weights.dtype)) for i in range(0, len(z), size)]
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


def noise_robustness(
    model: nn.Module,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    *,
    seed: int,
    rel_tol: float,
    an_seeds: int,
    an_steps: int,
    an_lr: float,
    an_eps: float,
    an_batch_size: int,
    kernel: str = "1x1",
    depth: int = 4,
    log=lambda _: None,
) -> tuple[list[dict], list, dict[str, np.ndarray]]:
    """Rows of median epsilon* along GN, UN and AN (mean and std over ``an_seeds`` generators),
    each AN generator's diagnostics at ``an_eps`` and their means, the fitted AN generators (for
    example images), and the per-image epsilon* behind each median ({'gn', 'un', 'an_seed0', ...}:
    float64 (N,), 0 where the clean image is misclassified, inf where nothing flips it), from which
    the claims table bootstraps its intervals."""
    model.eval()
    # The work runs where the classifier is; on the CPU these moves do nothing.
    device = model_device(model, test_x.device)
    test_x, test_y, train_x, train_y = (t.to(device) for t in (test_x, test_y, train_x, train_y))
    rows, distances = [], {}
    for name, directions in (("gn", gaussian_directions(test_x.shape, seed)), ("un", uniform_directions(test_x.shape, seed))):
        result = decision_distances(model, test_x, test_y, directions, rel_tol=rel_tol)
        rows += _distance_rows(name, result)
        distances[name] = result.distances
        log(f"eps*_{name.upper()} {median_epsilon(result.distances):.3f} ({result.forward_passes_per_image:.1f} passes/image)")
    medians, generators, diagnostics = [], [], []
    for k in range(an_seeds):
        try:
            generator = fit_generator(model, train_x, train_y, eps=an_eps, steps=an_steps, lr=an_lr,
                                      batch_size=an_batch_size, depth=depth, kernel=kernel, seed=seed + 1000 * (k + 1))
        except TrainingError as exc:
            where = f"eps*_AN: fresh generator {k + 1} of {an_seeds}"
            raise TrainingError(f"{where}: {exc} (robustness.an_lr, now {an_lr:g})") from exc
        directions = generator_directions(generator, test_x.shape, seed + k)
        result = decision_distances(model, test_x, test_y, directions, rel_tol=rel_tol)
        medians.append(median_epsilon(result.distances))
        distances[f"an_seed{k}"] = result.distances
        rows += [_row(f"eps_an_seed{k}", medians[-1], "noise_robustness_detail")]
        diagnostics.append(generator_diagnostics(model, test_x, test_y, directions, an_eps))
        rows += [
            _row(f"an_{key}_seed{k}", diagnostics[-1][key], "noise_robustness_detail", severity=an_eps) for key in AN_DIAGNOSTICS
        ]
        generators.append(generator)
        log(
            f"eps*_AN generator {k}: {medians[-1]:.3f} (at eps {an_eps:.3g}: "
            + ", ".join(f"{key.replace('_', ' ')} {diagnostics[-1][key]:.3g}" for key in AN_DIAGNOSTICS)
            + ")"
        )
    finite = [m for m in medians if np.isfinite(m)]
    rows += [
        _row("eps_an", np.mean(medians) if len(finite) == len(medians) else float("inf"), "noise_robustness"),
        _row("eps_an_std", np.std(medians) if len(finite) == len(medians) else float("nan"), "noise_robustness"),
        *(
            _row(f"an_{key}", np.mean([d[key] for d in diagnostics]), "noise_robustness_detail", severity=an_eps)
            for key in AN_DIAGNOSTICS
        ),
    ]
    return rows, generators, distances


def adversarial_rows(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, settings: dict, seed: int) -> list[dict]:
    """Accuracy under each configured attack, e.g. settings = {"linf_pgd": {epsilon, steps, step_size}};
    the attack's budget epsilon is recorded as the row's severity."""
    return [
        _row(
            attack,
            adversarial_accuracy(model, images, labels, attack=attack, seed=seed, **params),
            "adversarial",
            severity=params["epsilon"],
        )
        for attack, params in settings.items()
    ]
