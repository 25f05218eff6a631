"""The ImageNet robustness measurement (Tables 2, 3, 5): the robustness set (stratified val and training
images after the evaluation preprocessing), epsilon* and the attacks of an evaluation model given by its
spec, on 3-channel 224x224 images, the config checks, and the tables with the paper's values."""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO
from helpers import COLOURS, WNIDS, fake_imagenet, write_tree
from torch import nn

from noisetrain.config import evaluation_models, robustness_models, validate_config
from noisetrain.data import datasets
from noisetrain.data import imagenet as inet
from noisetrain.errors import ConfigError
from noisetrain.measure import robustness
from noisetrain.noise.generator_bank import read_bank
from noisetrain.noise.generators import NoiseGenerator
from noisetrain.report.records import read_record
from noisetrain.report.robustness_tables import (
    Robustness,
    build_robustness_table,
    clean_from_cache,
    table_names,
    write_robustness_tables,
)

sys.path.insert(0, str(REPO / "workflow_scripts"))
import measure_robustness  # noqa: E402  (the CLI, run in this process)

PER_CLASS = 2  # robustness images per class (3 classes)


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> Path:
    """Three classes of solid-colour JPEGs (class k: COLOURS[k]): 3 val and 2 training images each."""
    root = tmp_path_factory.mktemp("robustness_images")
    write_tree(root / "val", dict.fromkeys(WNIDS, 3))
    write_tree(root / "train", dict.fromkeys(WNIDS, 2))
    inet.write_val_list(root / "val", None, 0, root / "val_files.json")
    return root


@pytest.fixture(scope="module")
def robustness_set(image_root) -> Path:
    data, classes = inet.prepare_robustness_set(
        image_root / "val", image_root / "train", image_root / "val_files.json", 3 * PER_CLASS, seed=0
    )
    path = image_root / "robustness.npz"
    inet.save_robustness_set(data, classes, path)
    return path


# ---------------------------------------------------------------- the robustness set


def test_robustness_set_is_stratified_preprocessed_and_loadable(image_root, robustness_set):
    data = datasets.load(robustness_set)
    assert data.name == "imagenet" and inet.robustness_classes(robustness_set) == WNIDS
    for split in (data.test, data.train):
        assert split.images.shape == (3 * PER_CLASS, 3, 224, 224) and split.images.dtype == np.uint8
        assert split.labels.dtype == np.int64
        assert Counter(split.labels.tolist()) == dict.fromkeys(range(3), PER_CLASS)
        # Solid colours survive resize, crop and JPEG: each image is its class's colour.
        colours = split.images.reshape(len(split.labels), 3, -1).mean(2)
        assert np.abs(colours - np.array(COLOURS)[split.labels]).max() < 6
    # Exactly what the evaluation feeds the models (ToTensor only divides by 255).
    listing = inet.read_val_list(image_root / "val_files.json")
    first = listing["files"][data.test_index[0]]
    direct = inet.image_folder(image_root / "val", inet.eval_transform(224), files=[first], classes=WNIDS)[0][0]
    assert torch.equal(datasets.to_float(data.test.images[:1])[0], direct)
    # The same seed gives the same set.
    again, _ = inet.prepare_robustness_set(
        image_root / "val", image_root / "train", image_root / "val_files.json", 3 * PER_CLASS, seed=0
    )
    assert np.array_equal(again.test_index, data.test_index) and np.array_equal(again.train.images, data.train.images)


def test_stratified_indices_take_one_per_class_and_fewer_than_classes():
    one_each = np.arange(10)
    chosen = inet.stratified_indices(one_each, 4, seed=1)
    assert len(set(chosen.tolist())) == 4 and np.array_equal(chosen, np.sort(chosen))
    assert np.array_equal(chosen, inet.stratified_indices(one_each, 4, seed=1))
    labels = np.repeat([0, 1, 2], 5)
    counts = sorted(Counter(labels[inet.stratified_indices(labels, 7, seed=0)].tolist()).values())
    assert counts == [2, 2, 3]
    assert np.array_equal(inet.stratified_indices(labels, 20, seed=0), np.arange(15))
    files = [f"{WNIDS[k]}/{k}_{i}.JPEG" for k in range(3) for i in range(4)]
    assert Counter(f.split("/")[0] for f in inet.stratified_files(files, 6, seed=0)) == dict.fromkeys(WNIDS, 2)
    with pytest.raises(ConfigError, match="a subset of 13 images was asked from a list of 12"):
        inet.stratified_files(files, 13, seed=0)


