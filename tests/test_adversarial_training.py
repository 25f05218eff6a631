"""Tests for noisetrain.train.adversarial_training: PGD and DDN adversarial training, the
adversarially trained baselines of the paper's Table 11 (appendix E)."""


import pytest
import torch
from helpers import fit_full_batch, weights_only_round_trip
from torch import nn

from noisetrain.config import train_spec, validate_config
from noisetrain.data import datasets
from noisetrain.errors import InputError
from noisetrain.measure.attacks import adversarial_accuracy
from noisetrain.train import adversarial_training
from noisetrain.train import trainer as training
from noisetrain.train.adversarial_training import AdversarialStep
from noisetrain.train.noise_step import NoiseStep
from noisetrain.train.steps import step_class

# Small attacks keep every test within seconds; the pipeline's defaults are the papers' settings.
PGD = {"kind": "pgd_at", "epsilon": 0.1, "steps": 5, "step_size": 0.03}
DDN = {"kind": "ddn_at", "epsilon": 1.5, "steps": 10, "gamma": 0.1}
SCHEDULE = {"epochs": 1, "lr": 0.05, "momentum": 0.9, "lr_decay_epoch": None}


pytestmark = pytest.mark.usefixtures("single_thread")


def config(**methods) -> dict:
    return validate_config({"dataset": {"name": "digits"}, "train": {"batch_size": 100, "vanilla": SCHEDULE},
                            "robustness": {"an_eps": 1.0}, "methods": {"vanilla": {"kind": "vanilla"}, **methods}})


def spec(method: dict) -> dict:
    """A spec as the trainer gets it: a validated config (schema defaults filled) through train_spec."""
    return train_spec(config(at=method), "at")


def mlp(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))


def sgd(model, lr=0.05):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def arrays(data):
    return datasets.to_float(data.train.images), torch.from_numpy(data.train.labels)


def batches(n_steps, n=100, seed=1, total=400):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randperm(total, generator=generator)[:n] for _ in range(n_steps)]


@pytest.fixture(scope="module")
def vanilla(tiny_digits):
    """A small MLP trained to fit the 400 training digits (a 'vanilla' classifier)."""
    x, y = arrays(tiny_digits)
    model = fit_full_batch(mlp(), x, y, steps=150, lr=1e-2)
    assert (model(x).argmax(1) == y).float().mean() > 0.95
    return model


def copy_of(model):
    fresh = mlp()
    fresh.load_state_dict(model.state_dict())
    return fresh


def test_both_kinds_are_registered_with_the_trainer():
    assert step_class("pgd_at") is step_class("ddn_at") is AdversarialStep


@pytest.mark.parametrize("method", [PGD, DDN], ids=["pgd", "ddn"])
def test_adversarial_examples_stay_in_the_epsilon_ball_and_the_image_range(tiny_digits, vanilla, method):
    x, y = arrays(tiny_digits)
    x, y = x[:100], y[:100]
    step = AdversarialStep(spec(method))
    model = copy_of(vanilla).train()
    adversarial, fooled = step.perturb(model, x, y)
    change = (adversarial - x).flatten(1)
    norms = change.abs().amax(1) if method["kind"] == "pgd_at" else change.norm(dim=1)
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert norms.max() <= method["epsilon"] * (1 + 1e-5)
    assert norms.mean() > 0.5 * method["epsilon"]  # the attack did move the images
    with torch.no_grad():
        still_right = (model.eval()(adversarial).argmax(1) == y).float().mean().item()
    assert still_right == pytest.approx(1 - fooled.float().mean().item())
    assert still_right < 0.5 < (model(x).argmax(1) == y).float().mean().item()  # it fools the vanilla MLP


def test_the_classifier_steps_on_the_adversarial_examples(tiny_digits, vanilla, monkeypatch):
    """The loss is computed on the attack's images, not on the clean batch (a skipped attack fails)."""
    seen = []
    real_step = adversarial_training.classifier_step

    def spy(model, optimizer, batch, target, *precision):
        seen.append(batch.clone())
        return real_step(model, optimizer, batch, target, *precision)

    monkeypatch.setattr(adversarial_training, "classifier_step", spy)
    x, y = arrays(tiny_digits)
    x, y = x[:100], y[:100]
    model = copy_of(vanilla).train()
    metrics = AdversarialStep(spec(PGD)).step(model, sgd(model), x, y, torch.arange(100))
    (batch,) = seen
    change = (batch - x).flatten(1).abs().amax(1)
    assert (change > 0.9 * PGD["epsilon"]).float().mean() > 0.9 and change.max() <= PGD["epsilon"] * (1 + 1e-5)
    assert metrics["perturbation_size"] == pytest.approx(change.mean().item(), rel=1e-5)
    assert set(metrics) == {"loss", "accuracy", "adversarial_accuracy", "perturbation_size"}
    assert 0 <= metrics["adversarial_accuracy"] < 0.5 and metrics["loss"] > 1.0  # the vanilla MLP is fooled


def test_attack_runs_in_eval_mode_without_weight_gradients_and_restores_the_model(tiny_digits, vanilla):
    x, y = arrays(tiny_digits)
    model = nn.Sequential(copy_of(vanilla), nn.Dropout(0.5)).train()
    modes = []
    model.register_forward_pre_hook(lambda module, _: modes.append(module.training))
    AdversarialStep(spec(PGD)).perturb(model, x[:50], y[:50])
    assert modes and not any(modes)  # every attack query in eval mode: dropout off, deterministic
    assert model.training and all(m.training for m in model.modules())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


