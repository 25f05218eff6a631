"""Fine-tuning on an image folder (the ImageNet wing's training) on scikit-image's photographs with
a small torchvision network at random init: a run stopped at a random step (SIGTERM's path)
resumes to exactly the weights, step log and epoch log of an uninterrupted run on CPU (dropout's
and BatchNorm's state included), for GNT and for ANT + SIN; the job script stops on SIGTERM in one
line and its rerun finishes; a +SIN folder that does not mirror train/ is refused."""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import BIN, ENV, REPO
from helpers import StopAfter

from noisetrain.config import train_spec, validate_config
from noisetrain.data.imagenet import write_val_list
from noisetrain.data.sample_images import make_sample_imagenet
from noisetrain.errors import DataError, Preempted
from noisetrain.models.torchvision_models import load_classifier
from noisetrain.train import trainer
from noisetrain.train.folder_source import FolderSource

CLASSES = ["n00000000", "n00000001", "n00000002"]
STEPS = 2 * 3  # 2 epochs of 3 classes x 4 training images in batches of 4
ARCH = "mobilenet_v3_small"  # BatchNorm and dropout: both must resume exactly


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    make_sample_imagenet(root, classes=3, train_per_class=4, val_per_class=2, size=64)
    write_val_list(root / "val", None, 0, root / "val_files.json")
    return root


def spec_of(name: str, method: dict, stylized=None) -> dict:
    """The validated spec of one method (schema defaults filled), on the folder's network."""
    config = validate_config({
        "dataset": {"name": "digits"}, "seed": 3, "robustness": {"an_eps": 6.0},
        "methods": {"vanilla": {"kind": "vanilla"}, name: method},
        "train": {"batch_size": 4, "divergence_guard": False,
                  "finetune": {"epochs": 2, "lr": 0.05, "momentum": 0.9, "lr_decay_epoch": 1}},
    })
    spec = {**train_spec(config, name), "model": ARCH, "crop_size": 64}  # small crops: cheap steps
    return {**spec, "stylized_path": str(stylized)} if stylized else spec


GNT = ("gnt_s0.5", {"kind": "gnt", "sigma": 0.5})
ANT_SIN = ("ant1x1_sin", {"kind": "ant", "eps": 135.0, "reinit_every": 0.5, "reinit_steps": 1, "snapshot_every": 1})


def fit(images, spec, checkpoint_dir, **kwargs):
    source = FolderSource(images / "train", images / "val", None, CLASSES, spec["seed"],
                          stylized_dir=spec.get("stylized_path"), input_size=64, crop_size=64)
    model = load_classifier(ARCH, None, num_classes=len(CLASSES), seed=spec["seed"])
    return trainer.fit(spec, source, model=model, init_id=f"random-init:{spec['seed']}", checkpoint_dir=checkpoint_dir,
                       divergence_guard=False, log=lambda _: None, **kwargs)


def step_rows(checkpoint_dir):
    with open(trainer.step_log_path(checkpoint_dir), newline="") as handle:
        return [{k: v for k, v in row.items() if k != "images_per_second"} for row in csv.DictReader(handle)]


def timeless(log):
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_second")} for row in log]


@pytest.mark.slow
@pytest.mark.parametrize("method", [GNT, ANT_SIN], ids=["gnt", "ant-sin"])
def test_a_run_stopped_at_a_random_step_resumes_to_the_uninterrupted_run(images, tmp_path, method):
    name, entry = method
    spec = spec_of(name, entry, images / "stylized" if name.endswith("_sin") else None)
    stop_after = random.Random(name).randint(1, STEPS - 1)
    straight = fit(images, spec, tmp_path / "straight")
    with pytest.raises(Preempted, match="stopped by SIGTERM"):
        fit(images, spec, tmp_path / "stopped", stop=StopAfter(stop_after))
    saved = torch.load(tmp_path / "stopped" / "last.pt", weights_only=True)
    assert saved["epoch"] * 3 + saved["step"] == stop_after
    resumed = fit(images, spec, tmp_path / "stopped")
    for (key, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), f"{key} differs after resuming at step {stop_after}"
    assert timeless(resumed.log) == timeless(straight.log)
    assert step_rows(tmp_path / "stopped") == step_rows(tmp_path / "straight")
    assert [int(row["step"]) for row in step_rows(tmp_path / "straight")] == list(range(1, STEPS + 1))


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "loader-workers"])
def test_the_job_stops_on_sigterm_in_one_line_and_its_rerun_finishes(workers, images, tmp_path):
    """Slurm signals every process of the job, the DataLoader workers too (issue 20, case 6): the job
    still checkpoints after its current step, says so in one line and exits for the retry."""
    spec = {**spec_of(*GNT), "epochs": 40}  # long enough to be stopped
    cmd = [str(BIN / "python"), str(REPO / "workflow_scripts" / "train_images.py"), "--train-dir", str(images / "train"),
           "--val-dir", str(images / "val"), "--val-files", str(images / "val_files.json"), "--spec", json.dumps(spec),
           "--weights", "random", "--checkpoint-dir", str(tmp_path / "ckpt"), "--workers", str(workers), "--device", "cpu",
           "--out", str(tmp_path / "m.pt"), "--log-csv", str(tmp_path / "e.csv"), "--steps-csv", str(tmp_path / "s.csv")]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
    deadline = time.time() + 120
    while not (tmp_path / "ckpt" / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)  # the first epoch's checkpoint: training is under way
    time.sleep(0.3)  # into the next epoch, its loader workers running
    os.killpg(proc.pid, signal.SIGTERM)  # the whole process group, as slurm does
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("error: gnt_s0.5 epoch") and "stopped by SIGTERM" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "m.pt").exists()
    stopped_at = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    assert stopped_at["epoch"] * 3 + stopped_at["step"] > 3  # the checkpoint of the stop, past the first epoch's
    finished = subprocess.run([*cmd[:cmd.index("--spec") + 1], json.dumps({**spec, "epochs": 2}), *cmd[cmd.index("--spec") + 2:]],
                              capture_output=True, text=True, timeout=300, env=ENV)
    # Another epoch count is another run: its checkpoint is ignored, and it trains afresh to the end.
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "ignoring" in finished.stderr and (tmp_path / "m.pt").exists()
    model = torch.load(tmp_path / "m.pt", weights_only=True)
    assert model["arch"] == ARCH and model["num_classes"] == 3 and model["info"]["weights"] == "random"


