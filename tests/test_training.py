import copy
import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from noisetrain.config import train_spec, validate_config
from noisetrain.errors import CheckpointError, ConfigError, TrainingError
from noisetrain.models import architectures as models
from noisetrain.models.model_file import load_model, save_model
from noisetrain.train import trainer as training

REPO = Path(__file__).resolve().parents[1]
# The spec of the sweep's sigma 0.5 model, as the pipeline builds it from a validated config.
SPEC = train_spec(validate_config({
    "dataset": {"name": "digits"}, "seed": 3, "sigma_sweep": [0.5], "methods": {"vanilla": {"kind": "vanilla"}},
    "train": {"batch_size": 50, "finetune": {"epochs": 6, "lr": 0.05, "momentum": 0.9, "lr_decay_epoch": 4}},
}), "gnt_s0.5")


@pytest.mark.slow
def test_loss_falls_and_log_is_complete(tiny_digits, tmp_path):
    spec = {**SPEC, "kind": "vanilla", "method": "vanilla", "epochs": 5, "batch_size": 25}
    spec.pop("sigma")
    lines = []
    state = training.fit(spec, tiny_digits, checkpoint_dir=tmp_path, log=lines.append)
    losses = [row["loss"] for row in state.log]
    assert losses[-1] < 0.5 * losses[0]
    assert state.log[-1]["heldout_accuracy"] > 0.6
    assert [row["epoch"] for row in state.log] == [1, 2, 3, 4, 5]
    assert set(state.log[0]) == set(training.LOG_COLUMNS)
    assert all(row["images_per_second"] > 0 for row in state.log)
    # one decay by 10 after lr_decay_epoch
    assert [row["lr"] for row in state.log] == pytest.approx([0.05, 0.05, 0.05, 0.05, 0.005])
    assert len(lines) == 5 and "epoch 5/5" in lines[-1]


def _train_cmd(data, tmp, name):
    return [
        sys.executable, str(REPO / "workflow_scripts" / "train.py"), "--data", str(data), "--spec", json.dumps(SPEC),
        "--checkpoint-dir", str(tmp / f"ckpt_{name}"), "--device", "cpu", "--threads", "1",
        "--out", str(tmp / f"{name}.pt"), "--log-csv", str(tmp / f"{name}.csv"), "--steps-csv", str(tmp / f"{name}_steps.csv"),
    ]


@pytest.mark.slow
def test_killed_job_resumes_to_identical_weights(tiny_digits_path, tmp_path):
    subprocess.run(_train_cmd(tiny_digits_path, tmp_path, "straight"), check=True, capture_output=True, timeout=300)

    cmd = _train_cmd(tiny_digits_path, tmp_path, "killed")
    checkpoint = tmp_path / "ckpt_killed" / "last.pt"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert not (tmp_path / "killed.pt").exists()
    epochs_done = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= epochs_done < SPEC["epochs"]

    resumed = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    assert f"resuming gnt_s0.5 from {checkpoint} after epoch {epochs_done}" in resumed.stderr

    straight, _ = load_model(tmp_path / "straight.pt")
    again, info = load_model(tmp_path / "killed.pt")
    for (name, a), (_, b) in zip(straight.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), f"{name} differs after resume"
    assert info["spec"] == SPEC and info["code_version"] and len(info["data_hash"]) == 12 and info["init_hash"] is None
    rows = (tmp_path / "killed.csv").read_text().splitlines()
    assert rows[0] == ",".join(training.LOG_COLUMNS) and len(rows) == SPEC["epochs"] + 1
    assert not checkpoint.exists()  # a finished run leaves no checkpoint to resume
    # The per-step log has every step once, with the numbers of the uninterrupted run.
    assert _steps_without_timing(tmp_path / "killed_steps.csv") == _steps_without_timing(tmp_path / "straight_steps.csv")


def _steps_without_timing(path):
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k != "images_per_second"} for row in csv.DictReader(handle)]


