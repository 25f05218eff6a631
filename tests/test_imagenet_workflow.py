"""The ImageNet evaluation wing through real Snakemake runs: the smoke study end to end (scikit-image's
photographs, generated ImageNet-C, small torchvision networks at random init), the cache reused when a
model is added, the paper's config dry-run against a fake ImageNet tree, and config errors."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import BIN, ENV, REPO
from helpers import fake_imagenet

from noisetrain.config import expand_methods, validate_config
from noisetrain.data.corruption_names import IMAGENET_C_CORRUPTIONS
from noisetrain.data.imagenet import corrupted_transform, eval_transform, image_folder, read_val_list, write_val_list
from noisetrain.data.sample_images import make_sample_imagenet
from noisetrain.data.set_index import write_set_index
from noisetrain.errors import NoisetrainError
from noisetrain.models.torchvision_models import load_classifier

SMOKE = yaml.safe_load((REPO / "config" / "imagenet_smoke.yaml").read_text())
CORRUPTIONS = SMOKE["imagenet_c"]["corruptions"]
SEVERITIES = SMOKE["imagenet_c"]["severities"]
TRAINED = [m for m, spec in expand_methods(SMOKE).items() if spec["kind"] != "vanilla"]
MODELS = ["vanilla", *TRAINED, *SMOKE["external_models"]]
TABLES = [f"table{n}" for n in (1, 2, 3, 4, 5, 8, 9, 10, 13, 14, 15, 16)]
VANILLA = {"vanilla": {"kind": "vanilla", "weights": "ResNet50_Weights.IMAGENET1K_V1"}}


def snakemake(workdir: Path, configfile: Path, *args, timeout=600):
    return subprocess.run(
        [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(configfile), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("imagenet_smoke")
    result = snakemake(workdir, REPO / "config" / "imagenet_smoke.yaml", "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def results(workdir: Path) -> Path:
    return workdir / "results" / "imagenet_sample"


def test_smoke_study_writes_every_table_and_figure(smoke):
    out = results(smoke)
    for name in TABLES:
        for ext in ["md", "tex", "html"]:
            assert (out / "tables" / f"{name}.{ext}").stat().st_size > 0
    for name in ["fig2_accuracy_vs_sigma", "fig5_accuracy_per_severity", "fig9_jpeg_vs_posterize", "fig7_noise_levels",
                 "fig3_gaussian_eps_examples", "fig8_eps_examples"]:
        for ext in ["png", "pdf"]:
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 0


def test_smoke_study_counts_its_cost_and_reruns_nothing(smoke):
    """The same rule set as the small datasets': the compute-cost table of every job, and a rerun
    of a finished study has nothing to do (before the tests below change the study)."""
    cost = (results(smoke) / "report" / "benchmarks.md").read_text()
    for job in ("| train ", "| predict ", "| generate_imagenet_c ", "| index_image_set ", "| measure_robustness "):
        assert job in cost, job
    result = snakemake(smoke, REPO / "config" / "imagenet_smoke.yaml", "-n", "--cores", "2")
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr, result.stderr[-2000:]


def test_robustness_tables_have_the_measured_models(smoke):
    """robustness.methods [vanilla, gnt_s0.5, ant1x1]: their epsilon* and attack records, and their
    rows in Tables 2, 3 and 5 (Table 2 shows vanilla alone, as the paper's)."""
    out = results(smoke)
    for model in SMOKE["robustness"]["methods"]:
        for metric in ["noise_robustness", "adversarial"]:
            record = json.loads((out / "eval" / model / f"{metric}.json").read_text())
            assert record["dataset"] == "imagenet" and record["rows"]
    labels = ["Vanilla (mobilenet_v3_small random init)", "GNT σ=0.5 (mobilenet_v3_small)", "ANT 1x1 (mobilenet_v3_small)"]
    for name, shown in [("table2", labels[:1]), ("table3", labels), ("table5", labels)]:
        text = (out / "tables" / f"{name}.md").read_text()
        for label in shown:
            rows = [line for line in text.splitlines() if line.startswith(f"| {label} ")]
            assert len(rows) == 1 and "| ours " in rows[0], (name, label)


def test_every_method_is_fine_tuned_with_its_logs(smoke):
    out = results(smoke)
    for method in TRAINED:
        epochs = (out / "train_logs" / f"{method}.csv").read_text().splitlines()
        steps = (out / "train_logs" / f"{method}_steps.csv").read_text().splitlines()
        assert epochs[0].startswith("epoch,loss,accuracy,heldout_accuracy") and len(epochs) == 2, method
        assert steps[0].startswith("epoch,step,loss,accuracy") and len(steps) == 2, method  # one step of 8 images
        assert ("fooling_rate" in steps[0]) == method.startswith("ant"), method
        info = torch.load(out / "models" / f"{method}.pt", weights_only=True)["info"]
        assert info["weights"] == "random" and info["dataset"] == "imagenet" and info["spec"]["method"] == method
        assert not (out / "checkpoints" / method).exists()
    # The stylized stand-in mirrors the training folder (what +SIN reads).
    images = out / "data" / "images"
    assert sorted(p.relative_to(images / "stylized") for p in (images / "stylized").rglob("*.JPEG")) == sorted(
        p.relative_to(images / "train") for p in (images / "train").rglob("*.JPEG"))
    table16 = (out / "tables" / "table16.md").read_text()
    assert re.search(r"\| ANT 1x1 depth 2 \(mobilenet_v3_small\) +\| ours +\| 143 ", table16)


def test_generated_imagenet_c_has_the_published_layout(smoke):
    listing = read_val_list(results(smoke) / "data" / "val_files.json")
    assert len(listing["files"]) == 4 * 4  # classes x val_per_class
    for corruption in CORRUPTIONS:
        for severity in SEVERITIES:
            folder = results(smoke) / "data" / "imagenet_c" / corruption / str(severity)
            written = sorted(f"{p.parent.name}/{p.stem}" for p in folder.glob("*/*.JPEG"))
            assert written == sorted(str(Path(f).with_suffix("")) for f in listing["files"])


def test_accuracy_table_has_every_model_set_and_image(smoke):
    accuracy = pd.read_csv(results(smoke) / "eval" / "accuracy.csv")
    assert len(accuracy) == len(MODELS) * (1 + len(CORRUPTIONS) * len(SEVERITIES))
    assert set(accuracy.model) == set(MODELS)
    assert (accuracy.images == 16).all()
    assert accuracy.top1.between(0, 100).all() and (accuracy.top5 >= accuracy.top1).all()
    # Four classes: every top-5 holds the label.
    assert (accuracy.top5 == 100).all()


def test_cached_accuracy_equals_direct_evaluation(smoke):
    """The cache's clean top-1 of the vanilla model equals running that model on the val images."""
    listing = read_val_list(results(smoke) / "data" / "val_files.json")
    dataset = image_folder(
        results(smoke) / "data" / "images" / "val", eval_transform(224), files=listing["files"], classes=listing["classes"]
    )
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = torch.tensor([dataset[i][1] for i in range(len(dataset))])
    model = load_classifier(SMOKE["model"], None, num_classes=len(listing["classes"]), seed=SMOKE["seed"])
    with torch.inference_mode():
        direct = 100.0 * (model(images).argmax(1) == labels).float().mean().item()
    accuracy = pd.read_csv(results(smoke) / "eval" / "accuracy.csv")
    cached = accuracy.query("model == 'vanilla' and corruption == 'clean'").top1.item()
    assert cached == pytest.approx(direct)


def manifest(workdir: Path, model: str) -> dict:
    return json.loads((results(workdir) / "predictions" / model / "manifest.json").read_text())


def test_adding_a_model_runs_only_that_model(smoke, tmp_path):
    """Each model has its own prediction job: a new one runs alone, on every set, and the others'
    jobs do not run (nor is anything generated or trained again)."""
    config = dict(
        SMOKE, external_models={**SMOKE["external_models"], "resnet18": {"architecture": "resnet18", "weights": "random"}}
    )
    result = snakemake(smoke, write_config(tmp_path / "more.yaml", config), "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "generate_imagenet_c" not in result.stderr and "index_image_set" not in result.stderr
    assert "rule train:" not in result.stderr
    assert result.stderr.count("rule predict_model:") == 1 and "model=resnet18" in result.stderr
    added = manifest(smoke, "resnet18")
    assert len(added["sets"]) == 1 + len(CORRUPTIONS) * len(SEVERITIES) and all(s["computed"] for s in added["sets"])
    accuracy = pd.read_csv(results(smoke) / "eval" / "accuracy.csv")
    assert set(accuracy.model) == {*MODELS, "resnet18"}


def test_regenerated_imagenet_c_is_evaluated_anew(smoke, tmp_path):
    """Another JPEG quality regenerates ImageNet-C under the same file names: its sets get new
    content hashes, so the model runs on them again (the clean set's entry is reused), and the
    cache then holds the regenerated images' predictions. One model's target keeps it short."""
    config = dict(SMOKE, imagenet_c={**SMOKE["imagenet_c"], "quality": 60})
    target = str(results(smoke).relative_to(smoke) / "predictions" / "vanilla" / "manifest.json")
    result = snakemake(smoke, write_config(tmp_path / "quality.yaml", config), "--cores", "2", target)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("rule generate_imagenet_c:") == len(CORRUPTIONS) * len(SEVERITIES)
    computed = {(s["corruption"], s["severity"]): s["computed"] for s in manifest(smoke, "vanilla")["sets"]}
    assert computed.pop(("clean", 0)) is False and computed and all(computed.values())
    listing = read_val_list(results(smoke) / "data" / "val_files.json")
    folder = results(smoke) / "data" / "imagenet_c" / "gaussian_noise" / str(SEVERITIES[0])
    dataset = image_folder(folder, corrupted_transform(224), files=listing["files"], classes=listing["classes"])
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    model = load_classifier(SMOKE["model"], None, num_classes=len(listing["classes"]), seed=SMOKE["seed"])
    with torch.inference_mode():
        direct = model(images).topk(4, dim=1).indices.numpy()
    entry = np.load(results(smoke) / "predictions" / "vanilla" / "gaussian_noise" / f"{SEVERITIES[0]}.npz")
    assert np.array_equal(entry["top5"], direct)


@pytest.mark.slow
def test_a_study_without_jpeg_compression_plans_no_fig9(tmp_path):
    """Fig 9 shows an ImageNet-C JPEG image: without jpeg_compression the study neither plans it nor
    asks the figure job for it, and that job's command line parses (issue 20, case 12)."""
    config = dict(SMOKE, imagenet_c={**SMOKE["imagenet_c"], "corruptions": ["gaussian_noise", "defocus_blur"]})
    result = snakemake(tmp_path, write_config(tmp_path / "nojpeg.yaml", config), "-n", "-p", "--cores", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fig9" not in result.stdout and "jpeg_compression" not in result.stdout
    command = next(line for line in result.stdout.splitlines() if "python " in line and "plot_imagenet.py" in line)
    args = shlex.split(command[command.index("plot_imagenet.py") :].split(" 2>&1")[0])[1:]
    sys.path.insert(0, str(REPO / "workflow_scripts"))
    import plot_imagenet

    assert plot_imagenet.get_parser().parse_args(args).jpeg_dir is None


# ---------------------------------------------------------------- the paper's config, dry-run


@pytest.mark.slow
@pytest.mark.parametrize("profile", [[], ["--profile", str(REPO / "profiles" / "slurm"), "--cores", "8"]], ids=["local", "slurm"])
def test_paper_config_dry_runs_its_whole_dag(tmp_path, profile):
    fake_imagenet(tmp_path)
    result = snakemake(tmp_path, REPO / "config" / "imagenet.yaml", *profile, "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = {
        line.split()[0]: int(line.split()[1])
        for line in result.stdout.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    }
    assert counts["index_image_set"] == 1 + 15 * 5  # the extras are absent from this tree
    assert "generate_imagenet_c" not in counts
    assert counts["measure_robustness"] == 3 and counts["prepare_robustness_set"] == 1  # Tables 2, 3, 5's models
    config = yaml.safe_load((REPO / "config" / "imagenet.yaml").read_text())
    assert counts["train"] == len(config["methods"]) - 1 + len(config["sigma_sweep"])  # every method but vanilla
    assert counts["predict_model"] == counts["train"] + 1 + len(config["external_models"])  # one job per model


@pytest.mark.slow
def test_missing_imagenet_c_folders_are_listed_in_one_error(tmp_path):
    fake_imagenet(tmp_path, corruptions=IMAGENET_C_CORRUPTIONS[1:], severities=range(1, 5))
    result = snakemake(tmp_path, REPO / "config" / "imagenet.yaml", "-n")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "gaussian_noise" in output and "fog/5" in output, output[-2000:]
    assert "Traceback" not in output and "File " not in output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dataset": {"name": "imagenet", "root": "nowhere"}}, "nowhere"),
        ({"imagenet_c": {"generate": True, "root": "data/imagenet-c"}}, "exactly one of them"),
        ({"external_models": {"sin": {"architecture": "resnet50", "weights": "ckpt/sin.pth.tar"}}}, "ckpt/sin.pth.tar"),
        ({"external_models": {"x": {"architecture": "resnet9000", "weights": "IMAGENET1K_V1"}}}, "resnet9000"),
        ({"model": "madry_cnn"}, "does not fit dataset imagenet"),
        ({"evaluation": {"mce_reference": "vanilla"}}, "not an evaluated AlexNet"),
        ({"methods": {**VANILLA, "pgd": {"kind": "pgd_at"}}}, "'pgd_at' trains on the small datasets only"),
        ({"methods": {**VANILLA, "ant": {"kind": "ant", "eps": "auto"}}}, "on imagenet give a number"),
        ({"methods": {**VANILLA, "s": {"kind": "gnt", "sigma": 0.5, "stylized_path": "sin/train"}}},
         "sin/train is not a folder. Stylized-ImageNet is not made by this pipeline"),
        ({"methods": {**VANILLA, "dn": {"kind": "ant", "eps": 135.0, "architecture": "densenet121"}}},
         "a densenet121 cannot start from the vanilla resnet50"),
        ({"train": {"batch_size": 70, "gpus_per_job": 4}}, "cannot be split evenly over train.gpus_per_job = 4"),
        ({"sigma_sweep": [0.5], "eps_search": {"method": "ant1x1", "candidates": [1, 2]}}, "small datasets' study only"),
    ],
)
def test_config_errors_name_what_is_wrong(tmp_path, monkeypatch, change, message):
    """Checked in-process (the Snakefile turns any of these into one line, as the test above shows)."""
    fake_imagenet(tmp_path)
    monkeypatch.chdir(tmp_path)
    config = {**yaml.safe_load((REPO / "config" / "imagenet.yaml").read_text()), **change}
    with pytest.raises(NoisetrainError, match=re.escape(message)):
        validate_config(config)


@pytest.mark.slow
def test_a_truncated_image_stops_its_set_naming_the_file(tmp_path):
    """Decoded in a DataLoader worker, the error still reaches the log as one line naming the file,
    and the model's cache gets nothing."""
    make_sample_imagenet(tmp_path / "images", classes=2, train_per_class=1, val_per_class=2)
    listing = write_val_list(tmp_path / "images" / "val", None, 0, tmp_path / "val_files.json")
    broken = tmp_path / "images" / "val" / listing["files"][1]
    broken.write_bytes(broken.read_bytes()[:300])
    index = tmp_path / "sets" / "clean" / "0.json"
    write_set_index(tmp_path / "images" / "val", listing["files"], listing["classes"], "clean", 0, index)
    out = tmp_path / "predictions" / "m" / "manifest.json"
    result = subprocess.run(
        [str(BIN / "python"), str(REPO / "workflow_scripts" / "predict_model.py"), "--sets", str(index),
         "--files", str(tmp_path / "val_files.json"), "--model-spec",
         json.dumps({"architecture": "squeezenet1_1", "weights": "random"}), "--workers", "1", "--device", "cpu",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120, env=ENV,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and str(broken) in lines[-1], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not out.parent.exists() or not any(out.parent.iterdir())
