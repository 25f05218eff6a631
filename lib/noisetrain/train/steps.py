"""What every training method shares: the method-step protocol, building a method's step, the
classifier's SGD step and the seeded random streams.

A *method step* turns one training batch into one classifier update and returns the batch's
metrics (at least ``loss``) as 0-dim tensors on the training device, or floats: the trainer keeps
them there and reads many steps' metrics at once (``noisetrain.train.epoch_sums``), so a step never
waits for the device. ``noisetrain.host_values.read_floats`` turns them into floats. A method
kind's entry in :mod:`noisetrain.methods` names its step class, which ``build_step`` imports when
a training job needs it.
"""

from __future__ import annotations

from enum import IntEnum
from importlib import import_module
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from noisetrain.methods import kind_of
from noisetrain.seeding import seed_of
from noisetrain.train.distributed import SINGLE, World
from noisetrain.train.precision import FP32, Precision

Metrics = dict[str, torch.Tensor | float]  # a step's metrics: 0-dim tensors on the training device, or floats


class Stream(IntEnum):
    """Offsets of the seeded random streams: one seed gives each consumer its own stream."""

    INIT = 0  # classifier initialisation
    ORDER = 1  # data order
    NOISE = 2  # pixel noise of GNT, GNT_mult, Speckle
    GENERATOR_INIT = 3  # ANT: generator initialisations
    GENERATOR_NOISE = 4  # ANT: every z fed to a generator
    PICK = 5  # ANT: replay choices, re-initialisation minibatches
    ATTACK = 6  # adversarial training: one seed per batch for the attack (PGD's random start)
    BANK = 7  # ANT: which generator states the bounded replay bank keeps


def stream_seed(seed: int, stream: Stream, rank: int = 0) -> int:
    """The seed of a stream; each further process of a data-parallel run (``rank`` > 0) has its
    own, so that the processes do not draw the same noise (rank 0's is a one-process run's)."""
    return seed * 1000 + int(stream) if rank == 0 else seed_of(seed, int(stream), rank)


def seeded(seed: int, stream: Stream, device: torch.device | str = "cpu", rank: int = 0) -> torch.Generator:
    """The stream's generator, on ``device`` (a CUDA generator draws there without a copy)."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, stream, rank))


class MethodStep(Protocol):
    """How one training batch becomes one classifier update, and the state that must survive a restart."""

    def step(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
             index: torch.Tensor) -> Metrics: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def export(self) -> dict:
        """What the method learned besides the classifier, for the model file ({} for none)."""
        ...


class SeededStep:
    """A method step whose only state across a restart is one seeded random stream (``self.rng``)."""

    rng: torch.Generator

    def state_dict(self) -> dict:
        return {"rng": self.rng.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.rng.set_state(state["rng"])

    def export(self) -> dict:
        return {}


def step_class(kind: str) -> type[MethodStep]:
    """The step class a method kind's registry entry names ('module:Class')."""
    module, name = kind_of(kind).step.split(":")
    return getattr(import_module(module), name)


def build_step(spec: dict, source, device: torch.device, steps_per_epoch: int, precision: Precision = FP32,
               world: World = SINGLE) -> MethodStep:
    """The method step of ``spec['kind']``; ``source`` is the training data (a
    :class:`~noisetrain.train.sources.TrainSource`, or the small datasets' PreparedData); ``world``:
    this process's place in a data-parallel run (its own random streams)."""
    return step_class(spec["kind"])(spec, source, device, steps_per_epoch, precision, world=world)


def classifier_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor, target: torch.Tensor,
                    precision: Precision = FP32) -> Metrics:
    """One SGD update of the classifier on a composed batch; returns the batch's loss and accuracy
    (of the predictions the update was computed from), left on the device."""
    with precision.autocast():
        logits = model(precision.prepare_batch(batch))
        loss = F.cross_entropy(logits, target)
    precision.step(loss, optimizer)
    # mean with a dtype: one operation fewer than a cast and a mean, the same float32 value
    return {"loss": loss.detach().float(), "accuracy": torch.mean(logits.detach().argmax(1) == target, dtype=torch.float32)}
