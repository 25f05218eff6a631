"""The attacks of adversarial training, in plain torch: L-inf PGD [Madry et al. 2018] and L2 DDN
[Rony et al. 2019], run once per training batch by ``noisetrain.train.adversarial_training``.

They do the math of the foolbox 3 attacks the training steps used before (and the evaluation in
``noisetrain.measure.attacks`` still uses, as the reference), including DDN's final shrinking to
epsilon and the success check on the returned images, without foolbox's per-call and per-iteration
wrapping (eagerpy tensors, criteria, bounds checks that synchronise with the device). Seeded alike,
PGD returns foolbox's examples bit for bit on the CPU and DDN to float rounding
(tests/test_training_attacks.py).

Both attack the model in eval mode with its weights' gradients switched off (BatchNorm statistics
must not learn from the queries; no weight gradient is computed, none is left in ``.grad``) and
restore both afterwards. Their only randomness (PGD's random start, DDN's direction for a vanishing
gradient) comes from the ``generator`` passed in, so a call repeats for a generator state.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from noisetrain.noise.adversarial_noise import frozen

# DDN's step size is cosine-annealed from 1 to 0.01 over the steps (Rony et al.'s code, and foolbox's).
_DDN_MAX_STEP, _DDN_MIN_STEP = 1.0, 0.01
_DDN_INIT_NORM = 1.0  # the first sphere's radius, Rony et al.'s (and foolbox's) default
_TINY = 1e-12  # keeps norms off zero in divisions, as foolbox does


def _logits_and_gradient(model: nn.Module, images: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits at ``images`` and the gradient of the summed cross-entropy with respect to them
    (summed as foolbox does: a per-image gradient that does not depend on the batch size)."""
    with torch.enable_grad():  # the attack needs the graph even when called inside no_grad
        images = images.detach().requires_grad_(True)
        logits = model(images)
        (gradient,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), [images])
    return logits.detach(), gradient


def _fooled(model: nn.Module, images: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(images).argmax(1) != y


def _per_image(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(N,) values shaped to broadcast over (N, ...) images."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def _l2(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1)


def linf_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epsilon: float, steps: int, step_size: float,
             random_start: bool, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Madry et al.'s L-inf PGD on images ``x`` in [0, 1] with labels ``y``: from a uniform point of
    the epsilon ball (or ``x``), ``steps`` ascent steps of ``step_size`` along the sign of the
    loss gradient, each projected onto the ball and clipped to [0, 1]. Returns the examples
    (detached) and whether each fools the model."""
    with frozen(model):
        adversarial = x
        if random_start:
            noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            adversarial = (x + (noise * (2 * epsilon) - epsilon)).clamp(0.0, 1.0)
        for _ in range(steps):
            _, gradient = _logits_and_gradient(model, adversarial, y)
            stepped = adversarial + step_size * gradient.sign()
            adversarial = (x + (stepped - x).clamp(-epsilon, epsilon)).clamp(0.0, 1.0)
        return adversarial.detach(), _fooled(model, adversarial, y)


def _unit_directions(gradient: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image's gradient scaled to L2 norm 1; a vanishing gradient (e.g. saturated softmax)
    is replaced by a random normal direction first, so that DDN still moves that image."""
    norms = _l2(gradient)
    vanished = norms == 0
    if vanished.any():  # rare: draw only then, so the stream is not consumed every step
        noise = torch.randn(gradient.shape, generator=generator, device=gradient.device, dtype=gradient.dtype)
        gradient = torch.where(_per_image(vanished, gradient), noise, gradient)
        norms = _l2(gradient)
    return gradient / _per_image(norms.clamp_min(_TINY), gradient)


def _ddn_step_size(k: int, steps: int) -> float:
    return _DDN_MIN_STEP + (_DDN_MAX_STEP - _DDN_MIN_STEP) * (1 + math.cos(math.pi * k / steps)) / 2


def _ddn_search(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, gamma: float,
                generator: torch.Generator) -> torch.Tensor:
    """DDN's smallest adversarial perturbation found in ``steps`` steps (zero where none is).

    Each step: a normalised gradient ascent step on the perturbation, the radius eps_k shrunk by
    (1 - gamma) where the current point is adversarial and grown by (1 + gamma) where not (capped
    at the farthest point of the image box), the perturbation projected onto the eps_k sphere and
    the image clipped to [0, 1]. The best one is recorded from each step's forward pass."""
    delta = torch.zeros_like(x)
    radius = torch.full((len(x),), _DDN_INIT_NORM, device=x.device, dtype=x.dtype)
    worst = _l2(torch.maximum(x, 1.0 - x))  # no perturbation inside [0, 1] is longer
    best_norm, best_delta = worst.clone(), delta
    for k in range(steps):
        logits, gradient = _logits_and_gradient(model, x + delta, y)
        adversarial = logits.argmax(1) != y
        norm = _l2(delta)
        better = adversarial & (norm <= best_norm)
        best_norm = torch.where(better, norm, best_norm)
        best_delta = torch.where(_per_image(better, x), delta, best_delta)
        delta = delta + _ddn_step_size(k, steps) * _unit_directions(gradient, generator)
        radius = torch.minimum(radius * torch.where(adversarial, 1.0 - gamma, 1.0 + gamma), worst)
        delta = delta * _per_image(radius / _l2(delta).clamp_min(_TINY), delta)
        delta = (x + delta).clamp(0.0, 1.0) - x
    return best_delta


def l2_ddn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epsilon: float, steps: int, gamma: float,
           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Rony et al.'s DDN on images ``x`` in [0, 1] with labels ``y``, its smallest adversarial
    example shrunk to L2 norm ``epsilon`` where longer (foolbox's clipping; an image DDN cannot
    break stays clean). No quantisation to 256 levels (Rony et al. quantise; foolbox does not).
    Returns the examples (detached) and whether each fools the model."""
    with frozen(model):
        delta = _ddn_search(model, x, y, steps, gamma, generator)
        shrink = (epsilon / _l2(delta).clamp_min(_TINY)).clamp(max=1.0)
        # the clamp only absorbs rounding: x + (clip(x + d) - x) can land an ulp outside [0, 1]
        adversarial = (x + delta * _per_image(shrink, delta)).clamp(0.0, 1.0)
        return adversarial.detach(), _fooled(model, adversarial, y)
