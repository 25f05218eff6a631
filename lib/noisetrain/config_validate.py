"""Every check across a config's keys, for every dataset: which ones run is the dataset kind's
(``CHECKS``), not an ``if imagenet`` here and there. Checks run in three stages, since the study's
expansion is :mod:`noisetrain.config`'s (which imports this module, never the reverse): on the
config alone, on its expanded methods, then on the evaluated models (image folders). The checks
of the data and files the config names are :mod:`noisetrain.config_data`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from noisetrain import methods as kinds
from noisetrain.config_data import (
    check_corruption_names,
    check_dataset_root,
    check_external_models,
    check_image_data,
    check_stylized,
    check_weights,
)
from noisetrain.config_names import BEST_GNT, PUBLISHED_MCE_REFERENCE, ROBUSTNESS_INPUT_SIZE, dataset_kind
from noisetrain.errors import ConfigError
from noisetrain.models.architecture_names import TORCHVISION_ARCHITECTURES, input_size

# ---------------------------------------------------------------------------------------------
# Every dataset


def check_architecture(config: dict) -> None:
    """The small datasets' models are 1-channel 28x28 networks; image folders' are torchvision's."""
    allowed = dataset_kind(config).architectures
    if config["model"] not in allowed:
        raise ConfigError(
            f"config error at 'model': {config['model']!r} does not fit dataset "
            f"{config['dataset']['name']}; use one of {', '.join(allowed)}"
        )


def check_kinds(config: dict, methods: dict[str, dict]) -> None:
    """Each method's kind runs on the dataset and passes the kind's own checks."""
    folders = dataset_kind(config).image_folders
    for name, spec in methods.items():
        kind = kinds.kind_of(spec)
        if folders and not kind.image_folders:
            raise ConfigError(f"config error at 'methods.{name}.kind': {kind.name!r} trains on the small datasets only; "
                              f"on {config['dataset']['name']} the methods are {', '.join(kinds.image_folder_kinds())}")
        kind.check(name, spec)


def check_device(config: dict, cuda_available: bool) -> None:
    """device: cuda on a machine without a visible GPU fails every job; say so before any runs.
    The caller passes torch.cuda.is_available() so that this module never imports torch."""
    if config.get("device") == "cuda" and not cuda_available:
        raise ConfigError(
            "config error at 'device': 'cuda' but no GPU is visible here (torch.cuda.is_available() "
            "is False); use device: auto or cpu, or run on a machine with a GPU"
        )


# ---------------------------------------------------------------------------------------------
# The small datasets' study: sweeps, eps choices, replicates, robustness


def check_small_data_keys(config: dict) -> None:
    """The image folders' keys on a small dataset would be silently ignored: refuse them."""
    if config["external_models"]:
        raise ConfigError(
            "config error at 'external_models': released models are evaluated on imagenet only; "
            "remove the key or use dataset: {name: imagenet}"
        )
    if config["dataset"]["sample"]:
        raise ConfigError("config error at 'dataset.sample': the photographs' sample set stands in for imagenet only")
    if config["imagenet_c"]["root"] or config["imagenet_c"]["generate"]:
        raise ConfigError(
            "config error at 'imagenet_c': ImageNet-C is for dataset imagenet; this study uses "
            f"{config['dataset']['name']} (its corruptions are under 'corruptions')"
        )
    for name, spec in config["methods"].items():
        if spec.get("weights") is not None:
            raise ConfigError(
                f"config error at 'methods.{name}.weights': on {config['dataset']['name']} the vanilla "
                "model is trained; remove weights (they load ImageNet models)"
            )
        for key in ("architecture", "init_weights"):
            if spec.get(key) is not None:
                raise ConfigError(f"config error at 'methods.{name}.{key}': ImageNet only; on "
                                  f"{config['dataset']['name']} every model is the study's model, fine-tuned from vanilla")


def check_seeds(config: dict) -> None:
    """Replicates train every listed method once per seed; fine-tuned ones start from the vanilla
    model of their own seed, so vanilla must be among them."""
    seeds = config["seeds"]
    if not seeds["methods"]:
        return
    if config["seed"] not in seeds["values"] or len(set(seeds["values"])) != len(seeds["values"]):
        raise ConfigError(f"config error at 'seeds.values': {seeds['values']} must list the study's seed "
                          f"({config['seed']}) and each other seed once")
    has_sweep = bool(config["sigma_sweep"]) or any(kinds.in_sigma_sweep(spec) for spec in config["methods"].values())
    for index, name in enumerate(seeds["methods"]):
        if (name == BEST_GNT and not has_sweep) or (name != BEST_GNT and name not in config["methods"]):
            known = ", ".join([*config["methods"], BEST_GNT] if has_sweep else config["methods"])
            raise ConfigError(f"config error at 'seeds.methods.{index}': {name!r} is not a method of the study "
                              f"to replicate; known: {known}")
    if "vanilla" not in seeds["methods"]:
        raise ConfigError("config error at 'seeds.methods': fine-tuned replicates start from the vanilla model of "
                          "their own seed; add vanilla to the list")


