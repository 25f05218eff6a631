"""The ImageNet classifiers: torchvision architectures that normalise inside ``forward``, and their weights.

Noise, corruptions and attacks act on images in [0, 1] (paper appendix B), so every network here is
wrapped in :class:`Normalized`, which subtracts the ImageNet mean and divides by the standard deviation
itself. Its state dict is exactly the torchvision network's, each key prefixed by ``net.``.

Weights come from torchvision (a weights name such as ``ResNet50_Weights.IMAGENET1K_V1``, downloaded
and cached by torchvision on the user's machine) or from a local checkpoint file, read with
``weights_only=True`` in whichever shape released robust models ship in (see :func:`load_classifier`).

torchvision itself is imported only when a network is built: registering the names stays cheap.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from noisetrain.errors import CheckpointError, ConfigError, InputError
from noisetrain.models.architecture_names import (
    DEFAULT_INPUT_SIZE,
    INPUT_SIZE,
    TORCHVISION_ARCHITECTURES,
    input_size,
    is_torchvision_weights,
)
from noisetrain.models.architectures import build_model, register_architecture
from noisetrain.storage import file_fingerprint, refused_as_unsafe

__all__ = [
    "DEFAULT_INPUT_SIZE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INPUT_SIZE",
    "TORCHVISION_ARCHITECTURES",
    "Normalized",
    "input_size",
    "is_torchvision_weights",
    "load_classifier",
    "weights_fingerprint",
]

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Builder arguments besides num_classes. InceptionV3 keeps its auxiliary head because released
# checkpoints carry its weights (in eval mode the network returns the main logits only), skips
# torchvision's slow truncated-normal init, and takes the input transform that torchvision's
# pretrained InceptionV3 (and every model fine-tuned from it, as in the paper) expects.
_BUILD_KWARGS: dict[str, dict] = {"inception_v3": {"aux_logits": True, "init_weights": False, "transform_input": True}}

# Containers a state dict is found under, in this order (training scripts, Lightning, robustness libraries).
_STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict", "net", "module")
# Prefixes a wrapper adds to every key: DataParallel / DistributedDataParallel, torch.compile, our own
# Normalized, and the ``model.`` of wrappers such as the robustness library's AttackerModel.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.", "net.", "model.")
# DenseNets saved by torchvision before 0.3 name the layers of a dense layer 'norm.1', 'conv.2', ...
_LEGACY_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def _safe_globals() -> list:
    """Harmless types that released training checkpoints hold beside the weights (the argparse
    arguments, numpy scalars and arrays of accuracies): allowed on top of ``weights_only``'s tensors."""
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    allowed: list = [argparse.Namespace, np.dtype, np.ndarray]
    for fn in (multiarray.scalar, multiarray._reconstruct):
        # numpy 1 pickled these as numpy.core.multiarray.*, numpy 2 as numpy._core.multiarray.*
        allowed += [fn, (fn, f"numpy.core.multiarray.{fn.__name__}"), (fn, f"numpy._core.multiarray.{fn.__name__}")]
    allowed += sorted({type(np.dtype(code)) for code in "?bhilqBHILQefdgFDG"}, key=str)
    return allowed


