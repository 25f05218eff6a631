"""Paired bootstrap intervals (noisetrain.report.bootstrap) against hand-computed cases."""

import numpy as np
import pytest

from noisetrain.errors import InputError
from noisetrain.report.bootstrap import mean_accuracy, median_difference, paired_difference, stack_seeds


def test_identical_methods_differ_by_exactly_zero():
    rng = np.random.default_rng(0)
    a = {"fog": rng.random((3, 200)) < 0.7, "shear": rng.random((3, 200)) < 0.5}
    d = paired_difference(a, a, rounds=200)
    assert (d.value, d.low, d.high) == (0.0, 0.0, 0.0) and d.verdict() == "inconclusive"


def test_value_is_the_difference_of_mean_accuracies_over_corruptions():
    # A: fog 3/4, shear 1/4 -> 0.5; B: fog 1/4, shear 1/4 -> 0.25; one seed.
    a = {"fog": np.array([[1, 1, 1, 0]], bool), "shear": np.array([[1, 0, 0, 0]], bool)}
    b = {"fog": np.array([[1, 0, 0, 0]], bool), "shear": np.array([[0, 0, 0, 1]], bool)}
    assert mean_accuracy(a) == 0.5 and mean_accuracy(b) == 0.25
    d = paired_difference(a, b, rounds=500)
    assert d.value == pytest.approx(0.25) and d.low <= 0.25 <= d.high and (d.seeds, d.images) == (1, 4)


def test_a_clear_gain_is_held_and_a_clear_loss_not_held():
    rng = np.random.default_rng(1)
    base = rng.random((3, 500)) < 0.6
    better = base | (rng.random((3, 500)) < 0.3)  # fixes ~30% of the errors, breaks nothing
    d = paired_difference({"c": better}, {"c": base}, rounds=500)
    assert d.low > 0 and d.verdict() == "held" and d.verdict(expect_positive=False) == "not held"
    assert paired_difference({"c": base}, {"c": better}, rounds=500).verdict() == "not held"


def test_pairing_narrows_the_interval():
    # Two methods that agree on most images: the paired interval is far narrower than the spread of either.
    rng = np.random.default_rng(2)
    a = rng.random((1, 1000)) < 0.5
    b = a.copy()
    b[0, :20] = ~b[0, :20]
    d = paired_difference({"c": a}, {"c": b}, rounds=1000)
    assert d.high - d.low < 0.03  # an unpaired interval would be ~0.09 wide


def test_seed_draws_pair_seeds_and_unequal_seed_counts_use_the_common_ones():
    a = {"c": np.array([[1, 1], [0, 0], [1, 0]], bool)}
    b = {"c": np.array([[0, 0], [0, 0]], bool)}
    d = paired_difference(a, b, rounds=300)
    assert d.seeds == 2 and d.value == pytest.approx(0.5)  # seeds 0 and 1 of A: (1 + 0) / 2


def test_mismatched_inputs_are_rejected():
    with pytest.raises(InputError, match="same corruptions"):
        paired_difference({"fog": np.ones((1, 3), bool)}, {"shear": np.ones((1, 3), bool)})
    with pytest.raises(InputError, match="different images"):
        paired_difference({"fog": np.ones((1, 3), bool)}, {"fog": np.ones((1, 4), bool)})


def test_stack_seeds():
    stacked = stack_seeds([{"fog": [1, 0]}, {"fog": [0, 0]}], ["fog"])
    assert stacked["fog"].shape == (2, 2) and stacked["fog"].dtype == bool


def test_median_difference_of_epsilon_star_by_hand():
    """Medians of per-image epsilon*: A's generators count by the mean of their medians."""
    a = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])  # medians 2 and 4: mean 3
    b = np.array([0.5, 1.0, 7.0])  # median 1
    d = median_difference(a, b, rounds=500)
    assert d.value == 2.0 and (d.seeds, d.images) == (2, 3)
    assert d.low <= d.value <= d.high
    same = median_difference(b, b)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)  # paired draws: the same images for both


def test_median_difference_interval_covers_the_truth_and_keeps_inf():
    rng = np.random.default_rng(0)
    a, b = rng.normal(10, 2, 1000), rng.normal(9, 2, 1000)
    d = median_difference(a, b)
    assert d.low < 1.0 < d.high and d.low > 0  # a 1.0 shift on 1,000 images: held
    never = np.where(np.arange(1000) < 600, np.inf, a)  # most images never flip: the median is inf
    assert median_difference(never, b).value == np.inf and median_difference(never, b).verdict() == "held"
    assert np.isnan(median_difference(never, never).value)  # inf against inf: undefined, not zero
    assert median_difference(never, never).verdict() == "inconclusive"


def test_median_difference_needs_the_same_images():
    with pytest.raises(InputError, match="same images, got 3 and 2"):
        median_difference(np.ones(3), np.ones(2))
