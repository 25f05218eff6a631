"""The ImageNet wing's config checks and its evaluation set, kept light (standard library only):
Snakemake imports this while it builds the job graph.

A wrong root, a missing ImageNet-C folder or a missing checkpoint stops the run here, before any
job, with one line naming the path and what was expected.
"""

from __future__ import annotations

import math
from pathlib import Path

from noisetrain.data.imagenet_c_names import IMAGENET_C_CORRUPTIONS, IMAGENET_C_EXTRAS
from noisetrain.data.imagenet_layout import available_extras, check_imagenet_c, check_imagenet_root
from noisetrain.errors import ConfigError
from noisetrain.models.architecture_names import (
    DEFAULT_INPUT_SIZE,
    SMALL_DATA_ARCHITECTURES,
    TORCHVISION_ARCHITECTURES,
    input_size,
)

IMAGE_FOLDER_DATASETS = frozenset({"imagenet"})
PUBLISHED_MCE_REFERENCE = "published"
RANDOM_WEIGHTS = "random"


def is_image_folder_dataset(config: dict) -> bool:
    return config["dataset"]["name"] in IMAGE_FOLDER_DATASETS


def study_name(config: dict) -> str:
    """The results folder's name: the dataset's, or imagenet_sample for the photographs' smoke set
    (so that a smoke run never mixes with a real ImageNet study)."""
    dataset = config["dataset"]
    return f"{dataset['name']}_sample" if dataset.get("sample") else dataset["name"]


def image_root(config: dict) -> str:
    """The ImageFolder root holding val/ (and train/): the configured one, or the sample set's."""
    if config["dataset"]["sample"]:
        return f"results/{study_name(config)}/data/images"
    return config["dataset"]["root"]


def check_architecture(config: dict) -> None:
    """The small datasets' models are 1-channel 28x28 networks; ImageNet's are torchvision's."""
    allowed = TORCHVISION_ARCHITECTURES if is_image_folder_dataset(config) else SMALL_DATA_ARCHITECTURES
    if config["model"] not in allowed:
        raise ConfigError(
            f"config error at 'model': {config['model']!r} does not fit dataset "
            f"{config['dataset']['name']}; use one of {', '.join(allowed)}"
        )


def check_small_data_keys(config: dict) -> None:
    """The ImageNet-only keys on a small dataset would be silently ignored: refuse them."""
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


def check_imagenet_config(config: dict) -> None:
    """Paths, models and ImageNet-C of an imagenet config, checked on disk."""
    dataset = config["dataset"]
    if dataset["sample"] and dataset["root"]:
        raise ConfigError(
            "config error at 'dataset': give root (your ImageNet) or sample (the smoke set made from "
            "scikit-image's photographs), not both"
        )
    if not dataset["sample"] and dataset["root"] is None:
        raise ConfigError(
            "config error at 'dataset.root': imagenet needs root, the folder holding val/ (and "
            "train/) in ImageFolder layout <root>/val/<wnid>/<image>.JPEG"
        )
    # The sample set does not exist before its data rule runs: its layout is the rule's business.
    # train/ is needed too: the fresh adversarial-noise generators of epsilon* learn on its images.
    classes = None if dataset["sample"] else check_imagenet_root(dataset["root"], require_train=True)
    _check_methods(config)
    _check_external_models(config)
    _check_imagenet_c(config, classes)
    _check_mce_reference(config)
    _check_robustness(config)


# The methods fine-tuned on ImageNet (appendix B.1); the adversarial-training baselines are MNIST's.
IMAGENET_TRAINED_KINDS = ("gnt", "gnt_mult", "speckle", "ant")


def _check_methods(config: dict) -> None:
    vanilla = config["methods"].get("vanilla")
    if vanilla is None or vanilla["weights"] is None:
        raise ConfigError(
            "config error at 'methods.vanilla.weights': the ImageNet vanilla model is loaded, not "
            "trained; give a torchvision weights name (IMAGENET1K_V1) or a checkpoint file"
        )
    _check_weights(vanilla["weights"], "methods.vanilla.weights")
    if config["eps_search"] or config["seeds"]["methods"]:
        key = "eps_search" if config["eps_search"] else "seeds"
        raise ConfigError(f"config error at '{key}': the small datasets' study only; on imagenet give ANT's eps as "
                          "a number (the paper's 135 for 1x1, 70 for 3x3) and train one seed")
    for name, spec in trained_methods(config).items():
        _check_trained_method(config, name, spec)
    train = config["train"]
    if train["batch_size"] % train["gpus_per_job"]:
        raise ConfigError(f"config error at 'train.batch_size': {train['batch_size']} images cannot be split evenly "
                          f"over train.gpus_per_job = {train['gpus_per_job']} GPUs; make it a multiple")


