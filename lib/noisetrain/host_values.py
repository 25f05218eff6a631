"""Device scalars read to the host in one transfer.

The training log's metrics (``noisetrain.train.epoch_sums``) and a generator's diagnostics
(``noisetrain.noise.diagnostics``) are 0-d tensors on the device; reading each with ``float()`` would
make the host wait for the device once per value.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def read_floats(values: Mapping[str, torch.Tensor | float]) -> dict[str, float]:
    """``values`` as floats, in one transfer from the device: the tensors joined (cat promotes mixed
    dtypes to one that holds each exactly), then float64, which holds a float32 value exactly, so the
    floats are those the tensors hold. Two operations however many tensors (the trainer reads a
    minute's steps at once). Plain numbers pass through as floats."""
    tensors = [value.detach().reshape(1) for value in values.values() if isinstance(value, torch.Tensor)]
    read = iter(torch.cat(tensors).double().tolist() if tensors else [])
    return {key: next(read) if isinstance(value, torch.Tensor) else float(value) for key, value in values.items()}
