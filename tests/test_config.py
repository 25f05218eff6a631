import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from noisetrain.config import ConfigError, expand_methods, load_config, train_spec, validate_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (REPO / "config").glob("*.yaml") if p.name != "schema.yaml")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
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
        ({"methods": {"vanilla": {"kind": "vanilla"}, "x": {"kind": "gnt", "sigma": 0.5, "sigmas": [1]}}}, "methods.x", "'sigmas' was unexpected"),
        ({"dataset": {"name": "cifar"}}, "dataset.name", "'cifar' is not one of"),
        ({"train": {"clean_fraction": 1.5}}, "train.clean_fraction", "1.5 is greater than the maximum of 1"),
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
    config = validate_config({"dataset": {"name": "digits"}, "methods": {"vanilla": {"kind": "vanilla"}}, "sigma_sweep": [0.1, 0.5, 1.0]})
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
    everywhere), and every top-level schema property appears in the default config."""
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert set(default) == set(schema["properties"])


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
