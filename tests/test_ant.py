"""Tests for noisetrain.ant (Adversarial Noise Training, paper sections 3.2.2 and 3.3)."""

import copy
import math

import numpy as np
import pytest
import torch
from helpers import fit_full_batch, weights_only_round_trip
from torch import nn
from torch.nn import functional as F

from noisetrain.config import train_spec, validate_config
from noisetrain.data import datasets
from noisetrain.errors import DataError, TrainingError
from noisetrain.noise.adversarial_noise import fit_generator, fooling_rate
from noisetrain.noise.generator_bank import GeneratorBank
from noisetrain.noise.generators import NoiseGenerator
from noisetrain.noise.rescaling import rescale_to_norm
from noisetrain.op_count import OpCount
from noisetrain.train import trainer as training
from noisetrain.train.ant import AntStep, part_counts

EPS = 3.0  # reachable for every digit in both directions (brighten and darken)
ATTACK_EPS = 10.0  # the paper's MNIST eps: a trained generator fools the MLP below on ~85% of digits


@pytest.fixture(scope="module")
def data():
    return datasets.prepare({"name": "digits", "test_fraction": 0.3, "seed": 0, "subset_train": 200, "subset_test": 50})


pytestmark = pytest.mark.usefixtures("single_thread")


def mlp(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))


def sgd(model, lr=0.05):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


SCHEDULE = {"epochs": 1, "lr": 0.05, "momentum": 0.9, "lr_decay_epoch": None}


def spec(**overrides) -> dict:
    """An ANT spec as the trainer gets it: a validated config (schema defaults filled) through
    ``train_spec``; overrides of schedule keys go to the fine-tuning schedule, the rest to the method."""
    method = {"kind": "ant", "eps": EPS, "generator_lr": 1e-4, "reinit_every": 1000.0, "reinit_steps": 0, "reinit_lr": None,
              "snapshot_every": 1000}
    schedule = dict(SCHEDULE)
    for key, value in overrides.items():
        (schedule if key in SCHEDULE else method)[key] = value
    config = {"dataset": {"name": "digits"}, "train": {"batch_size": 40, "finetune": schedule},
              "methods": {"vanilla": {"kind": "vanilla"}, "ant": method}, "robustness": {"an_eps": EPS}}
    return train_spec(validate_config(config), "ant")


def batch(data, n=40, seed=0):
    index = torch.randperm(len(data.train.labels), generator=torch.Generator().manual_seed(seed))[:n]
    x = datasets.to_float(data.train.images)[index]
    return x, torch.from_numpy(data.train.labels)[index], index


def change_norms(a, b):
    return (a - b).flatten(1).norm(dim=1)


def put(ant, state):
    """Put ``state`` into the replay bank as the next snapshot (a bank below its capacity keeps it)."""
    assert ant.bank.offer(ant.bank.offered + 1, lambda: state) is None


def past_first_generator(ant):
    """The step as after its first fresh generator: its next step trains jointly with the generator it has."""
    ant.reinits, ant.joining = 1, True
    return ant


@pytest.fixture(scope="module")
def vanilla(data):
    """A small MLP trained to fit the 200 training digits (a 'vanilla' classifier)."""
    model = mlp()
    x, y = datasets.to_float(data.train.images), torch.from_numpy(data.train.labels)
    fit_full_batch(model, x, y, steps=150, lr=1e-2)
    assert (model(x).argmax(1) == y).float().mean() > 0.95
    return model


@pytest.fixture
def stylized_file(data, tmp_path):
    """'Stylized' training images: the inverted digits, same order and labels."""
    path = tmp_path / "stylized.npz"
    np.savez(path, images=255 - data.train.images, labels=data.train.labels)
    return path


# -- batch composition ---------------------------------------------------------------------


def test_part_counts_round_cumulatively_and_sum_to_the_batch():
    paper = {"clean": 0.5, "stylized": 0.0, "current": 0.3, "replay": 0.2}
    assert part_counts(paper, 300) == {"clean": 150, "stylized": 0, "current": 90, "replay": 60}
    sin = {"clean": 0.25, "stylized": 0.3, "current": 0.225, "replay": 0.225}
    assert part_counts(sin, 40) == {"clean": 10, "stylized": 12, "current": 9, "replay": 9}
    for n in range(1, 60):
        counts = part_counts(sin, n)
        assert sum(counts.values()) == n and min(counts.values()) >= 0


