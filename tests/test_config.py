import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import fake_imagenet

import noisetrain.config as cfg
from noisetrain import methods
from noisetrain.config import ConfigError, expand_methods, load_config, train_spec, validate_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "config").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path, tmp_path, monkeypatch):
    if path.name == "imagenet.yaml":  # its config-time checks read the ImageNet folders it names
        fake_imagenet(tmp_path)
        monkeypatch.chdir(tmp_path)
    if path.name == "digits_extras.yaml":  # an overlay of the default, merged as Snakemake merges them
        config = load_config(REPO / "config" / "config.yaml", overrides=cfg.load_yaml_strict(path))
        methods = expand_methods(config)
        assert {"pgd_at", "ddn_at", "gnt_mult_wide", "ant1x1_seed2", "ant1x1_noreplay"} <= set(methods)
        assert config["seeds"]["methods"] == load_config(REPO / "config" / "config.yaml")["seeds"]["methods"]
    elif path.name == "mnist_cpu.yaml":  # an overlay of config/mnist.yaml: every model at 30 epochs
        config = load_config(REPO / "config" / "mnist.yaml", overrides=cfg.load_yaml_strict(path))
        assert {name: train_spec(config, name)["epochs"] for name in ("vanilla", "ant1x1", "pgd_at", "ddn_at")} == \
            dict.fromkeys(("vanilla", "ant1x1", "pgd_at", "ddn_at"), 30)
    else:
        config = load_config(path)
    assert config["train"]["finetune"]["lr"] > 0
    assert "vanilla" in expand_methods(config)


