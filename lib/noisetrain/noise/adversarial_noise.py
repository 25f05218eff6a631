"""Learning adversarial noise against a fixed classifier (paper section 3.2.1, eq. 2).

A :class:`~noisetrain.generators.NoiseGenerator` proposes a noise direction per image; the
direction is scaled (clipping-aware) so that the change to the image has L2 norm exactly
``eps``; the generator is trained with Adam to maximise the classifier's cross-entropy on the
perturbed images while the classifier stays fixed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from noisetrain.errors import InputError, TrainingError
from noisetrain.noise.generators import NoiseGenerator
from noisetrain.noise.rescaling import rescale_to_norm


def perturb(
    x: torch.Tensor,
    generator: NoiseGenerator,
    eps: float | torch.Tensor,
    rng: torch.Generator | None = None,
) -> torch.Tensor:
    """Images ``x`` plus one generator noise sample each, clipped to [0, 1], change norm ``eps``.
    A diverged generator's non-finite noise is a TrainingError, not garbage for the rescaling."""
    delta = generator(x, rng)
    if not torch.isfinite(delta).all():
        raise TrainingError("the noise generator diverged (non-finite noise)")
    return rescale_to_norm(x, delta.to(x.dtype), eps)


def generator_loss(
    classifier: nn.Module,
    generator: NoiseGenerator,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | torch.Tensor,
    rng: torch.Generator | None = None,
) -> torch.Tensor:
    """Negative mean cross-entropy under the noise: minimising it maximises eq. (2)."""
    return -F.cross_entropy(classifier(perturb(x, generator, eps, rng)), y)


@contextlib.contextmanager
def weights_fixed(model: nn.Module) -> Iterator[None]:
    """Switch off a model's parameter gradients (not its mode): a backward pass then reaches
    the input without computing weight gradients nobody uses."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode with ``requires_grad=False``; restore both on exit.

    Eval mode keeps batch-norm statistics and dropout fixed while the generator attacks the
    classifier; switching gradients off avoids computing parameter gradients nobody uses.
    """
    was_training = {m: m.training for m in module.modules()}
    module.eval()
    try:
        with weights_fixed(module):
            yield module
    finally:
        for m, flag in was_training.items():
            m.train(flag)


def _check_data(images: torch.Tensor, labels: torch.Tensor) -> None:
    if images.dim() != 4:
        raise InputError(f"images must be NCHW, got shape {tuple(images.shape)}")
    if labels.shape != images.shape[:1]:
        raise InputError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    if images.shape[0] == 0:
        raise InputError("need at least one image")


def _device_rng(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def fit_generator(
    classifier: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    steps: int,
    lr: float = 1e-4,
    batch_size: int,
    channels: int | None = None,
    depth: int = 4,
    kernel: str = "1x1",
    seed: int,
    generator: NoiseGenerator | None = None,
) -> NoiseGenerator:
    """Train a noise generator against a fixed classifier (eq. 2) and return it.

    Args:
        classifier: takes [0, 1] images, returns logits. Frozen (eval mode, no parameter
            gradients) for the duration; its modes and ``requires_grad`` flags are restored.
        images, labels: the data to attack, NCHW in [0, 1] and (N,) class indices, on the
            device the work should run on (the classifier must be there too).
        eps: L2 norm of every perturbation (e.g. 10 for MNIST, 135 for ImageNet ANT^1x1).
        steps: number of Adam steps; each uses a minibatch of ``batch_size`` images drawn
            without replacement within an epoch (reshuffled every pass over the data).
        lr: Adam learning rate (appendix B: 1e-4, MNIST 1e-4..1e-5).
        channels, depth, kernel: architecture of a new generator (``channels`` defaults to
            the images' channel count). Ignored, apart from a channel check, if ``generator``
            is given, in which case that generator is trained in place and returned.
        seed: seeds the new generator's initialisation, the minibatch order and the noise,
            so that a run is deterministic on CPU for a given seed.
    """
    _check_data(images, labels)
    if steps < 0:
        raise InputError(f"steps must be >= 0, got {steps}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if channels is None:
        channels = images.shape[1]
    if channels != images.shape[1]:
        raise InputError(f"channels={channels} but images have {images.shape[1]} channels")

    device = images.device
    # One CPU stream for initialisation and batch order (reproducible across devices), and a
    # device stream, seeded from it, for the noise itself.
    host_rng = torch.Generator().manual_seed(seed)
    if generator is None:
        generator = NoiseGenerator(channels, depth, kernel, rng=host_rng).to(device)
    elif generator.channels != channels:
        raise InputError(f"generator has {generator.channels} channels, images have {channels}")
    noise_rng = _device_rng(device, int(torch.randint(2**62, (1,), generator=host_rng)))

    n = images.shape[0]
    batch_size = min(batch_size, n)
    optimiser = torch.optim.Adam(generator.parameters(), lr=lr)
    generator.train()
    order = torch.empty(0, dtype=torch.long)
    with frozen(classifier):
        for step in range(steps):
            if order.numel() < batch_size:
                order = torch.randperm(n, generator=host_rng)
            idx, order = order[:batch_size], order[batch_size:]
            idx = idx.to(device)
            try:
                loss = generator_loss(classifier, generator, images[idx], labels[idx], eps, noise_rng)
            except TrainingError as exc:
                raise _diverged(step, lr) from exc
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    if not all(torch.isfinite(p).all() for p in generator.parameters()):
        raise _diverged(steps, lr)
    return generator


def _diverged(steps: int, lr: float) -> TrainingError:
    """A generator whose learning rate is too high diverges to non-finite noise: stop, as training does."""
    return TrainingError(f"the noise generator diverged (non-finite noise after {steps} of its Adam steps at lr {lr:g}): "
                         "lower its learning rate")


@torch.no_grad()
def fooling_rate(
    classifier: nn.Module,
    generator: NoiseGenerator,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    seed: int,
    batch_size: int = 500,
) -> float:
    """Fraction of the correctly classified clean images that one noise sample misclassifies.

    Each image gets one noise sample of norm ``eps`` (seeded by ``seed``). Images already
    misclassified without noise are left out of the count; returns NaN if there are none
    correctly classified. The classifier is evaluated in eval mode (its mode is restored).
    """
    _check_data(images, labels)
    noise_rng = _device_rng(images.device, seed)
    correct = fooled = 0
    with frozen(classifier):
        for start in range(0, images.shape[0], batch_size):
            x, y = images[start : start + batch_size], labels[start : start + batch_size]
            clean_ok = classifier(x).argmax(dim=1) == y
            noisy_ok = classifier(perturb(x, generator, eps, noise_rng)).argmax(dim=1) == y
            correct += int(clean_ok.sum())
            fooled += int((clean_ok & ~noisy_ok).sum())
    return fooled / correct if correct else float("nan")
