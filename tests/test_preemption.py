"""Preemption: SIGTERM / SIGUSR1 make a training job checkpoint after the current step and stop;
the rerun resumes mid-epoch and ends with exactly the weights and log of an uninterrupted run (on
CPU), for a noise method and for ANT (generator, replay bank and random streams in the state)."""

import os
import signal
import subprocess
import time

import pytest
import torch
from helpers import StopAfter
from test_training import SPEC, _train_cmd

from noisetrain.config import train_spec, validate_config
from noisetrain.errors import Preempted
from noisetrain.models.model_file import load_model
from noisetrain.train import trainer as training
from noisetrain.train.preemption import StopRequest
from noisetrain.train.sources import ArraySource

ANT_SPEC = {"kind": "ant", "eps": 6.0, "generator_lr": 1.0e-3, "reinit_every": 1.0, "reinit_steps": 3, "snapshot_every": 2}
ANT = train_spec(validate_config({
    "dataset": {"name": "digits"}, "seed": 1, "robustness": {"an_eps": 6.0},
    "methods": {"vanilla": {"kind": "vanilla"}, "ant1x1": ANT_SPEC},
    "train": {"batch_size": 50, "finetune": {"epochs": 2, "lr": 0.01, "momentum": 0.9}},
}), "ant1x1")


def _without_timing(log):
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_second")} for row in log]


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "stop_after"), [({**SPEC, "epochs": 2}, 5), (ANT, 3), (ANT, 11)],
                         ids=["gnt-mid-epoch", "ant-mid-epoch", "ant-second-epoch"])
def test_a_stopped_run_resumes_to_the_uninterrupted_weights(tiny_digits, tmp_path, spec, stop_after):
    quiet = dict(log=lambda _: None, divergence_guard=False)
    straight = training.fit(spec, tiny_digits, checkpoint_dir=tmp_path / "straight", **quiet)
    with pytest.raises(Preempted, match=f"stopped by SIGTERM after step {stop_after % 8};"):
        training.fit(spec, tiny_digits, checkpoint_dir=tmp_path / "stopped", stop=StopAfter(stop_after), **quiet)
    saved = torch.load(tmp_path / "stopped" / "last.pt", weights_only=True)
    assert (saved["epoch"], saved["step"]) == divmod(stop_after, 8)  # 400 images in batches of 50: 8 steps an epoch
    lines = []
    resumed = training.fit(spec, tiny_digits, checkpoint_dir=tmp_path / "stopped", log=lines.append, divergence_guard=False)
    assert any("resuming" in line and f"after step {stop_after % 8}" in line for line in lines)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after resume"
    assert _without_timing(resumed.log) == _without_timing(straight.log)


def test_checkpoints_every_interval_within_an_epoch(tiny_digits, tmp_path):
    saves = []
    state = training.build_state({**SPEC, "epochs": 1}, tiny_digits, None, torch.device("cpu"))
    training.run_epoch(state, ArraySource(tiny_digits), 50, "epoch", save=lambda: saves.append(state.step),
                       checkpoint_every=0.0)
    assert saves == list(range(1, 9)) and state.step == 0


def test_stop_signals_set_the_flag_and_the_handlers_come_back():
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGUSR1)}
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.01)
        assert stop.requested and stop.received == "SIGUSR1"
    assert {signum: signal.getsignal(signum) for signum in before} == before


@pytest.mark.slow
def test_sigterm_stops_the_training_job_in_one_line_and_the_rerun_finishes_it(tiny_digits_path, tmp_path):
    subprocess.run(_train_cmd(tiny_digits_path, tmp_path, "straight"), check=True, capture_output=True, timeout=300)
    cmd = _train_cmd(tiny_digits_path, tmp_path, "stopped")
    checkpoint = tmp_path / "ckpt_stopped" / "last.pt"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, "the job finished before it could be stopped"
    assert stderr.strip().splitlines()[-1].startswith("error: gnt_s0.5 epoch") and "stopped by SIGTERM" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "stopped.pt").exists()

    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    straight, _ = load_model(tmp_path / "straight.pt")
    again, _ = load_model(tmp_path / "stopped.pt")
    for (name, a), b in zip(straight.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after the stop and rerun"