def test_defaults_are_filled_and_numbers_typed():
    config = validate_config({"dataset": {"name": "digits"}, "sigma_sweep": [0.5],
                              "methods": {"vanilla": {"kind": "vanilla"}, "m": {"kind": "gnt_mult"}}})
    assert config["train"]["batch_size"] == 300
    assert config["train"]["clean_fraction"] == 0.5
    assert config["train"]["finetune"] == {"epochs": 10, "lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0, "lr_decay_epoch": None}
    assert config["methods"]["m"]["sigmas"] == [0.08, 0.12, 0.18, 0.26, 0.38]
    assert len(config["corruptions"]["names"]) == 15


def test_validation_does_not_modify_the_input():
    raw = {"dataset": {"name": "digits"}, "methods": {"vanilla": {"kind": "vanilla"}}, "sigma_sweep": [0.5]}
    validate_config(raw)
    assert raw == {"dataset": {"name": "digits"}, "methods": {"vanilla": {"kind": "vanilla"}}, "sigma_sweep": [0.5]}


@pytest.mark.parametrize(
    "patch, where, expected",
    [
        ({"train": {"finetune": {"lr": "1e-3"}}}, "train.finetune.lr", "write 1.0e-3"),
        ({"trian": {}}, "<top level>", "'trian' was unexpected"),
        ({"methods": {"vanilla": {"kind": "vanilla"}, "x": {"kind": "gnt"}}}, "methods.x", "'sigma' is a required property"),
        ({"methods": {"vanilla": {"kind": "vanilla"}, "x": {"kind": "magic"}}}, "methods.x.kind", "'magic' is not one of"),
        ({"methods": {"vanilla": {"kind": "vanilla"}, "x": {"kind": "gnt", "sigma": 0.5, "sigmas": [1]}}},
         "methods.x", "'sigmas' was unexpected"),
        ({"dataset": {"name": "cifar"}}, "dataset.name", "'cifar' is not one of"),
        ({"train": {"clean_fraction": 1.5}}, "train.clean_fraction", "1.5 is greater than the maximum of 1"),
        # issue 20: each of these started jobs that then failed
        ({"dataset": {"name": "digits", "seed": -1}}, "dataset.seed", "-1 is less than the minimum of 0"),
        ({"seed": -3}, "seed", "-3 is less than the minimum of 0"),
        ({"dataset": {"name": "digits", "subset_train": 5}}, "dataset.subset_train",
         "5 images cannot hold each of the 10 classes"),
        ({"dataset": {"name": "digits", "subset_test": 9}}, "dataset.subset_test", "ask for 10 or more"),
    ],
)
def test_malformed_config_names_key_and_expectation(patch, where, expected):
    base = {"dataset": {"name": "digits"}, "methods": {"vanilla": {"kind": "vanilla"}}}
    base.update(patch)
    with pytest.raises(ConfigError) as info:
        validate_config(base)
    message = str(info.value)
    assert "\n" not in message
    assert f"'{where}'" in message and expected in message


def test_auto_eps_needs_a_sigma_sweep():
    base = {"dataset": {"name": "digits"}, "methods": {"vanilla": {"kind": "vanilla"}, "a": {"kind": "ant"}},
            "robustness": {"an_eps": 2.0}}
    with pytest.raises(ConfigError, match=r"'methods.a.eps': 'auto' chooses eps from the sigma sweep"):
        validate_config(base)
    assert validate_config({**base, "sigma_sweep": [0.5]})["methods"]["a"]["eps"] == "auto"
    assert validate_config({**base, "methods": {"vanilla": {"kind": "vanilla"}, "a": {"kind": "ant", "eps": 10.0}}})


def test_fine_tuned_methods_need_vanilla():
    with pytest.raises(ConfigError, match="start from the vanilla model"):
        validate_config({"dataset": {"name": "digits"}, "methods": {"g": {"kind": "gnt", "sigma": 0.5}}})


def test_sigma_sweep_expands_into_named_methods():
    config = validate_config({"dataset": {"name": "digits"}, "methods": {"vanilla": {"kind": "vanilla"}},
                              "sigma_sweep": [0.1, 0.5, 1.0]})
    methods = expand_methods(config)
    assert methods["gnt_s0.1"] == {"kind": "gnt", "sigma": 0.1}
    assert list(methods) == ["vanilla", "gnt_s0.1", "gnt_s0.5", "gnt_s1"]
    spec = train_spec(config, "gnt_s0.5")
    assert spec["lr"] == 1e-3 and spec["sigma"] == 0.5 and spec["method"] == "gnt_s0.5"
    assert train_spec(config, "vanilla")["epochs"] == config["train"]["vanilla"]["epochs"]


def test_sweep_name_clash_is_an_error():
    with pytest.raises(ConfigError, match="clashes with sigma_sweep"):
        validate_config({"dataset": {"name": "digits"}, "sigma_sweep": [0.5],
                         "methods": {"vanilla": {"kind": "vanilla"}, "gnt_s0.5": {"kind": "gnt", "sigma": 0.3}}})


def test_schema_and_default_config_agree(tmp_path):
    """Every key of the default config is known to the schema (additionalProperties false
    everywhere), and every top-level schema property appears in the default config or, for the
    ImageNet-only keys, in config/imagenet.yaml."""
    schema = yaml.safe_load((REPO / "lib" / "noisetrain" / "config_schema.yaml").read_text())
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    imagenet = yaml.safe_load((REPO / "config" / "imagenet.yaml").read_text())
    assert set(default) <= set(schema["properties"])
    assert set(default) | set(imagenet) == set(schema["properties"])
    assert set(imagenet) - set(default) == {"imagenet_c", "external_models"}


def test_paper_config_evaluates_in_fp32_and_sweeps_the_papers_sigmas():
    """Section 4.2: nine sigmas, among them ImageNet-C's Gaussian levels (0.26, not 0.25) and the
    best 0.5; the paper evaluated in fp32, and so does any config that does not ask for AMP."""
    imagenet = yaml.safe_load((REPO / "config" / "imagenet.yaml").read_text())
    sweep = imagenet["sigma_sweep"]
    assert len(sweep) == len(set(sweep)) == 9
    assert {0.08, 0.12, 0.18, 0.26, 0.38, 0.5} <= set(sweep)
    assert set(imagenet["methods"]["gnt_mult"]["sigmas"]) <= set(sweep)  # GNT mult's set: ImageNet-C's levels
    assert imagenet["evaluation"]["amp"] is False
    assert validate_config(BASE)["evaluation"]["amp"] is False


@pytest.mark.slow
def test_snakemake_rejects_malformed_config_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (REPO / "config" / "test.yaml").read_text()
    assert "lr: 0.05," in text
    bad.write_text(text.replace("lr: 0.05,", "lr: 5e-2,"))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), "-n", "--configfile", str(bad)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "config error at 'train.vanilla.lr': '5e-2' is not of type 'number'" in output
    assert "Traceback" not in output
    assert not (REPO / "results" / "digits" / "data" / "bad").exists()


