"""Mixed precision and memory layout of a training run on a GPU.

With ``amp`` on CUDA the forward passes run under autocast: bf16 where the card supports it (no loss
scaling needed), else fp16 with a GradScaler per optimiser (the classifier's and ANT's generator's),
whose states go into the checkpoint. On the CPU, or with ``amp`` off, everything stays fp32 and
every method is exactly what it was. ``channels_last`` is the faster layout for convolutions on
tensor cores; it changes no result beyond float rounding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn


class Precision:
    """How forward passes run and how a loss becomes an optimiser step."""

    def __init__(self, device: torch.device | str = "cpu", amp: bool = False):
        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        self.dtype = None
        if amp and cuda:
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        fp16 = self.dtype == torch.float16
        # One scaler per optimiser: each tracks the overflows of its own gradients.
        self.scalers = {"classifier": torch.amp.GradScaler("cuda", enabled=fp16),
                        "generator": torch.amp.GradScaler("cuda", enabled=fp16)}
        self.channels_last = cuda

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model.to(self.device, memory_format=torch.channels_last) if self.channels_last else model.to(self.device)

    def prepare_batch(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, which: str = "classifier",
             sync: Callable[[list[torch.Tensor]], None] | None = None) -> None:
        """backward and step, through the optimiser's scaler (a no-op scaler in bf16 and fp32).
        ``sync`` gets the optimiser's parameters between the two (data-parallel: average their
        gradients over the processes; on the scaled gradients, so an overflow anywhere skips the
        step everywhere)."""
        scaler = self.scalers[which]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if sync is not None:
            sync([p for group in optimizer.param_groups for p in group["params"]])
        scaler.step(optimizer)
        scaler.update()

    def state_dict(self) -> dict:
        return {name: scaler.state_dict() for name, scaler in self.scalers.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, scaler in self.scalers.items():
            if state.get(name):
                scaler.load_state_dict(state[name])


FP32 = Precision()