@pytest.mark.slow
def test_pgd_at_raises_accuracy_under_the_same_attack(tiny_digits, vanilla):
    """From the same vanilla MLP on the same batches: 100 steps of PGD AT leave a model the very
    PGD attack breaks far less often than 100 vanilla steps do (vanilla ~0.12, PGD AT ~0.45)."""
    x, y = arrays(tiny_digits)
    x_test, y_test = datasets.to_float(tiny_digits.test.images), torch.from_numpy(tiny_digits.test.labels)
    robust = {}
    for name, step in (("vanilla", NoiseStep(spec({"kind": "vanilla"}))), ("pgd_at", AdversarialStep(spec(PGD)))):
        model = copy_of(vanilla).train()
        optimizer = sgd(model)
        for index in batches(100):
            step.step(model, optimizer, x[index], y[index], index)
        robust[name] = adversarial_accuracy(model, x_test, y_test, attack="linf_pgd", epsilon=PGD["epsilon"],
                                            steps=PGD["steps"], step_size=PGD["step_size"])
    assert robust["pgd_at"] > robust["vanilla"] + 0.15, robust


@pytest.mark.parametrize("method", [PGD, DDN], ids=["pgd", "ddn"])
def test_exact_resume_from_a_weights_only_checkpoint(tiny_digits, vanilla, method):
    x, y = arrays(tiny_digits)
    s = spec(method)
    k, m = 2, 2
    order = batches(k + m, n=50)

    def run(model, opt, step, which):
        return [step.step(model, opt, x[i], y[i], i) for i in which]

    def fresh():
        model = copy_of(vanilla).train()
        return model, sgd(model, lr=1e-2), AdversarialStep(s)

    model_a, opt_a, step_a = fresh()
    global_state = torch.get_rng_state()
    metrics_a = run(model_a, opt_a, step_a, order)
    assert torch.equal(torch.get_rng_state(), global_state)  # only the seeded stream was used

    model_b, opt_b, step_b = fresh()
    run(model_b, opt_b, step_b, order[:k])
    model_c, opt_c, step_c = weights_only_round_trip((model_b, opt_b, step_b), fresh())
    metrics_c = run(model_c, opt_c, step_c, order[k:])

    assert metrics_c == metrics_a[k:]
    for a, c in zip(model_a.state_dict().values(), model_c.state_dict().values()):
        assert torch.equal(a, c)
    assert torch.equal(step_a.rng.get_state(), step_c.rng.get_state())


def test_random_start_draws_from_the_seeded_stream(tiny_digits, vanilla):
    """PGD's random start differs from batch to batch, and repeats for the same seed."""
    x, y = arrays(tiny_digits)
    x, y = x[:20], y[:20]
    model = copy_of(vanilla)
    one, two = AdversarialStep(spec(PGD)), AdversarialStep(spec(PGD))
    first = one.perturb(model, x, y)[0]
    assert torch.equal(first, two.perturb(model, x, y)[0])
    assert not torch.equal(first, one.perturb(model, x, y)[0])
    other_seed = AdversarialStep({**spec(PGD), "seed": 1}).perturb(model, x, y)[0]
    assert not torch.equal(first, other_seed)


@pytest.mark.slow
def test_trainer_trains_from_scratch_and_logs_the_adversarial_accuracy(tiny_digits, tmp_path):
    s = spec({**PGD, "steps": 2})
    assert (s["epochs"], s["lr"]) == (SCHEDULE["epochs"], SCHEDULE["lr"])  # the vanilla schedule
    state = training.fit(s, tiny_digits, checkpoint_dir=tmp_path, divergence_guard=False, log=lambda _: None)
    row = state.log[-1]
    assert state.log_columns()[len(training.LOG_COLUMNS):] == ["adversarial_accuracy", "perturbation_size"]
    assert 0 <= row["adversarial_accuracy"] <= 1 and row["perturbation_size"] == pytest.approx(0.1, rel=1e-3)
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    assert set(saved["method"]) == {"rng"}


@pytest.mark.parametrize(("override", "match"), [
    ({"epsilon": -0.1}, "epsilon must be a positive number"),
    ({"epsilon": float("nan")}, "epsilon must be a positive number"),
    ({"steps": 0}, "steps must be an integer >= 1"),
    ({"step_size": 0.0}, "step_size must be a positive number"),
    ({"kind": "ddn_at", "gamma": 1.5}, r"gamma must lie in \(0, 1\)"),
])
def test_invalid_specs_are_rejected(override, match):
    base = {**spec(PGD), "gamma": 0.05}
    with pytest.raises(InputError, match=match):
        AdversarialStep({**base, **override})


@pytest.mark.slow
def test_training_steps_run_without_foolbox(tiny_digits_path):
    """The attacks are plain torch (noisetrain.train.training_attacks): a job that trains pgd_at or
    ddn_at imports no foolbox (1 s a job), which only the evaluation's attacks need."""
    import subprocess
    import sys

    from conftest import REPO

    code = ("import sys, torch; from noisetrain.train.adversarial_training import AdversarialStep; "
            f"step = AdversarialStep({{**{PGD!r}, 'random_start': True, 'seed': 0}}); "
            "x = torch.rand(4, 1, 28, 28); y = torch.arange(4); "
            "step.perturb(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)), x, y); "
            "print('foolbox' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO)
    assert out.stdout.split() == ["False"]