def test_default_split_keeps_half_clean_and_perturbs_the_rest_to_eps(data):
    ant = AntStep(spec(), data, "cpu", steps_per_epoch=5)
    x, y, index = batch(data)
    out, parts = ant.compose(x, y, index)
    assert parts == {"clean": slice(0, 20), "stylized": slice(20, 20), "current": slice(20, 32), "replay": slice(32, 40)}
    assert torch.equal(out[:20], x[:20])
    assert torch.allclose(change_norms(out[20:], x[20:]), torch.full((20,), EPS), rtol=1e-4)
    assert out.min() >= 0 and out.max() <= 1


def test_empty_bank_lets_the_current_generator_fill_the_noisy_part(data):
    ant = AntStep(spec(), data, "cpu", steps_per_epoch=5)
    x, y, index = batch(data)
    state = ant.noise_rng.get_state()
    out, _ = ant.compose(x, y, index)
    # Replaying the noise stream: all 20 noisy images come from one draw of the current generator.
    ant.noise_rng.set_state(state)
    z = torch.randn(20, 1, 28, 28, generator=ant.noise_rng)
    with torch.no_grad():
        expected = rescale_to_norm(x[20:], ant.generator.transform(z), EPS)
    assert torch.allclose(out[20:], expected, atol=1e-5)
    assert ant.last_replay_choice is None


def test_without_replay_the_split_is_half_clean_half_current(data):
    ant = AntStep(spec(replay=False), data, "cpu", steps_per_epoch=5)
    x, y, index = batch(data)
    out, parts = ant.compose(x, y, index)
    assert (parts["clean"], parts["current"], parts["replay"]) == (slice(0, 20), slice(20, 40), slice(40, 40))
    assert torch.equal(out[:20], x[:20])
    assert torch.allclose(change_norms(out[20:], x[20:]), torch.full((20,), EPS), rtol=1e-4)


def test_stylized_split_uses_the_stylized_images_of_the_same_indices(data, stylized_file):
    ant = AntStep(spec(stylized_path=str(stylized_file)), data, "cpu", steps_per_epoch=5)
    put(ant, {k: v.clone() for k, v in ant.generator.state_dict().items()})
    x, y, index = batch(data, seed=3)
    out, parts = ant.compose(x, y, index)
    counts = {name: part.stop - part.start for name, part in parts.items()}
    assert counts == {"clean": 10, "stylized": 12, "current": 9, "replay": 9}
    assert torch.equal(out[:10], x[:10])
    stylized = datasets.to_float(255 - data.train.images[index[10:22].numpy()])
    assert torch.equal(out[10:22], stylized)
    assert torch.allclose(change_norms(out[22:], x[22:]), torch.full((18,), EPS), rtol=1e-4)
    assert len(ant.last_replay_choice) == 9


def _biased_state(ant, sign):
    """A recognisable bank state: a huge output bias moves every pixel up (+) or down (-)."""
    state = {k: v.clone() for k, v in ant.generator.state_dict().items()}
    state["convs.3.bias"] = torch.full_like(state["convs.3.bias"], sign * 1e3)
    return state


def test_replay_perturbs_each_image_with_the_bank_state_drawn_for_it(data):
    ant = AntStep(spec(), data, "cpu", steps_per_epoch=5)
    for sign in (1.0, -1.0):  # two recognisable states
        put(ant, _biased_state(ant, sign))
    x, y, index = batch(data, n=100)
    out, parts = ant.compose(x, y, index)
    choice = ant.last_replay_choice
    assert len(choice) == 20 and set(choice.tolist()) == {0, 1}  # several states are replayed
    change = out[parts["replay"]] - x[parts["replay"]]
    for row, state in enumerate(choice.tolist()):
        assert (change[row] >= 0).all() if state == 0 else (change[row] <= 0).all()
    assert torch.allclose(change.flatten(1).norm(dim=1), torch.full((20,), EPS), rtol=1e-4)


