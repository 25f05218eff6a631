"""Tests for noisetrain.adversarial_noise (learning adversarial noise, paper eq. 2)."""

import math

import pytest
import torch
from helpers import fit_full_batch
from torch import nn
from torch.nn import functional as F

from noisetrain.noise.adversarial_noise import (
    fit_generator,
    fooling_rate,
    frozen,
    generator_loss,
    perturb,
)
from noisetrain.noise.generators import NoiseGenerator

EPS = 2.0  # Gaussian noise of this norm fools the classifier below on ~5% of the images


@pytest.fixture(scope="module")
def task():
    """Bars data set: class 0 = vertical bar, class 1 = horizontal bar, 8x8, plus a small MLP."""
    g = torch.Generator().manual_seed(0)
    n = 512
    y = torch.randint(0, 2, (n,), generator=g)
    pos = torch.randint(1, 7, (n,), generator=g)
    x = torch.zeros(n, 1, 8, 8)
    rows = torch.arange(n)
    vertical = y == 0
    x[rows[vertical], 0, :, pos[vertical]] = 1.0
    x[rows[~vertical], 0, pos[~vertical], :] = 1.0
    x = (0.8 * x + 0.1 * torch.rand(n, 1, 8, 8, generator=g)).clamp(0, 1)
    torch.manual_seed(0)
    clf = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2))
    fit_full_batch(clf, x, y, steps=100, lr=1e-2)
    assert (clf(x).argmax(1) == y).float().mean() == 1.0
    return clf, x, y


def _noisy_ce(clf, gen, x, y, eps, seed=123):
    with torch.no_grad():
        noisy = perturb(x, gen, eps, torch.Generator().manual_seed(seed))
        return F.cross_entropy(clf(noisy), y).item()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kernel", ["1x1", "3x3"])
def test_perturb_has_norm_eps_and_stays_in_range(channels, kernel):
    x = torch.rand(4, channels, 6, 6)
    out = perturb(x, NoiseGenerator(channels, kernel=kernel), 1.5)
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1
    norms = (out - x).flatten(1).norm(dim=1)
    assert torch.allclose(norms, torch.full((4,), 1.5), rtol=1e-5)


def test_generator_loss_is_negative_cross_entropy(task):
    clf, x, y = task
    gen = NoiseGenerator(1)
    loss = generator_loss(clf, gen, x[:32], y[:32], EPS, torch.Generator().manual_seed(1))
    ce = F.cross_entropy(clf(perturb(x[:32], gen, EPS, torch.Generator().manual_seed(1))), y[:32])
    assert torch.allclose(loss, -ce)


def test_frozen_restores_mode_and_requires_grad():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.Linear(2, 2))
    model[2].weight.requires_grad_(False)
    model[1].eval()
    with frozen(model):
        assert not model.training and not model[1].training
        assert not any(p.requires_grad for p in model.parameters())
    assert model.training and model[0].training and not model[1].training
    assert [p.requires_grad for p in model.parameters()] == [True, True, False, True]


@pytest.mark.parametrize("kernel", ["1x1", "3x3"])
def test_fit_generator_increases_loss_under_noise(task, kernel):
    clf, x, y = task
    clf.train()
    before = {k: v.clone() for k, v in clf.state_dict().items()}
    untrained = NoiseGenerator(1, kernel=kernel, rng=torch.Generator().manual_seed(0))
    trained = fit_generator(
        clf, x, y, eps=EPS, steps=60, lr=1e-2, batch_size=64, kernel=kernel, seed=0
    )
    assert isinstance(trained, NoiseGenerator) and trained.kernel == kernel
    ce0 = _noisy_ce(clf, untrained, x, y, EPS)
    ce1 = _noisy_ce(clf, trained, x, y, EPS)
    assert ce1 > 1.5 * ce0, (ce0, ce1)  # typically 0.10 -> 0.27 (1x1), 0.37 (3x3)
    rate0 = fooling_rate(clf, untrained, x, y, EPS, seed=1)
    assert fooling_rate(clf, trained, x, y, EPS, seed=1) > rate0
    # The classifier is untouched and its state restored.
    assert clf.training
    assert all(p.requires_grad for p in clf.parameters())
    for k, v in clf.state_dict().items():
        assert torch.equal(v, before[k])


def test_fit_generator_is_deterministic_for_a_seed(task):
    clf, x, y = task
    kw = dict(eps=EPS, steps=5, lr=1e-2, batch_size=100, seed=3)
    a, b = fit_generator(clf, x, y, **kw), fit_generator(clf, x, y, **kw)
    c = fit_generator(clf, x, y, **{**kw, "seed": 4})
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc)


def test_fit_generator_trains_a_given_generator_in_place(task):
    clf, x, y = task
    gen = NoiseGenerator(1, depth=2)
    start = [p.clone() for p in gen.parameters()]
    out = fit_generator(clf, x, y, eps=EPS, steps=3, lr=1e-2, batch_size=32, seed=0, generator=gen)
    assert out is gen
    assert any(not torch.equal(p, q) for p, q in zip(gen.parameters(), start))
    with pytest.raises(ValueError):
        other = NoiseGenerator(3)
        fit_generator(clf, x, y, eps=EPS, steps=1, batch_size=8, seed=0, generator=other)


def test_fit_generator_validates_arguments(task):
    clf, x, y = task
    with pytest.raises(ValueError):
        fit_generator(clf, x, y[:-1], eps=EPS, steps=1, batch_size=8, seed=0)
    with pytest.raises(ValueError):
        fit_generator(clf, x, y, eps=EPS, steps=1, batch_size=0, seed=0)
    with pytest.raises(ValueError):
        fit_generator(clf, x, y, eps=EPS, steps=1, batch_size=8, channels=3, seed=0)


def test_fooling_rate(task):
    clf, x, y = task
    gen = NoiseGenerator(1)
    rate = fooling_rate(clf, gen, x, y, EPS, seed=0, batch_size=100)
    assert 0.0 <= rate <= 1.0
    assert rate == fooling_rate(clf, gen, x, y, EPS, seed=0, batch_size=100)
    assert fooling_rate(clf, gen, x, y, 0.0, seed=0) == 0.0
    assert math.isnan(fooling_rate(clf, gen, x, 1 - y, 0.0, seed=0))  # nothing correct
