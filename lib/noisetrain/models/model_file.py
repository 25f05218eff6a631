"""The model file: a classifier's weights with what rebuilds it, its provenance, and what a method
learned besides it (ANT: the final noise generator and its replay bank)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from noisetrain.errors import CheckpointError
from noisetrain.models import madry_cnn, torchvision_models  # noqa: F401  (a model file may hold any network: register all)
from noisetrain.models.architectures import build_model
from noisetrain.storage import load_torch, save_torch

REQUIRED = ("arch", "in_channels", "num_classes", "state_dict")


def save_model(model: nn.Module, path: str | Path, *, arch: str, in_channels: int, num_classes: int, info: dict,
               extras: dict | None = None) -> None:
    save_torch(
        {
            "arch": arch,
            "in_channels": in_channels,
            "num_classes": num_classes,
            "state_dict": model.state_dict(),
            "info": info,
            "extras": extras or {},
        },
        path,
    )


def adopt_model(source: str | Path, target: str | Path, *, method: str, eps_source: str) -> None:
    """Write the model file of an eps-search candidate as the searched method's: the same weights
    and extras, its training spec named ``method`` (the candidate's own name kept as
    ``adopted_from``), no longer a candidate, and with how its eps was chosen."""
    payload = read_model_file(source)
    info = dict(payload["info"])
    spec = {key: value for key, value in info.get("spec", {}).items() if key != "candidate_of"}
    info["spec"] = {**spec, "method": method, "adopted_from": spec.get("method"), "eps_source": eps_source}
    save_torch({**payload, "info": info}, target)


def read_model_file(path: str | Path) -> dict:
    payload = load_torch(path)
    missing = [key for key in REQUIRED if key not in payload]
    if missing:
        raise CheckpointError(f"{path} is not a noisetrain model file (lacks {missing}): delete it and rerun its training")
    return payload


def load_extras(path: str | Path) -> dict:
    return read_model_file(path).get("extras", {})


def load_model(path: str | Path) -> tuple[nn.Module, dict]:
    """Rebuild a model saved by ``save_model``; returns it in eval mode with its stored info."""
    payload = read_model_file(path)
    model = build_model(payload["arch"], payload["in_channels"], payload["num_classes"])
    load_weights(model, payload["state_dict"], path)
    return model.eval(), payload.get("info", {})


def load_weights(model: nn.Module, state_dict: dict, source: str | Path) -> None:
    """``model.load_state_dict`` whose failure names the file and the missing / unexpected keys."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"{source} does not fit the {type(model).__name__} being built: "
                              f"{' '.join(line.strip() for line in first[1:3]) or first[0]}") from exc


def read_info(path: str | Path) -> dict:
    """The provenance a model file stores (its training spec, data and code version)."""
    return read_model_file(path).get("info", {})