def _random_state(ant, seed):
    gen = copy.deepcopy(ant.generator)
    with torch.no_grad():
        for conv in gen.convs:
            conv.weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(seed))
    return {k: v.clone() for k, v in gen.state_dict().items()}


@pytest.mark.parametrize("kernel", ["1x1", "3x3"])
def test_replay_in_one_pass_is_the_replay_state_by_state(data, kernel):
    """replay_each (a GPU's replay: every image under its drawn state's weights at once) draws the same
    states and z and gives the state-by-state noise to float rounding, in as many operations however
    many states are drawn; a call per state grows with them."""
    x, y, index = batch(data, n=100)
    ops, outs = {}, {}
    for each in (False, True):
        for states in (2, 8):
            ant = AntStep(spec(kernel=kernel), data, "cpu", steps_per_epoch=5)
            ant.replay_each = each
            for seed in range(states):
                put(ant, _random_state(ant, seed))
            ant.compose(x, y, index)  # prepares the drawn states
            with OpCount() as count:
                outs[each, states], parts = ant.compose(x, y, index)
            assert len(set(ant.last_replay_choice.tolist())) == states  # 20 images draw every state
            ops[each, states] = count.ops
    for states in (2, 8):
        assert torch.allclose(outs[True, states], outs[False, states], atol=1e-5)
        assert not torch.equal(outs[True, states][parts["replay"]], x[parts["replay"]])
    assert ops[True, 2] == ops[True, 8] < ops[False, 8]
    assert ops[False, 8] > ops[False, 2]


def test_a_restored_bank_is_replayed_not_the_one_prepared_before(data):
    # Replay prepares each bank state once; loading a checkpoint must drop what was prepared.
    ant = AntStep(spec(), data, "cpu", steps_per_epoch=5)
    put(ant, _biased_state(ant, 1.0))
    x, y, index = batch(data, n=100)
    out, parts = ant.compose(x, y, index)
    assert (out[parts["replay"]] >= x[parts["replay"]]).all()
    other = AntStep(spec(), data, "cpu", steps_per_epoch=5)
    put(other, _biased_state(other, -1.0))
    ant.load_state_dict(other.state_dict())
    out, parts = ant.compose(x, y, index)
    assert (out[parts["replay"]] <= x[parts["replay"]]).all()


# -- replay bank and re-initialisation -----------------------------------------------------


def test_bank_grows_every_snapshot_every_steps_with_independent_copies(data, vanilla):
    ant = AntStep(spec(snapshot_every=2, generator_lr=1e-2), data, "cpu", steps_per_epoch=5)
    model, opt = mlp(), None
    model.load_state_dict(vanilla.state_dict())
    opt = sgd(model)
    first = None
    for step in range(1, 7):
        ant.step(model, opt, *batch(data, seed=step))
        assert len(ant.bank) == step // 2
        if step == 2:
            first = {k: v.clone() for k, v in ant.bank.states[0].items()}
            assert all(torch.equal(v, ant.generator.state_dict()[k]) for k, v in first.items())
    assert all(torch.equal(v, ant.bank.states[0][k]) for k, v in first.items())  # untouched by training
    assert not all(torch.equal(v, ant.generator.state_dict()[k]) for k, v in first.items())
    assert all(v.device.type == "cpu" for s in ant.bank.states for v in s.values())
    assert ant.bank.taken_at == [2, 4, 6]
    ant.compose(*batch(data, n=100))
    assert len(set(ant.last_replay_choice.tolist())) > 1


def test_no_bank_without_replay(data):
    ant = AntStep(spec(replay=False, snapshot_every=1), data, "cpu", steps_per_epoch=5)
    model = mlp()
    opt = sgd(model)
    for step in range(3):
        ant.step(model, opt, *batch(data, seed=step))
    assert len(ant.bank) == 0 and ant.bank.offered == 0


