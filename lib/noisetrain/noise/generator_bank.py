"""The one file format of saved noise generators: ANT's replay bank and final generator (in the
model file), and the fresh adversarial-noise generators of the epsilon* measurement
(``an_generators.pt``). A bank is an architecture, the L2 size its noise was trained at, and a
list of weight states; the last state is the final (or first fitted) generator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from noisetrain.errors import CheckpointError
from noisetrain.noise.generators import NoiseGenerator
from noisetrain.storage import load_torch, save_torch


@dataclass
class GeneratorBank:
    arch: dict  # NoiseGenerator's channels, depth, kernel
    eps: float
    states: list[dict[str, torch.Tensor]]

    @classmethod
    def of(cls, generators: list[NoiseGenerator], eps: float) -> GeneratorBank:
        first = generators[0]
        arch = {"channels": first.channels, "depth": first.depth, "kernel": first.kernel}
        return cls(arch, float(eps), [cpu_state(g) for g in generators])

    def to_dict(self) -> dict:
        return {"arch": dict(self.arch), "eps": self.eps, "states": [dict(s) for s in self.states]}

    @classmethod
    def from_dict(cls, saved: dict, source: str | Path = "generator bank") -> GeneratorBank:
        if not isinstance(saved, dict) or not {"arch", "eps", "states"} <= set(saved) or not saved["states"]:
            raise CheckpointError(f"{source} holds no noise generators (expected arch, eps and states): "
                                  "is it an ANT model or an an_generators.pt file? Rerun the rule that wrote it")
        return cls(dict(saved["arch"]), float(saved["eps"]), list(saved["states"]))

    def build(self, index: int = -1) -> NoiseGenerator:
        """Generator of state ``index`` (default: the last, i.e. final one), in eval mode."""
        if not -len(self.states) <= index < len(self.states):
            raise IndexError(f"bank index {index} out of range: the bank holds {len(self.states)} states")
        with torch.random.fork_rng(devices=[]):  # the weights are overwritten: leave the global RNG be
            generator = NoiseGenerator(**self.arch)
        generator.load_state_dict(self.states[index])
        return generator.eval()


def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # A copy, not a view: later training must not change a stored state.
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def write_bank(bank: GeneratorBank, path: str | Path) -> None:
    save_torch(bank.to_dict(), path)


def read_bank(path: str | Path) -> GeneratorBank:
    return GeneratorBank.from_dict(load_torch(path), path)