# ---------------------------------------------------------------- 3-channel 224x224 measurement


def test_generator_directions_match_the_generators_own_draw_and_its_pieces(monkeypatch):
    generator = NoiseGenerator(3, rng=torch.Generator().manual_seed(0))
    shape = (5, 3, 224, 224)
    whole = robustness.generator_directions(generator, shape, seed=7)
    with torch.no_grad():
        own = generator(shape, torch.Generator().manual_seed(7))
    assert torch.equal(whole, own)
    monkeypatch.setattr(robustness, "CHUNK_VALUES", 2 * 3 * 224 * 224)  # two images per piece
    assert torch.allclose(robustness.generator_directions(generator, shape, seed=7), whole, atol=1e-6)


class Spread(nn.Module):
    """Class 1 once the pixels' mean squared distance from grey exceeds 1e-3, else class 0: along any
    direction (unclipped) the decision flips at an L2 size of about sqrt(1e-3 * pixels)."""

    def forward(self, x):
        spread = ((x - 0.5) ** 2).mean((1, 2, 3))
        return torch.stack([torch.full_like(spread, 1e-3), spread], 1)


@pytest.mark.slow
def test_noise_robustness_on_three_channel_224_images(monkeypatch):
    net = Spread()
    x = 0.5 + 0.01 * (torch.rand(6, 3, 224, 224, generator=torch.Generator().manual_seed(1)) - 0.5)
    y = torch.zeros(6, dtype=torch.long)
    rows, generators, _ = robustness.noise_robustness(
        net, x, y, x, y, seed=0, rel_tol=1e-3, an_seeds=1, an_steps=2, an_lr=1e-3, an_eps=50.0, an_batch_size=3
    )
    values = {row["corruption"]: row["value"] for row in rows}
    assert generators[0].channels == 3
    for name in ("eps_gn", "eps_un", "eps_an"):
        assert values[name] == pytest.approx(math.sqrt(1e-3 * 3 * 224 * 224), rel=0.02), name
    # The diagnostics merge pieces exactly as one pass would (means over images).
    directions = robustness.generator_directions(generators[0], x.shape, seed=0)
    whole = robustness.generator_diagnostics(net, x, y, directions, 50.0)
    monkeypatch.setattr(robustness, "CHUNK_VALUES", 4 * 3 * 224 * 224)  # pieces of 4 and 2 images
    pieces = robustness.generator_diagnostics(net, x, y, directions, 50.0)
    assert pieces == pytest.approx(whole, abs=1e-6)


SMOKE_ROBUSTNESS = {
    "images": 3,
    "rel_tol": 0.01,
    "an_seeds": 2,
    "an_steps": 2,
    "an_lr": 1e-4,
    "an_batch_size": 2,
    "an_eps": 135.0,
}
SMOKE_ATTACKS = {
    "images": 3,
    "linf_pgd": {"epsilon": 0.001, "steps": 2, "step_size": 1e-4},
    "l2_ddn": {"epsilon": 0.125, "steps": 2, "gamma": 0.02},
}


