"""Vanilla training and the pixel-noise methods: GNT, GNT_mult, Speckle (paper sections 3.1, 4.1),
and their +SIN variants (a stylized part in every batch, section 3.3)."""

from __future__ import annotations

import torch

from noisetrain.noise import pixel_noise
from noisetrain.train.ant import part_slices
from noisetrain.train.distributed import SINGLE, World
from noisetrain.train.precision import FP32, Precision
from noisetrain.train.sources import as_source
from noisetrain.train.steps import Metrics, SeededStep, Stream, classifier_step, seeded

# GNT+SIN's batch (the paper gives no split for it): ANT+SIN's, 25% clean, 30% stylized, 45% noisy.
SIN_FRACTIONS = {"clean": 0.25, "stylized": 0.3, "noisy": 0.45}


class NoiseStep(SeededStep):
    """A ``clean_fraction`` of the batch stays clean, the rest gets the method's noise (clipped to
    [0, 1]); vanilla adds none. With ``stylized_path`` the batch is split into clean, stylized
    (the same training images, stylized) and noisy parts (``SIN_FRACTIONS``).

    The noise is drawn on the device the batch trains on, from a generator on that device (on
    the CPU, the seeded CPU stream: a CPU run is reproducible and resumes bit for bit); each
    process of a data-parallel run draws from its own stream."""

    def __init__(self, spec: dict, source=None, device: torch.device | str = "cpu", steps_per_epoch: int = 1,
                 precision: Precision = FP32, world: World = SINGLE):
        self.noise = pixel_noise.noise_for(spec)
        self.clean_fraction = spec["clean_fraction"]
        self.device = torch.device(device)
        self.rng = seeded(spec["seed"], Stream.NOISE, self.device, world.rank)
        self.precision = precision
        self.source = as_source(source, spec) if spec.get("stylized_path") else None

    def step(self, model, optimizer, x, y, index) -> Metrics:
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.source is None:
            batch = pixel_noise.mix_batch(x, self.noise, self.clean_fraction, self.rng)
        else:
            parts = part_slices(SIN_FRACTIONS, len(x))
            stylized = self.source.stylized(index[parts["stylized"]]).to(self.device)
            noisy = x[parts["noisy"]] if self.noise is None else self.noise(x[parts["noisy"]], self.rng)
            batch = torch.cat([x[parts["clean"]], stylized, noisy])
        return classifier_step(model, optimizer, batch, y, self.precision)