# Malformed configs caught by validate_config (or the loaders it relies on) before any job runs.
BASE = {"dataset": {"name": "digits"}, "methods": {"vanilla": {"kind": "vanilla"}}, "sigma_sweep": [0.5]}


def config_error(config: dict) -> str:
    """The one-line message validate_config raises for ``config``."""
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    message = str(info.value)
    assert "\n" not in message and message.startswith("config error at '")
    return message


def test_robustness_methods_must_be_defined():
    message = config_error({**BASE, "robustness": {"methods": ["vanilla", "ant9"]}})
    assert "'robustness.methods.1': unknown method 'ant9'; known: vanilla, gnt_s0.5, best_gnt" in message
    assert validate_config({**BASE, "robustness": {"methods": ["best_gnt", "gnt_s0.5"]}})


def test_best_gnt_needs_a_sigma_sweep():
    # Without a sweep there is no best model to measure (the robustness job hit an IndexError).
    message = config_error({**BASE, "sigma_sweep": [], "robustness": {"methods": ["vanilla", "best_gnt"], "an_eps": 2.0}})
    assert "'robustness.methods.1': 'best_gnt' is the sigma sweep's best model" in message
    assert "add sigma_sweep values" in message


ANT = {"kind": "ant", "eps": 2.0}


@pytest.mark.parametrize(
    "spec, where, expected",
    [
        ({"fractions": {"clean": 0.5, "stylized": 0.0, "current": 0.3, "replay": 0.1}},
         "methods.a.fractions", "must sum to 1, got 0.9"),
        ({"fractions": {"clean": 0.25, "stylized": 0.3, "current": 0.225, "replay": 0.225}},
         "methods.a.fractions.stylized", "needs stylized_path"),
        ({"replay": False, "fractions": {"clean": 0.5, "stylized": 0.0, "current": 0.3, "replay": 0.2}},
         "methods.a.fractions.replay", "needs replay: true"),
    ],
)
def test_ant_fractions_are_checked_at_config_time(spec, where, expected):
    message = config_error({**BASE, "methods": {"vanilla": {"kind": "vanilla"}, "a": {**ANT, **spec}}})
    assert f"'{where}'" in message and expected in message
    # Within the tolerance, and with what each part needs, the same split is accepted.
    fractions = {"clean": 0.1 + 0.2, "stylized": 0.0, "current": 0.5, "replay": 0.2}  # sums to 1 +- 1e-16
    assert validate_config({**BASE, "methods": {"vanilla": {"kind": "vanilla"}, "a": {**ANT, "fractions": fractions}}})


@pytest.mark.parametrize(
    "snippet, where",
    [
        ("sigma_sweep: [0.5, .inf]", "sigma_sweep.1"),
        ("train: {finetune: {lr: -.inf}}", "train.finetune.lr"),
        ("robustness: {an_eps: .nan}", "robustness.an_eps"),
        ("methods: {vanilla: {kind: vanilla}, g: {kind: gnt, sigma: .NaN}}", "methods.g.sigma"),
    ],
)
def test_non_finite_numbers_are_rejected(snippet, where):
    message = config_error({**BASE, **yaml.safe_load(snippet)})
    assert f"'{where}'" in message and "is not a finite number" in message


@pytest.mark.parametrize(
    "patch, where, expected",
    [
        ({"train": {"vanilla": {"epochs": 25.0}}}, "train.vanilla.epochs", "write 25,"),
        ({"train": {"finetune": {"lr_decay_epoch": 4.0}}}, "train.finetune.lr_decay_epoch", "write 4,"),
        ({"seed": 1.0}, "seed", "write 1,"),
    ],
)
def test_float_where_an_integer_is_meant(patch, where, expected):
    message = config_error({**BASE, **patch})
    assert f"'{where}': " in message and "is not of type 'integer'" in message and expected in message


DUPLICATED = """\
dataset: {name: digits}
methods:
  vanilla: {kind: vanilla}
  ant1x1: &ant {kind: ant, eps: 2.0}
  ant3x3: {<<: *ant, kernel: "3x3"}  # overriding a merged key is not a duplicate
  ant1x1: {kind: ant, eps: 3.0}
"""


