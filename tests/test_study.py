"""The study object (noisetrain.study): what the one rule set asks of a config, for both data forms."""

import subprocess
import sys

import pytest
from conftest import REPO

from noisetrain.config import load_config
from noisetrain.report.outputs import IMAGENET_C_TABLES, ROBUSTNESS_TABLES, TABLE_NAMES
from noisetrain.study import Study


@pytest.fixture(scope="module")
def digits():
    return Study(load_config(REPO / "config" / "test.yaml"))


@pytest.fixture(scope="module")
def sample():
    return Study(load_config(REPO / "config" / "imagenet_smoke.yaml"))


def test_arrays_study_names_its_models_tables_and_figures(digits):
    assert (digits.name, digits.prefix, digits.image_folders) == ("digits", "results/digits", False)
    assert digits.sweep == ["gnt_s0.3", "gnt_s0.6"] and digits.chooses_best_gnt
    assert digits.eps_candidates == {"ant1x1_eps2": 2.0, "ant1x1_eps4": 4.0} and digits.searched == ["ant1x1"]
    assert digits.tables() == [*TABLE_NAMES, "claims"]
    assert digits.figures() == ["corruption_examples", "fig6_accuracy_vs_sigma", "fig7_noise_levels",
                                "fig3_gaussian_eps_examples", "fig8_eps_examples", "fig4_adversarial_noise"]
    targets = digits.targets()
    assert len(targets) == 3 * len(digits.tables()) + 2 * len(digits.figures()) and len(set(targets)) == len(targets)
    assert all(t.startswith("results/digits/") for t in targets)
    # every trained model and every replicate is a model a train job may write
    assert set(digits.trained) == set(digits.method_names) >= {"vanilla", "vanilla_seed1", "gnt_s0.6_seed1"}


def test_arrays_measured_models_hold_the_best_gnt_model_once(digits):
    assert digits.measured("gnt_s0.6") == ["vanilla", "ant1x1", "gnt_s0.6"]  # robustness.methods, then the best
    assert digits.measured("ant1x1") == ["vanilla", "ant1x1"]  # each once
    assert digits.epsilon_example_models("gnt_s0.6") == ["vanilla", "gnt_s0.6", "ant1x1"]
    assert digits.best_replicates("gnt_s0.3") == ["gnt_s0.3_seed1"] and digits.best_replicates(None) == []


def test_arrays_models_are_files_under_the_study(digits):
    assert digits.model_file("ant1x1") == ["results/digits/models/ant1x1.pt"]
    assert digits.init_file("vanilla") is None  # from scratch
    assert digits.init_file("ant1x1_seed1") == "results/digits/models/vanilla_seed1.pt"  # the vanilla model of its seed
    assert digits.init_file("pgd_at") is None
    assert digits.choice_file("auto") == "results/digits/selection/sweep_choice.json"
    assert digits.choice_file(3.0) is None
    assert digits.robustness_data() == "results/digits/data/clean.npz"


def test_arrays_jobs_are_one_process_with_the_configured_threads(digits):
    assert digits.launcher() == "python" and digits.job_threads("train") == 1
    # device: cpu; a digits model is a minute of work: the shortest time asked for
    assert digits.job_resources("train", "vanilla") == {"mem_mb": 4000, "runtime": 15, "gpu": 0, "slurm_partition": "cpu"}


def test_image_folder_study_names_its_sets_models_tables_and_figures(sample):
    assert (sample.name, sample.image_folders, sample.chooses_best_gnt) == ("imagenet_sample", True, False)
    assert sample.image_root == "results/imagenet_sample/data/images"
    assert sample.image_sets() == [("clean", "0"), ("gaussian_noise", "2"), ("defocus_blur", "2"), ("jpeg_compression", "2")]
    assert sample.set_source("clean", "0") == "results/imagenet_sample/data/images/val"
    assert sample.set_source("defocus_blur", "2") == "results/imagenet_sample/data/imagenet_c/defocus_blur/2"
    assert sample.tables() == [*IMAGENET_C_TABLES, "table2", "table3", "table5"]
    assert sample.tables_of("records") == [] and sample.tables_of("robustness") == list(ROBUSTNESS_TABLES[True])
    assert sample.figures() == ["fig2_accuracy_vs_sigma", "fig5_accuracy_per_severity", "fig9_jpeg_vs_posterize",
                                "fig7_noise_levels", "fig3_gaussian_eps_examples", "fig8_eps_examples"]
    assert sample.jpeg_dir() == "results/imagenet_sample/data/imagenet_c/jpeg_compression/2"
    assert sample.noise_levels() == [0.1, 0.5, 1.0]
    # the study's vanilla model and its fine-tuned ones, then the external models
    assert sample.evaluated()[0] == "vanilla" and sample.evaluated()[-2:] == ["alexnet", "squeezenet"]
    assert "vanilla" not in sample.trained and set(sample.trained) < set(sample.evaluated())
    # robustness.methods in the evaluation's order (no best-GNT choice on image folders)
    assert sample.measured() == ["vanilla", "ant1x1", "gnt_s0.5"] == sample.epsilon_example_models("ignored")
    assert sample.robustness_data() == "results/imagenet_sample/data/robustness.npz"