def _eps_chosen_by(methods: dict[str, dict], config: dict, choice: str) -> list[str]:
    """The keys whose eps is chosen by ``choice`` ('auto': the sigma sweep, 'search': the eps search)."""
    keys = [f"methods.{name}.eps" for name, spec in methods.items() if kinds.eps_choice(spec) == choice]
    return keys + (["robustness.an_eps"] if config["robustness"]["an_eps"] == choice else [])


def check_eps_choices(config: dict, methods: dict[str, dict]) -> None:
    """eps 'auto' is chosen from the sigma sweep, 'search' by the eps search: each must be configured."""
    auto = _eps_chosen_by(methods, config, "auto")
    if auto and not any(kinds.in_sigma_sweep(spec) for spec in methods.values()):
        raise ConfigError(
            f"config error at '{auto[0]}': 'auto' chooses eps from the sigma sweep, but no single-sigma "
            "GNT model is configured; add sigma_sweep values or give eps as a number"
        )
    searched = _eps_chosen_by(methods, config, "search")
    if searched and not config["eps_search"]:
        raise ConfigError(f"config error at '{searched[0]}': 'search' takes the eps chosen by eps_search, which is "
                          "not configured; add eps_search {method, candidates} or give eps as a number or 'auto'")


def check_robustness_methods(config: dict, methods: dict[str, dict]) -> None:
    """Every measured model must be trained; best_gnt needs a sweep to choose from."""
    chosen = config["robustness"]["methods"]
    if chosen == "all":
        return
    has_sweep = any(kinds.in_sigma_sweep(spec) for spec in methods.values())
    for index, name in enumerate(chosen):
        where = f"config error at 'robustness.methods.{index}'"
        if name == BEST_GNT and not has_sweep:
            raise ConfigError(
                f"{where}: '{BEST_GNT}' is the sigma sweep's best model, but no single-sigma GNT model "
                "is configured; add sigma_sweep values or remove it"
            )
        if name != BEST_GNT and name not in methods:
            known = ", ".join([*methods, BEST_GNT] if has_sweep else methods)
            raise ConfigError(f"{where}: unknown method '{name}'; known: {known}")


# ---------------------------------------------------------------------------------------------
# Image folders (ImageNet): the loaded vanilla model, the fine-tuned ones, the robustness set


def check_image_study(config: dict) -> None:
    """The vanilla model is loaded; one seed, numbers for eps; a batch that splits over the GPUs."""
    vanilla = config["methods"].get("vanilla")
    if vanilla is None or vanilla["weights"] is None:
        raise ConfigError(
            "config error at 'methods.vanilla.weights': the ImageNet vanilla model is loaded, not "
            "trained; give a torchvision weights name (IMAGENET1K_V1) or a checkpoint file"
        )
    check_weights(vanilla["weights"], "methods.vanilla.weights")
    if config["eps_search"] or config["seeds"]["methods"]:
        key = "eps_search" if config["eps_search"] else "seeds"
        raise ConfigError(f"config error at '{key}': the small datasets' study only; on imagenet give ANT's eps as "
                          "a number (the paper's 135 for 1x1, 70 for 3x3) and train one seed")
    train = config["train"]
    if train["batch_size"] % train["gpus_per_job"]:
        raise ConfigError(f"config error at 'train.batch_size': {train['batch_size']} images cannot be split evenly "
                          f"over train.gpus_per_job = {train['gpus_per_job']} GPUs; make it a multiple")


def check_fine_tuned(config: dict, methods: dict[str, dict]) -> None:
    """The fine-tuned methods (appendix B.1): a number for eps, their network and initial weights, +SIN's images."""
    for name, spec in kinds.fine_tuned(methods).items():
        where = f"config error at 'methods.{name}"
        if kinds.eps_choice(spec):
            raise ConfigError(f"{where}.eps': {spec['eps']!r} chooses eps from the small datasets' sweeps; on imagenet "
                              "give a number (appendix B.1: 135.0 for ANT 1x1, 70.0 for ANT 3x3)")
        architecture = spec.get("architecture")
        if architecture is not None and architecture not in TORCHVISION_ARCHITECTURES:
            raise ConfigError(f"{where}.architecture': unknown {architecture!r}; known: {', '.join(TORCHVISION_ARCHITECTURES)}")
        if architecture not in (None, config["model"]) and spec.get("init_weights") is None:
            raise ConfigError(f"{where}.init_weights': a {architecture} cannot start from the vanilla {config['model']}; "
                              f"give its own weights (e.g. {architecture.capitalize()}_Weights.IMAGENET1K_V1)")
        if spec.get("init_weights") is not None:
            check_weights(spec["init_weights"], f"methods.{name}.init_weights")
        if spec.get("stylized_path") is not None:
            check_stylized(config, name, spec["stylized_path"])


