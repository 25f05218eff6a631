"""Adversarial training, the baselines of the paper's Table 11 (appendix E): L-inf PGD adversarial
training [Madry et al. 2018] and L2 DDN adversarial training [Rony et al. 2019].

Per training batch the attack (plain torch, ``noisetrain.train.training_attacks``) runs against the
current classifier in eval mode with its weights fixed (BatchNorm statistics must not learn from the
attack's queries; no weight gradients are computed), the classifier's mode is restored, and it takes
one SGD step on the adversarial examples alone: both papers train on 100% adversarial batches, so
the config's ``train.clean_fraction`` does not apply. Like the authors, these kinds train from
scratch with the vanilla schedule (their entries in ``noisetrain.methods``), not fine-tuned from our
vanilla model. The attacks do the math of foolbox's LinfPGD and DDNAttack, which the evaluation
(``noisetrain.measure.attacks``) keeps as the reference. The Madry CNN's 40 or 100 gradient passes
dominate either way (docs/speed.md): foolbox's wrapping cost PGD nothing measurable and DDN about 1%
on a quiet CPU, up to ~20% with two threads on a busy one (its many small per-iteration tensor ops).
Training also no longer imports foolbox (1 s a job) nor seeds torch's global generator.

- ``pgd_at`` (Madry et al.): the L-inf PGD examples of ``epsilon`` (MNIST: 0.3, 40 steps of 0.01
  from a uniform random start in the ball; the schema's defaults).
- ``ddn_at`` (Rony et al.): DDN's smallest L2 adversarial example found in ``steps`` steps,
  shrunk to L2 norm ``epsilon`` where larger; an image for which DDN finds none stays clean.
  MNIST: epsilon 2.4, 100 steps, gamma 0.05 (the command and defaults of the authors' training
  script, github.com/jeromerony/fast_adversarial, ``fast_adv/defenses/mnist.py``). Their DDN also
  quantises the examples to 256 levels; foolbox's, and ours, do not.

All randomness comes from one seeded CPU ``torch.Generator`` (``Stream.ATTACK``) whose state is
checkpointed: it draws one seed per batch, which seeds the attack's own generator on the training
device (PGD's random start, DDN's rare random direction), so a CPU run is deterministic, resumes bit
for bit, and leaves torch's global stream alone. The checkpointed state is what it was with foolbox.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from noisetrain.errors import InputError
from noisetrain.train.distributed import SINGLE, World
from noisetrain.train.precision import FP32, Precision
from noisetrain.train.steps import Metrics, SeededStep, Stream, classifier_step, seeded
from noisetrain.train.training_attacks import l2_ddn, linf_pgd

_SEED_RANGE = 2**62
Attack = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise InputError(f"adversarial training: {name} must be a positive number, got {value!r}")
    return float(value)


def _steps(spec: dict) -> int:
    steps = spec["steps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"adversarial training: steps must be an integer >= 1, got {steps!r}")
    return steps


def _pgd(spec: dict) -> Attack:
    return partial(linf_pgd, epsilon=_positive("epsilon", spec["epsilon"]), steps=_steps(spec),
                   step_size=_positive("step_size", spec["step_size"]), random_start=bool(spec["random_start"]))


def _ddn(spec: dict) -> Attack:
    gamma = _positive("gamma", spec["gamma"])
    if gamma >= 1:
        raise InputError(f"adversarial training: gamma must lie in (0, 1), got {gamma!r}")
    return partial(l2_ddn, epsilon=_positive("epsilon", spec["epsilon"]), steps=_steps(spec), gamma=gamma)


# Each kind's attack and the norm its perturbation size is measured in.
ATTACKS = {"pgd_at": (_pgd, math.inf), "ddn_at": (_ddn, 2.0)}


def make_attack(spec: dict) -> Attack:
    """The attack of a ``pgd_at`` or ``ddn_at`` spec, checked: called as ``attack(model, x, y,
    generator=...)``, it returns the adversarial examples and whether each fools the model."""
    if spec["kind"] not in ATTACKS:
        raise InputError(f"adversarial training: unknown kind {spec['kind']!r}; known: {', '.join(ATTACKS)}")
    return ATTACKS[spec["kind"]][0](spec)


class AdversarialStep(SeededStep):
    """One attack on the batch, then one classifier step on its adversarial examples.

    Metrics per batch: ``loss`` (on the adversarial examples), ``adversarial_accuracy`` (the
    fraction of them the classifier, before its update, still classifies correctly) and
    ``perturbation_size`` (their mean L-inf distance for PGD, L2 for DDN).
    """

    def __init__(self, spec: dict, source=None, device: torch.device | str = "cpu", steps_per_epoch: int = 1,
                 precision: Precision = FP32, world: World = SINGLE):
        self.precision = precision
        self.kind = spec["kind"]
        self.attack = make_attack(spec)
        self.norm = ATTACKS[self.kind][1]
        self.rng = seeded(spec["seed"], Stream.ATTACK, rank=world.rank)
        self.device = torch.device(device)

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The adversarial examples of ``x`` (on the model's device, detached, within the epsilon
        ball and [0, 1]) and whether each fools the model; the model's modes and weights' gradient
        flags are restored."""
        seed = int(torch.randint(_SEED_RANGE, (1,), generator=self.rng))
        generator = torch.Generator(device=self.device).manual_seed(seed)
        return self.attack(model, x.to(self.device), y.to(self.device), generator=generator)

    def step(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
             index: torch.Tensor) -> Metrics:
        x, y = x.to(self.device), y.to(self.device)
        adversarial, fooled = self.perturb(model, x, y)
        size = (adversarial - x).flatten(1).norm(p=self.norm, dim=1).mean()
        # 1 - the float32 fooling rate in float64, as the float it was read as before
        return {**classifier_step(model, optimizer, adversarial, y, self.precision),
                "adversarial_accuracy": 1.0 - fooled.float().mean().double(), "perturbation_size": size}