def test_corrupt_checkpoint_is_reported_and_kept(tiny_digits, tmp_path):
    (tmp_path / "last.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match=r"last.pt is not a readable checkpoint .*delete it and rerun"):
        training.fit({**SPEC, "epochs": 1}, tiny_digits, checkpoint_dir=tmp_path, log=lambda _: None)
    assert (tmp_path / "last.pt").read_bytes() == b"\x00garbage"


@pytest.mark.slow
def test_checkpoint_of_another_spec_is_not_resumed(tiny_digits, tmp_path):
    training.fit({**SPEC, "epochs": 1}, tiny_digits, checkpoint_dir=tmp_path, log=lambda _: None)
    lines = []
    state = training.fit({**SPEC, "epochs": 1, "sigma": 0.3}, tiny_digits, checkpoint_dir=tmp_path, log=lines.append)
    assert "ignoring" in lines[0] and state.epoch == 1 and len(state.log) == 1


def test_fine_tuning_starts_from_the_given_weights(tiny_digits):
    torch.manual_seed(0)
    init = models.build_model("madry_cnn").state_dict()
    init = {k: torch.zeros_like(v) if k.endswith("bias") else v for k, v in init.items()}
    state = training.build_state({**SPEC}, tiny_digits, init, torch.device("cpu"))
    assert all(torch.equal(state.model.state_dict()[k], v) for k, v in init.items())


def test_madry_cnn_shapes_and_parameter_count():
    model = models.build_model("madry_cnn")
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    expected = (25 * 32 + 32) + (25 * 32 * 64 + 64) + (7 * 7 * 64 * 1024 + 1024) + (1024 * 10 + 10)
    assert sum(p.numel() for p in model.parameters()) == expected
    with pytest.raises(ConfigError, match="unknown model 'resnet9'"):
        models.build_model("resnet9")


@pytest.mark.slow
def test_rerun_after_success_trains_afresh(tiny_digits_path, tmp_path):
    """--forcerun must give what a fresh run gives, not resume the finished run's checkpoint."""
    cmd = _train_cmd(tiny_digits_path, tmp_path, "a")
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    again = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    assert "resuming" not in again.stderr and f"epoch {SPEC['epochs']}/{SPEC['epochs']}" in again.stderr


@pytest.mark.slow
def test_checkpoint_of_other_data_or_init_is_not_resumed(tiny_digits, tmp_path):
    spec = {**SPEC, "epochs": 2}
    training.fit({**spec, "epochs": 1}, tiny_digits, checkpoint_dir=tmp_path, log=lambda _: None)
    smaller = copy.deepcopy(tiny_digits)
    smaller.train.images, smaller.train.labels = smaller.train.images[:300], smaller.train.labels[:300]
    lines = []
    training.fit(spec, smaller, checkpoint_dir=tmp_path, log=lines.append)
    assert "ignoring" in lines[0]  # another training subset
    init = models.build_model("madry_cnn").state_dict()
    lines = []
    training.fit(spec, smaller, checkpoint_dir=tmp_path, init_state=init, log=lines.append)
    assert "ignoring" in lines[0]  # another initial model


@pytest.mark.slow
def test_diverged_model_at_chance_is_not_saved(tiny_digits, tmp_path):
    spec = {**SPEC, "kind": "vanilla", "method": "vanilla", "epochs": 2, "lr": 10.0, "lr_decay_epoch": None}
    with pytest.raises(TrainingError, match="no better than always answering the most frequent class.*lower lr"):
        training.fit(spec, tiny_digits, checkpoint_dir=tmp_path, log=lambda _: None)


def test_checkpoint_with_right_fingerprint_but_wrong_shapes(tiny_digits, tmp_path):
    spec = {**SPEC, "epochs": 1}
    training.fit(spec, tiny_digits, checkpoint_dir=tmp_path, log=lambda _: None)
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    saved["epoch"] = 0  # as if killed before the end
    saved["model"]["classifier.3.weight"] = torch.zeros(3, 3)
    torch.save(saved, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="last.pt does not fit gnt_s0.5.*delete it and rerun"):
        training.fit(spec, tiny_digits, checkpoint_dir=tmp_path, log=lambda _: None)


def test_model_file_errors_are_one_line(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(CheckpointError, match="tensor.pt holds a Tensor, not a noisetrain file"):
        load_model(tmp_path / "tensor.pt")
    torch.save({"state_dict": {}}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"partial.pt is not a noisetrain model file \(lacks \['arch'"):
        load_model(tmp_path / "partial.pt")
    model = models.build_model("madry_cnn")
    save_model(model, tmp_path / "m.pt", arch="madry_cnn", in_channels=3, num_classes=10, info={})
    with pytest.raises(CheckpointError, match="m.pt does not fit the MadryCNN being built"):
        load_model(tmp_path / "m.pt")


def test_unwritable_checkpoint_folder_is_one_line(tiny_digits, tmp_path):
    # A file where the folder should be: unwritable even for root (CI runs as root).
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(CheckpointError, match="cannot write .*taken/ckpt/(last.pt|steps.csv).*writable"):
        training.fit({**SPEC, "epochs": 1}, tiny_digits, checkpoint_dir=tmp_path / "taken" / "ckpt", log=lambda _: None)
    assert (tmp_path / "taken").read_text() == "a file, not a folder"


def test_madry_cnn_is_conv_relu_pool_in_values_and_gradients():
    # The net pools before its ReLUs (cheaper); it must compute exactly the paper's conv-ReLU-pool order.
    torch.manual_seed(0)
    net = models.build_model("madry_cnn")
    f, c = net.features, net.classifier
    relu, pool = torch.nn.ReLU(), torch.nn.MaxPool2d(2)
    reference = torch.nn.Sequential(f[0], relu, pool, f[3], relu, pool, c[0], c[1], relu, c[3])
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    grads = []
    for model in (net, reference):
        model.zero_grad()
        out = model(x)
        torch.nn.functional.cross_entropy(out, y).backward()
        grads.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    assert torch.equal(grads[0][0], grads[1][0])
    assert all(torch.equal(a, b) for a, b in zip(grads[0][1], grads[1][1]))
    assert [name for name, _ in net.named_parameters()][:2] == ["features.0.weight", "features.0.bias"]
