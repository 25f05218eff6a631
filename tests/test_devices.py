"""Where a job runs (issue 20, case 9): a job that slurm gave a GPU it cannot use stops at once in one
line saying why, instead of training on the CPU until its time limit; logs and records name the device."""

import argparse

import pytest
import torch

from noisetrain.cli import run
from noisetrain.errors import ConfigError
from noisetrain.models.devices import GPU_COUNT, GPU_IDS, allocated_gpus, describe_device, resolve_device

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a usable GPU")


@pytest.fixture
def no_slurm_gpus(monkeypatch):
    for key in (*GPU_IDS, GPU_COUNT):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_slurm_allocation_is_read_from_its_variables(no_slurm_gpus):
    assert allocated_gpus() is None
    no_slurm_gpus.setenv(GPU_COUNT, "0")
    assert allocated_gpus() is None
    no_slurm_gpus.setenv("SLURM_JOB_GPUS", "0")  # GPU id 0: one GPU
    assert allocated_gpus() == "SLURM_JOB_GPUS=0"


@no_gpu
def test_auto_without_an_allocated_gpu_is_the_cpu(no_slurm_gpus):
    device = resolve_device("auto")
    assert device == torch.device("cpu")
    assert describe_device(device) == "cpu"


@no_gpu
def test_a_job_given_a_gpu_it_cannot_use_stops_in_one_line(no_slurm_gpus, capsys):
    no_slurm_gpus.setenv("SLURM_JOB_GPUS", "3")
    with pytest.raises(ConfigError) as caught:
        resolve_device("auto")
    message = str(caught.value)
    assert "'auto' and this job was given a GPU (SLURM_JOB_GPUS=3) but this job cannot use a CUDA GPU (" in message
    assert f"built for CUDA {torch.version.cuda}" in message and "or use device: cpu" in message
    with pytest.raises(SystemExit):
        run(lambda args: resolve_device("auto"), argparse.ArgumentParser(), [])
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@no_gpu
def test_cuda_asked_without_one_names_the_reason(no_slurm_gpus):
    with pytest.raises(ConfigError, match=r"'cuda' was asked for but this job cannot use a CUDA GPU \(.+\)"):
        resolve_device("cuda")
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(torch.device("cpu")) == torch.device("cpu")
