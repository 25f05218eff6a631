"""The study a config describes: validated (the schema's defaults, then its dataset kind's checks)
and expanded into every model it trains and evaluates.

This module imports the others - loading (:mod:`noisetrain.config_load`), names and dataset kinds
(:mod:`noisetrain.config_names`), checks (:mod:`noisetrain.config_validate`) - and none of them
imports it; it re-exports their public names. Standard library, PyYAML and jsonschema only:
Snakemake imports it while it builds the job graph.
"""

from __future__ import annotations

from pathlib import Path

from noisetrain import config_validate
from noisetrain.config_load import REPO_ROOT, check_config_files, load_yaml_strict, merge, method_entry, with_defaults
from noisetrain.config_names import (
    BEST_GNT,
    RANDOM_WEIGHTS,
    ROBUSTNESS_INPUT_SIZE,
    eps_candidate_name,
    image_root,
    imagenet_c_corruptions,
    is_image_folder_dataset,
    looks_like_file,
    model_path,
    replicate_name,
    spec_hash,
    study_name,
    sweep_name,
)
from noisetrain.config_validate import check_device
from noisetrain.errors import ConfigError
from noisetrain.methods import fine_tuned, in_sigma_sweep, kind_of, label, trains_from_scratch
from noisetrain.models.architecture_names import input_size

__all__ = [
    "BEST_GNT", "REPO_ROOT", "ConfigError", "check_config_files", "check_device", "evaluation_models",
    "expand_methods", "image_root", "imagenet_c_corruptions", "init_method", "initial_weights",
    "is_image_folder_dataset", "load_config", "load_yaml_strict", "looks_like_file", "merge", "method_entry",
    "replicate_name", "robustness_models", "spec_hash", "study_name", "train_spec", "trained_methods",
    "validate_config",
]

# The network of the paper's ImageNet models; its other fine-tuned networks' rows, by the ResNet50
# model's id (Table 15: ANT 1x1 on DenseNet121).
PAPER_NETWORK = "resnet50"
OTHER_NETWORK_ROWS = {"densenet121": ("ant1x1",)}


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Return a validated copy of ``config`` with every default filled in.

    Raises ConfigError with a one-line message naming the offending key.
    """
    resolved = with_defaults(config, schema)
    checks = config_validate.checks_for(resolved)
    for check in checks.config:
        check(resolved)
    methods = expand_methods(resolved)  # raises on name clashes and a missing vanilla model
    for check in checks.methods:
        check(resolved, methods)
    if checks.models:
        models = evaluation_models(resolved)
        for check in checks.models:
            check(resolved, models)
    return resolved


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """Read a YAML config, merge ``overrides`` into it and validate (for CLIs and tests)."""
    config = load_yaml_strict(path)
    if overrides:
        config = merge(config, overrides)
    return validate_config(config)


def expand_methods(config: dict, every_replicate: bool = False) -> dict[str, dict]:
    """All methods of the study: the named ones, one ``gnt_s<sigma>`` per swept sigma, one
    ``<method>_eps<eps>`` per candidate of the eps search, and one ``<method>_seed<k>`` per
    replicate seed of the methods listed under ``seeds``. The replicates of the sweep's best
    model are known only once the sweep is chosen: ``every_replicate`` names those of every
    sweep point (for the wildcard and for building any of them), else they are left out."""
    methods = {name: dict(spec) for name, spec in config["methods"].items()}
    for sigma in config.get("sigma_sweep", []):
        name = sweep_name(sigma)
        if name in methods and methods[name] != {"kind": "gnt", "sigma": sigma}:
            raise ConfigError(f"config error at 'methods.{name}': clashes with sigma_sweep entry {sigma}")
        methods[name] = {"kind": "gnt", "sigma": float(sigma)}
    _check_vanilla(methods)
    methods.update(_eps_candidates(config, methods))
    methods.update(_replicates(config, methods, every_replicate))
    return methods


def _check_vanilla(methods: dict[str, dict]) -> None:
    if fine_tuned(methods) and "vanilla" not in methods:
        raise ConfigError(
            "config error at 'methods': fine-tuned methods "
            f"({', '.join(fine_tuned(methods))}) start from the vanilla model; add 'vanilla: {{kind: vanilla}}'"
        )


def _eps_candidates(config: dict, methods: dict[str, dict]) -> dict[str, dict]:
    search = config.get("eps_search")
    if not search:
        return {}
    base = methods.get(search["method"])
    if base is None or not kind_of(base).eps_choice:
        searchable = [m for m, spec in methods.items() if kind_of(spec).eps_choice]
        raise ConfigError(f"config error at 'eps_search.method': {search['method']!r} is not an ANT method; "
                          f"ANT methods: {', '.join(searchable) or 'none'}")
    return {eps_candidate_name(search["method"], eps): {**base, "eps": float(eps), "candidate_of": search["method"]}
            for eps in search["candidates"]}


def _replicates(config: dict, methods: dict[str, dict], every_replicate: bool) -> dict[str, dict]:
    seeds = config.get("seeds") or {}
    extra = [seed for seed in seeds.get("values", []) if seed != config["seed"]]
    listed = list(seeds.get("methods", []))
    if BEST_GNT in listed:
        listed.remove(BEST_GNT)
        if every_replicate:
            listed += [m for m, spec in methods.items() if in_sigma_sweep(spec)]
    return {replicate_name(method, seed): {**methods[method], "seed": seed, "replicate_of": method}
            for method in listed for seed in extra}


def train_spec(config: dict, method: str) -> dict:
    """Everything one training job needs: the method, its schedule and the shared settings."""
    spec = dict(expand_methods(config, every_replicate=True)[method])
    # The method's own budget (schedule) replaces keys of the shared schedule of its kind.
    shared = config["train"]["vanilla" if trains_from_scratch(spec) else "finetune"]
    schedule = {**shared, **spec.pop("schedule", {})}
    # The initial weights are the job's input, not part of its spec; a method's own network replaces the study's.
    spec.pop("init_weights", None)
    architecture = spec.pop("architecture", None)
    spec = kind_of(spec).training_spec(spec)
    return {
        "method": method,
        **spec,
        **schedule,
        "batch_size": config["train"]["batch_size"],
        "clean_fraction": config["train"]["clean_fraction"],
        "divergence_guard": config["train"]["divergence_guard"],
        "model": architecture or config["model"],
        "seed": spec.get("seed", config["seed"]),
        # Streamed image folders: the training crop (None: the network's input size).
        **({"crop_size": config["train"]["crop_size"]} if is_image_folder_dataset(config) else {}),
    }


def init_method(spec: dict) -> str | None:
    """The model a method is fine-tuned from: the vanilla model of the same seed (None: from scratch)."""
    if trains_from_scratch(spec):
        return None
    return replicate_name("vanilla", spec["seed"]) if "replicate_of" in spec else "vanilla"


# ---------------------------------------------------------------------------------------------
# Image folders (ImageNet): the vanilla model is loaded, every other method fine-tuned from it


def trained_methods(config: dict) -> dict[str, dict]:
    """The methods fine-tuned on ImageNet (every method but vanilla, sweeps expanded), by name."""
    return fine_tuned(expand_methods(config))


def initial_weights(config: dict, method: str) -> str:
    """What a method is fine-tuned from: its own init_weights, else the vanilla model's weights."""
    return _initial(config, trained_methods(config)[method])


