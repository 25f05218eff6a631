"""Tests for noisetrain.train.replay_bank: ANT's bounded replay memory, a uniform sample of every
generator state offered (reservoir sampling)."""

import pytest
import torch

from noisetrain.train.replay_bank import ReplayBank


def state(step):
    return {"w": torch.full((2,), float(step))}


def filled(capacity, offers, seed=0):
    bank = ReplayBank(capacity, torch.Generator().manual_seed(seed))
    for step in range(1, offers + 1):
        bank.offer(step, lambda step=step: state(step))
    return bank


def test_below_capacity_it_keeps_every_snapshot_in_order():
    bank = filled(10, 6)
    assert bank.taken_at == [1, 2, 3, 4, 5, 6] and bank.offered == 6
    assert [s["w"][0].item() for s in bank.states] == [1, 2, 3, 4, 5, 6]


def test_it_never_holds_more_than_its_capacity_and_stays_in_training_order():
    bank = filled(5, 200)
    assert len(bank) == 5 and bank.offered == 200
    assert bank.taken_at == sorted(bank.taken_at) and len(set(bank.taken_at)) == 5
    assert all(s["w"][0].item() == step for s, step in zip(bank.states, bank.taken_at))


def test_a_state_is_copied_only_when_kept():
    bank = filled(2, 2)
    taken = []
    for step in range(3, 400):
        bank.offer(step, lambda step=step: taken.append(step) or state(step))
    assert set(bank.taken_at) <= {1, 2, *taken}
    assert 0 < len(taken) < 60  # about 2 * ln(400 / 2) = 10.6 expected


def test_every_snapshot_is_kept_with_the_same_probability():
    # After n offers each of them is held with probability capacity / n, old or new: the bank is a
    # uniform sample of the whole history (the paper replays "randomly from previous distributions").
    capacity, offers, trials = 4, 40, 3000
    held = torch.zeros(offers)
    for seed in range(trials):
        for step in filled(capacity, offers, seed).taken_at:
            held[step - 1] += 1
    p = capacity / offers
    expected, sd = trials * p, (trials * p * (1 - p)) ** 0.5
    assert (held - expected).abs().max() < 4.5 * sd  # each snapshot alone (4.5 sd over 40 of them)
    for part in held.view(4, 10):  # the first, ..., last quarter of training
        assert abs(part.mean() - expected) < 4 * sd / 10**0.5


def test_resumed_bank_keeps_the_same_states():
    whole = filled(3, 50)
    half = filled(3, 20)
    resumed = ReplayBank(3, torch.Generator())
    resumed.load_state_dict(half.state_dict())
    for step in range(21, 51):
        resumed.offer(step, lambda step=step: state(step))
    assert resumed.taken_at == whole.taken_at and resumed.offered == whole.offered


@pytest.mark.parametrize("capacity", [0, -1, 2.5, True])
def test_capacity_must_be_a_positive_int(capacity):
    with pytest.raises(ValueError, match="capacity must be a positive int"):
        ReplayBank(capacity, torch.Generator())
