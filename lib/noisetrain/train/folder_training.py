"""Fine-tuning on an ImageNet folder (appendix B.1): the classifier starts from torchvision's
pretrained weights or any checkpoint the evaluation wing can load, trains on the streamed training
folder with the method's step, and is checked each epoch on the listed val images.

Started by torchrun or srun with several processes, it trains data-parallel, one process per GPU
(:mod:`noisetrain.train.distributed`); rank 0 writes the model file and the logs."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from noisetrain.data.imagenet import read_val_list, stratified_files
from noisetrain.measure.imagenet_evaluation import class_count, model_weights
from noisetrain.models.devices import describe_device, resolve_device
from noisetrain.models.torchvision_models import input_size, load_classifier, weights_fingerprint
from noisetrain.train import distributed, trainer
from noisetrain.train.folder_source import FolderSource
from noisetrain.train.preemption import StopRequest


def heldout_files(listing: dict, images: int | None, seed: int) -> list[str]:
    """The val images each epoch is checked on: the evaluation's list, or a stratified part of it."""
    files = listing["files"]
    return files if images is None or images >= len(files) else stratified_files(files, images, seed)


def train_on_folder(spec: dict, *, train_dir: str | Path, val_dir: str | Path, val_files: str | Path,
                    weights: str, checkpoint_dir: str | Path, out: str | Path, log_csv: str | Path,
                    steps_csv: str | Path, heldout_images: int | None = None, workers: int = 0,
                    decode: str = "cpu", device: str = "auto", amp: bool = True, checkpoint_every: float = math.inf,
                    stop: StopRequest | None = None, log: Callable[[str], None] = print) -> trainer.TrainState:
    """Train ``spec``'s method from ``weights`` (a torchvision weights name, a checkpoint file, or
    'random' for a seeded random init with one output per class: smoke runs) and write the model
    file and both logs. Resumes from ``checkpoint_dir`` like every training job. In a
    data-parallel run (the environment of torchrun or srun) every process calls it."""
    listing = read_val_list(val_files)
    classes = listing["classes"]
    world = distributed.world_from_env()
    resolved = distributed.device_for(world, resolve_device(device))
    if world.is_main:
        processes = f", {world.size} processes" if world.size > 1 else ""
        log(f"{spec['method']}: training on {describe_device(resolved)}{processes}")
    with distributed.joined(world, resolved):
        source = FolderSource(train_dir, val_dir, heldout_files(listing, heldout_images, spec["seed"]), classes,
                              spec["seed"], workers=workers, pin_memory=resolved.type == "cuda", rank=world.rank,
                              world_size=world.size, stylized_dir=spec.get("stylized_path"),
                              input_size=input_size(spec["model"]), crop_size=spec.get("crop_size"),
                              decode=decode, decode_device=resolved)
        # As the evaluation builds its models: 'random' is a seeded init with one output per class.
        initial, num_classes = model_weights({"weights": weights}), class_count({"weights": weights}, classes)
        with world.main_first():  # one download of torchvision's weights into the shared cache
            model = load_classifier(spec["model"], initial, num_classes=num_classes, seed=spec["seed"])
        init_id = weights_fingerprint(initial, spec["seed"], architecture=spec["model"])
        state = trainer.fit(spec, source, model=model, init_id=init_id, checkpoint_dir=checkpoint_dir,
                            device=str(resolved), amp=amp, divergence_guard=spec["divergence_guard"],
                            checkpoint_every=checkpoint_every, stop=stop, log=log, world=world)
        if world.is_main:
            info = {**trainer.run_identity(spec, source, init_id), "dataset": "imagenet", "weights": weights,
                    "device": describe_device(state.precision.device)}
            trainer.finish(state, checkpoint_dir, info, out, log_csv, steps_csv, arch=spec["model"], in_channels=3,
                           num_classes=num_classes)
            log(f"saved {out}")
        world.barrier()  # the others end once the model file is written
    return state