def test_a_stylized_folder_that_does_not_mirror_train_is_refused(images, tmp_path):
    stylized = tmp_path / "stylized"
    shutil.copytree(images / "stylized", stylized)
    next(stylized.rglob("*.JPEG")).unlink()
    with pytest.raises(DataError, match="lacks 1 of the 12 listed images"):
        FolderSource(images / "train", images / "val", None, CLASSES, 0, stylized_dir=stylized)


def test_file_names_that_are_not_utf8_train_and_index(tmp_path):
    """Real file systems hold names that are not UTF-8 (byte 0xff): the training source's identity,
    the set index and ImageNet-C's per-image seed take them (issue 20, case 11), and UTF-8 names
    give the same ids as before (their bytes, as str.encode gave them)."""
    import os
    import zlib

    import numpy as np

    from noisetrain.data.datasets import array_hash
    from noisetrain.data.imagenet import relative_files
    from noisetrain.data.imagenet_c import _seed_state
    from noisetrain.data.set_index import write_set_index

    root = tmp_path / "images"
    make_sample_imagenet(root, classes=3, train_per_class=2, val_per_class=1, size=48)
    plain = FolderSource(root / "train", root / "val", None, CLASSES, 0)
    as_before = array_hash(np.frombuffer("\n".join(plain.files).encode(), np.uint8),
                           np.frombuffer("\n".join(relative_files(plain.heldout)).encode(), np.uint8),
                           np.asarray(plain.dataset.images.targets))
    assert plain.identity() == as_before
    seeds = np.random.SeedSequence([0, zlib.crc32(b"fog"), 3, zlib.crc32(b"n00000000/a.JPEG")]).generate_state(4)
    assert np.array_equal(_seed_state(0, "fog", 3, "n00000000/a.JPEG"), seeds)

    first = sorted((root / "train" / CLASSES[0]).iterdir())[0]
    os.rename(first, os.path.join(os.fsencode(first.parent), b"\xff" + os.fsencode(first.name)))
    source = FolderSource(root / "train", root / "val", None, CLASSES, 0)
    odd = next(name for name in source.files if "\udcff" in name)
    assert source.identity() != plain.identity()
    assert len(_seed_state(0, "fog", 3, odd)) == 4
    index = write_set_index(root / "train", source.files, CLASSES, "clean", 0, tmp_path / "index.json")
    assert index["images"] == len(source.files)


def test_a_corrupt_held_out_image_stops_training_before_any_step(images, tmp_path):
    """Found after an epoch, the error would throw the epoch's work away (issue 20, case 8): the
    held-out images are decoded once before training starts."""
    root = tmp_path / "images"
    shutil.copytree(images, root)
    broken = sorted((root / "val" / CLASSES[1]).iterdir())[0]
    broken.write_bytes(broken.read_bytes()[:200])
    spec = spec_of(*GNT)
    with pytest.raises(DataError, match=re.escape(str(broken))):
        fit(root, spec, tmp_path / "ckpt")
    assert not (tmp_path / "ckpt" / "last.pt").exists()
    assert not trainer.step_log_path(tmp_path / "ckpt").exists() or step_rows(tmp_path / "ckpt") == []


def test_loader_workers_leave_the_stop_signal_to_the_training_process(images):
    """Slurm's SIGTERM reaches every process of the job (issue 20, case 6): a loader worker that died
    of it would make the next batch raise mid-step; the workers ignore it and the epoch goes on. The
    signal comes as soon as the workers exist, before the first batch."""
    from types import SimpleNamespace

    from noisetrain.train.preemption import StopRequest

    def children() -> set[int]:
        return {int(pid) for path in Path("/proc/self/task").glob("*/children") for pid in path.read_text().split()}

    source = FolderSource(images / "train", images / "val", None, CLASSES, 0, workers=2, input_size=64, crop_size=64)
    before = children()
    with StopRequest() as stop:
        batches = source.epoch_batches(SimpleNamespace(epoch=0, step=0), 4)
        first = next(batches)
        workers = children() - before
        assert len(workers) == 2
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
        time.sleep(0.5)
        assert len([first, *batches]) == 3  # the whole epoch, from the same workers
    assert stop.requested is False  # the signal went to the workers alone