def _initial(config: dict, spec: dict) -> str:
    return spec.get("init_weights") or config["methods"]["vanilla"]["weights"]


def _network(architecture: str) -> str | None:
    """The network a label names: any but the paper's."""
    return None if architecture == PAPER_NETWORK else architecture


def paper_model(spec: dict, architecture: str, init: str) -> str | None:
    """The paper's model (its id in paper_values.csv) that a fine-tuned method reproduces, when it
    is the paper's setting: pretrained ResNet50 (DenseNet121 for Table 15's ANT 1x1); its kind
    decides the rest (noise levels, generator depth)."""
    if init == RANDOM_WEIGHTS:
        return None
    model = kind_of(spec).paper_model(spec)
    if architecture == PAPER_NETWORK:
        return model
    return f"{model}_{architecture}" if model in OTHER_NETWORK_ROWS.get(architecture, ()) else None


def _vanilla(config: dict) -> dict:
    """The study's vanilla model, its weights loaded; the row names its network where it is not
    the paper's pretrained ResNet50."""
    spec, model = config["methods"]["vanilla"], config["model"]
    random = spec["weights"] == RANDOM_WEIGHTS
    network = f"{model} random init" if random else _network(model)
    return {
        "architecture": model,
        "weights": spec["weights"],
        "label": label(spec, network),
        "paper_model": kind_of(spec).paper_model(spec) if model == PAPER_NETWORK else None,
        "trained_on": [],
        "source": "method",
    }


def _fine_tuned(config: dict, name: str, spec: dict) -> dict:
    architecture, init = spec.get("architecture") or config["model"], _initial(config, spec)
    kind = kind_of(spec)
    return {
        "architecture": architecture,
        "weights": model_path(config, name),
        "fine_tuned_from": init,  # random init: one output per class
        "label": label(spec, _network(architecture)),
        "paper_model": paper_model(spec, architecture, init),
        "trained_on": kind.trained_on(spec),
        "source": "trained",
        **kind.noise_keys(spec),
    }


def evaluation_models(config: dict) -> dict[str, dict]:
    """Every model the ImageNet evaluation runs, by name: the study's vanilla model (its weights
    loaded), the fine-tuned ones and the external models. Each entry says how to build it and how
    to show it."""
    models = {"vanilla": _vanilla(config)}
    models.update({name: _fine_tuned(config, name, spec) for name, spec in trained_methods(config).items()})
    for name, spec in config["external_models"].items():
        models[name] = {
            "architecture": spec["architecture"],
            "weights": spec["weights"],
            "label": spec["label"] or name,
            "paper_model": spec["paper_model"],
            "trained_on": list(spec["trained_on"]),
            "source": "external",
        }
    # The rows' order (the study's models as configured, then the external ones): the models travel
    # to the jobs as JSON with sorted keys.
    for position, spec in enumerate(models.values()):
        spec["position"] = position
    return models


def robustness_models(config: dict) -> list[str]:
    """The evaluation models whose robustness is measured (Tables 2, 3, 5): robustness.methods
    ('all': every evaluation model that takes 224 x 224 images), in the evaluation set's order."""
    models = evaluation_models(config)
    chosen = config["robustness"]["methods"]
    if chosen == "all":
        return [name for name, spec in models.items() if input_size(spec["architecture"]) == ROBUSTNESS_INPUT_SIZE]
    return [name for name in models if name in chosen]