def cli_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model-spec", json.dumps({"architecture": "squeezenet1_1", "weights": "random"}),
        "--data", str(data), "--method", "squeezenet", "--robustness", json.dumps(SMOKE_ROBUSTNESS),
        "--attacks", json.dumps(SMOKE_ATTACKS), "--noise-out", str(out / "noise_robustness.json"),
        "--adversarial-out", str(out / "adversarial.json"), "--generators-out", str(out / "an_generators.pt"),
        "--distances-out", str(out / "distances.npz"), *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_measure_robustness_of_a_model_spec(robustness_set, tmp_path):
    measure_robustness.main(measure_robustness.get_parser().parse_args(cli_args(robustness_set, tmp_path, "--device", "auto")))
    noise, adversarial = read_record(tmp_path / "noise_robustness.json"), read_record(tmp_path / "adversarial.json")
    assert (noise["dataset"], noise["method"], adversarial["metric"]) == ("imagenet", "squeezenet", "adversarial")
    values = {row["corruption"]: row["value"] for row in noise["rows"]}
    assert {"eps_gn", "eps_un", "eps_an", "eps_an_std", "eps_an_seed1", "an_erased_fraction"} <= set(values)
    assert all(v >= 0 or math.isnan(v) for v in values.values())
    with np.load(tmp_path / "distances.npz") as distances:  # the per-image epsilon* behind the medians
        assert sorted(distances) == ["an_seed0", "an_seed1", "gn", "un"]
        assert float(np.median(distances["gn"])) == values["eps_gn"]
    attacks = {row["corruption"]: row for row in adversarial["rows"]}
    assert attacks["linf_pgd"]["severity"] == 0.001 and attacks["l2_ddn"]["severity"] == 0.125
    assert all(0 <= row["value"] <= 1 for row in attacks.values())
    model = noise["provenance"]["model"]
    assert noise["provenance"]["spec"] == {"architecture": "squeezenet1_1", "weights": "random", "seed": 0}
    assert model["weights_fingerprint"] == "random-init:0" and model["num_classes"] == 3
    where = "cuda:" if torch.cuda.is_available() else "cpu"  # the card, or the CPU: every record names it
    assert noise["provenance"]["settings"]["device"].startswith(where)
    bank = read_bank(tmp_path / "an_generators.pt")
    assert bank.arch["channels"] == 3 and len(bank.states) == 2 and bank.eps == 135.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line(robustness_set, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        measure_robustness.run(
            measure_robustness.main, measure_robustness.get_parser(), cli_args(robustness_set, tmp_path, "--device", "cuda")
        )
    assert info.value.code == 1
    assert capsys.readouterr().err.startswith("error: config error at 'device': 'cuda' was asked for but this job cannot use")
    assert not (tmp_path / "noise_robustness.json").exists()


# ---------------------------------------------------------------- config


@pytest.fixture
def paper_config(tmp_path, monkeypatch) -> dict:
    fake_imagenet(tmp_path)
    monkeypatch.chdir(tmp_path)
    return yaml.safe_load((REPO / "config" / "imagenet.yaml").read_text())


INCEPTION = {"inception": {"architecture": "inception_v3", "weights": "random"}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"robustness": {"an_eps": "auto"}}, "'robustness.an_eps': 'auto' takes eps from the small datasets'"),
        ({"robustness": {"an_eps": "search"}}, "give a number (the paper's ImageNet ANT 1x1 eps: 135.0)"),
        ({"robustness": {"methods": ["vanilla", "best_gnt"]}}, "'robustness.methods.1': unknown model 'best_gnt'; known: "),
        ({"robustness": {"methods": ["inception"]}, "external_models": INCEPTION}, "takes 299x299 images"),
        ({"attacks": {"images": 2000}}, "'attacks.images': 2000 is more than robustness.images (1000)"),
        ({"imagenet_c": {"images": 500}}, "'robustness.images': 1000 is more than the 500 val images"),
    ],
)
def test_robustness_config_errors(paper_config, change, message):
    config = {
        key: {**paper_config[key], **value} if isinstance(paper_config.get(key), dict) else value for key, value in change.items()
    }
    with pytest.raises(ConfigError) as info:
        validate_config({**paper_config, **config})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_all_measures_every_224_model(paper_config):
    robustness = {**paper_config["robustness"], "methods": "all"}
    config = validate_config({**paper_config, "robustness": robustness,
                              "external_models": {**paper_config["external_models"], **INCEPTION}})
    every = list(evaluation_models(config))
    assert {"vanilla", "ant1x1", "gnt_s0.5", "ant1x1_densenet121", "alexnet", "inception"} <= set(every)
    assert robustness_models(config) == [m for m in every if m != "inception"]  # InceptionV3 takes 299 x 299
    config = validate_config({**paper_config, "robustness": {**paper_config["robustness"], "methods": ["alexnet"]}})
    assert robustness_models(config) == ["alexnet"]


def test_smoke_sample_has_the_training_images_asked_for():
    smoke = yaml.safe_load((REPO / "config" / "imagenet_smoke.yaml").read_text())
    with pytest.raises(ConfigError, match="9 is more than the sample's 8 training images"):
        validate_config({**smoke, "robustness": {**smoke["robustness"], "images": 9}})


# ---------------------------------------------------------------- Tables 2, 3, 5