def test_a_config_that_is_not_a_mapping_is_refused_in_one_line(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- dataset\n- methods\n")
    with pytest.raises(ConfigError, match=r"list.yaml holds a YAML list, not a mapping of keys \(dataset:, methods:"):
        cfg.load_yaml_strict(path)


def test_duplicate_yaml_keys_are_rejected(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(DUPLICATED)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert f"config error at 'methods.ant1x1': key given twice in {path} (lines 4 and 6)" in message
    with pytest.raises(ConfigError, match=r"'methods\.ant1x1': key given twice"):
        cfg.check_config_files([str(REPO / "config" / "test.yaml"), str(path)])
    cfg.check_config_files([str(p) for p in CONFIGS])  # merge keys with overrides load fine
    path.write_text(DUPLICATED.replace("  ant1x1: {kind: ant, eps: 3.0}\n", ""))
    assert cfg.load_yaml_strict(path)["methods"]["ant3x3"] == {"kind": "ant", "eps": 2.0, "kernel": "3x3"}


@pytest.mark.parametrize("name", [".", "..", ".hidden", "a/b", "../x", "best_gnt", "all"])
def test_method_names_stay_inside_results(name):
    message = config_error({**BASE, "methods": {"vanilla": {"kind": "vanilla"}, name: {"kind": "gnt", "sigma": 0.5}}})
    assert "'methods': the name" in message and f"'{name}'" in message
    assert ("reserved" if name in ("best_gnt", "all") else "a method name is a file name under results/") in message


@pytest.mark.parametrize(
    "names, expected",
    [
        (["fog", "smoke"], "unknown MNIST-C corruption 'smoke'; known: shot_noise, impulse_noise, glass_blur"),
        (["fog", "../x"], "unknown MNIST-C corruption '../x'"),
        (["fog", "fog"], "'fog' is listed twice"),
    ],
)
def test_corruption_names_must_be_mnist_c_names(names, expected):
    message = config_error({**BASE, "corruptions": {"names": names}})
    assert "'corruptions.names.1': " in message and expected in message


@pytest.mark.parametrize("dataset", [{"name": "mnist"}, {"name": "mnist", "download": True}])
def test_mnist_needs_a_root(dataset):
    message = config_error({**BASE, "dataset": dataset})
    assert "'dataset.root': MNIST needs root, the folder holding MNIST/raw/" in message
    assert validate_config({**BASE, "dataset": {**dataset, "root": "data"}})["dataset"]["root"] == "data"


def test_device_cuda_needs_a_visible_gpu():
    with pytest.raises(ConfigError, match=r"^config error at 'device': 'cuda' but no GPU is visible"):
        cfg.check_device({"device": "cuda"}, cuda_available=False)
    cfg.check_device({"device": "cuda"}, cuda_available=True)
    cfg.check_device({"device": "auto"}, cuda_available=False)
    cfg.check_device({"device": "cpu"}, cuda_available=False)


def test_eps_search_and_seed_replicates_expand_into_named_methods():
    config = validate_config({
        "dataset": {"name": "digits"}, "sigma_sweep": [0.3, 0.6],
        "methods": {"vanilla": {"kind": "vanilla"}, "ant1x1": {"kind": "ant", "eps": "search"},
                    "speckle": {"kind": "speckle", "schedule": {"epochs": 2}}},
        "eps_search": {"method": "ant1x1", "candidates": [2.0, 4.0]},
        "seeds": {"values": [0, 3], "methods": ["vanilla", "ant1x1", "best_gnt"]},
    })
    methods = expand_methods(config)
    assert methods["ant1x1_eps2"]["eps"] == 2.0 and methods["ant1x1_eps4"]["candidate_of"] == "ant1x1"
    assert methods["ant1x1_seed3"] == {**methods["ant1x1"], "seed": 3, "replicate_of": "ant1x1"}
    assert "gnt_s0.3_seed3" not in methods  # the best sweep model's replicates come once it is chosen
    assert {"gnt_s0.3_seed3", "gnt_s0.6_seed3"} <= set(cfg.expand_methods(config, every_replicate=True))
    spec = train_spec(config, "gnt_s0.6_seed3")
    assert spec["seed"] == 3 and cfg.init_method(spec) == "vanilla_seed3"
    assert cfg.init_method(train_spec(config, "ant1x1")) == "vanilla" and cfg.init_method(train_spec(config, "vanilla")) is None
    assert train_spec(config, "speckle")["epochs"] == 2 and train_spec(config, "ant1x1")["epochs"] == 10  # own budget


@pytest.mark.parametrize("change,where,message", [
    ({"methods": {"vanilla": {"kind": "vanilla"}, "ant1x1": {"kind": "ant", "eps": "search"}}},
     "methods.ant1x1.eps", "'search' takes the eps chosen by eps_search"),
    ({"eps_search": {"method": "vanilla", "candidates": [1.0, 2.0]}}, "eps_search.method", "'vanilla' is not an ANT method"),
    ({"seeds": {"values": [1, 2], "methods": ["vanilla"]}}, "seeds.values", "must list the study's seed (0)"),
    ({"seeds": {"values": [0, 1], "methods": ["vanilla", "nosuch"]}}, "seeds.methods.1", "'nosuch' is not a method"),
    ({"seeds": {"values": [0, 1], "methods": ["ant1x1"]}}, "seeds.methods", "add vanilla to the list"),
    ({"methods": {"vanilla": {"kind": "vanilla"}, "s": {"kind": "speckle", "schedule": {"epochs": 2.5}}}},
     "methods.s.schedule.epochs", "is not of type 'integer'"),
])
def test_eps_search_seeds_and_budgets_are_validated(change, where, message):
    base = {"dataset": {"name": "digits"}, "sigma_sweep": [0.5],
            "methods": {"vanilla": {"kind": "vanilla"}, "ant1x1": {"kind": "ant", "eps": 3.0}}}
    with pytest.raises(ConfigError, match=f"config error at '{re.escape(where)}'.*{re.escape(message)}"):
        validate_config({**base, **change})


# -- the adversarially trained baselines of Table 11 (pgd_at, ddn_at) --------------------------


def test_adversarial_training_defaults_are_the_papers_mnist_settings():
    config = validate_config({**BASE, "methods": {"vanilla": {"kind": "vanilla"}, "p": {"kind": "pgd_at"},
                                                  "d": {"kind": "ddn_at"}}})
    # Madry et al. 2018: eps 0.3, 40 steps of 0.01 from a random start; Rony et al. 2019: 2.4, 100, 0.05.
    assert config["methods"]["p"] == {"kind": "pgd_at", "epsilon": 0.3, "steps": 40, "step_size": 0.01, "random_start": True}
    assert config["methods"]["d"] == {"kind": "ddn_at", "epsilon": 2.4, "steps": 100, "gamma": 0.05}


@pytest.mark.parametrize(
    "method, where, expected",
    [
        ({"kind": "pgd_at", "epsilon": -0.1}, "methods.a.epsilon", "less than or equal to the minimum of 0"),
        ({"kind": "pgd_at", "epsilon": 0.0}, "methods.a.epsilon", "less than or equal to the minimum of 0"),
        ({"kind": "pgd_at", "epsilon": 3.0}, "methods.a.epsilon", "greater than the maximum of 1"),
        ({"kind": "pgd_at", "epsilon": "0.3"}, "methods.a.epsilon", "is not of type 'number'"),
        ({"kind": "ddn_at", "epsilon": 0}, "methods.a.epsilon", "less than or equal to the minimum of 0"),
        ({"kind": "ddn_at", "gamma": 1.0}, "methods.a.gamma", "greater than or equal to the maximum of 1"),
        ({"kind": "pgd_at", "steps": 0}, "methods.a.steps", "less than the minimum of 1"),
        ({"kind": "pgd_at", "steps": 10.0}, "methods.a.steps", "write 10,"),
        ({"kind": "ddn_at", "step_size": 0.01}, "methods.a", "'step_size' was unexpected"),
        ({"kind": "pgd_at", "gamma": 0.05}, "methods.a", "'gamma' was unexpected"),
    ],
)
def test_bad_adversarial_training_settings_are_rejected(method, where, expected):
    message = config_error({**BASE, "methods": {"vanilla": {"kind": "vanilla"}, "a": method}})
    assert f"'{where}'" in message and expected in message


def test_adversarial_training_trains_from_scratch_with_the_vanilla_schedule():
    config = validate_config({**BASE, "methods": {"vanilla": {"kind": "vanilla"}, "p": {"kind": "pgd_at"},
                                                  "d": {"kind": "ddn_at"}, "m": {"kind": "gnt_mult"}},
                              "train": {"vanilla": {"epochs": 12, "lr": 0.05}, "finetune": {"epochs": 3, "lr": 1.0e-3}}})
    assert {name for name, kind in methods.KINDS.items() if kind.from_scratch} == {"vanilla", "pgd_at", "ddn_at"}
    for method in ("vanilla", "p", "d"):
        spec = train_spec(config, method)
        assert (spec["epochs"], spec["lr"]) == (12, 0.05) and methods.trains_from_scratch(spec)
    assert (train_spec(config, "m")["epochs"], train_spec(config, "m")["lr"]) == (3, 1e-3)
    # Nothing starts from the vanilla model, so a study of adversarial training alone needs none.
    assert validate_config({"dataset": {"name": "digits"}, "methods": {"p": {"kind": "pgd_at"}}, "robustness": {"an_eps": 1.0}})


@pytest.mark.slow
def test_the_train_rule_gives_adversarial_training_no_initial_model(tmp_path):
    """rules/common.smk's train_inputs: a pgd_at or ddn_at job needs the data, not the vanilla model."""
    text = (REPO / "config" / "test.yaml").read_text()
    conf = tmp_path / "at.yaml"
    conf.write_text(text.replace("methods:\n", "methods:\n  madry: {kind: pgd_at}\n  rony: {kind: ddn_at}\n", 1))
    targets = [f"results/digits/models/{name}.pt" for name in ("madry", "rony", "speckle")]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), "-n", "-p", "--configfile", str(conf), "-d", str(tmp_path),
         "-s", str(REPO / "Snakefile"), *targets],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = {match[2]: match for match in re.finditer(
        r"rule train:\n\s+input: (.*)\n\s+output: results/digits/models/(\S+)\.pt(?:.*\n)*?Shell command: (.*)", result.stdout)}
    assert set(jobs) == {"madry", "rony", "vanilla", "speckle"}
    for name in ("madry", "rony"):
        assert "vanilla.pt" not in jobs[name][1] and "--init" not in jobs[name][3]
    assert "results/digits/models/vanilla.pt" in jobs["speckle"][1] and "--init" in jobs["speckle"][3]


