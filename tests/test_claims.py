"""The claims table (noisetrain.report.claims): verdicts from intervals, and from single numbers."""

import re

import numpy as np
import pandas as pd
import pytest

from noisetrain.report import claims
from noisetrain.report.sweep_choice import SweepChoice

CORRUPTIONS = ["shot_noise", "fog"]


def correctness(rate: float, seeds: int = 3, n: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {c: rng.random((seeds, n)) < rate for c in CORRUPTIONS}


def label(method: str) -> str:
    return {"gnt_s0.5": "GNT σ=0.5", "ant1x1": "ANT 1x1"}.get(method, method)


def test_accuracy_claims_held_not_held_inconclusive_and_untestable():
    correct = {"vanilla": correctness(0.6), "gnt_s0.5": correctness(0.8, seed=1), "ant1x1": correctness(0.8, seed=2)}
    held = claims.accuracy_claim("GNT beats vanilla", "p", "gnt_s0.5", "vanilla", correct, CORRUPTIONS, label)
    assert held.verdict == "held" and held.ours.startswith("GNT σ=0.5 80.") and "(3 seeds)" in held.ours
    assert claims.accuracy_claim("x", "p", "vanilla", "gnt_s0.5", correct, CORRUPTIONS, label).verdict == "not held"
    same = claims.accuracy_claim("ANT beats GNT", "p", "ant1x1", "gnt_s0.5", correct, CORRUPTIONS, label)
    assert same.verdict == "inconclusive"  # equal rates: the interval contains zero
    missing = claims.accuracy_claim("ANT 3x3", "p", "ant3x3", "ant1x1", correct, CORRUPTIONS, label)
    assert missing.verdict == "not testable: no ant3x3 model"
    not_worse = claims.accuracy_claim("x", "p", "ant1x1", "gnt_s0.5", correct, CORRUPTIONS, label, only_not_worse=True)
    assert not_worse.verdict == "held"


def distances(median: float, n: int = 400, seed: int = 0) -> np.ndarray:
    """Per-image epsilon* spread around ``median`` (half the images below it, half above)."""
    return median * np.random.default_rng(seed).uniform(0.5, 1.5, n)


def test_epsilon_claims_from_per_image_distances_with_intervals():
    measured = {"vanilla": {"gn": distances(8.0), "un": distances(8.0, seed=1),
                            "an_seed0": distances(5.0, seed=2), "an_seed1": distances(5.0, seed=3)},
                "gnt_s0.5": {"gn": distances(9.5, seed=4)}, "ant1x1": {"gn": distances(8.0)}}
    eps = claims.epsilon_claims(measured, "gnt_s0.5", label)
    an = [np.median(measured["vanilla"][k]) for k in ("an_seed0", "an_seed1")]
    assert eps[0].ours == f"ε*_AN {np.mean(an):.2f} ± {np.std(an):.2f} vs ε*_GN {np.median(measured['vanilla']['gn']):.2f}"
    assert eps[0].verdict == "held"  # about 5 against 8 on 400 images: the interval lies below zero
    value, low, high = map(float, re.findall(r"[-+]\d+\.\d+", eps[0].interval))
    assert low < value < high < 0 and value == pytest.approx(np.mean(an) - np.median(measured["vanilla"]["gn"]), abs=0.005)
    # GNT's epsilon*_GN is clearly above vanilla's, ANT 1x1's equal to it: whether both raise it is open.
    assert eps[1].verdict == "inconclusive" and eps[1].interval.startswith("GNT σ=0.5 +") and "; ANT 1x1 " in eps[1].interval
    measured["ant1x1"]["gn"] = distances(6.0, seed=5)
    assert claims.epsilon_claims(measured, "gnt_s0.5", label)[1].verdict == "not held"
    assert claims.epsilon_claims({"gnt_s0.5": measured["gnt_s0.5"]}, "gnt_s0.5", label) == []  # no vanilla: none


def test_adversarial_claims_from_the_summary():
    summary = pd.DataFrame({"l2_ddn": [0.5, 0.55, 0.45], "linf_pgd": [0.3, 0.35, 0.4]}, index=["vanilla", "gnt_s0.5", "ant1x1"])
    adversarial = claims.adversarial_claims(summary, "gnt_s0.5", label)
    assert [c.verdict for c in adversarial] == ["not held", "held"]  # ANT's DDN accuracy 45 < 50


def test_sweep_claim():
    sigmas = {"gnt_s0.25": 0.25, "gnt_s0.5": 0.5, "gnt_s1": 1.0, "gnt_s2": 2.0}
    choice = SweepChoice("sigma", "gnt_s0.5", 0.5, 0.8, 10.0, "how", {})

    def verdicts(choice):  # (inside the sweep, near 0.5)
        return [claim.verdict for claim in claims.sweep_claim(choice, sigmas)]

    assert verdicts(choice) == ["held", "held"]
    edge = SweepChoice("sigma", "gnt_s2", 2.0, 0.8, 10.0, "how", {})
    assert verdicts(edge) == ["not held", "not held"]  # at the sweep's edge, and 1.5 from 0.5
    far = SweepChoice("sigma", "gnt_s1", 1.0, 0.8, 10.0, "how", {})
    assert verdicts(far) == ["held", "not held"]  # an optimum inside the sweep, but 0.5 from the paper's 0.5
    near_edge = SweepChoice("sigma", "gnt_s0.25", 0.25, 0.8, 10.0, "how", {})
    assert verdicts(near_edge) == ["not held", "held"]
    assert claims.sweep_claim(None, sigmas) == []


def test_study_claims_cover_what_the_study_has():
    correct = {m: correctness(0.7, seed=i) for i, m in enumerate(["vanilla", "gnt_s0.5", "ant1x1", "pgd_at"])}
    summary = pd.DataFrame(index=list(correct))
    choice = SweepChoice("sigma", "gnt_s0.5", 0.5, 0.8, 10.0, "how", {})
    found = claims.study_claims(summary, correct, {}, choice, {"gnt_s0.5": 0.5}, CORRUPTIONS, ["fog"], label)
    texts = [c.claim for c in found]
    assert texts[:5] == ["GNT beats the vanilla model on the corruption benchmark",
                         "GNT beats the vanilla model also without the noise corruptions",
                         "ANT 1x1 beats GNT on the corruption benchmark",
                         "ANT 1x1 beats ANT 3x3 on the corruption benchmark",
                         "Experience replay helps: ANT 1x1 beats ANT 1x1 without it"]
    assert found[3].verdict.startswith("not testable") and any("PGD" in t for t in texts)
    table = claims.as_table(found)
    assert list(table.columns) == ["claim", "paper", "ours", "difference [95% interval]", "verdict"]
