"""Vanilla training and the pixel-noise methods: GNT, GNT_mult, Speckle (paper sections 3.1, 4.1)."""

from __future__ import annotations

import torch

from noisetrain.noise import pixel_noise
from noisetrain.train.steps import SeededStep, Stream, classifier_step, register_method, seeded


@register_method("vanilla", "gnt", "gnt_mult", "speckle")
class NoiseStep(SeededStep):
    """A ``clean_fraction`` of the batch stays clean, the rest gets the method's noise (clipped to
    [0, 1]); vanilla adds none."""

    def __init__(self, spec: dict, data=None, device: torch.device | str = "cpu", steps_per_epoch: int = 1):
        self.noise = pixel_noise.noise_for(spec)
        self.clean_fraction = spec["clean_fraction"]
        self.rng = seeded(spec["seed"], Stream.NOISE)
        self.device = torch.device(device)

    def step(self, model, optimizer, x, y, index) -> dict[str, float]:
        batch = pixel_noise.mix_batch(x, self.noise, self.clean_fraction, self.rng)
        return {"loss": classifier_step(model, optimizer, batch.to(self.device), y.to(self.device))}
