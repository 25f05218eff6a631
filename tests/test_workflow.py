"""End to end: the real Snakemake workflow on config/test.yaml in a temporary directory (the
session-wide ``study`` fixture of conftest.py)."""

import importlib.util
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import CORRUPTIONS, FROM_SCRATCH, METHODS, REPO, snakemake

from noisetrain.data import datasets
from noisetrain.errors import InputError
from noisetrain.measure.prediction_cache import accuracy_records


def save_arrays(path, images, labels):
    """A prepared dataset whose training and test arrays are the same images."""
    split = datasets.Split(images, labels)
    datasets.save(datasets.PreparedData(split, split, np.arange(len(labels)), "digits"), path)


def test_every_target_exists(study):
    for name in ("table11", "summary", "sigma_sweep", "eps_search", "table16", "table2", "table3", "table12", "claims"):
        for ext in ("md", "tex", "html"):
            assert (study / "tables" / f"{name}.{ext}").stat().st_size > 100
    for name in ("fig6_accuracy_vs_sigma", "fig7_noise_levels", "corruption_examples", "fig4_adversarial_noise",
                 "fig3_gaussian_eps_examples", "fig8_eps_examples"):
        assert (study / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (study / "figures" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
    assert len(list((study / "data" / "corrupted").glob("*.npz"))) == CORRUPTIONS
    assert len(list((study / "logs").rglob("*.log"))) >= 1 + CORRUPTIONS + 2 * len(METHODS)
    assert len(list((study / "benchmarks").rglob("*.tsv"))) >= 1 + CORRUPTIONS + 2 * len(METHODS)


def test_records_hold_sane_numbers(study):
    for method in METHODS:
        clean = json.loads((study / "eval" / method / "clean.json").read_text())
        assert clean["method"] == method and clean["dataset"] == "digits"
        assert 0.5 < clean["rows"][0]["value"] <= 1.0  # far above chance (0.1) after a short run
        provenance = clean["provenance"]
        assert provenance["seed"] == (1 if method.endswith("_seed1") else 0) and len(provenance["config_hash"]) == 12
        # what shaped the number: the training data, the initial model, the code, the test set
        assert len(provenance["model"]["data_hash"]) == 12 and provenance["model"]["code_version"]
        assert (provenance["model"]["init_hash"] is None) == (method in FROM_SCRATCH)
        assert len(provenance["settings"]["test_data_hash"]) == 12
        record = json.loads((study / "eval" / method / "corruptions.json").read_text())
        per = [r for r in record["rows"] if r["category"] != "aggregate"]
        assert len(per) == CORRUPTIONS and all(0.0 <= r["value"] <= 1.0 for r in per)
        mean = {r["corruption"]: r["value"] for r in record["rows"] if r["category"] == "aggregate"}
        assert mean["mean"] == pytest.approx(sum(r["value"] for r in per) / CORRUPTIONS)
        non_noise = [r["value"] for r in per if r["category"] != "noise"]
        assert mean["mean_without_noise"] == pytest.approx(sum(non_noise) / len(non_noise))


def test_training_logs_and_models(study):
    for method in METHODS:
        rows = (study / "train_logs" / f"{method}.csv").read_text().splitlines()
        assert rows[0].startswith("epoch,loss,accuracy,heldout_accuracy")
        steps = (study / "train_logs" / f"{method}_steps.csv").read_text().splitlines()
        assert steps[0].startswith("epoch,step,loss,accuracy") and steps[0].endswith("lr,images_per_second,gpu_memory_mb")
        assert [int(row.split(",")[1]) for row in steps[1:]] == list(range(1, len(steps)))  # each step once
        assert ("generator_loss" in rows[0] and "fooling_rate" in rows[0]) == method.startswith("ant")
        assert ("erased_fraction" in rows[0] and "replay_mean_noise" in rows[0]) == method.startswith("ant")
        assert ("adversarial_accuracy" in rows[0]) == (method == "pgd_at")
        assert len(rows) == (5 if method in FROM_SCRATCH else 2)
        assert not (study / "checkpoints" / method).exists()  # removed once the model is saved


def test_tables_show_every_model(study):
    table = (study / "tables" / "table11.md").read_text()
    for label in ("Vanilla", "GNT σ=", "GNT mult", "Speckle", "ANT 1x1", "ANT 3x3", "PGD AT", "fog", "canny_edges"):
        assert label in table
    assert "The paper reports no digits values" in table


def test_ant_eps_is_chosen_from_the_sweep_and_by_search(study):
    choice = json.loads((study / "selection" / "sweep_choice.json").read_text())
    assert choice["parameter"] == "sigma" and choice["best_method"] in ("gnt_s0.3", "gnt_s0.6") and choice["eps"] > 0
    assert "mean over the 400 training images" in choice["how"]
    search = json.loads((study / "selection" / "eps_search.json").read_text())
    assert search["parameter"] == "eps" and search["best_method"] in ("ant1x1_eps2", "ant1x1_eps4")
    assert set(search["candidates"]) == {"ant1x1_eps2", "ant1x1_eps4"}
    assert search["best_c_mean"] == max(search["candidates"].values())
    spec = {m: json.loads((study / "eval" / m / "clean.json").read_text())["provenance"]["spec"] for m in METHODS}
    # eps: search: the winning candidate is the model (not trained again), under its own name
    winner = search["best_method"]
    assert spec["ant1x1"] == {**{k: v for k, v in spec[winner].items() if k != "candidate_of"}, "method": "ant1x1",
                              "adopted_from": winner, "eps_source": f"eps search: {search['how']}"}
    assert spec["ant1x1"]["eps"] == pytest.approx(search["eps"])
    for path in ("train_logs/{}.csv", "train_logs/{}_steps.csv"):
        assert (study / path.format("ant1x1")).read_bytes() == (study / path.format(winner)).read_bytes()
    assert not (study / "benchmarks" / "train" / "ant1x1.tsv").exists()
    assert spec["ant1x1_seed1"]["eps"] == pytest.approx(search["eps"]) and spec["ant1x1_seed1"]["seed"] == 1
    assert spec["ant3x3"]["eps"] == pytest.approx(0.52 * choice["eps"])  # eps: auto, eps_factor 0.52
    assert (spec["ant1x1_eps2"]["eps"], spec["ant1x1_eps4"]["eps"]) == (2.0, 4.0)
    # the model file's final training diagnostics reach every record of the model
    model = json.loads((study / "eval" / "ant1x1" / "clean.json").read_text())["provenance"]["model"]
    assert model["training_diagnostics"]["epoch"] == 1 and 0.0 <= model["training_diagnostics"]["erased_fraction"] <= 1.0


def test_seed_replicates_and_the_claims_table(study):
    choice = json.loads((study / "selection" / "sweep_choice.json").read_text())
    best_replicate = f"{choice['best_method']}_seed1"
    record = json.loads((study / "eval" / best_replicate / "clean.json").read_text())
    assert record["provenance"]["spec"]["replicate_of"] == choice["best_method"]
    replicate = json.loads((study / "eval" / "ant1x1_seed1" / "clean.json").read_text())["provenance"]
    main = json.loads((study / "eval" / "ant1x1" / "clean.json").read_text())["provenance"]
    assert replicate["spec"]["seed"] == 1 and replicate["model"]["init_hash"] != main["model"]["init_hash"]  # vanilla_seed1
    summary = (study / "tables" / "summary.md").read_text()
    assert re.search(r"\|\s+seeds\s+\|", summary) and " ± " in summary and "seed1" not in summary
    claims = (study / "tables" / "claims.md").read_text()
    assert "GNT beats the vanilla model on the corruption benchmark" in claims and "(2 seeds)" in claims
    assert any(word in claims for word in ("| held", "| not held", "| inconclusive"))
    # The epsilon* claims carry a bootstrap interval over the measured images, read from the
    # per-image epsilon* the robustness job wrote beside its record.
    eps_line = next(line for line in claims.splitlines() if "(ε*_AN < ε*_GN)" in line)
    assert re.search(r"\| [-+]\d+\.\d\d \[[-+]\d+\.\d\d, [-+]\d+\.\d\d\]", eps_line) and "single measurement" not in eps_line
    distances = np.load(study / "eval" / "vanilla" / "distances.npz")
    record = json.loads((study / "eval" / "vanilla" / "noise_robustness.json").read_text())
    eps = {r["corruption"]: r["value"] for r in record["rows"]}
    assert np.median(distances["gn"]) == eps["eps_gn"] and len(distances["gn"]) == len(distances["an_seed0"])
    correct = np.load(study / "eval" / "vanilla" / "correct.npz")
    rows = json.loads((study / "eval" / "vanilla" / "corruptions.json").read_text())["rows"]
    assert set(correct.files) == {"clean", *(r["corruption"] for r in rows if r["category"] != "aggregate")}
    clean = json.loads((study / "eval" / "vanilla" / "clean.json").read_text())["rows"][0]["value"]
    assert correct["clean"].mean() == pytest.approx(clean)
    # The records come from the prediction cache, ImageNet's format: one entry per set and severity.
    cached = accuracy_records([study / "predictions" / "vanilla" / "manifest.json"])
    assert set(cached.corruption) == set(correct.files)
    assert cached.query("corruption == 'clean'").top1.item() == pytest.approx(100 * clean)


def test_robustness_records(study):
    choice = json.loads((study / "selection" / "sweep_choice.json").read_text())
    for folder in ("vanilla", "ant1x1", choice["best_method"]):
        noise = json.loads((study / "eval" / folder / "noise_robustness.json").read_text())
        values = {r["corruption"]: r["value"] for r in noise["rows"]}
        assert 0 < values["eps_gn"] and 0 < values["eps_un"] and 0 < values["eps_an"]
        assert values["eps_gn_passes_per_image"] <= 20  # the line search's budget
        assert {"eps_an_seed0", "eps_an_seed1", "eps_an_std"} <= set(values)
        assert {"an_erased_fraction_seed1", "an_erased_fraction", "an_mean_noise", "an_fooling_rate"} <= set(values)
        assert 0.0 <= values["an_erased_fraction"] <= 1.0 and 0.0 <= values["an_fooling_rate"] <= 1.0
        adversarial = json.loads((study / "eval" / folder / "adversarial.json").read_text())
        budgets = {row["corruption"]: row["severity"] for row in adversarial["rows"]}
        assert budgets == {"linf_pgd": 0.1, "l2_ddn": 1.5}  # the attack's epsilon is recorded with it
        assert all(0.0 <= row["value"] <= 1.0 for row in adversarial["rows"])
    # each record is filed under the model it measured; no pseudo-method folder exists
    best = json.loads((study / "eval" / choice["best_method"] / "noise_robustness.json").read_text())
    assert best["method"] == choice["best_method"]
    assert not (study / "eval" / "best_gnt").exists()
    settings = json.loads((study / "eval" / "vanilla" / "noise_robustness.json").read_text())["provenance"]["settings"]
    assert settings["robustness"]["an_eps"] == pytest.approx(choice["eps"]) and settings["robustness"]["an_seeds"] == 2
    for name in ("table2", "table3", "table12"):
        assert "Vanilla" in (study / "tables" / f"{name}.md").read_text()


def test_rerun_has_nothing_to_do(study):
    result = snakemake(study.parent.parent, "-n", "--cores", "2")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


SCRIPTS = sorted(p for p in (REPO / "workflow_scripts").glob("[a-z]*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_cli_has_help(script, monkeypatch):
    """In-process (a subprocess per script cost ~4 s of imports each); the scripts run as programs
    in the CLI tests below and in every workflow test."""
    monkeypatch.syspath_prepend(str(script.parent))  # where each script finds _libpath
    spec = importlib.util.spec_from_file_location(f"cli_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.get_parser().format_help()
    assert text.startswith("usage:") and "--" in text and module.__doc__.strip().splitlines()[0][:40] in text


@pytest.mark.slow
def test_cli_reports_a_missing_model_in_one_line(tmp_path):
    model = tmp_path / "m.pt"
    data = tmp_path / "d.npz"
    save_arrays(data, np.zeros((4, 1, 8, 8), np.uint8), np.arange(4) % 2)
    out = tmp_path / "x" / "manifest.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "workflow_scripts" / "predict_model.py"), "--model", str(model), "--data", str(data),
         "--sets", str(tmp_path / "fog.npz"), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    expected = f"error: {model} does not exist: run the rule that writes it (snakemake {model})"
    assert result.stderr.strip().splitlines() == [expected]
    assert not out.exists()


def test_scores_refuse_predictions_of_another_model(tmp_path):
    """score_model reads the cache only where its entries are this model file's on these arrays."""
    from noisetrain.measure.evaluation import correct_by_set, predict_arrays, test_arrays
    from noisetrain.models.architectures import build_model
    from noisetrain.models.model_file import save_model

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (12, 1, 28, 28), dtype=np.uint8), np.arange(12) % 3
    save_arrays(tmp_path / "d.npz", images, labels)
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(tmp_path / f"m{seed}.pt")
        save_model(build_model("madry_cnn", 1, 3), models[-1], arch="madry_cnn", in_channels=1, num_classes=3, info={})
    out = tmp_path / "p" / "manifest.json"
    predict_arrays(models[0], tmp_path / "d.npz", [], out, batch_size=5, device=torch.device("cpu"))
    arrays = test_arrays(datasets.load(tmp_path / "d.npz"), [])
    correct = correct_by_set(out, models[0], arrays)["clean"]
    assert correct.shape == (12,) and correct.dtype == bool
    with pytest.raises(InputError, match="rerun predict_model"):
        correct_by_set(out, models[1], arrays)


@pytest.mark.slow
def test_cli_rejects_malformed_spec_json(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "workflow_scripts" / "train.py"), "--data", "x", "--spec", "{bad",
         "--checkpoint-dir", str(tmp_path), "--out", "m.pt", "--log-csv", "l.csv", "--steps-csv", "s.csv"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "not valid JSON" in result.stderr
