"""What each model job asks slurm for, through the real slurm profile (issue 22): a dry run with
``--profile profiles/slurm`` prints every job's resources as the executor would submit them
(partition, GPUs, time, memory), for the embedded digits, MNIST, the smoke study and the paper's
ImageNet config."""

import subprocess

import pytest
from conftest import BIN, ENV, REPO
from helpers import fake_imagenet

from noisetrain import job_sizes
from noisetrain.config import load_config
from noisetrain.study import Study

PROFILE = ["--profile", str(REPO / "profiles" / "slurm"), "--cores", "8"]


def planned_jobs(workdir, configfile, *overlays) -> list[dict]:
    """Every job of a slurm dry run: its rule, wildcards and resources."""
    files = [str(configfile), *map(str, overlays)]
    result = subprocess.run([str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile",
                             *files, "-n", *PROFILE], capture_output=True, text=True, timeout=300, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs, job = [], None
    for line in result.stdout.splitlines():
        if line.startswith(("rule ", "localrule ", "checkpoint ")):
            job = {"rule": line.split()[1].rstrip(":"), "wildcards": {}, "resources": {}}
            jobs.append(job)
        elif job and line.strip().startswith(("wildcards:", "resources:")):
            key, _, text = line.strip().partition(": ")
            job[key.rstrip(":")] = dict(item.split("=", 1) for item in text.split(", "))
    return jobs


def by_model(jobs, rule: str) -> dict[str, dict]:
    return {job["wildcards"].get("method") or job["wildcards"].get("model"): job["resources"]
            for job in jobs if job["rule"] == rule}


@pytest.mark.slow
def test_digits_jobs_run_on_cpus_for_minutes(tmp_path):
    jobs = planned_jobs(tmp_path, REPO / "config" / "config.yaml")
    train = by_model(jobs, "train")
    assert len(train) >= 5  # those planned before the sweep's choice (a checkpoint)
    for resources in [*train.values(), *by_model(jobs, "predict_model").values()]:
        # a digits model is a minute of work: no GPU, the CPU partition, the shortest time asked
        assert (resources["slurm_partition"], resources["gpu"]) == ("cpu", "0")
        assert int(resources["runtime"]) == job_sizes.MIN_MINUTES and int(resources["mem_mb"]) <= 4000


@pytest.mark.slow
def test_mnist_gives_a_gpu_to_the_jobs_that_need_hours(tmp_path):
    train = by_model(planned_jobs(tmp_path, REPO / "config" / "mnist.yaml"), "train")
    # vanilla: 30 epochs of 60,000 images, about half an hour on CPUs; ANT 1x1: four vanilla steps a step
    assert (train["vanilla"]["slurm_partition"], train["vanilla"]["gpu"]) == ("cpu", "0")
    assert (train["ant1x1"]["slurm_partition"], train["ant1x1"]["gpu"]) == ("gpu", "1")
    study = Study(load_config(REPO / "config" / "mnist.yaml"))  # the baselines come after the sweep's checkpoint
    pgd, ddn = study.job_resources("train", "pgd_at"), study.job_resources("train", "ddn_at")
    assert (pgd["slurm_partition"], pgd["gpu"]) == ("gpu", 1) and ddn["runtime"] > pgd["runtime"]  # 100 DDN steps, 40 PGD


@pytest.mark.slow
def test_smoke_study_on_cpus_asks_for_no_gpu(tmp_path):
    jobs = planned_jobs(tmp_path, REPO / "config" / "imagenet_smoke.yaml")
    model_jobs = [job for job in jobs if job["rule"] in ("train", "predict_model", "measure_robustness")]
    assert model_jobs
    for job in model_jobs:  # device: cpu; a GPU partition would reject a job without a GPU
        assert (job["resources"]["slurm_partition"], job["resources"]["gpu"]) == ("cpu", "0"), job
        assert int(job["resources"]["runtime"]) <= 60


@pytest.mark.slow
def test_paper_imagenet_jobs_get_gpus_and_times_within_the_partitions_limit(tmp_path, monkeypatch):
    fake_imagenet(tmp_path)
    monkeypatch.chdir(tmp_path)  # the config's data paths are relative to the working directory
    config = load_config(REPO / "config" / "imagenet.yaml")
    train = by_model(planned_jobs(tmp_path, REPO / "config" / "imagenet.yaml"), "train")
    limit = round(60 * config["cluster"]["max_runtime_h"])
    gpus = str(config["train"]["gpus_per_job"])
    for method, resources in train.items():
        assert (resources["slurm_partition"], resources["gpu"]) == ("gpu", gpus), method
        assert job_sizes.MIN_MINUTES <= int(resources["runtime"]) <= limit
    # 80 epochs of ANT cost more than 10 of Speckle: the time follows the epochs and the step cost
    study = Study(config)
    assert study.job_resources("train", "speckle")["runtime"] < study.job_resources("train", "ant1x1")["runtime"]


def test_a_resubmitted_training_job_asks_for_twice_the_time_within_the_cap():
    study = Study(load_config(REPO / "config" / "mnist.yaml"))
    runtime = study.train_resources()["runtime"]

    class Wildcards:
        method = "ddn_at"

    first, second = runtime(Wildcards, 1), runtime(Wildcards, 2)
    assert second == min(2 * first, 60 * study.config["cluster"]["max_runtime_h"])
    assert study.train_resources()["slurm_partition"](Wildcards, 1) == "gpu"


def test_job_sizes_by_hand():
    config = load_config(REPO / "config" / "mnist.yaml")
    spec = {"kind": "vanilla", "epochs": 30}
    # 30 epochs x 60,000 images at 1,000 images/s on CPUs: 30 minutes
    assert job_sizes.train_minutes(config, spec, image_folders=False, gpu=False) == pytest.approx(30.0)
    assert job_sizes.wants_gpu("auto", False, 30.0) is False and job_sizes.wants_gpu("auto", False, 61.0) is True
    assert job_sizes.wants_gpu("cpu", True, 1e6) is False and job_sizes.wants_gpu("cuda", False, 1.0) is True
    sized = job_sizes.resources(config, "train", False, minutes=30.0, gpus=0)
    assert sized == {"mem_mb": 4000, "runtime": 90, "gpu": 0, "slurm_partition": "cpu"}  # three times the projection
    assert job_sizes.resources(config, "train", False, minutes=1e6, gpus=1)["runtime"] == 48 * 60  # the cap
