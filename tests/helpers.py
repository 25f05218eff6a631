"""Plain helpers for the tests (imported by name: pytest puts this folder on sys.path)."""

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from noisetrain.data.corruption_names import IMAGENET_C_CORRUPTIONS
from noisetrain.train.preemption import StopRequest

WNIDS = ["n01440764", "n01443537", "n01484850"]
COLOURS = [(220, 20, 20), (20, 220, 20), (20, 20, 220)]  # class k is the colour whose channel k is high


def fit_full_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float = 1e-2) -> nn.Module:
    """Train a small classifier with Adam on the whole set at once (a quick 'vanilla' model)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def weights_only_round_trip(source: tuple, target: tuple) -> tuple:
    """Copy (model, optimizer, method step) ``source`` into ``target`` through a weights-only
    torch file, as a resumed job does; returns ``target``."""
    import io

    buffer = io.BytesIO()
    torch.save([part.state_dict() for part in source], buffer)
    buffer.seek(0)
    for part, state in zip(target, torch.load(buffer, weights_only=True)):
        part.load_state_dict(state)
    return target


def write_solid(path: Path, colour, size: int = 224) -> Path:
    """A one-colour JPEG: its colour tells its class (COLOURS[k] for class k)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path, format="JPEG", quality=95)
    return path


def write_tree(split_dir: Path, per_class: dict[str, int]) -> None:
    """An ImageFolder split: per_class[wnid] solid-colour images in split_dir/<wnid>/."""
    for k, (wnid, count) in enumerate(per_class.items()):
        for i in range(count):
            write_solid(split_dir / wnid / f"{wnid}_{i}.JPEG", COLOURS[k % 3], size=64)


def fake_imagenet(root: Path, corruptions=IMAGENET_C_CORRUPTIONS, severities=range(1, 6)) -> None:
    """data/imagenet, data/imagenet-c and data/stylized-imagenet/train under root (config/imagenet.yaml's
    paths): two classes of one small image each."""
    wnids = ["n01440764", "n01443537"]
    for split in ["imagenet/train", "imagenet/val", "stylized-imagenet/train"]:
        for wnid in wnids:
            write_solid(root / "data" / split / wnid / f"{wnid}_0.JPEG", (90, 90, 90), size=8)
    for corruption in corruptions:
        for severity in severities:
            for wnid in wnids:
                write_solid(root / "data" / "imagenet-c" / corruption / str(severity) / wnid / f"{wnid}_0.JPEG",
                            (90, 90, 90), size=8)


class StopAfter(StopRequest):
    """A stop request that arrives once ``steps`` training steps have been polled."""

    def __init__(self, steps: int):
        super().__init__()
        self.left = steps

    @property
    def requested(self) -> bool:
        self.left -= 1
        if self.left <= 0:
            self.received = "SIGTERM"
        return self.received is not None
