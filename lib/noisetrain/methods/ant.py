"""Adversarial Noise Training (paper sections 3.2.2, 4.4; +SIN section 3.3; Table 16's generator
depths): the kind that ``noisetrain.train.ant.AntStep`` trains."""

from __future__ import annotations

import math

from noisetrain.errors import ConfigError
from noisetrain.methods.registry import MethodKind, register_kind

# The paper's generator depth; other depths are Table 16's ablation.
PAPER_DEPTH = 4
_FRACTION_TOLERANCE = 1e-6


def _stylized(spec: dict) -> bool:
    return bool(spec.get("stylized_path"))


def _depth_series(spec: dict) -> bool:
    """Table 16's series: ANT 1x1 with replay, no +SIN, at every generator depth."""
    return spec["kernel"] == "1x1" and spec["replay"] and not _stylized(spec)


def _label(spec: dict) -> str:
    text = f"ANT {spec['kernel']}" + ("" if spec["replay"] else " w/o EP")
    return text + ("" if spec["depth"] == PAPER_DEPTH else f" depth {spec['depth']}")


def _paper_model(spec: dict) -> str | None:
    if spec["depth"] != PAPER_DEPTH:
        return f"ant1x1_depth{spec['depth']}" if _depth_series(spec) else None
    if not spec["replay"]:
        return "ant1x1_noreplay" if spec["kernel"] == "1x1" and not _stylized(spec) else None
    return f"ant{spec['kernel']}" + ("_sin" if _stylized(spec) else "")


def _trained_on(spec: dict) -> list[str]:
    """ANT 1x1's learned noise is pixel-wise, as Gaussian noise is: Table 4 brackets that; 3x3's
    spatially correlated noise brackets nothing."""
    return ["gaussian_noise"] if spec["kernel"] == "1x1" else []


def _noise_keys(spec: dict) -> dict:
    return {"generator_depth": spec["depth"], "generator_kernel": spec["kernel"], "depth_ablation": _depth_series(spec)}


def _check_fractions(name: str, spec: dict) -> None:
    """The batch split, checked now rather than when the training job starts."""
    fractions = spec.get("fractions")
    if fractions is None:
        return
    where = f"config error at 'methods.{name}.fractions"
    total = math.fsum(fractions.values())
    if abs(total - 1.0) > _FRACTION_TOLERANCE:
        parts = " + ".join(f"{part} {value:g}" for part, value in fractions.items())
        raise ConfigError(f"{where}': must sum to 1, got {total:.8g} ({parts}); adjust them or set fractions: null")
    if fractions["stylized"] > 0 and spec["stylized_path"] is None:
        raise ConfigError(
            f"{where}.stylized': {fractions['stylized']:g} > 0 needs stylized_path (an .npz of stylized "
            "training images); set stylized_path or make fractions.stylized 0"
        )
    if fractions["replay"] > 0 and not spec["replay"]:
        raise ConfigError(
            f"{where}.replay': {fractions['replay']:g} > 0 needs replay: true (without it there is no bank "
            "of earlier generators to replay); set replay: true or make fractions.replay 0"
        )


def _step_cost(spec: dict) -> float:
    """Vanilla steps per ANT step with its fresh generators (the README's Speed, MNIST on a CPU:
    1x1 about 2.0 plus 1.4-1.9 for the fresh generators, 3x3 about 2.8 plus the same)."""
    return 4.0 if spec["kernel"] == "1x1" else 5.0


register_kind(MethodKind(
    "ant", label=_label, step="noisetrain.train.ant:AntStep", eps_choice=True, learns_noise=True,
    paper_model=_paper_model, trained_on=_trained_on, noise_keys=_noise_keys,
    main_tables=lambda spec: spec["depth"] == PAPER_DEPTH, check=_check_fractions, step_cost=_step_cost,
))