def test_fresh_generator_every_reinit_every_epochs(data, vanilla):
    ant = AntStep(spec(reinit_every=0.5, reinit_steps=2), data, "cpu", steps_per_epoch=10)
    assert ant.reinit_interval == 5
    model = mlp()
    model.load_state_dict(vanilla.state_dict())
    opt = sgd(model, lr=1e-3)
    replaced_at = []
    for step in range(1, 13):
        before = ant.generator
        ant.step(model, opt, *batch(data, seed=step))
        if ant.generator is not before:
            replaced_at.append(step)
            # It joins with a new Adam at generator_lr: no moments yet (after step 1, the one joint step).
            assert all(s["step"] == (step == 1) for s in ant.optimizer.state.values())
            assert ant.optimizer.param_groups[0]["lr"] == ant.lr
        assert ant.steps == step and ant.reinits == 1 + step // 5  # the first one before any joint step
    assert replaced_at == [1, 5, 10]


def spy_on_generator_updates(ant, monkeypatch) -> list:
    """Record (generator, Adam lr) of every generator update the step makes from now on."""
    seen = []
    update = ant._generator_update

    def spy(model, gen, opt, *args, **kwargs):
        seen.append((gen, opt.param_groups[0]["lr"]))
        return update(model, gen, opt, *args, **kwargs)

    monkeypatch.setattr(ant, "_generator_update", spy)
    return seen


def test_reinit_uses_reinit_lr_for_reinit_steps_then_generator_lr(data, vanilla, monkeypatch):
    ant = AntStep(spec(generator_lr=1e-4, reinit_lr=3e-2, reinit_steps=3), data, "cpu", steps_per_epoch=5)
    assert ant.optimizer.param_groups[0]["lr"] == 1e-4  # the first generator trains jointly
    seen = spy_on_generator_updates(ant, monkeypatch)
    ant.reinitialise(vanilla)
    assert [lr for _, lr in seen] == [3e-2] * 3  # reinit_steps steps of the fresh Adam at reinit_lr
    assert all(gen is ant.generator for gen, _ in seen)
    assert ant.optimizer.state == {}  # then on with a new Adam (the authors' code) at generator_lr
    assert ant.optimizer.param_groups[0]["lr"] == 1e-4
    ant.step(vanilla, sgd(vanilla, lr=0.0), *batch(data))
    assert seen[-1][1] == 1e-4 and len(seen) == 4


def test_reinit_optimizer_kept_joins_with_the_moments_of_its_training(data, vanilla):
    ant = AntStep(spec(generator_lr=1e-4, reinit_lr=3e-2, reinit_steps=3, reinit_optimizer="kept"), data, "cpu",
                  steps_per_epoch=5)
    ant.reinitialise(vanilla)
    assert all(s["step"] == 3 for s in ant.optimizer.state.values())
    assert ant.optimizer.param_groups[0]["lr"] == 1e-4


def test_reinit_defaults_are_the_authors_and_null_lr_is_generator_lr(data):
    config = {"dataset": {"name": "digits"}, "methods": {"vanilla": {"kind": "vanilla"}, "ant": {"kind": "ant", "eps": EPS}},
              "robustness": {"an_eps": EPS}}
    s = train_spec(validate_config(config), "ant")
    assert (s["reinit_steps"], s["reinit_lr"], s["reinit_optimizer"]) == (1001, 5e-4, "new")  # bethgelab/game-of-noise
    ant = AntStep(spec(generator_lr=2e-3, reinit_lr=None), data, "cpu", steps_per_epoch=5)
    assert ant.reinit_lr == 2e-3
    older = {k: v for k, v in spec(generator_lr=2e-3).items() if k != "reinit_lr"}  # a spec without the key
    assert AntStep(older, data, "cpu", steps_per_epoch=5).reinit_lr == 2e-3


def test_reinit_trains_the_new_generator_against_the_classifier(data, vanilla):
    ant = AntStep(spec(eps=ATTACK_EPS, reinit_steps=40, generator_lr=1e-2), data, "cpu", steps_per_epoch=5)
    x, y = datasets.to_float(data.train.images), torch.from_numpy(data.train.labels)
    before = {k: v.clone() for k, v in ant.generator.state_dict().items()}
    ant.reinitialise(vanilla)
    assert ant.reinits == 1
    assert not all(torch.equal(v, ant.generator.state_dict()[k]) for k, v in before.items())
    untrained = NoiseGenerator(1, 4, "1x1", rng=torch.Generator().manual_seed(1))

    def noisy_ce(gen):
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            return F.cross_entropy(vanilla(rescale_to_norm(x, gen.transform(z), ATTACK_EPS)), y).item()

    assert noisy_ce(ant.generator) > 1.5 * noisy_ce(untrained)
    assert all(p.requires_grad for p in vanilla.parameters())  # classifier left trainable


