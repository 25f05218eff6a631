"""Tests of adversarial accuracy under foolbox's PGD and DDN (paper section 4.6, appendix F)."""

import pytest
import torch
from conftest import REPO
from torch import nn

from noisetrain.config import load_config, validate_config
from noisetrain.measure.attacks import ATTACKS, adversarial_accuracy

pytestmark = pytest.mark.usefixtures("one_thread")


def _blobs(n, seed):
    """3 classes of 1x10x10 images: a bright square in one of three places, on noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = 0.3 + 0.2 * torch.rand(n, 1, 10, 10, generator=g)
    for k, (r, c) in enumerate([(1, 1), (1, 6), (6, 3)]):
        x[y == k, :, r : r + 3, c : c + 3] += 0.35
    return x.clamp(0, 1), y


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(100, 32), nn.ReLU(), nn.Linear(32, 3))
    x, y = _blobs(384, 0)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(80):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    xt, yt = _blobs(64, 1)
    with torch.no_grad():
        clean = (model(xt).argmax(1) == yt).float().mean().item()
    assert clean >= 0.9
    return model, xt, yt, clean


PGD = dict(attack="linf_pgd", steps=10, step_size=0.02)
DDN = dict(attack="l2_ddn", steps=10, gamma=0.05)


@pytest.mark.parametrize("kwargs,eps", [(PGD, [0.0, 0.12, 0.14, 0.16, 0.3]), (DDN, [0.0, 0.6, 0.7, 0.8, 3.0])])
def test_accuracy_bounded_and_non_increasing(trained, kwargs, eps):
    model, x, y, clean = trained
    accs = [adversarial_accuracy(model, x, y, epsilon=e, batch_size=40, **kwargs) for e in eps]
    assert all(0.0 <= a <= clean + 1e-9 for a in accs)
    assert accs[0] == pytest.approx(clean)  # a zero budget changes nothing
    assert all(b <= a + 1e-9 for a, b in zip(accs, accs[1:]))
    assert accs[-1] < clean  # the largest budget does break some images
    assert any(0 < a < clean for a in accs)  # and some budget breaks only part of them
    # several budgets in one call agree with the separate calls' trend and never increase
    together = adversarial_accuracy(model, x, y, epsilon=eps, batch_size=40, **kwargs)
    assert isinstance(together, list) and len(together) == len(eps)
    assert all(b <= a for a, b in zip(together, together[1:]))
    assert together[0] == pytest.approx(clean)


def test_deterministic_for_a_seed_and_restores_training_flag(trained):
    model, x, y, _ = trained
    model.zero_grad(set_to_none=True)
    model.train()
    try:
        a = adversarial_accuracy(model, x, y, epsilon=0.1, seed=3, **PGD)
        assert model.training
        b = adversarial_accuracy(model, x, y, epsilon=0.1, seed=3, **PGD)
    finally:
        model.eval()
    assert a == b
    # the weights keep their flags and get no gradient: the attack differentiates the input alone
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    # the forked RNG leaves the caller's generator untouched
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    adversarial_accuracy(model, x, y, epsilon=0.1, seed=3, **PGD)
    assert torch.equal(torch.rand(3), expected)


def test_errors(trained):
    model, x, y, _ = trained
    with pytest.raises(ValueError, match="linf_pgd.*l2_ddn"):
        adversarial_accuracy(model, x, y, attack="fgsm", epsilon=0.1, steps=10)
    with pytest.raises(ValueError, match="gamma"):
        adversarial_accuracy(model, x, y, attack="linf_pgd", epsilon=0.1, steps=10, gamma=0.05)
    with pytest.raises(ValueError, match="step_size"):
        adversarial_accuracy(model, x, y, attack="l2_ddn", epsilon=0.1, steps=10, step_size=0.01)
    with pytest.raises(ValueError, match="epsilon"):
        adversarial_accuracy(model, x, y, attack="l2_ddn", epsilon=-1.0, steps=10)


def test_mnist_config_and_schema_defaults_hold_the_papers_attack_settings():
    """Appendix F, MNIST: L-inf PGD eps 0.1 (100 steps of 0.01), L2 DDN eps 1.5 (100 steps, gamma 0.05)."""
    paper = {"linf_pgd": {"epsilon": 0.1, "steps": 100, "step_size": 0.01},
             "l2_ddn": {"epsilon": 1.5, "steps": 100, "gamma": 0.05}}
    mnist = load_config(REPO / "config" / "mnist.yaml")["attacks"]
    minimal = {"dataset": {"name": "digits"}, "methods": {"vanilla": {"kind": "vanilla"}}, "robustness": {"an_eps": 1.0}}
    defaults = validate_config(minimal)["attacks"]
    for attacks in (mnist, defaults):
        assert {name: attacks[name] for name in ATTACKS} == paper
