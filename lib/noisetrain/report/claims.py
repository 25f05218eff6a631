"""The claims table: every qualitative claim of the paper that a study can test, with our numbers
and a verdict - held, not held, or inconclusive given the spread over seeds and test images.

Accuracy claims compare two methods' mean accuracy over a set of corruptions with a paired
bootstrap interval over seeds and test images (``noisetrain.report.bootstrap``): held when the
95% interval lies on the paper's side of zero, not held when it lies on the other, inconclusive
when it contains zero. Epsilon* claims compare medians of per-image epsilon* with a bootstrap
interval over the measured images, read the same way. Claims about single measured numbers
(attack accuracy, the sweep's optimum) have no interval; their verdict says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from noisetrain.report.bootstrap import Difference, median_difference, paired_difference

INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Claim:
    claim: str  # as the paper states it
    paper: str  # the paper's numbers behind it
    ours: str  # our numbers
    interval: str  # 95% interval of the difference, or why there is none
    verdict: str  # held / not held / inconclusive / not testable: <why>


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def accuracy_claim(claim: str, paper: str, a: str | None, b: str | None, correct: dict[str, dict],
                   corruptions: list[str], labels: Callable[[str], str], only_not_worse: bool = False) -> Claim:
    """A beats B in mean accuracy over ``corruptions`` (correct: method -> corruption -> (seeds, N)).
    With ``only_not_worse`` the claim is that A is not better than B: held unless the interval
    lies above zero."""
    missing = [m or "sweep" for m in (a, b) if m not in correct]
    if missing:
        return Claim(claim, paper, "–", "–", f"not testable: no {', '.join(labels(m) for m in missing)} model")
    d: Difference = paired_difference({c: correct[a][c] for c in corruptions}, {c: correct[b][c] for c in corruptions})
    # The means of the seeds that were paired, so that they and the difference agree.
    ours = (f"{labels(a)} {_pct(_mean(correct[a], corruptions, d.seeds))} vs "
            f"{labels(b)} {_pct(_mean(correct[b], corruptions, d.seeds))} ({d.seeds} seed{'s' if d.seeds > 1 else ''})")
    interval = f"{100 * d.value:+.1f} [{100 * d.low:+.1f}, {100 * d.high:+.1f}]"
    verdict = ("not held" if d.low > 0 else "held") if only_not_worse else d.verdict()
    return Claim(claim, paper, ours, interval, verdict)


def _mean(correct: dict, corruptions: list[str], seeds: int) -> float:
    return sum(correct[c][:seeds].mean() for c in corruptions) / len(corruptions)


def value_claim(claim: str, paper: str, ours: str, holds: bool | None) -> Claim:
    """A claim about single measured numbers: no interval, the verdict says so."""
    verdict = INCONCLUSIVE if holds is None else ("held" if holds else "not held")
    return Claim(claim, paper, ours, "none (single measurement)", verdict)


def _cell(summary: pd.DataFrame, method: str | None, column: str) -> float | None:
    if method is None or method not in summary.index or column not in summary.columns:
        return None
    value = summary.at[method, column]
    return None if pd.isna(value) else float(value)


def _median(distances: np.ndarray) -> float:
    """Median epsilon* (numpy's median ranks inf above every finite value, as the measurement does)."""
    return float(np.median(distances))


def _eps_interval(d: Difference) -> str:
    return f"{d.value:+.2f} [{d.low:+.2f}, {d.high:+.2f}]"


def _an(distances: dict[str, np.ndarray]) -> np.ndarray:
    """The per-image epsilon*_AN of every fresh generator, (generators, N)."""
    return np.stack([distances[key] for key in sorted(distances) if key.startswith("an_seed")])


def epsilon_claims(distances: dict[str, dict[str, np.ndarray]], best_gnt: str | None, labels) -> list[Claim]:
    """The epsilon* claims from the per-image epsilon* of the measured models (``distances``: model
    -> {'gn', 'un', 'an_seed0', ...}), each with a bootstrap interval over the measured images."""
    claims, vanilla = [], distances.get("vanilla")
    if vanilla is None:
        return claims
    gn, an = vanilla["gn"], _an(vanilla)
    medians = [_median(row) for row in an]
    d = median_difference(an, gn)
    claims.append(Claim("Adversarial noise flips the vanilla model at a smaller size than Gaussian noise (ε*_AN < ε*_GN)",
                        "ImageNet: 16.2 vs 39.0 (Table 2)",
                        f"ε*_AN {np.mean(medians):.2f} ± {np.std(medians):.2f} vs ε*_GN {_median(gn):.2f}",
                        _eps_interval(d), d.verdict(expect_positive=False)))
    trained = [m for m in (best_gnt, "ant1x1") if m in distances]
    if trained:
        raised = {m: median_difference(distances[m]["gn"], gn) for m in trained}
        verdicts = {d.verdict() for d in raised.values()}
        verdict = "not held" if "not held" in verdicts else ("held" if verdicts == {"held"} else INCONCLUSIVE)
        claims.append(Claim("Noise training raises ε*_GN above the vanilla model's",
                            "ImageNet: vanilla 39.0, GNT 74.8, ANT 136.7 (Table 3)",
                            f"vanilla {_median(gn):.2f}, "
                            + ", ".join(f"{labels(m)} {_median(distances[m]['gn']):.2f}" for m in trained),
                            "; ".join(f"{labels(m)} {_eps_interval(d)}" for m, d in raised.items()), verdict))
    return claims


def adversarial_claims(summary: pd.DataFrame, best_gnt: str | None, labels) -> list[Claim]:
    rows = []
    for attack, name in (("l2_ddn", "L2 DDN"), ("linf_pgd", "L∞ PGD")):
        base = _cell(summary, "vanilla", attack)
        trained = {m: _cell(summary, m, attack) for m in (best_gnt, "ant1x1")}
        trained = {m: v for m, v in trained.items() if v is not None}
        if base is None or not trained:
            continue
        ours = f"vanilla {_pct(base)}, " + ", ".join(f"{labels(m)} {_pct(v)}" for m, v in trained.items())
        rows.append(value_claim(f"GNT and ANT do not lower, and slightly raise, accuracy under {name} attacks",
                                "ImageNet Table 5, MNIST Table 12", ours, all(v >= base for v in trained.values())))
    return rows


def sweep_claim(choice, sigmas: dict[str, float]) -> list[Claim]:
    """Two claims on the sweep's best sigma: it is an optimum (inside the sweep, not at an edge where
    a better sigma may lie beyond), and it is near the paper's 0.5 (within 0.25)."""
    if choice is None or len(sigmas) < 3:
        return []
    ordered = sorted(sigmas.values())
    ours = f"best σ {choice.best_value:g} of {', '.join(f'{s:g}' for s in ordered)}"
    inside = ordered[0] < choice.best_value < ordered[-1]
    return [value_claim("The best sigma of GNT lies inside the sweep (an optimum, not its edge)", "ImageNet Fig 2", ours,
                        inside),
            value_claim("The best sigma of GNT is near 0.5 (within 0.25)", "ImageNet Fig 2: σ = 0.5", ours,
                        abs(choice.best_value - 0.5) <= 0.25)]


def as_table(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([{"claim": c.claim, "paper": c.paper, "ours": c.ours, "difference [95% interval]": c.interval,
                          "verdict": c.verdict} for c in claims])


def study_claims(summary: pd.DataFrame, correct: dict[str, dict], distances: dict[str, dict], choice,
                 sigmas: dict[str, float], corruptions: list[str], noise_free: list[str],
                 labels: Callable[[str], str]) -> list[Claim]:
    """Every claim this study can test; ``correct`` holds the per-image correctness of the claim
    models (with their replicates as extra seeds), ``distances`` the per-image epsilon* of the
    measured ones, ``choice`` the sigma sweep's choice (or None)."""
    best = choice.best_method if choice else None

    def on(corruption_set):
        return dict(correct=correct, corruptions=corruption_set, labels=labels)

    claims = [
        accuracy_claim("GNT beats the vanilla model on the corruption benchmark",
                       "MNIST 92.4 vs 86.9 (Table 11); ImageNet 49.4 vs 39.2 (Table 4)", best, "vanilla", **on(corruptions)),
        accuracy_claim("GNT beats the vanilla model also without the noise corruptions",
                       "ImageNet 47.1 vs 42.3 (Table 4)", best, "vanilla", **on(noise_free)),
        accuracy_claim("ANT 1x1 beats GNT on the corruption benchmark",
                       "ImageNet 51.1 vs 49.4 (Table 4); MNIST 92.4 both (Table 11)", "ant1x1", best, **on(corruptions)),
        accuracy_claim("ANT 1x1 beats ANT 3x3 on the corruption benchmark", "ImageNet 51.1 vs 50.4 (Table 4)",
                       "ant1x1", "ant3x3", **on(corruptions)),
        accuracy_claim("Experience replay helps: ANT 1x1 beats ANT 1x1 without it", "ImageNet 51.1 vs 48.9 (Table 4)",
                       "ant1x1", "ant1x1_noreplay", **on(corruptions)),
    ]
    if "pgd_at" in correct:
        claims.append(accuracy_claim("L∞ adversarial training (PGD) lowers the corruption accuracy",
                                     "MNIST 75.6 vs 86.9 (Table 11)", "vanilla", "pgd_at", **on(corruptions)))
    if "ddn_at" in correct:
        claims.append(accuracy_claim("L2 adversarial training (DDN) does not raise the corruption accuracy",
                                     "MNIST 87.0 vs 86.9 (Table 11)", "ddn_at", "vanilla", only_not_worse=True,
                                     **on(corruptions)))
    claims += epsilon_claims(distances, best, labels) + sweep_claim(choice, sigmas)
    return claims + adversarial_claims(summary, best, labels)
