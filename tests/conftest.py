"""Shared fixtures: the repository root, a small prepared digits set on disk, and the tiny
end-to-end study (the real Snakemake workflow on config/test.yaml, run once per session)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from noisetrain.data import datasets

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CORRUPTIONS = 15
# Jobs run `python`: as for a user with the venv activated, it must be this interpreter.
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
# The models of config/test.yaml: named, the sigma sweep, the eps search's candidates, the replicates
# of the second seed (the sweep's best model's replicate is known only once it is chosen).
METHODS = ["vanilla", "gnt_mult", "speckle", "ant1x1", "ant3x3", "pgd_at", "gnt_s0.3", "gnt_s0.6", "ant1x1_eps2",
           "ant1x1_eps4", "vanilla_seed1", "ant1x1_seed1"]
FROM_SCRATCH = {"vanilla", "vanilla_seed1", "pgd_at"}  # trained with vanilla's schedule and no initial model


def snakemake(workdir, *args, timeout=900):
    return subprocess.run(
        [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
         "--configfile", str(REPO / "config" / "test.yaml"), *args],
        capture_output=True, text=True, timeout=timeout, env=ENV,
    )


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("study")
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir / "results" / "digits"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_digits() -> datasets.PreparedData:
    """400 training and 100 test digits (stratified), prepared exactly as the data rule does."""
    return datasets.prepare({"name": "digits", "test_fraction": 0.3, "seed": 0, "subset_train": 400, "subset_test": 100})


@pytest.fixture(scope="session")
def tiny_digits_path(tiny_digits, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "clean.npz"
    datasets.save(tiny_digits, path)
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: a second intra-op thread only adds contention. For a
    module (``single_thread`` below: for a test)."""
    from noisetrain.threads import one_thread

    with one_thread():
        yield


# -- test selection and scheduling ----------------------------------------------------------------
# Fixtures that run a whole study through Snakemake (minutes): `study` above, `smoke` of test_imagenet_workflow.py.
STUDIES = {"study", "smoke"}
# The modules whose tests use `study`: `make test` runs them on one pytest-xdist worker, so the study runs once.
STUDY_MODULES = {"tests/test_workflow.py", "tests/test_report.py"}


def work_unit(nodeid: str) -> str:
    """What `make test` hands a worker at once: a test's module, or all the modules of `study`."""
    module = nodeid.split("::")[0]
    return "study" if module in STUDY_MODULES else module


def pytest_configure(config):
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the workers share the cores already
        torch.set_num_threads(1)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config, items):
    """Every test of a whole study is slow. On a pytest-xdist worker the units with a study come
    first, so that the scheduler below hands them out first."""
    for item in items:
        module = item.nodeid.split("::")[0]
        if "study" in item.fixturenames and module not in STUDY_MODULES:
            raise pytest.UsageError(f"{module} uses `study`: add it to STUDY_MODULES in tests/conftest.py")
        if STUDIES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
    if hasattr(config, "workerinput"):
        heavy = {work_unit(item.nodeid) for item in items if STUDIES & set(item.fixturenames)}
        items.sort(key=lambda item: work_unit(item.nodeid) not in heavy)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before pytest-xdist's own choice
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` (make test), with the modules of `study` as one unit: each module's tests on
    one worker (its module fixtures built once), the units handed out in the workers' order above.
    (`--dist loadgroup` cannot do this here: pytest-xdist 3.8 loses its groups on pytest 9.2.)"""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class StudyOnce(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # not the units with the most tests first
    return StudyOnce(config, log)


@pytest.fixture
def single_thread():
    """One thread: bit-for-bit comparisons need a fixed reduction order, and tiny tensors run
    several times faster single-threaded on a busy 2-core machine."""
    from noisetrain.threads import one_thread

    with one_thread():
        yield
