"""The claims table (noisetrain.report.claims): verdicts from intervals, and from single numbers."""

import numpy as np
import pandas as pd

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


def test_value_claims_from_the_summary():
    summary = pd.DataFrame({"eps_gn": [8.0, 9.5, 10.0], "eps_an": [5.0, np.nan, np.nan], "eps_an_std": [0.5, np.nan, np.nan],
                            "l2_ddn": [0.5, 0.55, 0.45], "linf_pgd": [0.3, 0.35, 0.4]},
                           index=["vanilla", "gnt_s0.5", "ant1x1"])
    eps = claims.epsilon_claims(summary, "gnt_s0.5", label)
    assert [c.verdict for c in eps] == ["held", "held"]  # 5 + 2 * 0.5 < 8; both above 8
    assert "ε*_AN 5.00 ± 0.50 vs ε*_GN 8.00" == eps[0].ours
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
    found = claims.study_claims(summary, correct, choice, {"gnt_s0.5": 0.5}, CORRUPTIONS, ["fog"], label)
    texts = [c.claim for c in found]
    assert texts[:5] == ["GNT beats the vanilla model on the corruption benchmark",
                         "GNT beats the vanilla model also without the noise corruptions",
                         "ANT 1x1 beats GNT on the corruption benchmark",
                         "ANT 1x1 beats ANT 3x3 on the corruption benchmark",
                         "Experience replay helps: ANT 1x1 beats ANT 1x1 without it"]
    assert found[3].verdict.startswith("not testable") and any("PGD" in t for t in texts)
    table = claims.as_table(found)
    assert list(table.columns) == ["claim", "paper", "ours", "difference [95% interval]", "verdict"]
