"""Tests for noisetrain.noise.diagnostics (issue 9: generators that erase the images) and the
flags it raises in the tables and in Fig 4."""

import math

import numpy as np
import pytest
import torch

from noisetrain.noise import diagnostics as diag
from noisetrain.noise.generator_bank import GeneratorBank
from noisetrain.noise.generators import NoiseGenerator
from noisetrain.report import figures, tables
from noisetrain.report import study_tables as report


def digits_like(n=8, seed=0):
    """Bright strokes (0.6..1) on a black background, ~70% of the pixels black: not erased."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 9:19] = 0.6 + 0.4 * torch.rand(n, 1, 16, 10, generator=g)
    return x


def test_all_black_perturbed_batch_is_erased_and_its_mean_noise_is_minus_the_mean_image():
    x = digits_like()
    out = diag.perturbation_diagnostics(x, torch.zeros_like(x))
    assert out["erased_fraction"] == 1.0
    assert out["mean_noise"] == pytest.approx(-x.mean().item(), rel=1e-6)
    assert "fooling_rate" not in out
    white = diag.perturbation_diagnostics(x, torch.ones_like(x))
    assert white["erased_fraction"] == 1.0 and white["mean_noise"] == pytest.approx((1 - x).mean().item(), rel=1e-6)


def test_small_noise_erases_nothing():
    x = digits_like()
    noisy = (x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    out = diag.perturbation_diagnostics(x, noisy)
    assert out["erased_fraction"] == 0.0
    assert abs(out["mean_noise"]) < 0.01


def test_erased_counts_per_image_and_only_images_not_black_before():
    x = digits_like(4)
    x[3] = 0.0  # already black: blacking it out again erases nothing
    perturbed = x.clone()
    perturbed[:2] = 0.0
    assert diag.perturbation_diagnostics(x, perturbed)["erased_fraction"] == pytest.approx(2 / 4)
    assert diag.perturbation_diagnostics(x, torch.zeros_like(x))["erased_fraction"] == pytest.approx(3 / 4)


def test_almost_all_means_the_named_share_of_pixels_within_one_level():
    x = digits_like(1)
    pixels = 28 * 28
    keep = math.ceil(pixels * (1 - diag.SATURATED_PIXEL_FRACTION)) - 1  # bright pixels left: just under the share
    almost = torch.zeros_like(x).flatten()
    almost[:keep] = 0.5
    assert diag.saturated(almost.view_as(x)).item()
    almost[: keep + 2] = 0.5  # two more bright pixels: no longer "almost all" black
    assert not diag.saturated(almost.view_as(x)).item()
    dim = torch.full_like(x, diag.SATURATION_TOLERANCE)  # within one uint8 level of black counts as black
    assert diag.saturated(dim).item() and not diag.saturated(dim * 3).item()


def test_fooling_rate_from_logits_or_predictions():
    x = digits_like(4)
    labels = torch.tensor([0, 1, 2, 3])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 0, 0]), 10).float()
    assert diag.perturbation_diagnostics(x, x, logits, labels)["fooling_rate"] == pytest.approx(0.5)
    assert diag.perturbation_diagnostics(x, x, torch.tensor([9, 9, 9, 3]), labels)["fooling_rate"] == pytest.approx(0.75)


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="one shape"):
        diag.perturbation_diagnostics(torch.zeros(2, 1, 4, 4), torch.zeros(3, 1, 4, 4))


def test_is_erasing_uses_the_named_threshold():
    assert diag.is_erasing({"erased_fraction": diag.ERASING_THRESHOLD + 0.01})
    assert not diag.is_erasing({"erased_fraction": diag.ERASING_THRESHOLD})
    assert diag.is_erasing({"erased_fraction": 0.0, "replay_erased_fraction": 0.9})
    assert diag.is_erasing({"an_erased_fraction": 1.0})
    assert not diag.is_erasing({}) and not diag.is_erasing(None) and not diag.is_erasing({"erased_fraction": math.nan})


# -- the flags in the tables ---------------------------------------------------------------


def _records(an_erased: float, train_erased: float) -> list[dict]:
    """Hand-made records of a vanilla and an ANT model with robustness measured; the ANT model's
    training diagnostics (as its model file records them) in every record's provenance."""
    training = {"epoch": 6, "generator_loss": 3.0, "fooling_rate": 0.9, "erased_fraction": train_erased,
                "mean_noise": -0.1, "replay_erased_fraction": train_erased, "replay_mean_noise": -0.1,
                "epochs_erasing": 6 if train_erased > diag.ERASING_THRESHOLD else 0}
    out = []
    for method, spec, info in (("vanilla", {"kind": "vanilla"}, {}),
                               ("ant1x1", {"kind": "ant", "kernel": "1x1", "depth": 4, "replay": True},
                                {"training_diagnostics": training})):
        prov = {"provenance": {"spec": spec, "model": info}}
        out.append({"dataset": "digits", "method": method, "metric": "clean", **prov,
                    "rows": [{"corruption": "clean", "category": "clean", "severity": None, "value": 0.97}]})
        out.append({"dataset": "digits", "method": method, "metric": "corruptions", **prov,
                    "rows": [{"corruption": "fog", "category": "weather", "severity": 1, "value": 0.5},
                             {"corruption": "mean", "category": "aggregate", "severity": None, "value": 0.5},
                             {"corruption": "mean_without_noise", "category": "aggregate", "severity": None,
                              "value": 0.5}]})
        detail = "noise_robustness_detail"
        out.append({"dataset": "digits", "method": method, "metric": "noise_robustness", **prov, "rows": [
            {"corruption": "eps_gn", "category": "noise_robustness", "severity": None, "value": 9.0},
            {"corruption": "eps_un", "category": "noise_robustness", "severity": None, "value": 8.0},
            {"corruption": "eps_an", "category": "noise_robustness", "severity": None, "value": 4.0},
            {"corruption": "eps_an_std", "category": "noise_robustness", "severity": None, "value": 0.5},
            {"corruption": "eps_an_seed0", "category": detail, "severity": None, "value": 3.5},
            {"corruption": "an_erased_fraction", "category": detail, "severity": 13.8, "value": an_erased},
            {"corruption": "an_mean_noise", "category": detail, "severity": 13.8, "value": -0.1},
            {"corruption": "an_fooling_rate", "category": detail, "severity": 13.8, "value": 0.9},
        ]})
    return out


