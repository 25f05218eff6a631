"""The workflow against hostile or unlucky conditions: config strings that look like shell code,
a hard kill of Snakemake in the middle of a job, another `noisetrain` on the path, and a job
graph that must build without the heavy libraries."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest
import yaml
from conftest import BIN, ENV, REPO

from noisetrain.data import datasets

pytestmark = pytest.mark.slow  # every test runs Snakemake


def run_snakemake(workdir, config, *args, env=ENV, timeout=600):
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(path),
         "--cores", "1", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def tiny_config(**overrides):
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["corruptions"]["names"] = ["fog"]
    config.update(overrides)
    return config


def test_shell_code_in_a_config_path_reaches_the_script_as_text(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = tiny_config()
    assert run_snakemake(workdir, config, "results/digits/data/clean.npz").returncode == 0
    data = datasets.load(workdir / "results/digits/data/clean.npz")
    # Published MNIST-C-style files in a folder whose name is shell code, quotes and spaces.
    published = tmp_path / "pub $(touch PWNED) `touch PWNED2` it's"
    (published / "fog").mkdir(parents=True)
    source = data.test_index.max() + 1  # the published files follow the source test set
    labels = np.zeros(source, dtype=np.int64)
    labels[data.test_index] = data.test.labels
    np.save(published / "fog" / "test_images.npy", np.full((source, 28, 28, 1), 7, dtype=np.uint8))
    np.save(published / "fog" / "test_labels.npy", labels)
    config["corruptions"]["published_path"] = str(published)
    result = run_snakemake(workdir, config, "results/digits/data/corrupted/fog.npz")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not list(tmp_path.rglob("PWNED*")) and not list(REPO.glob("PWNED*"))
    written = np.load(workdir / "results/digits/data/corrupted/fog.npz")["images"]
    assert written.shape == (len(data.test.labels), 1, 28, 28) and (written == 7).all()  # the files of that very folder


def test_hard_kill_recovers_with_the_documented_commands_and_keeps_the_log(tmp_path):
    config = tiny_config()
    # Enough epochs that the job cannot finish between the first checkpoint and the kill.
    config["train"]["vanilla"]["epochs"] = epochs = 6
    target = "results/digits/models/vanilla.pt"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile",
           str(tmp_path / "config.yaml"), "--cores", "1", target]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoint = tmp_path / "results/digits/checkpoints/vanilla/last.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job die together, as in a node reboot
    proc.wait()
    assert checkpoint.exists(), "the job ended before it could be killed"

    # The README's recovery: unlock, then the same command (the workflow profile reruns incomplete jobs).
    assert subprocess.run([*cmd, "--unlock"], env=ENV, capture_output=True, timeout=120).returncode == 0
    result = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    log = (tmp_path / "results/digits/logs/train/vanilla.log").read_text()
    assert log.count(": attempt on ") == 1 and "resuming vanilla from" in log and f"epoch {epochs}/{epochs}" in log
    history = (tmp_path / "results/digits/logs/train/vanilla.log.history").read_text()
    assert history.count(": attempt on ") == 2 and history.endswith(log)  # the killed attempt's log is kept
    killed = history[: -len(log)]
    assert f"vanilla epoch 1/{epochs}" in killed and "saved" not in killed


def test_workflow_uses_its_own_checkout_and_builds_the_graph_without_heavy_libraries(tmp_path):
    fake = tmp_path / "fake"
    # (pandas cannot be tested this way: Snakemake's slurm executor plugin imports it itself.)
    for name in ("noisetrain", "torch", "matplotlib"):
        (fake / name).mkdir(parents=True)
        (fake / name / "__init__.py").write_text(f"raise ImportError('the job graph imported {name} from {fake}')\n")
    env = {**ENV, "PYTHONPATH": str(fake)}
    workdir = tmp_path / "run"
    workdir.mkdir()
    result = run_snakemake(workdir, tiny_config(), "-n", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "train" in result.stdout


def test_malformed_config_stops_before_any_job_in_one_line(tmp_path):
    config = tiny_config()
    config["robustness"]["methods"] = ["vanilla", "nosuch"]
    result = run_snakemake(tmp_path, config, "-n")
    assert result.returncode != 0
    assert "config error at 'robustness.methods.1': unknown method 'nosuch'" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "results").exists()


def test_duplicate_method_keys_in_a_config_file_stop_the_workflow(tmp_path):
    text = (REPO / "config" / "test.yaml").read_text().replace(
        "  vanilla: {kind: vanilla}\n", "  vanilla: {kind: vanilla}\n  speckle: {kind: speckle}\n")
    (tmp_path / "dup.yaml").write_text(text)
    result = subprocess.run(
        [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile",
         str(tmp_path / "dup.yaml"), "-n"], capture_output=True, text=True, timeout=120, env=ENV)
    assert result.returncode != 0 and "speckle" in result.stderr and "Traceback" not in result.stderr
