"""The whole study's GPU cost (issue 21, lib/noisetrain/study_cost.py): the arithmetic against a small case
computed by hand, the packing on toy job graphs, the error for a gpu_check.json without the rows needed,
and bench/study_cost.py on the paper's config."""

import json
import subprocess
import sys

import pytest
import yaml
from conftest import ENV, REPO

from noisetrain.config import load_config
from noisetrain.config_data import files_unchecked
from noisetrain.errors import InputError
from noisetrain.study import Study
from noisetrain.study_cost import Job, lower_bound, markdown, pack, project, read_measured, read_packing

# One GNT and one ANT model fine-tuned from a loaded vanilla ResNet50; one corruption at one severity.
TINY = {
    "dataset": {"name": "imagenet", "root": "no/such/imagenet"},
    "model": "resnet50",
    "methods": {
        "vanilla": {"kind": "vanilla", "weights": "ResNet50_Weights.IMAGENET1K_V1"},
        "gnt": {"kind": "gnt", "sigma": 0.5, "schedule": {"epochs": 2, "lr_decay_epoch": 1}},
        "ant1x1": {"kind": "ant", "kernel": "1x1", "eps": 135.0, "reinit_every": 0.5, "reinit_steps": 10,
                   "schedule": {"epochs": 1, "lr_decay_epoch": 1}},
    },
    "train": {"batch_size": 70, "heldout_images": 1000, "amp": True, "workers": 8},
    "imagenet_c": {"root": "no/such/imagenet-c", "corruptions": ["gaussian_noise"], "severities": [1], "images": 1000},
    "evaluation": {"amp": False, "workers": 8},
    "external_models": {},
    "robustness": {"methods": ["vanilla"], "images": 10, "an_seeds": 1, "an_steps": 2, "an_batch_size": 5, "an_eps": 135.0},
    "attacks": {"images": 10, "linf_pgd": {"steps": 3}, "l2_ddn": {"steps": 4}},
}
RATES = {"vanilla": 100.0, "gnt": 100.0, "ant1x1": 50.0, "ant3x3": 40.0}


def gpu_check(path, train=RATES, inference=None, loader=None, model="resnet50", device="cuda"):
    """A gpu_check.json as bench/gpu_check.py writes it, with the given images/s."""
    inference = {"fp32": 1000.0, "bf16": 2000.0} if inference is None else inference
    sections = {
        "card": {"status": "ok", "results": {"name": "Test GPU"}},
        "train_synthetic": {"status": "ok", "reason": None, "results": {
            "model": model, "image_size": 224, "precision": "bf16",
            "rows": {name: {"images_per_s": rate} for name, rate in train.items()}}},
        "inference": {"status": "ok", "reason": None, "results": {
            "rows": {name: {"images_per_s": rate} for name, rate in inference.items()}}},
    }
    if loader:
        sections["loader"] = {"status": "ok", "results": {"images_per_s_per_worker": loader}}
    path.write_text(json.dumps({"setting": "full", "device": device, "sections": sections}))
    return path


def tiny_study(tmp_path) -> Study:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    with files_unchecked():  # no ImageNet here: its cost needs none
        return Study(load_config(tmp_path / "tiny.yaml"))


def test_costs_by_hand(tmp_path):
    packing = read_packing(REPO / "profiles" / "slurm" / "config.yaml", gpus=8)
    projection = project(tiny_study(tmp_path), read_measured(gpu_check(tmp_path / "gpu_check.json")), packing)
    costs = {cost.name: cost for cost in projection.costs}
    assert list(costs) == ["vanilla", "gnt", "ant1x1"]
    # GNT: 2 epochs of 1,281,167 images at 100/s, and 1,000 held-out images a epoch at bf16's 2,000/s
    assert costs["gnt"].train_h == pytest.approx((2 * 1_281_167 / 100 + 2 * 1000 / 2000) / 3600)
    # ANT: 1 epoch at 50/s, 1,000 held-out images, and 3 fresh generators (before training, at steps 9,151
    # and 18,302 of 1,281,167 // 70) of 10 batches of 70, each image the ANT step's excess 1/50 - 1/100 s
    assert costs["ant1x1"].train_h == pytest.approx((1_281_167 / 50 + 1000 / 2000 + 3 * 10 * 70 * 0.01) / 3600)
    # evaluation in fp32 at 1,000/s over clean val and one corrupted set of 1,000 images each: 2 s a model;
    # vanilla's robustness: 10 images x 12 passes x (GN, UN, one AN) forward and 1 x 2 x 5 + 10 x (3 + 4)
    # gradient passes at three forward passes each
    predict = 2000 / 1000
    assert costs["gnt"].eval_h == pytest.approx(predict / 3600)
    assert costs["vanilla"].eval_h == pytest.approx((predict + (360 + 3 * 80) / 1000) / 3600)
    assert (costs["vanilla"].train_h, costs["vanilla"].row) == (0.0, None)  # loaded, not trained
    assert (costs["ant1x1"].row, costs["gnt"].row, costs["ant1x1"].limited_by) == ("ant1x1", "gnt", "GPU")
    # three models on 8 GPUs: every job starts at once, each model's evaluation after its training
    assert projection.wall_h == pytest.approx(costs["ant1x1"].train_h + predict / 3600)
    text = markdown(projection)
    assert "**all 3 models**" in text and "An example of the arithmetic only" not in text