def check_mce_reference(config: dict, models: dict[str, dict]) -> None:
    reference = config["evaluation"]["mce_reference"]
    if reference == PUBLISHED_MCE_REFERENCE:
        return
    if models.get(reference, {}).get("architecture") != "alexnet":
        alexnets = [name for name, spec in models.items() if spec["architecture"] == "alexnet"]
        raise ConfigError(
            f"config error at 'evaluation.mce_reference': {reference!r} is not an evaluated AlexNet; "
            f"use '{PUBLISHED_MCE_REFERENCE}' or one of: {', '.join(alexnets) or '(none configured)'}"
        )


def check_robustness(config: dict, models: dict[str, dict]) -> None:
    """An eps as a number, known 224-input models, and image counts the val list can give."""
    an_eps = config["robustness"]["an_eps"]
    if isinstance(an_eps, str):
        raise ConfigError(
            f"config error at 'robustness.an_eps': {an_eps!r} takes eps from the small datasets' sigma "
            "sweep or eps search, which imagenet does not run; give a number (the paper's ImageNet "
            "ANT 1x1 eps: 135.0)"
        )
    if config["robustness"]["methods"] != "all":
        for index, name in enumerate(config["robustness"]["methods"]):
            _check_measured_model(models, name, f"config error at 'robustness.methods.{index}'")
    _check_image_counts(config)


def _check_measured_model(models: dict[str, dict], name: str, where: str) -> None:
    if name not in models:
        raise ConfigError(f"{where}: unknown model {name!r}; known: {', '.join(models)} (or 'all')")
    size = input_size(models[name]["architecture"])
    if size != ROBUSTNESS_INPUT_SIZE:
        raise ConfigError(
            f"{where}: {name!r} ({models[name]['architecture']}) takes {size}x{size} images; epsilon* "
            f"and the attacks are measured on {ROBUSTNESS_INPUT_SIZE}x{ROBUSTNESS_INPUT_SIZE} crops "
            "only (an L2 size over another pixel count would not compare); remove it"
        )


def _check_image_counts(config: dict) -> None:
    robustness, attacks = config["robustness"], config["attacks"]
    if attacks["images"] > robustness["images"]:
        raise ConfigError(
            f"config error at 'attacks.images': {attacks['images']} is more than robustness.images "
            f"({robustness['images']}); the attacks use a subset of the robustness images"
        )
    listed = config["imagenet_c"]["images"]
    sample = config["dataset"]["sample"]
    if sample:
        listed = min(listed or float("inf"), sample["classes"] * sample["val_per_class"])
        if robustness["images"] > sample["classes"] * sample["train_per_class"]:
            raise ConfigError(
                f"config error at 'robustness.images': {robustness['images']} is more than the sample's "
                f"{sample['classes'] * sample['train_per_class']} training images (classes x train_per_class), "
                "on which the adversarial-noise generators learn; ask for fewer"
            )
    if listed is not None and robustness["images"] > listed:
        raise ConfigError(
            f"config error at 'robustness.images': {robustness['images']} is more than the {listed} val "
            "images the evaluation lists (imagenet_c.images, or the sample's classes x val_per_class); "
            "ask for fewer"
        )


# Classes of the small datasets: digits 0-9 in both.
SMALL_DATA_CLASSES = 10


def check_subsets(config: dict) -> None:
    """A stratified subset holds at least one image of each class."""
    for key in ("subset_train", "subset_test"):
        size = config["dataset"][key]
        if size is not None and size < SMALL_DATA_CLASSES:
            raise ConfigError(
                f"config error at 'dataset.{key}': {size} images cannot hold each of the {SMALL_DATA_CLASSES} classes "
                f"of a stratified subset; ask for {SMALL_DATA_CLASSES} or more (null for all)"
            )


# ---------------------------------------------------------------------------------------------
# Which checks each dataset kind runs


@dataclass(frozen=True)
class Checks:
    config: tuple[Callable[[dict], None], ...]  # on the schema-checked config alone
    methods: tuple[Callable[[dict, dict], None], ...]  # with the expanded methods
    models: tuple[Callable[[dict, dict], None], ...] = ()  # with the evaluated models


CHECKS = {
    "arrays": Checks(
        config=(check_architecture, check_small_data_keys, check_subsets, check_seeds, check_corruption_names,
                check_dataset_root),
        methods=(check_kinds, check_eps_choices, check_robustness_methods),
    ),
    "image_folders": Checks(
        config=(check_architecture, check_image_data, check_image_study, check_external_models),
        methods=(check_kinds, check_fine_tuned),
        models=(check_mce_reference, check_robustness),
    ),
}


def checks_for(config: dict) -> Checks:
    return CHECKS[dataset_kind(config).name]