def test_every_model_has_one_label_whatever_the_data_form(digits, sample):
    """Figs 3 / 8 name their rows as tables and Fig 5 do: by the study's one label per model."""
    assert digits.label("vanilla") == "Vanilla" and digits.label("ant1x1") == "ANT 1x1"
    assert digits.label("gnt_s0.3") == "GNT σ=0.3"
    assert sample.label("vanilla") == "Vanilla (mobilenet_v3_small random init)"
    assert sample.label("gnt_s0.5") == "GNT σ=0.5 (mobilenet_v3_small)"
    assert all(sample.label(model) == spec["label"] for model, spec in sample.eval_models.items())


def test_image_folder_models_are_inputs_only_when_they_are_files(sample):
    assert sample.model_file("vanilla") == []  # a seeded random init
    assert sample.model_file("ant1x1") == ["results/imagenet_sample/models/ant1x1.pt"]
    assert sample.model_spec("ant1x1") == ('{"architecture": "mobilenet_v3_small", "fine_tuned_from": "random", '
                                           '"weights": "results/imagenet_sample/models/ant1x1.pt"}')
    assert sample.init_file("ant1x1") is None  # fine-tuned from the random init: no file


def test_image_folder_study_without_jpeg_has_no_fig9_and_a_published_root(tmp_path):
    root = tmp_path / "in_c"
    config = load_config(REPO / "config" / "imagenet_smoke.yaml", {"imagenet_c": {"corruptions": ["fog"]}})
    config["imagenet_c"]["root"] = str(root)
    study = Study(config)
    assert "fig9_jpeg_vs_posterize" not in study.figures() and study.jpeg_dir() == ""
    assert study.set_source("fog", "2") == f"{root}/fog/2"


def test_data_parallel_training_scales_threads_memory_and_gpus():
    config = load_config(REPO / "config" / "imagenet_smoke.yaml",
                         {"device": "auto", "train": {"gpus_per_job": 2, "batch_size": 8, "workers": 3}})
    study = Study(config)
    assert study.launcher() == "torchrun --standalone --nproc_per_node 2"
    assert study.job_threads("train") == 6 and study.job_threads("predict") == 1  # evaluation.workers: 0
    assert study.job_resources("train", "ant1x1") == {"mem_mb": 64000, "runtime": 15, "gpu": 2, "slurm_partition": "gpu"}
    assert study.job_resources("predict") == {"mem_mb": 16000, "runtime": 15, "gpu": 1, "slurm_partition": "gpu"}


def test_the_study_imports_no_heavy_module():
    code = ("import sys; import noisetrain.study; "
            "print(sorted({'torch', 'torchvision', 'pandas', 'matplotlib', 'numpy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO / "lib")
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("config", ["config.yaml", "test.yaml", "mnist.yaml", "imagenet_smoke.yaml"])
def test_every_target_lies_under_the_study_and_every_figure_has_its_caption(config, tmp_path, monkeypatch):
    """One rule set for every dataset: the same invariants hold for each study."""
    monkeypatch.setenv("NOISETRAIN_MNIST_ROOT", str(tmp_path))
    overrides = {"dataset": {"name": "mnist", "root": str(tmp_path), "download": True}} if config == "mnist.yaml" else None
    study = Study(load_config(REPO / "config" / config, overrides))
    targets = study.targets()
    assert len(set(targets)) == len(targets) and all(t.startswith(study.prefix + "/") for t in targets)
    for name in study.figures():
        assert (REPO / "report" / f"{study.figure_caption(name)}.rst").is_file(), name
    assert (REPO / "report" / "table.rst").is_file() and study.tables()


def test_the_slurm_profile_names_only_rules_that_exist():
    """set-resources and set-threads of a renamed rule would silently stop applying (the profile
    still named the removed predict_clean and evaluate)."""
    import re

    import yaml

    rules = {name for path in (REPO / "rules").glob("*.smk")
             for name in re.findall(r"^\s*(?:rule|checkpoint) (\w+):", path.read_text(), re.MULTILINE)}
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    named = set(profile["set-resources"]) | set(profile["set-threads"])
    assert named <= rules, named - rules
    assert {"train", "predict_model", "measure_robustness"} <= set(profile["set-resources"])  # the GPU jobs