def test_every_dataset_of_the_schema_has_a_kind_with_its_checks():
    from noisetrain.config_load import load_schema
    from noisetrain.config_names import DATASET_KINDS
    from noisetrain.config_validate import CHECKS

    assert set(DATASET_KINDS) == set(load_schema()["properties"]["dataset"]["properties"]["name"]["enum"])
    assert {kind.name for kind in DATASET_KINDS.values()} == set(CHECKS)


def test_the_dataset_registry_is_the_one_list_of_datasets():
    from noisetrain.config_names import ARRAY_DATASETS, DATASETS, PAPER_DATASETS
    from noisetrain.data.datasets import PREPARERS
    from noisetrain.report.paper import load_paper_values

    assert set(PREPARERS) == set(ARRAY_DATASETS) == {"digits", "mnist"}  # every array dataset can be prepared
    assert set(PAPER_DATASETS) == set(load_paper_values().dataset)  # the paper's values name exactly these
    assert (DATASETS["mnist"].channels, DATASETS["imagenet"].channels) == (1, 3)


def test_an_overlay_alone_is_named_as_one():
    from noisetrain.config_load import load_yaml_strict

    overlay = load_yaml_strict(REPO / "config" / "digits_extras.yaml")
    with pytest.raises(ConfigError, match=r"'dataset' is a required property \(.*overlay.*--configfile config/config.yaml"):
        validate_config(overlay)


def test_the_mnist_config_holds_the_papers_budget():
    """Appendix B.2: GNT and ANT 1x1 fine-tuned 500-600 epochs at lr 1e-3, batch 300; the adversarially
    trained baselines for as long as their authors trained them (Madry: 100k steps of 50 images)."""
    config = load_config(REPO / "config" / "mnist.yaml", {"sigma_sweep": [0.5]})
    specs = {name: train_spec(config, name) for name in ("gnt_s0.5", "ant1x1", "pgd_at", "ddn_at")}
    assert all(500 <= specs[name]["epochs"] <= 600 and specs[name]["lr"] == 1e-3 for name in ("gnt_s0.5", "ant1x1"))
    assert specs["pgd_at"]["epochs"] == math.ceil(100_000 * 50 / 60_000) and specs["ddn_at"]["epochs"] == 50
    assert {spec["batch_size"] for spec in specs.values()} == {300}