def _check_trained_method(config: dict, name: str, spec: dict) -> None:
    where = f"config error at 'methods.{name}"
    if spec["kind"] not in IMAGENET_TRAINED_KINDS:
        raise ConfigError(f"{where}.kind': {spec['kind']!r} is a small-data baseline; on imagenet the methods are "
                          f"vanilla and {', '.join(IMAGENET_TRAINED_KINDS)}")
    if spec["kind"] == "ant" and isinstance(spec["eps"], str):
        raise ConfigError(f"{where}.eps': {spec['eps']!r} chooses eps from the small datasets' sweeps; on imagenet give "
                          "a number (appendix B.1: 135.0 for ANT 1x1, 70.0 for ANT 3x3)")
    architecture = spec.get("architecture")
    if architecture is not None and architecture not in TORCHVISION_ARCHITECTURES:
        raise ConfigError(f"{where}.architecture': unknown {architecture!r}; known: {', '.join(TORCHVISION_ARCHITECTURES)}")
    if architecture not in (None, config["model"]) and spec.get("init_weights") is None:
        raise ConfigError(f"{where}.init_weights': a {architecture} cannot start from the vanilla {config['model']}; "
                          f"give its own weights (e.g. {architecture.capitalize()}_Weights.IMAGENET1K_V1)")
    if spec.get("init_weights") is not None:
        _check_weights(spec["init_weights"], f"methods.{name}.init_weights")
    if spec.get("stylized_path") is not None:
        _check_stylized(config, name, spec["stylized_path"])


def _check_stylized(config: dict, name: str, path: str) -> None:
    """Stylized-ImageNet is the user's (the pipeline does not make it); the smoke set has a stand-in."""
    where = f"config error at 'methods.{name}.stylized_path'"
    if config["dataset"]["sample"]:
        if path != sample_stylized_dir(config):
            raise ConfigError(f"{where}: the sample set's stylized stand-in is {sample_stylized_dir(config)}; use that path")
        return
    if not Path(path).is_dir():
        raise ConfigError(
            f"{where}: {path} is not a folder. Stylized-ImageNet is not made by this pipeline: make it with Geirhos "
            "et al.'s stylization code and give its train folder, which mirrors ImageNet's train/ (<wnid>/<file>)"
        )


def sample_stylized_dir(config: dict) -> str:
    """The smoke set's stand-in for Stylized-ImageNet (its training images restyled), made with the sample."""
    return f"{image_root(config)}/stylized"


def trained_methods(config: dict) -> dict[str, dict]:
    """The methods fine-tuned on ImageNet (every method but vanilla, sweeps expanded), by name."""
    from noisetrain.config import expand_methods  # config imports this module

    return {name: spec for name, spec in expand_methods(config).items() if spec["kind"] != "vanilla"}


def initial_weights(config: dict, method: str) -> str:
    """What a method is fine-tuned from: its own init_weights, else the vanilla model's weights."""
    return _initial(config, trained_methods(config)[method])


def _initial(config: dict, spec: dict) -> str:
    return spec.get("init_weights") or config["methods"]["vanilla"]["weights"]


def model_path(config: dict, method: str) -> str:
    return f"results/{study_name(config)}/models/{method}.pt"


def _check_external_models(config: dict) -> None:
    for name, spec in config["external_models"].items():
        where = f"external_models.{name}"
        if name in config["methods"]:
            raise ConfigError(f"config error at '{where}': the name is also a method's; rename one of them")
        if spec["architecture"] not in TORCHVISION_ARCHITECTURES:
            raise ConfigError(
                f"config error at '{where}.architecture': unknown {spec['architecture']!r}; "
                f"known: {', '.join(TORCHVISION_ARCHITECTURES)}"
            )
        _check_weights(spec["weights"], f"{where}.weights")
        unknown = [c for c in spec["trained_on"] if c not in (*IMAGENET_C_CORRUPTIONS, *IMAGENET_C_EXTRAS)]
        if unknown:
            raise ConfigError(f"config error at '{where}.trained_on': unknown ImageNet-C corruption {unknown[0]!r}")


def looks_like_file(weights: str) -> bool:
    """A checkpoint path, as opposed to a torchvision weights name such as ResNet50_Weights.IMAGENET1K_V1."""
    return "/" in weights or weights.endswith((".pt", ".pth", ".tar", ".ckpt", ".bin"))


def _check_weights(weights: str, where: str) -> None:
    if looks_like_file(weights) and not Path(weights).is_file():
        raise ConfigError(
            f"config error at '{where}': checkpoint file {weights} does not exist; download it there or correct the path"
        )