def test_an_cell_is_marked_and_explained_only_for_erasing_generators(tmp_path):
    high = report.write_tables(_records(0.9, 0.0), "digits", ["fog"], ["vanilla", "ant1x1"], tmp_path / "h")
    assert high["table3"]["ε*_AN"].tolist() == [f"4.0 ± 0.5 {tables.ERASING_MARK}"] * 2
    assert high["table2"]["ε*_AN"].tolist() == [f"3.5 {tables.ERASING_MARK}"]  # one generator, as the paper's Table 2
    md = (tmp_path / "h" / "table3.md").read_text()
    assert f"{tables.ERASING_MARK}: the fresh adversarial-noise generators" in md and "erase the images" in md
    tex = (tmp_path / "h" / "table3.tex").read_text()
    assert tex.isascii() and r"$\dagger$" in tex
    low = report.write_tables(_records(0.1, 0.0), "digits", ["fog"], ["vanilla", "ant1x1"], tmp_path / "l")
    assert low["table3"]["ε*_AN"].tolist() == ["4.0 ± 0.5"] * 2
    assert tables.ERASING_MARK not in (tmp_path / "l" / "table3.md").read_text()


def test_training_erasing_is_noted_in_summary_and_table16(tmp_path):
    high = report.write_tables(_records(0.0, 0.8), "digits", ["fog"], ["vanilla", "ant1x1"], tmp_path / "h")
    notes = dict(zip(high["summary"]["model"], high["summary"]["note"]))
    assert notes["Vanilla"] == ""
    assert notes["ANT 1x1"].startswith("generators erase images: 80% current / 80% replay erased in epoch 6")
    assert high["table16"]["note"].tolist() == [notes["ANT 1x1"]]
    assert "'note': the ANT model's noise generators erased" in (tmp_path / "h" / "summary.md").read_text()
    assert "'note'" in (tmp_path / "h" / "table16.md").read_text()
    low = report.write_tables(_records(0.0, 0.2), "digits", ["fog"], ["vanilla", "ant1x1"], tmp_path / "l")
    assert "note" not in low["summary"].columns and "note" not in low["table16"].columns
    assert "'note'" not in (tmp_path / "l" / "summary.md").read_text()


# -- the warning in Fig 4 --------------------------------------------------------------------


def _bank(sign: float | None, eps: float) -> GeneratorBank:
    generator = NoiseGenerator(1, 4, "1x1", rng=torch.Generator().manual_seed(0))
    state = {k: v.clone() for k, v in generator.state_dict().items()}
    if sign is not None:  # a huge output bias: every pixel pushed one way
        state["convs.3.bias"] = torch.full_like(state["convs.3.bias"], sign * 1e3)
    return GeneratorBank({"channels": 1, "depth": 4, "kernel": "1x1"}, eps, [state, state])


def _titles(fig) -> list[str]:
    return [ax.get_title(loc="left") for ax in fig.axes]


def test_fig4_warns_in_the_panel_title_when_the_shown_generator_erases():
    images = (255 * digits_like(6).numpy()).astype(np.uint8)
    erasing = figures.adversarial_noise(images, _bank(-1.0, 30.0), _bank(None, 1.0), seed=0)
    titles = _titles(erasing)
    assert any(t.startswith("B:") and "WARNING: erases 100% of images" in t for t in titles)
    assert not any("WARNING" in t for t in titles if t.startswith(("C:", "D:")))
    figures.plt.close(erasing)
    plain = figures.adversarial_noise(images, _bank(None, 1.0), None, seed=0)
    assert not any("WARNING" in t for t in _titles(plain))
    figures.plt.close(plain)


def test_fig4_a_says_how_far_apart_the_generator_states_are():
    """Fig 4 A's title gives the largest total-variation distance between the shown densities: 0 for
    a bank whose saved states equal the final generator (a generator that did not move)."""
    images = (255 * digits_like(6).numpy()).astype(np.uint8)
    fig = figures.adversarial_noise(images, _bank(None, 1.0), None, seed=0)
    assert "largest total-variation distance between two: 0.00" in fig.axes[0].get_title()
    figures.plt.close(fig)
    bins = np.array([0.0, 0.5, 1.0])
    assert figures.largest_distance([np.array([0.1, 0.2, 0.7, 0.8]), np.array([0.1, 0.2, 0.3, 0.4])], bins) == 0.5
    assert figures.largest_distance([np.array([0.1]), np.array([0.9]), np.array([0.2])], bins) == 1.0


def test_figs_3_and_8_say_when_epsilon_star_is_no_distance():
    assert "the clean image" in figures.epsilon_remark(0.0) and "never flips" in figures.epsilon_remark(float("inf"))
    assert figures.epsilon_remark(1.25) == ""