class Normalized(nn.Module):
    """A classifier of images in [0, 1]: normalises with ImageNet's mean and std, then calls ``net``.

    mean and std are non-persistent buffers: they follow ``.to(device)`` but are not in the state
    dict, which therefore holds exactly the keys of ``net``, each prefixed by ``net.``.
    """

    def __init__(self, net: nn.Module, mean: Iterable[float] = IMAGENET_MEAN, std: Iterable[float] = IMAGENET_STD):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(tuple(mean), dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(tuple(std), dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def _check_architecture(architecture: str) -> None:
    if architecture not in TORCHVISION_ARCHITECTURES:
        raise ConfigError(f"unknown torchvision architecture {architecture!r}; known: {', '.join(TORCHVISION_ARCHITECTURES)}")


def _torchvision_net(architecture: str, num_classes: int, weights=None, progress: bool = False) -> nn.Module:
    from torchvision.models import get_model

    kwargs = dict(_BUILD_KWARGS.get(architecture, {}), num_classes=num_classes)
    return get_model(architecture, weights=weights, progress=progress, **kwargs)


def _factory(architecture: str) -> Callable[..., Normalized]:
    def build(in_channels: int = 3, num_classes: int = 1000) -> Normalized:
        if in_channels != 3:
            raise ConfigError(
                f"{architecture} takes RGB images (in_channels 3), not in_channels {in_channels}: "
                "use an RGB dataset or the madry_cnn architecture"
            )
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ConfigError(f"num_classes must be a positive integer, not {num_classes!r}")
        return Normalized(_torchvision_net(architecture, num_classes))

    build.__name__ = build.__qualname__ = architecture
    build.__doc__ = f"torchvision's {architecture}, random init, normalising its [0, 1] input (Normalized)."
    return build


for _architecture in TORCHVISION_ARCHITECTURES:
    register_architecture(_architecture)(_factory(_architecture))


# ---------------------------------------------------------------------------------------------- weights names


def _full_name(weights) -> str:
    return f"{type(weights).__name__}.{weights.name}"


def _resolve_weights(architecture: str, name: str):
    """The torchvision weights enum member ``name`` stands for (``DEFAULT`` resolved) for ``architecture``."""
    from torchvision.models import get_model_weights

    enum = get_model_weights(architecture)
    valid = ", ".join(f"{enum.__name__}.{member}" for member in enum.__members__)
    prefix, _, member = name.rpartition(".")
    if prefix and prefix.lower() != enum.__name__.lower():
        raise ConfigError(f"weights {name!r} are not {architecture}'s ({enum.__name__}); valid: {valid}")
    members = {key.lower(): key for key in enum.__members__}
    try:
        return enum[members[member.lower()]]
    except KeyError:
        raise ConfigError(
            f"unknown torchvision weights {name!r} for {architecture}; valid: {valid} (or the path of a checkpoint file)"
        ) from None


def _resolve_full_name(name: str):
    from torchvision.models import get_weight

    try:
        return get_weight(name)
    except (ValueError, KeyError):
        raise ConfigError(
            f"unknown torchvision weights {name!r}: give a name such as ResNet50_Weights.IMAGENET1K_V1 "
            "(torchvision.models.get_model_weights(arch) lists them), or the path of a checkpoint file"
        ) from None


def weights_fingerprint(weights: str | None, seed: int = 0, architecture: str | None = None) -> str:
    """A short id that changes exactly when the weights ``load_classifier`` would load change.

    - ``None``: ``random-init:<seed>``;
    - a torchvision name: its resolved full name, e.g. ``ResNet50_Weights.IMAGENET1K_V2`` for
      ``DEFAULT`` (a short name such as ``DEFAULT`` needs ``architecture`` to be resolved);
    - a file: ``file:<size in bytes>:<first 16 hex digits of the content's sha256>`` (independent
      of where the file lies).
    """
    if weights is None:
        return f"random-init:{seed}"
    if is_torchvision_weights(weights):
        if architecture is not None:
            _check_architecture(architecture)
            return _full_name(_resolve_weights(architecture, weights))
        if "." not in weights:
            raise InputError(
                f"the torchvision weights name {weights!r} needs its architecture to be resolved: "
                "pass architecture=, or give the full name (e.g. ResNet50_Weights.IMAGENET1K_V1)"
            )
        return _full_name(_resolve_full_name(weights))
    return file_fingerprint(weights)


# ---------------------------------------------------------------------------------------------- checkpoint files


def _unsafe_globals(path: Path) -> list[str]:
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not a zip checkpoint, or unreadable: then it is corrupt, not foreign
        return []


def read_checkpoint(path: str | Path) -> Mapping:
    """``torch.load(path, map_location="cpu", weights_only=True)``; every failure is a CheckpointError
    naming the file (missing, a folder, truncated or corrupt, or holding objects weights_only refuses)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist: check the weights path, or download the checkpoint there")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as exc:
        raise CheckpointError(f"cannot read {path} ({exc.strerror}): check its permissions") from exc
    except pickle.UnpicklingError as exc:
        refused = _unsafe_globals(path)  # named only in the zip format; the legacy one says it in the message
        if refused or refused_as_unsafe(exc, path):
            named = f" ({', '.join(refused[:5])})" if refused else ""
            raise CheckpointError(
                f"{path} holds Python objects that weights-only loading refuses{named}, as loading them could run "
                "code: save just its state dict (torch.save(checkpoint['state_dict'], ...)) from a copy you "
                "trust, and give that file"
            ) from exc
        raise CheckpointError(f"{path} is truncated or corrupt ({type(exc).__name__}): re-download it") from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, OSError, ... for truncated or foreign files
        raise CheckpointError(
            f"{path} is truncated or corrupt ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0][:120] if str(exc).strip() else 'no detail'}): "
            "re-download it"
        ) from exc
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict: give a checkpoint of the weights")
    return obj


def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())


def _find_state_dict(obj: Mapping, path: Path, architecture: str, num_classes: int) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint: bare, a noisetrain model file, or under 'state_dict' / 'model' / ..."""
    if all(key in obj for key in ("arch", "in_channels", "num_classes", "state_dict")) and isinstance(obj["arch"], str):
        # A noisetrain model file (models/model_file.py): its header says what it holds.
        if obj["arch"] != architecture:
            raise CheckpointError(f"{path} holds a {obj['arch']} model, not {architecture}: fix the architecture or the weights")
        if obj["num_classes"] != num_classes:
            raise CheckpointError(f"{path} holds a model of {obj['num_classes']} classes, not {num_classes}")
    for _ in range(4):  # a wrapper in a wrapper ({'model': {'state_dict': ...}}) at most a few levels deep
        if _is_state_dict(obj):
            return dict(obj)
        inner = next((obj[key] for key in _STATE_DICT_KEYS if isinstance(obj.get(key), Mapping)), None)
        if inner is None:
            break
        obj = inner
    raise CheckpointError(
        f"{path} holds no state dict (its keys: {', '.join(map(str, list(obj)[:8]))}): expected a state "
        f"dict of {architecture}, bare or under one of {', '.join(_STATE_DICT_KEYS)}"
    )


def _fits(keys: set[str], target: set[str], optional: set[str]) -> bool:
    return target - optional <= keys <= target


def _normalise_keys(state: dict[str, torch.Tensor], target: set[str], optional: set[str]) -> tuple[dict, str]:
    """Rename ``state``'s keys to ``target``'s where a wrapper changed them; returns the state dict
    and a description of what was done (for the error message and the log)."""
    state = {(_LEGACY_DENSENET_KEY.sub(r"\1\2", key)): value for key, value in state.items()}
    stripped = ""
    changed = True
    while changed and not _fits(set(state), target, optional):
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(key.startswith(prefix) for key in state):
                state = {key[len(prefix) :]: value for key, value in state.items()}
                stripped += prefix
                changed = True
                break
    if _fits(set(state), target, optional):
        return state, f"the prefix {stripped!r} removed" if stripped else ""
    # A wrapper holding the classifier beside other modules (the robustness library's AttackerModel
    # keeps 'model.*', 'attacker.model.*' and 'normalizer.*'): the shortest prefix under which the
    # keys are exactly the classifier's.
    prefixes = set()
    for key in state:
        for match in re.finditer(r"\.", key):
            if key[match.end() :] in target:
                prefixes.add(key[: match.end()])
    for prefix in sorted(prefixes, key=lambda p: (len(p), p)):
        inner = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
        if _fits(set(inner), target, optional):
            ignored = len(state) - len(inner)
            return inner, f"the keys under {stripped + prefix!r} taken, {ignored} other keys ignored"
    return state, f"the prefix {stripped!r} removed" if stripped else ""


def _preview(keys: list[str], limit: int = 5) -> str:
    return ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")


def _load_file(model: Normalized, path: Path, architecture: str, num_classes: int) -> None:
    state = _find_state_dict(read_checkpoint(path), path, architecture, num_classes)
    net = model.net
    expected = net.state_dict()
    target = set(expected)
    # BatchNorm fills num_batches_tracked itself when a checkpoint predates it; InceptionV3 runs
    # without its auxiliary head (only used in training) when a checkpoint was saved without one.
    optional = {key for key in target if key.endswith("num_batches_tracked") or key.startswith("AuxLogits.")}
    state, how = _normalise_keys(state, target, optional)
    if how:
        log.info("%s: %s", path, how)
    missing = [key for key in expected if key not in state and key not in optional]
    unexpected = [key for key in state if key not in target]
    reshaped = [key for key in state if key in target and tuple(state[key].shape) != tuple(expected[key].shape)]
    if missing or unexpected or reshaped:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys ({_preview(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys ({_preview(unexpected)})")
        if reshaped:
            shapes = [f"{key} {list(state[key].shape)} in the file, {list(expected[key].shape)} in the model" for key in reshaped]
            problems.append(f"{len(reshaped)} keys of another shape ({_preview(shapes, 3)})")
        after = f" after {how}" if how else ""
        raise CheckpointError(f"{path} does not fit {architecture} with {num_classes} classes{after}: {'; '.join(problems)}")
    if architecture == "inception_v3" and not any(key.startswith("AuxLogits.") for key in state):
        net.AuxLogits = None
        net.aux_logits = False
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit {architecture}: {str(exc).strip().splitlines()[0]}") from exc


def _download(architecture: str, name: str, num_classes: int, progress: bool) -> Normalized:
    weights = _resolve_weights(architecture, name)
    categories = len(weights.meta["categories"])
    if num_classes != categories:
        raise ConfigError(f"{_full_name(weights)} classifies {categories} classes, not num_classes {num_classes}")
    try:
        net = _torchvision_net(architecture, num_classes, weights=weights, progress=progress)
    except OSError as exc:  # urllib's URLError and HTTPError are OSErrors
        raise CheckpointError(
            f"cannot download {_full_name(weights)} from {weights.url} ({exc}): check the network, "
            "or download the file yourself and give its path as the weights"
        ) from exc
    except (RuntimeError, EOFError, pickle.UnpicklingError) as exc:  # a corrupt file in torch hub's cache, a failed hash check
        cached = Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]
        raise CheckpointError(
            f"cannot load {_full_name(weights)} ({str(exc).strip().splitlines()[0][:120]}): "
            f"delete {cached} and rerun to download it again"
        ) from exc
    return Normalized(net)


def load_classifier(
    architecture: str, weights: str | None, num_classes: int = 1000, seed: int = 0, *, progress: bool | None = None
) -> Normalized:
    """A torchvision classifier of [0, 1] images (wrapped in :class:`Normalized`), in eval mode, on the CPU.

    ``weights``:

    - ``None``: random init, the same for the same ``seed`` (the global random state is untouched);
    - a torchvision weights name (``DEFAULT``, ``IMAGENET1K_V1``, ``ResNet50_Weights.IMAGENET1K_V1``),
      resolved against ``architecture``; torchvision downloads and caches the file (``progress``: show
      a progress bar, by default when stderr is a terminal). ``num_classes`` must be 1000;
    - the path of a checkpoint file, read with ``weights_only=True``: a bare state dict, one under
      'state_dict' / 'model' (a .pth.tar with epoch, optimizer, ... beside it), or a noisetrain model
      file; key prefixes of wrappers ('module.', 'net.', 'model.', '_orig_mod.') are removed.

    Every failure is a ConfigError (unknown architecture or weights name) or a CheckpointError
    naming the file (missing, corrupt, or keys that do not fit).
    """
    _check_architecture(architecture)
    if weights is not None and (not isinstance(weights, str) or not weights):
        raise ConfigError(f"weights must be a torchvision weights name or a checkpoint path, not {weights!r}")
    # Building draws the initial weights from the CPU generator: fork it, so that loading a model
    # leaves the caller's random stream where it was (CUDA's generators are not touched).
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        if weights is None:
            model = build_model(architecture, 3, num_classes)
        elif is_torchvision_weights(weights):
            model = _download(architecture, weights, num_classes, sys.stderr.isatty() if progress is None else progress)
            model = model.to(memory_format=torch.channels_last)
        else:
            model = build_model(architecture, 3, num_classes)
            _load_file(model, Path(weights), architecture, num_classes)
    return model.eval()
