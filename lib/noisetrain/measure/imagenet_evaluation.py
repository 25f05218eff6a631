"""One ImageNet image set through the prediction cache: the models of the evaluation set are built
from their specs (architecture + weights), grouped by the input they need, and run on the set's
images, read once per input size (almost always once)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from noisetrain.config_imagenet import RANDOM_WEIGHTS
from noisetrain.data.imagenet import corrupted_transform, eval_transform, image_folder, read_val_list, relative_files
from noisetrain.errors import DataError
from noisetrain.measure.prediction_cache import evaluate_set
from noisetrain.models.torchvision_models import input_size, load_classifier, weights_fingerprint

CLEAN = ("clean", 0)  # the (corruption, severity) of the clean val set
IMAGENET_CLASSES = 1000


def model_weights(spec: dict) -> str | None:
    """The weights argument of load_classifier: None for a seeded random init."""
    return None if spec["weights"] == RANDOM_WEIGHTS else spec["weights"]


def class_count(spec: dict, classes: list[str]) -> int:
    """Released weights have ImageNet's 1,000 outputs; a random init gets one per class of the set,
    and so does a model fine-tuned from one."""
    origin = spec.get("fine_tuned_from", spec["weights"])
    return len(classes) if origin == RANDOM_WEIGHTS else IMAGENET_CLASSES


def cache_models(models: dict[str, dict], classes: list[str], seed: int = 0) -> dict[str, tuple]:
    """name -> (fingerprint, factory, input size) as evaluate_set takes them. The fingerprint holds
    the architecture, the weights' identity and the input size (the preprocessing)."""
    entries = {}
    for name, spec in models.items():
        size = input_size(spec["architecture"])
        weights, num_classes = model_weights(spec), class_count(spec, classes)
        identity = weights_fingerprint(weights, seed, architecture=spec["architecture"])
        fingerprint = f"{spec['architecture']}:{identity}:{num_classes}:{size}px"
        factory = partial(load_classifier, spec["architecture"], weights, num_classes=num_classes, seed=seed)
        entries[name] = (fingerprint, factory, size)
    return entries


def predict_image_set(source: str | Path, set_name: tuple[str, int], files_json: str | Path, models: dict[str, dict],
                      out: str | Path, *, batch_size: int, workers: int, device: torch.device, amp: bool,
                      seed: int = 0) -> dict:
    """Bring the prediction cache of one set, ``set_name`` = (corruption, severity) (CLEAN for the
    val images, read with the evaluation's resize and crop; ImageNet-C folders hold the 224 crops),
    up to date (see prediction_cache.evaluate_set); ``out`` is its manifest, the entries lie beside it."""
    listing = read_val_list(files_json)
    classes, files = listing["classes"], listing["files"]
    transform = eval_transform if tuple(set_name) == CLEAN else corrupted_transform

    def make_loader(size: int) -> DataLoader:
        dataset = image_folder(source, transform(size), files=files, classes=classes)
        if relative_files(dataset) != files:  # the cache's row i is the list's file i
            raise DataError(f"{source} yields its images in another order than {files_json}; rerun list_val_images")
        return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                          pin_memory=device.type == "cuda", persistent_workers=False)

    return evaluate_set(Path(out).parent, cache_models(models, classes, seed), make_loader, files, device, amp,
                        set_name=tuple(set_name))