def _check_imagenet_c(config: dict, classes: list[str] | None) -> None:
    source = config["imagenet_c"]
    if bool(source["root"]) == source["generate"]:
        raise ConfigError(
            "config error at 'imagenet_c': give either root (the published files) or generate: true "
            "(made from the val images), exactly one of them"
        )
    known = (*IMAGENET_C_CORRUPTIONS, *IMAGENET_C_EXTRAS)
    for index, name in enumerate(source["corruptions"] or ()):
        if name not in known:
            raise ConfigError(f"config error at 'imagenet_c.corruptions.{index}': unknown {name!r}; known: {', '.join(known)}")
    if source["root"] and classes is not None:
        check_imagenet_c(source["root"], imagenet_c_corruptions(config), source["severities"], classes)


def imagenet_c_corruptions(config: dict) -> list[str]:
    """The corruptions evaluated: the configured ones, or the 15 plus the extras (those present in a
    published root; all four when generated)."""
    source = config["imagenet_c"]
    if source["corruptions"]:
        return list(source["corruptions"])
    extras = available_extras(source["root"]) if source["root"] else list(IMAGENET_C_EXTRAS)
    return [*IMAGENET_C_CORRUPTIONS, *extras]


def _check_mce_reference(config: dict) -> None:
    reference = config["evaluation"]["mce_reference"]
    if reference == PUBLISHED_MCE_REFERENCE:
        return
    models = evaluation_models(config)
    if models.get(reference, {}).get("architecture") != "alexnet":
        alexnets = [name for name, spec in models.items() if spec["architecture"] == "alexnet"]
        raise ConfigError(
            f"config error at 'evaluation.mce_reference': {reference!r} is not an evaluated AlexNet; "
            f"use '{PUBLISHED_MCE_REFERENCE}' or one of: {', '.join(alexnets) or '(none configured)'}"
        )


def trained_on(spec: dict) -> list[str]:
    """The ImageNet-C corruptions a fine-tuned model counts as trained on, as the paper brackets its
    Table 4: Gaussian noise for GNT and ANT 1x1 (whose learned noise is pixel-wise too); ANT 3x3's
    spatially correlated noise and Speckle (an extra, not one of the 15) bracket nothing."""
    if spec["kind"] in ("gnt", "gnt_mult") or (spec["kind"] == "ant" and spec["kernel"] == "1x1"):
        return ["gaussian_noise"]
    return []


def _noise_keys(spec: dict) -> dict:
    """What Fig 2 (the sigmas of GNT models without SIN) and Table 16 (the generator) read of a model."""
    sin = bool(spec.get("stylized_path"))
    if spec["kind"] in ("gnt", "gnt_mult") and not sin:
        return {"sigmas": [spec["sigma"]] if spec["kind"] == "gnt" else list(spec["sigmas"])}
    if spec["kind"] == "ant":
        ablation = spec["kernel"] == "1x1" and spec["replay"] and not sin
        return {"generator_depth": spec["depth"], "generator_kernel": spec["kernel"], "depth_ablation": ablation}
    return {}


def _ant_name(spec: dict) -> str:
    return f"ant{spec['kernel']}" + ("_sin" if spec.get("stylized_path") else "")


def paper_model(spec: dict, architecture: str, init: str) -> str | None:
    """The paper's model (its id in paper_values.csv) that a fine-tuned method reproduces, when it
    is the paper's setting: pretrained ResNet50 (DenseNet121 for Table 15's ANT 1x1), the paper's
    noise levels and generator depth 4 (Table 16 matches other depths itself)."""
    if init == RANDOM_WEIGHTS or architecture not in ("resnet50", "densenet121"):
        return None
    kind, sin = spec["kind"], bool(spec.get("stylized_path"))
    if architecture == "densenet121":
        plain_ant = kind == "ant" and spec["kernel"] == "1x1" and spec["replay"] and not sin and spec["depth"] == 4
        return "ant1x1_densenet121" if plain_ant else None
    if kind == "gnt":
        return ("gnt_s0.5_sin" if sin else "gnt_s0.5") if spec["sigma"] == 0.5 else None
    if kind == "gnt_mult" and not sin and list(spec["sigmas"]) == [0.08, 0.12, 0.18, 0.26, 0.38]:
        return "gnt_mult"
    if kind == "speckle" and not sin:
        return "speckle"
    if kind == "ant" and spec["depth"] == 4:
        if not spec["replay"]:
            return "ant1x1_noreplay" if spec["kernel"] == "1x1" and not sin else None
        return _ant_name(spec)
    if kind == "ant" and spec["kernel"] == "1x1" and spec["replay"] and not sin:
        return f"ant1x1_depth{spec['depth']}"  # Table 16's other generator depths
    return None


