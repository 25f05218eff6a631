"""Where models run: the configured device, checked against the GPUs the scheduler gave the job,
described for logs and records, and the device a model's weights live on."""

from __future__ import annotations

import os

import torch
from torch import nn

from noisetrain.errors import ConfigError

# Where slurm tells a job which GPUs it holds: their ids, and how many are on this node.
GPU_IDS = ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS")
GPU_COUNT = "SLURM_GPUS_ON_NODE"


def allocated_gpus() -> str | None:
    """The scheduler's word that this job holds GPUs (e.g. 'SLURM_JOB_GPUS=0'), or None."""
    for key in GPU_IDS:
        if os.environ.get(key, "").strip():
            return f"{key}={os.environ[key].strip()}"
    count = os.environ.get(GPU_COUNT, "").strip()
    return f"{GPU_COUNT}={count}" if count not in ("", "0") else None


def cuda_unusable_reason() -> str:
    """Why torch cannot use a GPU here: a CPU-only build, the driver's complaint (too old for the
    wheel's CUDA), or no device visible."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    try:
        torch.cuda.init()
    except Exception as exc:  # torch raises RuntimeError or AssertionError, worded by the driver
        return str(exc).strip().splitlines()[0]
    return f"no CUDA device is visible (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})"


def resolve_device(name: str | torch.device) -> torch.device:
    """'auto' takes the GPU when one is usable. A job that asked for a GPU - device: cuda, or one
    that slurm gave a GPU - and cannot use it stops at once in one line saying why (on a cluster it
    would otherwise train on the CPU until its time limit, days later)."""
    if isinstance(name, torch.device):
        return name
    usable = torch.cuda.is_available()
    given = allocated_gpus() if name == "auto" else None
    if not usable and (name == "cuda" or given):
        asked = "'cuda' was asked for" if name == "cuda" else f"'auto' and this job was given a GPU ({given})"
        raise ConfigError(
            f"config error at 'device': {asked} but this job cannot use a CUDA GPU ({cuda_unusable_reason()}; "
            f"torch {torch.__version__} is built for CUDA {torch.version.cuda}): install the wheels that match the "
            "node's driver (README, GPU driver), or use device: cpu"
        )
    if name == "auto":
        return torch.device("cuda" if usable else "cpu")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """The device a job runs on, for its log and records: the card and CUDA version on a GPU. Only
    what shapes the numbers: a thread count would make equal weights' model files differ."""
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        return f"cuda:{index} ({torch.cuda.get_device_name(index)}, CUDA {torch.version.cuda})"
    return "cpu"


def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    """The device a model's weights live on (``fallback`` for a model without any)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return fallback
