"""Paired bootstrap intervals for differences between two methods: in corruption accuracy, and in
median epsilon* (``median_difference``: the same measured images for both, drawn with replacement).

The numbers come from the per-image correctness that the evaluation writes
(``eval/<method>/correct.npz``: one boolean array per corruption). A method may have several
seeds (its replicates). A bootstrap round draws, with replacement, the seeds (the same draw pairs
seed k of one method with seed k of the other) and, per corruption, the test images (the same
images for both methods), and recomputes the difference of the two methods' mean accuracies over
the corruptions. The 2.5 and 97.5 percentiles of the rounds bound the 95% interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noisetrain.errors import InputError

ROUNDS = 2000


@dataclass(frozen=True)
class Difference:
    value: float  # mean accuracy of A minus B, over corruptions (fraction)
    low: float  # 95% interval
    high: float
    seeds: int  # seed pairs used
    images: int  # test images per corruption (their mean over corruptions)

    def verdict(self, expect_positive: bool = True) -> str:
        """'held' when the interval excludes 0 on the expected side, 'not held' on the other,
        'inconclusive' when it contains 0."""
        if self.low > 0:
            return "held" if expect_positive else "not held"
        if self.high < 0:
            return "not held" if expect_positive else "held"
        return "inconclusive"


def stack_seeds(per_seed: list[dict[str, np.ndarray]], corruptions: list[str]) -> dict[str, np.ndarray]:
    """Per-seed {corruption: correct (N,)} -> {corruption: correct (seeds, N)}."""
    return {c: np.stack([np.asarray(seed[c], dtype=bool) for seed in per_seed]) for c in corruptions}


def mean_accuracy(correct: dict[str, np.ndarray]) -> float:
    """Mean over corruptions of the accuracy (over seeds and images) of each."""
    return float(np.mean([matrix.mean() for matrix in correct.values()]))


def paired_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray], *, rounds: int = ROUNDS,
                      seed: int = 0) -> Difference:
    """Mean accuracy of A minus B over the corruptions of ``a`` (each a (seeds, N) boolean array),
    with its paired bootstrap 95% interval. Seeds pair up in order; with unequal numbers of seeds
    the extra ones of the larger side are left out."""
    if set(a) != set(b) or not a:
        raise InputError(f"both methods need the same corruptions, got {sorted(a)} and {sorted(b)}")
    seeds = min(len(next(iter(a.values()))), len(next(iter(b.values()))))
    a = {c: m[:seeds].astype(np.float64) for c, m in a.items()}
    b = {c: m[:seeds].astype(np.float64) for c, m in b.items()}
    for c in a:
        if a[c].shape != b[c].shape:
            raise InputError(f"{c}: the two methods were evaluated on different images ({a[c].shape} vs {b[c].shape})")
    rng = np.random.default_rng(seed)
    totals = np.zeros(rounds)
    seed_draw = rng.integers(0, seeds, size=(rounds, seeds))
    for c in a:
        diff = a[c] - b[c]  # (seeds, N): paired per seed and image
        # An image draw shared by the seeds of a round (the same test images serve every seed).
        # Images only matter through their pattern of differences across seeds (each -1, 0 or
        # 1): drawing n images is drawing multinomial counts over the (at most 3^seeds) patterns,
        # the same distribution at a cost independent of the number of images.
        patterns, which = np.unique(diff.T, axis=0, return_inverse=True)
        counts = rng.multinomial(diff.shape[1], np.bincount(which.ravel()) / diff.shape[1], size=rounds)
        per_seed = counts @ patterns / diff.shape[1]  # (rounds, seeds): each seed's mean difference
        totals += np.take_along_axis(per_seed, seed_draw, axis=1).mean(axis=1)
    totals /= len(a)
    value = float(np.mean([(a[c] - b[c]).mean() for c in a]))
    low, high = np.percentile(totals, [2.5, 97.5])
    return Difference(value, float(low), float(high), seeds, int(np.mean([m.shape[1] for m in a.values()])))


def median_difference(a: np.ndarray, b: np.ndarray, *, rounds: int = ROUNDS, seed: int = 0) -> Difference:
    """Median epsilon* of A minus that of B, measured on the same test images, with a bootstrap 95%
    interval over the images (each round draws N of them with replacement, the same for A and B).
    ``a`` and ``b``: per-image epsilon*, (N,) or (k, N) for k fresh AN generators, which count as
    the mean of their medians (as Table 3 reports epsilon*_AN). An inf distance (never flipped)
    ranks above every finite one; where both medians are inf the difference is undefined (nan)."""
    a, b = (np.atleast_2d(np.asarray(d, dtype=np.float64)) for d in (a, b))
    if a.shape[1] != b.shape[1] or not a.shape[1]:
        raise InputError(f"epsilon* of both models must be measured on the same images, got {a.shape[1]} and {b.shape[1]}")
    images = a.shape[1]

    def statistic(draw: np.ndarray) -> np.ndarray:  # draw: image indices (..., N)
        with np.errstate(invalid="ignore"):  # inf - inf: nan, an undefined difference
            return np.median(a[:, draw], axis=-1).mean(axis=0) - np.median(b[:, draw], axis=-1).mean(axis=0)

    rng = np.random.default_rng(seed)
    totals = np.concatenate([statistic(rng.integers(0, images, size=(min(200, rounds - start), images)))
                             for start in range(0, rounds, 200)])  # 200 rounds at a time: bounded memory
    low, high = np.quantile(totals, [0.025, 0.975], method="inverted_cdf")  # drawn values: inf stays inf
    return Difference(float(statistic(np.arange(images))), float(low), float(high), len(a), images)
