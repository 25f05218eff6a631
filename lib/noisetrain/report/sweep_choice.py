"""The sweep's choice, owned here alone: which sigma of the GNT sweep has the best mean corruption
accuracy, and ANT's eps derived from it the paper's way (appendix B: eps is the mean L2 size of
the Gaussian perturbation at the chosen sigma).

One job (``choose_sweep``) computes a :class:`SweepChoice` and writes it; every consumer reads it
through :func:`read_choice`: Snakemake (which model is "the best GNT" whose robustness is
measured), training (ANT's eps 'auto'), the robustness measurement (the fresh generators' eps) and
the tables (which sweep row is shown as GNT). Importing this module is cheap (no torch, pandas).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from noisetrain.config import BEST_GNT  # noqa: F401  (in robustness.methods: the sweep's best model)
from noisetrain.errors import DataError
from noisetrain.storage import write_json


@dataclass(frozen=True)
class SweepChoice:
    best_method: str
    best_sigma: float
    best_c_mean: float
    eps: float  # ANT's eps 'auto'
    how: str  # how eps was computed, in words
    candidates: dict[str, float]  # every sweep model's mean corruption accuracy

    def eps_for(self, factor: float = 1.0) -> float:
        return self.eps * factor


def sweep_sigmas(specs: dict[str, dict]) -> dict[str, float]:
    """Method -> sigma of every single-sigma GNT model (the points of Fig 6)."""
    return {method: float(spec["sigma"]) for method, spec in specs.items() if spec.get("kind") == "gnt"}


def best_of(c_means: dict[str, float], sigmas: dict[str, float]) -> str | None:
    """The single-sigma GNT model with the highest mean corruption accuracy (ties: smaller sigma)."""
    scored = [(c_means[m], -s, m) for m, s in sigmas.items() if m in c_means and not math.isnan(c_means[m])]
    return max(scored)[2] if scored else None


def mean_gaussian_change_norm(images, sigma: float, seed: int, batch_size: int = 1000) -> float:
    """Mean over images of |clip(x + N(0, sigma^2), 0, 1) - x|_2: Gaussian noise's size as the
    classifier sees it. The paper's ImageNet eps 135 is this at sigma 0.5; on MNIST it is ~10."""
    import torch

    from noisetrain.noise.pixel_noise import gaussian_noise

    generator = torch.Generator().manual_seed(seed)
    norms = [(gaussian_noise(chunk, sigma, generator) - chunk).flatten(1).norm(dim=1) for chunk in images.split(batch_size)]
    return torch.cat(norms).mean().item()


def choose(c_means: dict[str, float], sigmas: dict[str, float], train_images, seed: int) -> SweepChoice:
    """The best sweep model and ANT's eps at its sigma, from each sweep model's C mean."""
    best = best_of(c_means, sigmas)
    if best is None:
        raise DataError("no single-sigma GNT model has a corruption record: configure sigma_sweep or give eps as a number")
    sigma = sigmas[best]
    eps = mean_gaussian_change_norm(train_images, sigma, seed)
    how = (f"mean over the {len(train_images)} training images of |clip(x + N(0, {sigma:g}^2), 0, 1) - x|_2 "
           f"(seed {seed}); sigma {sigma:g} has the best mean corruption accuracy of the sweep "
           f"({', '.join(sorted(sigmas))})")
    candidates = {m: float(c_means[m]) for m in sorted(sigmas) if m in c_means and not math.isnan(c_means[m])}
    return SweepChoice(best, sigma, float(c_means[best]), eps, how, candidates)


def write_choice(choice: SweepChoice, path: str | Path) -> None:
    write_json(asdict(choice), path)


def read_choice(path: str | Path | None) -> SweepChoice:
    if path is None:
        raise DataError("a setting is 'auto' (chosen from the sigma sweep) but no sweep choice file was given; "
                        "the choose_sweep rule writes it")
    try:
        return SweepChoice(**json.loads(Path(path).read_text()))
    except OSError as exc:
        raise DataError(f"cannot read the sweep choice {path} ({exc.strerror}): run snakemake {path}") from exc
    except (json.JSONDecodeError, TypeError) as exc:
        raise DataError(f"{path} is not a sweep choice record ({exc}): delete it and rerun snakemake {path}") from exc


def resolve_eps(spec: dict, choice_path: str | Path | None) -> dict:
    """ANT with eps 'auto': the eps chosen from the sigma sweep (times eps_factor), and how."""
    if spec.get("eps") != "auto":
        return spec
    choice = read_choice(choice_path)
    return {**spec, "eps": choice.eps_for(spec.get("eps_factor", 1.0)), "eps_source": choice.how}


def resolve_an_eps(an_eps, choice_path: str | Path | None) -> float:
    """robustness.an_eps: a number, or 'auto' for ANT's eps chosen from the sweep."""
    return read_choice(choice_path).eps if an_eps == "auto" else float(an_eps)
