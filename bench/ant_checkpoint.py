#!/usr/bin/env python
"""ANT's checkpoint at ImageNet scale (issue 18): its size, and the time to write it, projected from
a config (default config/imagenet.yaml) for each of its ANT methods, with the bounded replay bank
(``bank_size``) beside an unbounded one (every ``snapshot_every``-th generator state kept).

    python bench/ant_checkpoint.py [--config config/imagenet.yaml] [--methods ant1x1 ant3x3]

Per method: steps per epoch = ImageNet's 1,281,167 training images // train.batch_size (the
streaming loader drops the last partial batch), epochs from the method's schedule (else
train.finetune), snapshots offered = steps x epochs // snapshot_every, states kept = min(bank_size,
offered). A checkpoint holds the classifier's state, its SGD momentum (one buffer per parameter),
the generator with its Adam moments, and the bank. The classifier is torchvision's network at random
init; the bank is that many copies of a generator's state. The bounded checkpoint is written for
real through the pipeline's own atomic writer (noisetrain.storage.save_torch, into a temporary
folder on this machine's disk) and timed; the unbounded one is not written: its time is the bounded
checkpoint's plus each further state at the cost per state of writing the bank alone (torch.save's
cost is per tensor as much as per byte: a state is 2 x depth small tensors). A method without replay
has no bank.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
from noisetrain.config import method_entry  # noqa: E402
from noisetrain.models.torchvision_models import load_classifier  # noqa: E402
from noisetrain.noise.generator_bank import cpu_state  # noqa: E402
from noisetrain.noise.generators import NoiseGenerator  # noqa: E402
from noisetrain.storage import save_torch  # noqa: E402

IMAGENET_TRAIN_IMAGES = 1_281_167
MB = 1e6


def ant_methods(config_path: Path) -> tuple[dict, dict[str, dict]]:
    """The config (as YAML, anchors resolved) and its ANT methods with the schema's defaults."""
    config = yaml.safe_load(config_path.read_text())
    methods = {name: method_entry(entry, f"{config_path}: methods.{name}")
               for name, entry in config["methods"].items() if entry.get("kind") == "ant"}
    return config, methods


def nbytes(state: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in state.values())


def projection(config: dict, name: str, spec: dict) -> dict:
    train = config.get("train", {})
    batch = train.get("batch_size", 70)
    epochs = spec["schedule"].get("epochs", train.get("finetune", {}).get("epochs"))
    steps = IMAGENET_TRAIN_IMAGES // batch
    offered = steps * epochs // spec["snapshot_every"]
    offered = offered if spec["replay"] else 0
    kept = min(spec["bank_size"], offered)
    with torch.random.fork_rng(devices=[]):
        generator = cpu_state(NoiseGenerator(3, spec["depth"], spec["kernel"]))
        classifier = load_classifier(spec["architecture"] or config.get("model", "resnet50"), None).state_dict()
    weights = sum(t.numel() * t.element_size() for t in classifier.values() if t.is_floating_point())
    # Classifier + SGD momentum, generator + Adam's two moments.
    fixed = nbytes(classifier) + weights + 3 * nbytes(generator)
    return {"method": name, "steps": steps, "epochs": epochs, "offered": offered, "kept": kept,
            "generator": generator, "classifier": classifier, "fixed": fixed,
            "bounded": fixed + kept * nbytes(generator), "unbounded": fixed + offered * nbytes(generator)}


def timed_write(payload: dict, path: Path) -> float:
    start = time.perf_counter()
    save_torch(payload, path)
    seconds = time.perf_counter() - start
    path.unlink()
    return seconds


def write_seconds(row: dict, folder: Path) -> tuple[float, float]:
    """Seconds to write the bounded checkpoint, and the projected seconds for the unbounded one."""
    bank = [{k: v.clone() for k, v in row["generator"].items()} for _ in range(row["kept"])]
    momentum = {k: torch.zeros_like(v) for k, v in row["classifier"].items() if v.is_floating_point()}
    payload = {"model": row["classifier"], "momentum": momentum, "generator": row["generator"],
               "adam": [row["generator"], row["generator"]], "bank": bank}
    bounded = timed_write(payload, folder / "checkpoint.pt")
    per_state = timed_write({"bank": bank}, folder / "bank.pt") / len(bank) if bank else 0.0
    return bounded, bounded + (row["offered"] - row["kept"]) * per_state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "imagenet.yaml")
    parser.add_argument("--methods", nargs="*", help="ANT methods of the config (default: all of them)")
    args = parser.parse_args()
    config, methods = ant_methods(args.config)
    unknown = set(args.methods or []) - set(methods)
    if unknown:
        parser.error(f"not ANT methods of {args.config}: {sorted(unknown)} (it has {sorted(methods)})")
    print(f"{'method':<20} {'steps':>10} {'offered':>8} {'kept':>6} {'gen KB':>7} {'bounded MB':>11} "
          f"{'write s':>8} {'unbounded MB':>13} {'write s':>8}")
    with tempfile.TemporaryDirectory(dir=ROOT) as folder:
        for name in args.methods or methods:
            row = projection(config, name, methods[name])
            bounded, unbounded = write_seconds(row, Path(folder))
            print(f"{name:<20} {row['steps'] * row['epochs']:>10,} {row['offered']:>8,} {row['kept']:>6,} "
                  f"{nbytes(row['generator']) / 1e3:>7.1f} {row['bounded'] / MB:>11.1f} {bounded:>8.2f} "
                  f"{row['unbounded'] / MB:>13.1f} {unbounded:>8.2f}")
    print("bounded: the replay bank keeps bank_size states (written here, timed); unbounded: every snapshot "
          "(not written: its time is projected from the bank's cost per state)")


if __name__ == "__main__":
    main()
