import math

import numpy as np
import pytest
import torch
from helpers import fit_full_batch
from torch import nn

from noisetrain.errors import TrainingError
from noisetrain.measure import robustness
from noisetrain.measure.decision_distance import median_epsilon
from noisetrain.measure.evaluation import accuracy


def trained_net(seed=0):
    """A small net that separates bright-left from bright-right 8x8 images."""
    g = torch.Generator().manual_seed(seed)
    x = 0.3 + torch.rand(400, 1, 8, 8, generator=g) * 0.3
    y = torch.randint(0, 2, (400,), generator=g)
    x[y == 0, :, :, :4] += 0.15
    x[y == 1, :, :, 4:] += 0.15
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2))
    fit_full_batch(net, x, y, steps=150, lr=1e-2)
    return net.eval(), x.clamp(0, 1), y


def test_noise_robustness_rows():
    torch.set_num_threads(1)
    net, x, y = trained_net()
    assert accuracy(net, x, y) > 0.95
    rows, generators, distances = robustness.noise_robustness(
        net, x[:60], y[:60], x, y, seed=0, rel_tol=1e-3, an_seeds=2, an_steps=30, an_lr=1e-2, an_eps=1.5, an_batch_size=64)
    values = {r["corruption"]: r["value"] for r in rows}
    assert len(generators) == 2
    # The per-image epsilon* behind every median (the claims table bootstraps over them).
    assert sorted(distances) == ["an_seed0", "an_seed1", "gn", "un"]
    assert all(d.shape == (60,) and d.dtype == np.float64 for d in distances.values())
    for name in distances:
        assert values[f"eps_{name}"] == median_epsilon(distances[name])
    assert values["eps_gn"] > 0 and values["eps_un"] > 0
    assert values["eps_an"] == (values["eps_an_seed0"] + values["eps_an_seed1"]) / 2
    assert math.isclose(values["eps_an_std"], abs(values["eps_an_seed0"] - values["eps_an_seed1"]) / 2, rel_tol=1e-9)
    # a generator trained against the net finds a shorter way to flip it than Gaussian noise
    assert values["eps_an"] < values["eps_gn"]
    assert values["eps_gn_passes_per_image"] <= 20
    assert {r["category"] for r in rows} == {"noise_robustness", "noise_robustness_detail"}
    # What each fresh generator does to the measured images at its training eps, and the mean.
    by_name = {r["corruption"]: r for r in rows}
    for key in ("erased_fraction", "mean_noise", "fooling_rate"):
        per_generator = [by_name[f"an_{key}_seed{k}"] for k in range(2)]
        mean = by_name[f"an_{key}"]
        assert all(r["category"] == "noise_robustness_detail" and r["severity"] == 1.5 for r in [*per_generator, mean])
        assert mean["value"] == pytest.approx(np.mean([r["value"] for r in per_generator]))
    # eps 1.5 on images of L2 norm ~4: noise, nothing erased; the median eps* along the same
    # directions is above 1.5, so fewer than half of the images are fooled at 1.5.
    assert values["an_erased_fraction"] == 0.0
    assert abs(values["an_mean_noise"]) <= 1.5 / 8  # a change of norm 1.5 over 64 pixels
    assert values["eps_an"] > 1.5 and 0.0 <= values["an_fooling_rate"] < 0.5


def test_generator_diagnostics_of_an_erasing_direction():
    torch.set_num_threads(1)
    net, x, y = trained_net()
    # Every pixel pushed down, at an eps above every image's norm: all images black.
    out = robustness.generator_diagnostics(net, x[:50], y[:50], -torch.ones_like(x[:50]), eps=100.0)
    assert out["erased_fraction"] == 1.0
    assert out["mean_noise"] == pytest.approx(-x[:50].mean().item(), rel=1e-5)
    predicted = net(torch.zeros_like(x[:50])).argmax(1)
    assert out["fooling_rate"] == pytest.approx((predicted != y[:50]).float().mean().item())


def test_adversarial_rows_record_the_budget():
    torch.set_num_threads(1)
    net, x, y = trained_net()
    rows = robustness.adversarial_rows(net, x[:50], y[:50], {"linf_pgd": {"epsilon": 0.05, "steps": 5, "step_size": 0.02},
                                                            "l2_ddn": {"epsilon": 0.5, "steps": 5, "gamma": 0.05}}, seed=0)
    assert [(r["corruption"], r["severity"]) for r in rows] == [("linf_pgd", 0.05), ("l2_ddn", 0.5)]
    assert all(0.0 <= r["value"] <= accuracy(net, x[:50], y[:50]) for r in rows)


def test_a_diverging_fresh_generator_stops_in_one_line_naming_its_learning_rate():
    """robustness.an_lr too high: the same guard as training's generators (issue 20), not an index
    error from the rescaling of non-finite noise."""
    net, x, y = trained_net()
    with pytest.raises(TrainingError) as caught:
        robustness.noise_robustness(net, x[:20], y[:20], x, y, seed=0, rel_tol=1e-2, an_seeds=2, an_steps=5, an_lr=1e30,
                                    an_eps=1.5, an_batch_size=64)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("eps*_AN: fresh generator 1 of 2: the noise generator diverged")
    assert message.endswith("(robustness.an_lr, now 1e+30)")