def record(method: str, metric: str, rows: dict[str, float], settings: dict, severity=None) -> dict:
    rows = [
        {"corruption": k, "category": metric, "severity": severity.get(k) if severity else None, "value": v}
        for k, v in rows.items()
    ]
    return {"dataset": "imagenet", "method": method, "metric": metric, "rows": rows, "provenance": {"settings": settings}}


MODELS = {
    "vanilla": {"label": "Vanilla", "paper_model": "vanilla"},
    "tiny": {"label": "Tiny net", "paper_model": None},
}
NOISE = {
    "robustness": {
        "images": 1000,
        "rel_tol": 1e-3,
        "an_seeds": 4,
        "an_steps": 6000,
        "an_lr": 1e-4,
        "an_batch_size": 70,
        "an_eps": 135.0,
    }
}
RECORDS = [
    record(
        "vanilla",
        "noise_robustness",
        {"eps_gn": 38.04, "eps_un": 40.0, "eps_an": 16.0, "eps_an_std": 0.55, "eps_an_seed0": 15.5, "an_erased_fraction": 0.0},
        NOISE,
    ),
    record(
        "vanilla",
        "adversarial",
        {"linf_pgd": 0.2, "l2_ddn": 0.4},
        {"attacks": SMOKE_ATTACKS},
        severity={"linf_pgd": 0.001, "l2_ddn": 0.125},
    ),
    record(
        "tiny",
        "noise_robustness",
        {"eps_gn": math.inf, "eps_un": 3.0, "eps_an": 2.0, "eps_an_std": 0.1, "eps_an_seed0": 2.0, "an_erased_fraction": 0.9},
        NOISE,
    ),
]
ACCURACY = pd.DataFrame(
    {
        "model": ["vanilla", "tiny"],
        "corruption": "clean",
        "severity": 0,
        "top1": [76.13, 10.0],
        "top5": [92.9, 50.0],
        "images": 50000,
    }
)


def _table(name):
    return build_robustness_table(name, Robustness(RECORDS, "imagenet"), clean_from_cache(ACCURACY), MODELS)


def test_robustness_tables_put_the_papers_values_below_ours():
    table3 = _table("table3")
    assert list(table3.columns) == ["model", "source", "clean", "ε*_GN", "ε*_UN", "ε*_AN"]
    rows = table3.set_index(["model", "source"])
    assert list(rows.loc[("Vanilla", "ours")]) == ["76.1", "38.0", "40.0", "16.0 ± 0.6"]
    assert list(rows.loc[("Vanilla RN50", "paper (Table 3)")]) == ["76.1", "39.0", "39.1", "15.7 ± 0.6"]
    assert rows.loc[("ANT 1x1", "paper (Table 3), not evaluated here")]["ε*_AN"] == "95.4 ± 5.7"
    assert list(rows.loc[("Tiny net", "ours")]) == ["10.0", "∞", "3.0", "2.0 ± 0.1 †"]  # its generators erase
    assert list(table3.model) == ["Vanilla", "Vanilla RN50", "GNT σ=0.5", "ANT 1x1", "Tiny net"]
    table2 = _table("table2")
    assert table2.iloc[0]["ε*_AN"] == "15.5" and table2.iloc[1]["ε*_AN"] == "16.2"  # one generator, as the paper's
    table5 = _table("table5")
    assert list(table5.columns) == ["model", "source", "clean", "L2 acc (ε=0.125)", "L∞ acc (ε=0.001)"]
    assert list(table5.iloc[0])[2:] == ["76.1", "40.0", "20.0"] and list(table5.iloc[1])[2:] == ["75.2", "41.1", "18.1"]
    assert pd.isna(table5.iloc[-1]["L2 acc (ε=0.125)"])  # the tiny net was not attacked


def test_robustness_tables_are_written_with_captions(tmp_path):
    write_robustness_tables(RECORDS, "imagenet", clean_from_cache(ACCURACY), MODELS, tmp_path, image_folders=True)
    for name in table_names(image_folders=True):
        for ext in ("md", "tex", "html"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 0
    text = (tmp_path / "table3.md").read_text()
    assert "medians over 1000 ImageNet val images" in text and "4 generator(s)" in text and "†" in text
    assert "DDN 2 steps, γ 0.02, L2 budget 0.125" in (tmp_path / "table5.md").read_text()