def test_a_slow_loader_caps_the_rate(tmp_path):
    measured = read_measured(gpu_check(tmp_path / "gpu_check.json", loader=5.0))  # 8 workers: 40 images/s
    packing = read_packing(REPO / "profiles" / "slurm" / "config.yaml", gpus=8)
    costs = {cost.name: cost for cost in project(tiny_study(tmp_path), measured, packing).costs}
    assert (costs["gnt"].train_rate, costs["gnt"].limited_by) == (40.0, "loader")
    assert costs["gnt"].eval_h == pytest.approx(2000 / 40 / 3600)


def test_a_gpu_check_without_the_rows_says_which_and_how_to_get_them(tmp_path):
    path = gpu_check(tmp_path / "gpu_check.json", train={"vanilla": 100.0, "gnt": 100.0}, inference={})
    with pytest.raises(InputError) as error:
        project(tiny_study(tmp_path), read_measured(path), read_packing(REPO / "profiles" / "slurm" / "config.yaml", 8))
    message = str(error.value)
    for text in ("section 'train_synthetic' rows ant1x1", "section 'inference' rows bf16, fp32", "bench/gpu_check.sh"):
        assert text in message


def test_packing_follows_the_graph_and_the_free_gpus():
    jobs = [Job("a", 2, 3.0), Job("b", 1, 1.0), Job("c", 1, 2.0, ("a",)), Job("d", 1, 1.0, ("b",))]
    # a takes both GPUs; b waits for them; c after a; d after b
    assert pack(jobs, gpus=2, queued=50) == {"a": (0.0, 3.0), "b": (3.0, 4.0), "c": (3.0, 5.0), "d": (4.0, 5.0)}
    assert lower_bound(jobs, gpus=2) == 5.0  # 10 GPU-hours on 2 GPUs, and the chain a -> c


def test_packing_backfills_and_keeps_the_queue_limit():
    jobs = [Job("a", 1, 4.0), Job("b", 2, 1.0), Job("c", 1, 1.0)]
    assert pack(jobs, gpus=2, queued=50) == {"a": (0.0, 4.0), "c": (0.0, 1.0), "b": (4.0, 5.0)}  # c passes b
    assert pack([Job("a", 1, 1.0), Job("b", 1, 1.0)], gpus=2, queued=1) == {"a": (0.0, 1.0), "b": (1.0, 2.0)}
    with pytest.raises(InputError, match="more GPUs than the node's 2"):
        pack([Job("big", 4, 1.0)], gpus=2, queued=50)


def test_bench_prices_every_model_of_the_paper_study(tmp_path):
    path = gpu_check(tmp_path / "gpu_check.json")
    result = subprocess.run([sys.executable, str(REPO / "bench" / "study_cost.py"), "--gpu-check", str(path)],
                            capture_output=True, text=True, timeout=120, env=ENV)
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "study_cost.md").read_text()
    with files_unchecked():
        study = Study(load_config(REPO / "config" / "imagenet.yaml"))
    for model in study.evaluated():  # the sweep, Table 16's depths, +SIN, the external models
        assert f"| {model} |" in table
    assert "generator depth 2, timed at depth 4" in table and "Wall time on one 8-GPU node" in table
