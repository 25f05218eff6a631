"""Mixed precision of the training steps: on the CPU (or with amp off) a step is exactly the fp32
step; the autocast path itself, run on the CPU in bf16 (the dtype a GPU with bf16 takes), gives a
loss close to fp32's and still trains; scaler states survive a checkpoint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from noisetrain.train.precision import FP32, Precision
from noisetrain.train.steps import classifier_step


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 14 * 14, 4))


def batch():
    generator = torch.Generator().manual_seed(1)
    return torch.rand(8, 3, 16, 16, generator=generator), torch.randint(0, 4, (8,), generator=generator)


def test_amp_on_the_cpu_is_exactly_the_fp32_step():
    precision = Precision("cpu", amp=True)
    assert precision.name == "fp32" and not precision.channels_last
    x, y = batch()
    a, b = net(), net()
    metrics = classifier_step(a, torch.optim.SGD(a.parameters(), lr=0.1), x, y, precision)
    optimizer = torch.optim.SGD(b.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(b(x), y)
    loss.backward()
    optimizer.step()
    assert metrics["loss"] == loss.item() and 0 <= metrics["accuracy"] <= 1
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_the_autocast_path_in_bf16_stays_close_to_fp32_and_trains():
    precision = Precision("cpu", amp=False)
    precision.dtype = torch.bfloat16  # what a bf16 GPU gets; autocast runs on the CPU too
    x, y = batch()
    model, twin = net(), net()
    reference = float(classifier_step(twin, torch.optim.SGD(twin.parameters(), lr=0.0), x, y, FP32)["loss"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = [float(classifier_step(model, optimizer, x, y, precision)["loss"]) for _ in range(20)]
    assert losses[0] == pytest.approx(reference, rel=0.02)  # bf16 keeps ~3 significant digits
    assert losses[-1] < 0.5 * losses[0]  # fits the batch: gradients flow through the autocast region


def test_scaler_states_round_trip():
    precision = Precision("cpu")
    state = precision.state_dict()
    assert set(state) == {"classifier", "generator"}
    Precision("cpu").load_state_dict(state)  # a checkpoint of another run's scalers loads
