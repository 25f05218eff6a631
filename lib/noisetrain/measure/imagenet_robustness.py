"""ImageNet models in the robustness measurement (epsilon* and the attacks, Tables 2, 3, 5): a model
of the evaluation set built from its spec, and the subsets of the robustness set it is measured on.

The measurement itself is :mod:`noisetrain.measure.robustness`, shared with the small datasets.
"""

from __future__ import annotations

from torch import nn

from noisetrain.data.datasets import PreparedData
from noisetrain.data.imagenet import robustness_classes
from noisetrain.data.imagenet_classes import imagenet_labels, relabelled
from noisetrain.errors import ConfigError
from noisetrain.measure.imagenet_evaluation import class_count, model_weights
from noisetrain.models.torchvision_models import input_size, load_classifier, weights_fingerprint


def classifier_from_spec(spec: dict, classes: list[str], seed: int = 0) -> tuple[nn.Module, dict]:
    """The evaluation model of ``spec`` (``architecture``, ``weights``: a torchvision name, a file or
    'random'), in eval mode on the CPU, and the identity its records carry (as a noisetrain model
    file's info: ``spec`` and the weights' fingerprint)."""
    missing = [key for key in ("architecture", "weights") if key not in spec]
    if missing:
        raise ConfigError(f"the model spec {spec} lacks {', '.join(missing)}: give architecture and weights")
    weights, num_classes = model_weights(spec), class_count(spec, classes)
    model = load_classifier(spec["architecture"], weights, num_classes=num_classes, seed=seed)
    identity = weights_fingerprint(weights, seed, architecture=spec["architecture"])
    info = {
        "spec": {"architecture": spec["architecture"], "weights": spec["weights"], "seed": seed},
        "weights_fingerprint": identity,
        "num_classes": num_classes,
        "input_size": input_size(spec["architecture"]),
    }
    return model, info


def robustness_model(spec: dict, data: PreparedData, data_path: str, seed: int = 0) -> tuple[nn.Module, dict, PreparedData]:
    """The model of ``spec`` and the robustness set ``data`` (read from ``data_path``) it is measured
    on; a 1,000-class model on some of ImageNet's classes is scored by ImageNet's index of each wnid."""
    classes = robustness_classes(data_path)
    model, info = classifier_from_spec(spec, classes, seed)
    labels = imagenet_labels(classes, info["num_classes"])
    if labels is not None:
        data, info = relabelled(data, labels), {**info, "labels": "imagenet"}
    return model, info, data