def test_the_first_generator_is_trained_before_joint_training(data, vanilla, monkeypatch):
    ant = AntStep(spec(generator_lr=1e-4, reinit_lr=3e-2, reinit_steps=3), data, "cpu", steps_per_epoch=5)
    untrained = ant.generator
    seen = spy_on_generator_updates(ant, monkeypatch)
    model = copy.deepcopy(vanilla)
    ant.step(model, sgd(model, lr=0.0), *batch(data))
    # Three steps of the fresh generator's own training, then its first joint step.
    assert [lr for _, lr in seen] == [3e-2, 3e-2, 3e-2, 1e-4]
    assert all(gen is ant.generator for gen, _ in seen) and ant.generator is not untrained
    assert ant.reinits == 1


def test_the_classifier_trains_on_the_updated_generator_with_fresh_noise(data, monkeypatch):
    ant = past_first_generator(AntStep(spec(generator_lr=1e-2), data, "cpu", steps_per_epoch=5))
    calls = []
    perturb = ant._perturb

    def spy(gen, x, z=None):
        calls.append(({k: v.clone() for k, v in gen.state_dict().items()}, ant.noise_rng.get_state()))
        return perturb(gen, x, z)

    monkeypatch.setattr(ant, "_perturb", spy)
    model = mlp()
    ant.step(model, sgd(model), *batch(data))
    (before, z_update), (after, z_current) = calls  # the generator's update, then the classifier's batch
    assert all(torch.equal(v, ant.generator.state_dict()[k]) for k, v in after.items())
    assert not all(torch.equal(v, after[k]) for k, v in before.items())
    assert not torch.equal(z_update, z_current)  # fresh z, not the update's own draw


def test_each_generator_logs_its_fooling_rate_when_it_joins(data, vanilla):
    ant = AntStep(spec(eps=ATTACK_EPS, reinit_every=0.4, reinit_steps=20, reinit_lr=1e-2), data, "cpu",
                  steps_per_epoch=5)  # a fresh generator before step 1 and after steps 2 and 4
    model = copy.deepcopy(vanilla)
    rows = [ant.step(model, sgd(model, lr=0.0), *batch(data, seed=step)) for step in range(1, 6)]
    joined = [row["joining_fooling_rate"] for row in rows]
    assert joined[0] == rows[0]["fooling_rate"]  # its first joint batch, before its first joint update
    assert joined[1] == joined[0] and joined[3] == joined[2] == rows[2]["fooling_rate"]
    assert joined[4] == rows[4]["fooling_rate"]
    assert min(joined) > 0.3  # 20 steps at 1e-2 fool the vanilla MLP (an untrained generator: ~0.1)


def test_the_bank_stays_bounded_over_a_long_run_and_samples_all_of_it(data):
    ant = past_first_generator(AntStep(spec(snapshot_every=1, bank_size=4), data, "cpu", steps_per_epoch=5))
    model = mlp()
    opt = sgd(model)
    _run(data, ant, model, opt, 30)
    assert len(ant.bank) == 4 and ant.bank.offered == 30
    assert ant.bank.taken_at == sorted(ant.bank.taken_at) and ant.bank.taken_at[0] < 26  # not just the newest
    assert set(ant._bank_entries) <= set(ant.bank.taken_at)  # nothing prepared for a displaced state


def test_generator_step_leaves_classifier_weights_without_gradients(data):
    ant = AntStep(spec(), data, "cpu", steps_per_epoch=5)
    model = mlp()
    x, y, _ = batch(data)
    ant._generator_update(model, ant.generator, ant.optimizer, x, y)
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert all(p.grad is not None for p in ant.generator.parameters())


# -- determinism, resume, export -----------------------------------------------------------


def _run(data, ant, model, opt, steps, start=0):
    for step in range(start, start + steps):
        ant.step(model, opt, *batch(data, seed=100 + step))


