"""The method-kind registry: what the pipeline asks about a kind of training method outside its
training step, answered in one entry per kind (``register_kind``) and looked up by the spec's
``kind`` (``kind_of``). Standard library only: Snakemake asks while it builds the job graph.

Adding a method kind:

1. a module in :mod:`noisetrain.methods` (imported by the package, found by itself) that calls
   ``register_kind(MethodKind(...))``; each field of :class:`MethodKind` says what it answers;
2. its training step, a class implementing ``noisetrain.train.steps.MethodStep``, named by the
   entry's ``step`` ('module:Class', imported by training jobs only: a step imports torch, so it
   lives under ``noisetrain.train``, or the entry reuses a step there, as the pixel-noise kinds do);
3. its keys and defaults in ``lib/noisetrain/config_schema.yaml`` (the ``kind`` enum and an ``if kind`` branch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from noisetrain.errors import ConfigError


def _none(spec: dict) -> None:
    return None


def _no_corruptions(spec: dict) -> list[str]:
    return []


def _no_keys(spec: dict) -> dict:
    return {}


def _always(spec: dict) -> bool:
    return True


def _no_check(name: str, spec: dict) -> None:
    return None


def _one(spec: dict) -> float:
    return 1.0


def _as_is(spec: dict) -> dict:
    return spec


@dataclass(frozen=True)
class MethodKind:
    """One kind of training method. Each function takes the method's spec (a config entry with the
    schema's defaults filled in, or a training spec)."""

    name: str
    label: Callable[[dict], str]  # its name in every table and figure ('+ SIN' and the network are added)
    step: str  # 'module:Class' of its training step, imported by a training job only (torch)
    from_scratch: bool = False  # trained from scratch with vanilla's schedule; else fine-tuned from vanilla
    image_folders: bool = True  # runs on image-folder datasets (ImageNet) too; False: small datasets only
    sigma_sweep: bool = False  # a single-sigma model: a point of the sigma sweep (Fig 6)
    eps_choice: bool = False  # its eps may be chosen by the sweep ('auto') or the eps search ('search')
    learns_noise: bool = False  # trains noise generators (Fig 4 shows them)
    paper_model: Callable[[dict], str | None] = _none  # the paper's model it reproduces (paper_values.csv)
    paper_label: str | None = None  # the paper's own name for that model, where it is not ours
    trained_on: Callable[[dict], list[str]] = _no_corruptions  # test corruptions bracketed in Table 4
    noise_keys: Callable[[dict], dict] = _no_keys  # what Fig 2 (sigmas) and Table 16 (generator) read
    main_tables: Callable[[dict], bool] = _always  # False: an ablation shown in its own table only
    check: Callable[[str, dict], None] = _no_check  # its own config checks (name, expanded spec)
    training_spec: Callable[[dict], dict] = _as_is  # its own shaping of a training job's spec
    step_cost: Callable[[dict], float] = _one  # a training step in vanilla steps (the cluster's time estimate)


KINDS: dict[str, MethodKind] = {}


def register_kind(kind: MethodKind) -> MethodKind:
    if kind.name in KINDS:
        raise ConfigError(f"method kind {kind.name!r} is registered twice")
    KINDS[kind.name] = kind
    return kind


def kind_of(spec: dict | str) -> MethodKind:
    """The entry of a spec's kind (or of a kind's name)."""
    name = spec if isinstance(spec, str) else spec.get("kind")
    if name not in KINDS:
        raise ConfigError(f"unknown method kind {name!r}; known: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def has_kind(spec: dict) -> bool:
    """Whether a spec names its kind (a result record of a model from elsewhere may carry none)."""
    return "kind" in spec


def label(spec: dict, network: str | None = None) -> str:
    """A model's name in every table and figure, e.g. 'GNT σ=0.5 + SIN (densenet121)'; ``network``:
    the architecture, where it is not the one the paper uses for the dataset."""
    text = kind_of(spec).label(spec) + (" + SIN" if spec.get("stylized_path") else "")
    return f"{text} ({network})" if network else text


def trains_from_scratch(spec: dict) -> bool:
    return kind_of(spec).from_scratch


def fine_tuned(specs: dict[str, dict]) -> dict[str, dict]:
    """The methods fine-tuned from the vanilla model, by name."""
    return {name: spec for name, spec in specs.items() if not trains_from_scratch(spec)}


def paper_model(spec: dict) -> str | None:
    """The paper's model (its id in paper_values.csv) a model reproduces on the paper's network; None
    for a spec without a kind."""
    return kind_of(spec).paper_model(spec) if has_kind(spec) else None


def noise_keys(spec: dict) -> dict:
    """What Fig 2 (``sigmas``) and Table 16 (``generator_depth``, ``depth_ablation``: one of its
    series) read of a model; {} for a spec without a kind."""
    return kind_of(spec).noise_keys(spec) if has_kind(spec) else {}


def in_sigma_sweep(spec: dict) -> bool:
    return has_kind(spec) and kind_of(spec).sigma_sweep


def eps_choice(spec: dict) -> str | None:
    """'auto' or 'search' where the method's eps is chosen by the study; None otherwise."""
    chosen = kind_of(spec).eps_choice and spec["eps"] in ("auto", "search")
    return spec["eps"] if chosen else None


def image_folder_kinds() -> list[str]:
    return sorted(name for name, kind in KINDS.items() if kind.image_folders)
