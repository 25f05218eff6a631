"""Tests for noisetrain.train.training_attacks: the plain-torch L-inf PGD and L2 DDN that adversarial
training runs per batch must do the math of the foolbox attacks the evaluation keeps as the
reference (noisetrain.measure.attacks), and keep the invariants the training step relies on."""

import pytest
import torch
from helpers import fit_full_batch
from torch import nn

from noisetrain.data import datasets
from noisetrain.measure.attacks import adversarial_accuracy
from noisetrain.train.training_attacks import _unit_directions, l2_ddn, linf_pgd

PGD = {"epsilon": 0.1, "steps": 20, "step_size": 0.01, "random_start": True}
DDN = {"epsilon": 1.5, "steps": 30, "gamma": 0.05}


@pytest.fixture(autouse=True)
def one_thread():
    """Bit-for-bit comparisons need a fixed reduction order."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tiny_digits):
    """A small MLP fitted to the 400 training digits, and the 100 held-out digits to attack."""
    torch.manual_seed(0)
    x, y = datasets.to_float(tiny_digits.train.images), torch.from_numpy(tiny_digits.train.labels)
    model = fit_full_batch(nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10)), x, y, steps=150)
    x_test, y_test = datasets.to_float(tiny_digits.test.images), torch.from_numpy(tiny_digits.test.labels)
    assert (model(x_test).argmax(1) == y_test).float().mean() > 0.8
    return model, x_test, y_test


def generator(seed=3):
    return torch.Generator().manual_seed(seed)


def pgd(model, x, y, seed=3, **settings):
    return linf_pgd(model, x, y, **{**PGD, **settings}, generator=generator(seed))


def ddn(model, x, y, seed=3, **settings):
    return l2_ddn(model, x, y, **{**DDN, **settings}, generator=generator(seed))


def foolbox_examples(model, x, y, attack, seed, **settings):
    """foolbox's examples and successes, called as the training step called it before."""
    import foolbox as fb

    from noisetrain.noise.adversarial_noise import frozen

    made = fb.attacks.LinfPGD(steps=settings["steps"], abs_stepsize=settings["step_size"], random_start=True) \
        if attack == "linf_pgd" else fb.attacks.DDNAttack(steps=settings["steps"], gamma=settings["gamma"])
    with frozen(model), torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        _, examples, fooled = made(fb.PyTorchModel(model, bounds=(0.0, 1.0)), x, fb.criteria.Misclassification(y),
                                   epsilons=settings["epsilon"])
    return examples, fooled


def robust_accuracy(model, x, y, fooled):
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    return (correct & ~fooled).float().mean().item()


@pytest.mark.parametrize("epsilon", [0.05, 0.1])
def test_pgd_reproduces_foolbox_for_the_same_seed(trained, epsilon):
    """The same random start (the seed drawn uniformly as foolbox draws it from torch's global
    generator) and the same steps: the very same examples (bit for bit on one CPU thread)."""
    model, x, y = trained
    settings = {**PGD, "epsilon": epsilon}
    reference, reference_fooled = foolbox_examples(model, x, y, "linf_pgd", 3, **settings)
    examples, fooled = pgd(model, x, y, epsilon=epsilon)
    assert torch.allclose(examples, reference, rtol=0, atol=1e-6)
    assert torch.equal(fooled, reference_fooled)


def test_ddn_reproduces_foolbox(trained):
    """DDN draws nothing unless a gradient vanishes: the same examples up to float rounding (the
    norms are summed in another order), hence the same successes."""
    model, x, y = trained
    for epsilon in (1.0, DDN["epsilon"]):
        reference, reference_fooled = foolbox_examples(model, x, y, "l2_ddn", 3, **{**DDN, "epsilon": epsilon})
        examples, fooled = ddn(model, x, y, epsilon=epsilon)
        close = ((examples - reference).flatten(1).abs().amax(1) < 1e-4).float().mean().item()
        assert close >= 0.95, close
        assert (fooled == reference_fooled).float().mean().item() >= 0.95


@pytest.mark.parametrize(("attack", "settings"), [("linf_pgd", PGD), ("l2_ddn", DDN)], ids=["pgd", "ddn"])
def test_adversarial_accuracy_matches_foolboxs_evaluation(trained, attack, settings):
    """Against the evaluation's own numbers (noisetrain.measure.attacks, another seed for PGD):
    within a few points, and the attacks do break most of the MLP's answers."""
    model, x, y = trained
    ours = robust_accuracy(model, x, y, (pgd if attack == "linf_pgd" else ddn)(model, x, y, seed=11)[1])
    reference = adversarial_accuracy(model, x, y, attack=attack, steps=settings["steps"], epsilon=settings["epsilon"],
                                     step_size=settings.get("step_size"), gamma=settings.get("gamma"), seed=5)
    assert abs(ours - reference) <= 0.03, (ours, reference)
    assert ours < 0.5