def method_label(name: str, spec: dict, architecture: str) -> str:
    """A fine-tuned model's row label, e.g. 'GNT σ0.5', 'ANT 1x1 + SIN', 'ANT 1x1 depth 2 (mobilenet_v3_small)'."""
    kind, sin = spec["kind"], " + SIN" if spec.get("stylized_path") else ""
    if kind == "gnt":
        text = f"GNT σ{spec['sigma']:g}"
    elif kind == "gnt_mult":
        text = "GNT mult (σ in " + ", ".join(f"{s:g}" for s in spec["sigmas"]) + ")"
    elif kind == "speckle":
        text = "Speckle"
    elif kind == "ant":
        text = f"ANT {spec['kernel']}" + ("" if spec["replay"] else " w/o EP")
        text += "" if spec["depth"] == 4 else f" depth {spec['depth']}"
    else:
        text = name
    return text + sin + ("" if architecture == "resnet50" else f" ({architecture})")


def _vanilla_label(config: dict) -> str:
    """'Vanilla' for the paper's model; otherwise the row says which network it is."""
    if config["model"] == "resnet50" and config["methods"]["vanilla"]["weights"] != RANDOM_WEIGHTS:
        return "Vanilla"
    random = " random init" if config["methods"]["vanilla"]["weights"] == RANDOM_WEIGHTS else ""
    return f"Vanilla ({config['model']}{random})"


def evaluation_models(config: dict) -> dict[str, dict]:
    """Every model the ImageNet evaluation runs, by name: the study's vanilla model (its weights
    loaded) and the external models. Each entry says how to build it and how to show it."""
    vanilla = config["methods"]["vanilla"]
    models = {
        "vanilla": {
            "architecture": config["model"],
            "weights": vanilla["weights"],
            "label": _vanilla_label(config),
            # The paper's vanilla model is torchvision's pretrained ResNet50.
            "paper_model": "vanilla" if config["model"] == "resnet50" else None,
            "trained_on": [],
            "source": "method",
        },
    }
    for name, spec in trained_methods(config).items():
        architecture, init = spec.get("architecture") or config["model"], _initial(config, spec)
        models[name] = {
            "architecture": architecture,
            "weights": model_path(config, name),
            "fine_tuned_from": init,  # random init: one output per class
            "label": method_label(name, spec, architecture),
            "paper_model": paper_model(spec, architecture, init),
            "trained_on": trained_on(spec),
            "source": "trained",
            **_noise_keys(spec),
        }
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


# ---------------------------------------------------------------------------------------------
# Robustness: epsilon* along noise and the attacks (Tables 2, 3, 5)

# The robustness set is one array of val images at the evaluation crop of ResNet50 and most models.
# epsilon* is an L2 size over an image's pixels, so numbers at another input size (InceptionV3's
# 299) would not compare with these; such models are not measured.
ROBUSTNESS_INPUT_SIZE = DEFAULT_INPUT_SIZE


def robustness_models(config: dict) -> list[str]:
    """The evaluation models whose robustness is measured: robustness.methods ('all': every
    evaluation model that takes 224 x 224 images), in the evaluation set's order."""
    models = evaluation_models(config)
    chosen = config["robustness"]["methods"]
    if chosen == "all":
        return [name for name, spec in models.items() if input_size(spec["architecture"]) == ROBUSTNESS_INPUT_SIZE]
    return [name for name in models if name in chosen]


def _check_robustness(config: dict) -> None:
    """An eps as a number, known 224-input models, and image counts the val list can give."""
    robustness, attacks = config["robustness"], config["attacks"]
    an_eps = robustness["an_eps"]
    if isinstance(an_eps, str):
        raise ConfigError(
            f"config error at 'robustness.an_eps': {an_eps!r} takes eps from the small datasets' sigma "
            "sweep or eps search, which imagenet does not run; give a number (the paper's ImageNet "
            "ANT 1x1 eps: 135.0)"
        )
    models = evaluation_models(config)
    if robustness["methods"] != "all":
        for index, name in enumerate(robustness["methods"]):
            where = f"config error at 'robustness.methods.{index}'"
            if name not in models:
                raise ConfigError(f"{where}: unknown model {name!r}; known: {', '.join(models)} (or 'all')")
            size = input_size(models[name]["architecture"])
            if size != ROBUSTNESS_INPUT_SIZE:
                raise ConfigError(
                    f"{where}: {name!r} ({models[name]['architecture']}) takes {size}x{size} images; epsilon* "
                    f"and the attacks are measured on {ROBUSTNESS_INPUT_SIZE}x{ROBUSTNESS_INPUT_SIZE} crops "
                    "only (an L2 size over another pixel count would not compare); remove it"
                )
    if attacks["images"] > robustness["images"]:
        raise ConfigError(
            f"config error at 'attacks.images': {attacks['images']} is more than robustness.images "
            f"({robustness['images']}); the attacks use a subset of the robustness images"
        )
    listed = config["imagenet_c"]["images"]
    sample = config["dataset"]["sample"]
    if sample:
        listed = min(listed or math.inf, sample["classes"] * sample["val_per_class"])
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
