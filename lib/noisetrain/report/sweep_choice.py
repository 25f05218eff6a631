"""The study's choices from its own sweeps, owned here alone, as one record type:

- the sigma sweep: which sigma of the GNT sweep has the best mean corruption accuracy, and ANT's
  eps derived from it the paper's way for ImageNet (appendix B: eps is the mean L2 size of the
  Gaussian perturbation at the chosen sigma) - eps 'auto';
- the eps search: which candidate eps of an ANT method has the best mean corruption accuracy,
  the way the paper chose MNIST's eps (appendix B.2: a line search like sigma's) - eps 'search'.

One job per choice (``choose_sweep``, ``choose_eps``) computes a :class:`SweepChoice` and writes
it; every consumer reads it through :func:`read_choice`: Snakemake (which model is "the best GNT"),
training (ANT's eps), the robustness measurement (the fresh generators' eps) and the tables.
Importing this module is cheap (no torch, pandas).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from noisetrain.config_names import BEST_GNT  # noqa: F401  (in robustness.methods: the sweep's best model)
from noisetrain.errors import DataError
from noisetrain.methods import in_sigma_sweep
from noisetrain.storage import write_json


@dataclass(frozen=True)
class SweepChoice:
    parameter: str  # what was swept: "sigma" or "eps"
    best_method: str
    best_value: float  # the chosen sigma or eps
    best_c_mean: float
    eps: float  # the eps it gives ANT
    how: str  # how eps was chosen, in words
    candidates: dict[str, float]  # every candidate model's mean corruption accuracy

    def eps_for(self, factor: float = 1.0) -> float:
        return self.eps * factor


def is_main_model(spec: dict) -> bool:
    """A model of its own, not another seed's replicate or a candidate of the eps search."""
    return "replicate_of" not in spec and "candidate_of" not in spec


def sweep_sigmas(specs: dict[str, dict]) -> dict[str, float]:
    """Method -> sigma of every single-sigma GNT model of the study's seed (the points of Fig 6)."""
    return {method: float(spec["sigma"]) for method, spec in specs.items()
            if in_sigma_sweep(spec) and "replicate_of" not in spec}


def best_of(c_means: dict[str, float], values: dict[str, float]) -> str | None:
    """The candidate model with the highest mean corruption accuracy (ties: the smaller sigma or eps)."""
    scored = [(c_means[m], -v, m) for m, v in values.items() if m in c_means and not math.isnan(c_means[m])]
    return max(scored)[2] if scored else None


def _scored(c_means: dict[str, float], values: dict[str, float]) -> dict[str, float]:
    return {m: float(c_means[m]) for m in sorted(values) if m in c_means and not math.isnan(c_means[m])}


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
    return SweepChoice("sigma", best, sigma, float(c_means[best]), eps, how, _scored(c_means, sigmas))


def choose_eps(c_means: dict[str, float], eps_values: dict[str, float]) -> SweepChoice:
    """The eps search: the candidate ANT model with the best mean corruption accuracy, and its eps."""
    best = best_of(c_means, eps_values)
    if best is None:
        raise DataError("no candidate of the eps search has a corruption record: check eps_search.candidates")
    eps = eps_values[best]
    how = (f"eps {eps:g} gives the best mean corruption accuracy of the eps search "
           f"({', '.join(f'{eps_values[m]:g}' for m in sorted(eps_values, key=eps_values.get))})")
    return SweepChoice("eps", best, eps, float(c_means[best]), eps, how, _scored(c_means, eps_values))


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


def adopt_winner(choice_path: str | Path, methods: list[str], models: list[str], logs: list[list[str]],
                 targets: list[str], method: str) -> str:
    """The eps search's searched method ``method`` is its winning candidate (the line search keeps
    the model it picked): write the winner's model file to ``targets[0]`` as ``method``'s (its spec
    renamed, see :func:`noisetrain.models.model_file.adopt_model`) and copy its logs to the other
    targets. ``models`` and each list of ``logs`` hold one file per candidate of ``methods``, in that
    order. Returns the winner."""
    choice = read_choice(choice_path)
    if choice.best_method not in methods:
        raise DataError(f"{choice_path} chose {choice.best_method!r}, which is not one of the candidates "
                        f"{', '.join(methods)}: delete it and rerun snakemake {choice_path}")
    for files in (models, *logs):
        if len(files) != len(methods):
            raise DataError(f"expected one file per candidate ({len(methods)}), got {len(files)}: {files}")
    from noisetrain.models.model_file import adopt_model  # torch: only this job needs it

    k = methods.index(choice.best_method)
    adopt_model(models[k], targets[0], method=method, eps_source=f"eps search: {choice.how}")
    for files, target in zip(logs, targets[1:], strict=True):
        shutil.copyfile(files[k], target)
    return choice.best_method


def resolve_eps(spec: dict, choice_path: str | Path | None) -> dict:
    """ANT with eps 'auto' or 'search': the eps of that choice (times eps_factor), and how."""
    if spec.get("eps") not in ("auto", "search"):
        return spec
    choice = read_choice(choice_path)
    return {**spec, "eps": choice.eps_for(spec.get("eps_factor", 1.0)), "eps_source": choice.how}


def resolve_an_eps(an_eps, choice_path: str | Path | None) -> float:
    """robustness.an_eps: a number, or 'auto' / 'search' for the eps of that choice."""
    return read_choice(choice_path).eps if an_eps in ("auto", "search") else float(an_eps)
