"""The method-kind registry (noisetrain.methods): every kind of the schema answers the pipeline's
questions from its own entry."""

import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from noisetrain import methods
from noisetrain.errors import ConfigError
from noisetrain.methods import kind_of

ANT = {"kind": "ant", "kernel": "1x1", "depth": 4, "replay": True, "stylized_path": None}
# kind -> (a spec of it, its label, the paper's model, trained from scratch)
EXPECTED = {
    "vanilla": ({"kind": "vanilla"}, "Vanilla", "vanilla", True),
    "gnt": ({"kind": "gnt", "sigma": 0.5}, "GNT σ=0.5", "gnt_s0.5", False),
    "gnt_mult": ({"kind": "gnt_mult", "sigmas": [0.08, 0.12, 0.18, 0.26, 0.38]}, "GNT mult", "gnt_mult", False),
    "speckle": ({"kind": "speckle", "scales": [0.15, 0.6]}, "Speckle", "speckle", False),
    "ant": (ANT, "ANT 1x1", "ant1x1", False),
    "pgd_at": ({"kind": "pgd_at"}, "PGD AT (Madry et al.'s recipe)", "madry_pgd_at", True),
    "ddn_at": ({"kind": "ddn_at"}, "DDN AT (Rony et al.'s recipe)", "rony_ddn_at", True),
}


def test_every_kind_of_the_schema_is_registered():
    schema = yaml.safe_load((REPO / "lib" / "noisetrain" / "config_schema.yaml").read_text())
    assert set(methods.KINDS) == set(schema["$defs"]["method"]["properties"]["kind"]["enum"]) == set(EXPECTED)


@pytest.mark.parametrize("kind", EXPECTED)
def test_label_paper_model_and_schedule_of_each_kind(kind):
    spec, label, paper_model, from_scratch = EXPECTED[kind]
    assert methods.label(spec) == label
    assert kind_of(spec).paper_model(spec) == paper_model
    assert methods.trains_from_scratch(spec) is from_scratch


@pytest.mark.parametrize(("spec", "label", "paper_model"), [
    ({"kind": "gnt", "sigma": 0.75}, "GNT σ=0.75", None),
    ({"kind": "gnt", "sigma": 0.5, "stylized_path": "sin"}, "GNT σ=0.5 + SIN", "gnt_s0.5_sin"),
    ({"kind": "gnt_mult", "sigmas": [0.5, 0.25, 1.5]}, "GNT mult σ 0.25–1.5", None),
    ({**ANT, "kernel": "3x3"}, "ANT 3x3", "ant3x3"),
    ({**ANT, "replay": False}, "ANT 1x1 w/o EP", "ant1x1_noreplay"),
    ({**ANT, "stylized_path": "sin"}, "ANT 1x1 + SIN", "ant1x1_sin"),
    ({**ANT, "depth": 2}, "ANT 1x1 depth 2", "ant1x1_depth2"),
    ({**ANT, "kernel": "3x3", "depth": 2}, "ANT 3x3 depth 2", None),
])
def test_variants_are_named_by_what_they_are(spec, label, paper_model):
    assert methods.label(spec) == label and methods.paper_model(spec) == paper_model


def test_the_network_is_named_after_the_rest():
    assert methods.label({**ANT, "stylized_path": "sin"}, "densenet121") == "ANT 1x1 + SIN (densenet121)"


def test_table4_brackets_and_the_keys_figures_read():
    assert kind_of("gnt").trained_on({"kind": "gnt", "sigma": 1.0}) == ["gaussian_noise"]
    assert kind_of("ant").trained_on({**ANT, "kernel": "3x3"}) == []
    assert kind_of("speckle").trained_on({"kind": "speckle"}) == []
    assert methods.noise_keys({"kind": "gnt", "sigma": 0.5}) == {"sigmas": [0.5]}
    assert methods.noise_keys({"kind": "gnt", "sigma": 0.5, "stylized_path": "sin"}) == {}
    assert methods.noise_keys({**ANT, "depth": 3}) == {"generator_depth": 3, "generator_kernel": "1x1", "depth_ablation": True}
    assert methods.noise_keys({}) == {}  # a record without a spec


def test_sweep_eps_choice_and_datasets():
    assert [name for name, kind in methods.KINDS.items() if kind.sigma_sweep] == ["gnt"]
    assert methods.eps_choice({**ANT, "eps": "auto"}) == "auto" and methods.eps_choice({**ANT, "eps": 10.0}) is None
    assert methods.eps_choice({"kind": "pgd_at", "epsilon": 0.3}) is None
    assert methods.image_folder_kinds() == ["ant", "gnt", "gnt_mult", "speckle", "vanilla"]


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown method kind 'salt'; known: ant, ddn_at, gnt, gnt_mult, pgd_at, speckle"):
        kind_of({"kind": "salt"})


def test_a_kind_registers_once():
    with pytest.raises(ConfigError, match="'gnt' is registered twice"):
        methods.register_kind(methods.MethodKind("gnt", label=str, step="x:y"))


def test_every_kind_names_a_step_the_trainer_can_build():
    from noisetrain.train.steps import step_class

    for kind in methods.KINDS:
        assert callable(step_class(kind).step), kind


def test_the_config_and_the_registry_import_no_torch_pandas_or_matplotlib():
    code = ("import sys, noisetrain.config, noisetrain.methods; "
            "print(' '.join(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr
