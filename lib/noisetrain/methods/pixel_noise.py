"""Vanilla training and the pixel-noise methods, GNT, GNT_mult and Speckle (paper sections 3.1,
4.1; +SIN section 3.3): the kinds that ``noisetrain.train.noise_step.NoiseStep`` trains."""

from __future__ import annotations

from noisetrain.methods.registry import MethodKind, register_kind

STEP = "noisetrain.train.noise_step:NoiseStep"
# GNT_mult's sigmas in the paper: ImageNet-C's Gaussian noise levels (the schema's default).
PAPER_SIGMAS = [0.08, 0.12, 0.18, 0.26, 0.38]


def _stylized(spec: dict) -> bool:
    return bool(spec.get("stylized_path"))


def _without_unset_stylized(spec: dict) -> dict:
    """Without +SIN, the training spec as before stylized_path existed: the same spec (hence the
    same model files and hashes) as then."""
    return {key: value for key, value in spec.items() if not (key == "stylized_path" and value is None)}


def _gaussian(spec: dict) -> list[str]:
    """Table 4 brackets Gaussian noise for models trained on it, +SIN or not."""
    return ["gaussian_noise"]


def _gnt_paper_model(spec: dict) -> str | None:
    if spec["sigma"] != 0.5:
        return None
    return "gnt_s0.5_sin" if _stylized(spec) else "gnt_s0.5"


def _gnt_mult_label(spec: dict) -> str:
    """Another sigma set than the paper's (Fig 2 draws each) is named by its range."""
    sigmas = spec["sigmas"]
    return "GNT mult" if list(sigmas) == PAPER_SIGMAS else f"GNT mult σ {min(sigmas):g}–{max(sigmas):g}"


register_kind(MethodKind("vanilla", label=lambda spec: "Vanilla", step=STEP, from_scratch=True,
                         paper_model=lambda spec: "vanilla"))
register_kind(MethodKind(
    "gnt", label=lambda spec: f"GNT σ={spec['sigma']:g}", step=STEP, sigma_sweep=True,
    paper_model=_gnt_paper_model, trained_on=_gaussian,
    noise_keys=lambda spec: {} if _stylized(spec) else {"sigmas": [spec["sigma"]]},
    training_spec=_without_unset_stylized,
))
register_kind(MethodKind(
    "gnt_mult", label=_gnt_mult_label, step=STEP,
    paper_model=lambda spec: "gnt_mult" if list(spec["sigmas"]) == PAPER_SIGMAS and not _stylized(spec) else None,
    trained_on=_gaussian,
    noise_keys=lambda spec: {} if _stylized(spec) else {"sigmas": list(spec["sigmas"])},
    training_spec=_without_unset_stylized,
))
# Speckle noise is one of ImageNet-C's extras, not of the 15 test corruptions: Table 4 brackets nothing.
register_kind(MethodKind(
    "speckle", label=lambda spec: "Speckle", step=STEP,
    paper_model=lambda spec: None if _stylized(spec) else "speckle", training_spec=_without_unset_stylized,
))