def test_exact_resume_from_a_weights_only_checkpoint(data, vanilla, stylized_file):
    s = spec(reinit_every=0.6, reinit_steps=2, snapshot_every=1, bank_size=3, generator_lr=1e-2,
             stylized_path=str(stylized_file))
    k, m = 4, 5  # crosses re-inits (before 1; after 3, 6, 9) and a full bank (3 of 9 snapshots kept)

    def fresh():
        model = mlp()
        model.load_state_dict(vanilla.state_dict())
        return model, sgd(model, lr=1e-2), AntStep(s, data, "cpu", steps_per_epoch=5)

    model_a, opt_a, ant_a = fresh()
    global_state = torch.get_rng_state()
    _run(data, ant_a, model_a, opt_a, k + m)
    assert torch.equal(torch.get_rng_state(), global_state)  # only seeded generators were used

    model_b, opt_b, ant_b = fresh()
    _run(data, ant_b, model_b, opt_b, k)
    model_c, opt_c, ant_c = weights_only_round_trip((model_b, opt_b, ant_b), fresh())
    _run(data, ant_c, model_c, opt_c, m, start=k)

    assert (ant_c.steps, ant_c.reinits, len(ant_c.bank)) == (ant_a.steps, ant_a.reinits, len(ant_a.bank)) == (9, 4, 3)
    assert ant_c.bank.taken_at == ant_a.bank.taken_at and ant_a.bank.offered == 9
    for a, c in zip(model_a.state_dict().values(), model_c.state_dict().values()):
        assert torch.equal(a, c)
    for key, value in ant_a.generator.state_dict().items():
        assert torch.equal(value, ant_c.generator.state_dict()[key])
    for state_a, state_c in zip(ant_a.bank.states, ant_c.bank.states):
        assert all(torch.equal(v, state_c[key]) for key, v in state_a.items())
    assert torch.equal(ant_a.compose(*batch(data))[0], ant_c.compose(*batch(data))[0])


def test_export_round_trip(data, tmp_path):
    ant = AntStep(spec(snapshot_every=1, generator_lr=1e-2), data, "cpu", steps_per_epoch=5)
    model = mlp()
    opt = sgd(model)
    _run(data, ant, model, opt, 3)
    path = tmp_path / "model.pt"
    torch.save(ant.export(), path)
    bank = GeneratorBank.from_dict(torch.load(path, weights_only=True)["generators"])
    assert (bank.arch, bank.eps) == ({"channels": 1, "depth": 4, "kernel": "1x1"}, EPS)
    assert len(bank.states) == 3 + 1  # the replay bank, then the final generator
    final = bank.build()
    for key, value in ant.generator.state_dict().items():
        assert torch.equal(final.state_dict()[key], value)
    first = bank.build(0)
    assert all(torch.equal(first.state_dict()[k], v) for k, v in ant.bank.states[0].items())
    with pytest.raises(IndexError, match="bank"):
        bank.build(4)


# -- ANT makes the classifier robust to adversarial noise ----------------------------------