@pytest.mark.parametrize("attack", [pgd, ddn], ids=["pgd", "ddn"])
def test_examples_lie_in_the_epsilon_ball_and_the_image_range(trained, attack):
    model, x, y = trained
    examples, _ = attack(model, x, y)
    change = (examples - x).flatten(1)
    norms = change.abs().amax(1) if attack is pgd else change.norm(dim=1)
    epsilon = (PGD if attack is pgd else DDN)["epsilon"]
    assert examples.min() >= 0 and examples.max() <= 1 and not examples.requires_grad
    assert norms.max() <= epsilon * (1 + 1e-5) and norms.mean() > 0.3 * epsilon


@pytest.mark.parametrize("attack", [pgd, ddn], ids=["pgd", "ddn"])
def test_fooled_says_whether_the_model_misclassifies_the_example(trained, attack):
    model, x, y = trained
    examples, fooled = attack(model, x, y)
    with torch.no_grad():
        assert torch.equal(fooled, model(examples).argmax(1) != y)


@pytest.mark.parametrize("attack", [pgd, ddn], ids=["pgd", "ddn"])
def test_a_seed_repeats_and_global_randomness_is_untouched(trained, attack):
    model, x, y = trained
    state = torch.get_rng_state()
    first = attack(model, x, y)[0]
    assert torch.equal(first, attack(model, x, y)[0])
    assert torch.equal(torch.get_rng_state(), state)
    if attack is pgd:  # DDN draws only for vanishing gradients
        assert not torch.equal(first, attack(model, x, y, seed=4)[0])


def test_pgd_without_random_start_starts_from_the_image(trained):
    model, x, y = trained
    one = pgd(model, x, y, random_start=False, steps=1)[0]
    assert torch.equal(one, pgd(model, x, y, random_start=False, steps=1, seed=9)[0])
    assert torch.allclose((one - x).abs()[(x > 0.02) & (x < 0.98)], torch.tensor(PGD["step_size"]))


@pytest.mark.parametrize("attack", [pgd, ddn], ids=["pgd", "ddn"])
@pytest.mark.parametrize("training", [True, False])
def test_the_model_keeps_its_modes_flags_and_gradients(trained, attack, training):
    """Queries in eval mode (dropout off); afterwards every module's mode, every parameter's
    requires_grad and .grad are as before: nothing leaks into the next optimizer step."""
    model = nn.Sequential(trained[0], nn.Dropout(0.5)).train(training)
    x, y = trained[1], trained[2]
    model[0][1].weight.requires_grad_(False)
    stale = [torch.full_like(p, 0.5) for p in model.parameters()]
    for p, grad in zip(model.parameters(), stale):
        p.grad = grad.clone()
    modes = []
    model.register_forward_pre_hook(lambda module, _: modes.append(module.training))
    attack(model, x, y)
    try:
        assert modes and not any(modes)
        assert all(m.training == training for m in model.modules())
        assert [p.requires_grad for p in model.parameters()] == [False, True, True, True]
        assert all(torch.equal(p.grad, grad) for p, grad in zip(model.parameters(), stale))
    finally:
        model[0][1].weight.requires_grad_(True)
        for p in model.parameters():
            p.grad = None


@pytest.mark.parametrize("attack", [pgd, ddn], ids=["pgd", "ddn"])
def test_an_attack_inside_no_grad_still_attacks(trained, attack):
    model, x, y = trained
    expected = attack(model, x, y)[0]
    with torch.no_grad():
        assert torch.equal(attack(model, x, y)[0], expected)


def test_vanishing_gradients_get_a_random_unit_direction_from_the_generator():
    gradient = torch.zeros(3, 1, 4, 4)
    gradient[0, 0, 0, 0] = 2.0
    state = torch.get_rng_state()
    one = _unit_directions(gradient, generator(1))
    assert torch.equal(one[0], gradient[0] / 2)
    assert torch.allclose(one.flatten(1).norm(dim=1), torch.ones(3))
    assert not torch.equal(one[1], one[2])
    assert torch.equal(one, _unit_directions(gradient, generator(1)))
    assert not torch.equal(one, _unit_directions(gradient, generator(2)))
    assert torch.equal(torch.get_rng_state(), state)
    untouched = generator(1)
    _unit_directions(torch.ones(2, 1, 4, 4), untouched)
    assert torch.equal(untouched.get_state(), generator(1).get_state())  # no draw without a vanishing gradient
