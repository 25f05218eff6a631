"""One ImageNet model through the prediction cache: built from its spec (architecture + weights) and
run on every image set of the study (clean val and each ImageNet-C corruption x severity) whose
cached predictions are missing or stale, each set described by its index (data/set_index)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from noisetrain.config_names import RANDOM_WEIGHTS
from noisetrain.data.imagenet import CROP_SIZE, corrupted_transform, eval_transform, image_folder, read_val_list, relative_files
from noisetrain.data.imagenet_classes import IMAGENET_CLASSES, Relabel, imagenet_labels
from noisetrain.data.set_index import listing_hash, read_set_index
from noisetrain.errors import DataError
from noisetrain.measure.prediction_cache import ImageSet, evaluate_model
from noisetrain.models.torchvision_models import input_size, load_classifier, weights_fingerprint

CLEAN = ("clean", 0)  # the (corruption, severity) of the clean val set


def model_weights(spec: dict) -> str | None:
    """The weights argument of load_classifier: None for a seeded random init."""
    return None if spec["weights"] == RANDOM_WEIGHTS else spec["weights"]


def class_count(spec: dict, classes: list[str]) -> int:
    """Released weights have ImageNet's 1,000 outputs; a random init gets one per class of the set,
    and so does a model fine-tuned from one."""
    origin = spec.get("fine_tuned_from", spec["weights"])
    return len(classes) if origin == RANDOM_WEIGHTS else IMAGENET_CLASSES


def cache_model(spec: dict, classes: list[str], seed: int = 0) -> tuple[str, partial, int, np.ndarray | None]:
    """(fingerprint, factory, input size, labels) of one model as evaluate_model takes them. ``labels``
    is ImageNet's index of each folder where a 1,000-class model scores a subset of ImageNet's classes
    (None: folder indices). The fingerprint holds the architecture, the weights' identity, the class
    count, the input size (the preprocessing) and whether the labels are ImageNet's."""
    size = input_size(spec["architecture"])
    weights, num_classes = model_weights(spec), class_count(spec, classes)
    identity = weights_fingerprint(weights, seed, architecture=spec["architecture"])
    labels = imagenet_labels(classes, num_classes)
    fingerprint = f"{spec['architecture']}:{identity}:{num_classes}:{size}px{'' if labels is None else ':imagenet-labels'}"
    factory = partial(load_classifier, spec["architecture"], weights, num_classes=num_classes, seed=seed)
    return fingerprint, factory, size, labels


def _folder_loader(source: str, transform, stored: tuple[int, int] | None, relabel: Relabel | None, files: list[str],
                   classes: list[str], batch_size: int, workers: int, pin_memory: bool, size: int) -> DataLoader:
    dataset = image_folder(source, transform(size), files=files, classes=classes, size=stored, target_transform=relabel)
    if relative_files(dataset) != files:  # the cache's row i is the list's file i
        raise DataError(f"{source} yields its images in another order than the val list; rerun list_val_images")
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=pin_memory,
                      persistent_workers=False)


def folder_sets(set_indexes: list[str | Path], listing: dict, *, batch_size: int, workers: int,
                pin_memory: bool = False, relabel: Relabel | None = None) -> list[ImageSet]:
    """The image sets that ``set_indexes`` describe, read with the val list's files and classes: the
    clean set with the evaluation's resize and crop (appendix B), ImageNet-C's stored 224 crops as they
    are; ``relabel`` turns folder indices into a 1,000-class model's (ImageNet's index of each wnid)."""
    classes, files = listing["classes"], listing["files"]
    listed = listing_hash(files, classes)
    sets = []
    for path in set_indexes:
        index = read_set_index(path)
        if index["listing"] != listed or index["images"] != len(files):
            raise DataError(f"{path} indexes another image list than the evaluation's: rerun the rule that writes it")
        set_name = (index["corruption"], index["severity"])
        # ImageNet-C stores 224 x 224 crops: a file of another size is named, not a batch that fails to stack.
        transform, stored = (eval_transform, None) if set_name == CLEAN else (corrupted_transform, (CROP_SIZE, CROP_SIZE))
        loader = partial(_folder_loader, index["source"], transform, stored, relabel, files, classes, batch_size, workers,
                         pin_memory)
        sets.append(ImageSet(*set_name, content=index["content"], images=index["images"], loader=loader))
    return sets


def predict_model(spec: dict, set_indexes: list[str | Path], files_json: str | Path, out: str | Path, *,
                  batch_size: int, workers: int, device: torch.device, amp: bool, seed: int = 0) -> dict:
    """Bring the prediction cache of one model (``spec``: architecture, weights, fine_tuned_from) up to
    date on every indexed set; ``out`` is its manifest, ``<model>/manifest.json``, its entries lie beside it."""
    listing = read_val_list(files_json)
    fingerprint, factory, size, labels = cache_model(spec, listing["classes"], seed)
    sets = folder_sets(set_indexes, listing, batch_size=batch_size, workers=workers, pin_memory=device.type == "cuda",
                       relabel=None if labels is None else Relabel(labels))
    return evaluate_model(Path(out).parent, fingerprint, factory, sets, size, device, amp)
