"""The sweep's choice: one record type, written once and read everywhere (noisetrain.report.sweep_choice)."""

import json

import pytest
import torch

from noisetrain.errors import DataError
from noisetrain.report import sweep_choice

SIGMAS = {"gnt_s0.2": 0.2, "gnt_s0.5": 0.5, "gnt_s1": 1.0}


def test_mean_gaussian_change_norm_by_hand():
    # Mid-grey images never clip at sigma 0.01 (|noise| < 0.5 always in practice): the change is
    # the noise itself, whose L2 norm over 10,000 pixels is 0.01 * sqrt(10,000) = 1 (within ~1%).
    images = torch.full((20, 1, 100, 100), 0.5)
    assert sweep_choice.mean_gaussian_change_norm(images, 0.01, seed=0) == pytest.approx(1.0, rel=0.01)
    # Black images clip every negative draw: the change is the positive half, norm sqrt(1/2) as large.
    black = torch.zeros(20, 1, 100, 100)
    assert sweep_choice.mean_gaussian_change_norm(black, 0.01, seed=0) == pytest.approx(0.5 ** 0.5, rel=0.02)


def test_choose_the_best_c_mean_and_its_eps(tmp_path):
    images = torch.full((4, 1, 10, 10), 0.5)
    c_means = {"gnt_s0.2": 0.80, "gnt_s0.5": 0.85, "gnt_s1": float("nan")}
    choice = sweep_choice.choose(c_means, SIGMAS, images, seed=3)
    assert (choice.parameter, choice.best_method, choice.best_value, choice.best_c_mean) == ("sigma", "gnt_s0.5", 0.5, 0.85)
    assert choice.eps == pytest.approx(sweep_choice.mean_gaussian_change_norm(images, 0.5, seed=3))
    assert "mean over the 4 training images" in choice.how and "sigma 0.5" in choice.how
    assert choice.candidates == {"gnt_s0.2": 0.80, "gnt_s0.5": 0.85}  # a model without a score is no candidate
    path = tmp_path / "choice.json"
    sweep_choice.write_choice(choice, path)
    assert sweep_choice.read_choice(path) == choice


def test_no_sweep_model_with_a_record_is_an_error():
    with pytest.raises(DataError, match="no single-sigma GNT model has a corruption record"):
        sweep_choice.choose({"vanilla": 0.8}, SIGMAS, torch.zeros(1, 1, 2, 2), seed=0)


def test_resolving_auto_settings(tmp_path):
    path = tmp_path / "choice.json"
    sweep_choice.write_choice(sweep_choice.SweepChoice("sigma", "gnt_s0.5", 0.5, 0.85, 12.0, "how", {"gnt_s0.5": 0.85}), path)
    spec = {"method": "ant3x3", "kind": "ant", "eps": "auto", "eps_factor": 0.5}
    assert sweep_choice.resolve_eps(spec, path) == {**spec, "eps": 6.0, "eps_source": "how"}
    fixed = {**spec, "eps": 10.0}
    assert sweep_choice.resolve_eps(fixed, None) is fixed  # a number needs no choice file
    assert sweep_choice.resolve_an_eps("auto", path) == 12.0 and sweep_choice.resolve_an_eps(3, None) == 3.0
    assert sweep_choice.resolve_eps({**spec, "eps": "search"}, path)["eps"] == 6.0  # the same record type


def test_eps_search_picks_the_best_candidate_and_the_smaller_eps_on_ties():
    values = {"ant1x1_eps2": 2.0, "ant1x1_eps4": 4.0, "ant1x1_eps8": 8.0}
    choice = sweep_choice.choose_eps({"ant1x1_eps2": 0.70, "ant1x1_eps4": 0.78, "ant1x1_eps8": 0.78}, values)
    assert (choice.parameter, choice.best_method, choice.eps, choice.best_c_mean) == ("eps", "ant1x1_eps4", 4.0, 0.78)
    assert "eps 4 gives the best mean corruption accuracy of the eps search (2, 4, 8)" == choice.how
    with pytest.raises(DataError, match="no candidate of the eps search"):
        sweep_choice.choose_eps({}, values)


def test_unreadable_choice_files_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="no sweep choice file was given"):
        sweep_choice.read_choice(None)
    with pytest.raises(DataError, match="cannot read the sweep choice .*missing.json.*run snakemake"):
        sweep_choice.read_choice(tmp_path / "missing.json")
    (tmp_path / "old.json").write_text(json.dumps({"best_method": "gnt_s0.5", "eps": 1.0}))
    with pytest.raises(DataError, match="old.json is not a sweep choice record.*delete it"):
        sweep_choice.read_choice(tmp_path / "old.json")


def test_the_searched_method_adopts_the_winners_files(tmp_path):
    from noisetrain.models.architectures import build_model
    from noisetrain.models.model_file import load_model, save_model

    choice = sweep_choice.choose_eps({"ant_eps4": 0.70, "ant_eps8": 0.75}, {"ant_eps4": 4.0, "ant_eps8": 8.0})
    sweep_choice.write_choice(choice, tmp_path / "choice.json")
    methods, models, logs = ["ant_eps4", "ant_eps8"], [], []
    for k, m in enumerate(methods):
        torch.manual_seed(k)
        spec = {"kind": "ant", "method": m, "eps": 4.0 * (k + 1), "candidate_of": "ant", "seed": 0}
        save_model(build_model("madry_cnn"), tmp_path / f"{m}.pt", arch="madry_cnn", in_channels=1, num_classes=10,
                   info={"spec": spec, "data_hash": "d"}, extras={"generators": k})
        (tmp_path / f"{m}.csv").write_text(f"{m} log")
        models.append(str(tmp_path / f"{m}.pt"))
        logs.append(str(tmp_path / f"{m}.csv"))
    targets = [str(tmp_path / "ant.pt"), str(tmp_path / "ant.csv")]
    assert sweep_choice.adopt_winner(tmp_path / "choice.json", methods, models, [logs], targets, "ant") == "ant_eps8"
    adopted, info = load_model(targets[0])
    winner, _ = load_model(models[1])
    assert all(torch.equal(a, b) for a, b in zip(adopted.state_dict().values(), winner.state_dict().values()))
    # it is the searched method now, no candidate, and says where it came from and how eps was chosen
    assert info["spec"] == {"kind": "ant", "method": "ant", "eps": 8.0, "seed": 0, "adopted_from": "ant_eps8",
                            "eps_source": f"eps search: {choice.how}"}
    assert (tmp_path / "ant.csv").read_text() == "ant_eps8 log"
    # a choice that names no candidate, or file lists that do not match the candidates, write nothing
    (tmp_path / "ant.pt").unlink()
    with pytest.raises(DataError, match="not one of the candidates ant_eps4"):
        sweep_choice.adopt_winner(tmp_path / "choice.json", ["ant_eps4"], models[:1], [logs[:1]], targets, "ant")
    with pytest.raises(DataError, match="one file per candidate"):
        sweep_choice.adopt_winner(tmp_path / "choice.json", methods, models, [logs[:1]], targets, "ant")
    assert not (tmp_path / "ant.pt").exists()