@pytest.mark.slow
def test_ant_classifier_is_fooled_less_by_a_fresh_adversarial_generator(data):
    # A small CNN (an MLP cannot become robust on 200 digits). eps 7 stays below the digits' own
    # L2 norm (~8.8): the learned noise darkens, and a larger eps can erase a digit outright.
    eps = 7.0
    x_train, y_train = datasets.to_float(data.train.images), torch.from_numpy(data.train.labels)
    x_test, y_test = datasets.to_float(data.test.images), torch.from_numpy(data.test.labels)
    torch.manual_seed(0)
    vanilla = nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(), nn.Linear(8 * 49, 10))
    fit_full_batch(vanilla, x_train, y_train, steps=100, lr=1e-2)

    model = copy.deepcopy(vanilla)
    opt = sgd(model, lr=0.05)
    ant = AntStep(spec(eps=eps, generator_lr=1e-2, reinit_every=1.0, reinit_steps=30, snapshot_every=3), data, "cpu", 5)
    order_rng = torch.Generator().manual_seed(0)
    for _ in range(15):  # epochs of 5 batches
        order = torch.randperm(len(y_train), generator=order_rng)
        for start in range(0, len(order), 40):
            index = order[start : start + 40]
            ant.step(model, opt, x_train[index], y_train[index], index)
    assert (model(x_test).argmax(1) == y_test).float().mean() >= 0.85  # still a classifier

    def attacked(classifier):
        gen = fit_generator(classifier, x_train, y_train, eps=eps, steps=30, lr=1e-2, batch_size=40, seed=11)
        return fooling_rate(classifier, gen, torch.cat([x_train, x_test]), torch.cat([y_train, y_test]), eps, seed=5)

    before, after = attacked(vanilla), attacked(model)
    assert before > 0.4, before
    assert after < 0.4 * before, (before, after)  # measured: 0.67 -> 0.12..0.14


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"fractions": {"clean": 0.5, "stylized": 0.0, "current": 0.3, "replay": 0.3}}, "sum to 1"),
        ({"fractions": {"clean": 0.8, "stylized": 0.0, "current": 0.4, "replay": -0.2}}, ">= 0"),
        ({"fractions": {"clean": 0.5, "stylized": 0.2, "current": 0.2, "replay": 0.1}}, "stylized_path"),
        ({"fractions": {"clean": 0.5, "current": 0.5}}, "keys"),
        ({"replay": False, "fractions": {"clean": 0.5, "stylized": 0.0, "current": 0.3, "replay": 0.2}}, "replay: true"),
        ({"eps": 0.0}, "positive"),
        ({"eps": -1.0}, "positive"),
        ({"eps": "auto"}, "auto"),
        ({"eps": True}, "positive"),
        ({"eps": math.nan}, "positive"),
        ({"reinit_lr": 0.0}, "reinit_lr > 0"),
        ({"bank_size": 0}, "bank_size >= 1"),
        ({"reinit_optimizer": "adam"}, "reinit_optimizer must be 'new' or 'kept'"),
    ],
)
def test_invalid_specs_are_rejected(data, overrides, match):
    # The config validation rejects these first; AntStep checks a spec given directly, too.
    with pytest.raises(ValueError, match=match):
        AntStep({**spec(), **overrides}, data, "cpu", steps_per_epoch=5)


def test_fractions_within_tolerance_are_accepted(data):
    third = 1 / 3
    ant = AntStep(spec(fractions={"clean": third, "stylized": 0.0, "current": third, "replay": third}), data, "cpu", 5)
    assert part_counts(ant.fractions, 30) == {"clean": 10, "stylized": 0, "current": 10, "replay": 10}


def test_stylized_file_must_match_the_training_labels(data, tmp_path):
    path = tmp_path / "wrong.npz"
    np.savez(path, images=data.train.images, labels=(data.train.labels + 1) % 10)
    with pytest.raises(DataError, match="wrong.npz.*labels"):
        AntStep(spec(stylized_path=str(path)), data, "cpu", steps_per_epoch=5)
    np.savez(path, images=data.train.images[:10], labels=data.train.labels)
    with pytest.raises(DataError, match="wrong.npz.*shape"):
        AntStep(spec(stylized_path=str(path)), data, "cpu", steps_per_epoch=5)


# -- the trainer ---------------------------------------------------------------------------


@pytest.mark.slow
def test_trainer_runs_ant_and_checkpoints_its_state(data, tmp_path):
    s = spec(reinit_every=0.4, reinit_steps=2, snapshot_every=2, epochs=1)
    state = training.fit(s, data, checkpoint_dir=tmp_path, divergence_guard=False, log=lambda _: None)
    assert isinstance(state.method, AntStep)
    assert (state.method.steps, state.method.reinits, len(state.method.bank)) == (5, 3, 2)
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    assert saved["method"]["steps"] == 5 and len(saved["method"]["bank"]["states"]) == 2
    assert {"generator_loss", "fooling_rate"} <= set(state.log[0])
    assert state.log[0]["generator_loss"] > 0 and 0.0 <= state.log[0]["fooling_rate"] <= 1.0


def test_step_reports_the_generators_metrics(data):
    ant = past_first_generator(AntStep(spec(), data, "cpu", steps_per_epoch=5))
    model = mlp()
    x, y, index = batch(data)
    state = ant.noise_rng.get_state()
    with torch.no_grad():  # the generator step's own samples: the same z, before its update
        expected = F.cross_entropy(model(ant._perturb(ant.generator, x)), y)
    ant.noise_rng.set_state(state)
    metrics = ant.step(model, sgd(model), x, y, index)
    assert set(metrics) == {"loss", "accuracy", "generator_loss", "fooling_rate", "joining_fooling_rate",
                            "erased_fraction", "mean_noise", "replay_erased_fraction", "replay_mean_noise"}
    assert metrics["joining_fooling_rate"] == metrics["fooling_rate"]  # its first joint step
    assert metrics["generator_loss"] == pytest.approx(expected.item(), rel=1e-5)
    assert 0.0 <= metrics["fooling_rate"] <= 1.0
    # eps 3 on digits of L2 norm ~9: noise, nothing erased; a change of norm 3 over 784 pixels
    # moves the mean pixel by at most 3 / 28 (Cauchy-Schwarz).
    assert metrics["erased_fraction"] == 0.0 and metrics["replay_erased_fraction"] == 0.0
    assert abs(metrics["mean_noise"]) <= EPS / 28 and abs(metrics["replay_mean_noise"]) <= EPS / 28


def test_step_metrics_show_a_generator_that_erases(data):
    # A generator whose output is a huge negative constant, at an eps above every digit's norm:
    # every perturbed image is black, in the generator's samples and in the replay part.
    ant = past_first_generator(AntStep(spec(eps=30.0, generator_lr=1e-12), data, "cpu", steps_per_epoch=5))
    ant.generator.load_state_dict(_biased_state(ant, -1.0))
    put(ant, _biased_state(ant, -1.0))
    x, y, index = batch(data)
    model = mlp()
    metrics = ant.step(model, sgd(model), x, y, index)
    assert metrics["erased_fraction"] == 1.0 and metrics["replay_erased_fraction"] == 1.0
    assert metrics["mean_noise"] == pytest.approx(-x.mean().item(), rel=1e-4)
    assert metrics["replay_mean_noise"] == pytest.approx(-x[32:].mean().item(), rel=1e-4)


@pytest.mark.slow
def test_trainer_log_and_model_diagnostics_of_an_erasing_generator(data, tmp_path):
    s = spec(eps=30.0, generator_lr=1e-12, epochs=2)
    original = AntStep.__init__

    def erasing_init(self, *args, **kwargs):  # the trainer's AntStep starts from the erasing generator
        original(self, *args, **kwargs)
        past_first_generator(self).generator.load_state_dict(_biased_state(self, -1.0))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(AntStep, "__init__", erasing_init)
        state = training.fit(s, data, checkpoint_dir=tmp_path, divergence_guard=False, log=lambda _: None)
    assert [row["erased_fraction"] for row in state.log] == [1.0, 1.0]
    final = training.training_diagnostics(state.log)
    assert final["epoch"] == 2 and final["epochs_erasing"] == 2 and final["erased_fraction"] == 1.0
    assert final["mean_noise"] < 0 and "loss" not in final and "heldout_accuracy" not in final
    assert training.training_diagnostics([{"epoch": 1, "loss": 0.1, "heldout_accuracy": 0.9}]) == {}  # vanilla


def test_generator_step_leaves_batchnorm_statistics_alone(data):
    ant = AntStep(spec(), data, "cpu", steps_per_epoch=5)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 26 * 26, 10)).train()
    before = model[1].running_mean.clone()
    x, y, _ = batch(data)
    ant._generator_update(model, ant.generator, ant.optimizer, x, y)
    assert torch.equal(model[1].running_mean, before)  # eval mode during the generator step
    assert model.training  # and the classifier's mode is restored


def test_diverged_generator_stops_with_a_clear_error(data):
    ant = past_first_generator(AntStep(spec(), data, "cpu", steps_per_epoch=5))
    with torch.no_grad():
        ant.generator.convs[-1].weight.fill_(float("nan"))
    model = mlp()
    with pytest.raises(TrainingError, match="noise generator diverged.*lower generator_lr"):
        ant.step(model, sgd(model), *batch(data))
