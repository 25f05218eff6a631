"""bench/trainer_limit.py in its smallest setting: both methods print the trainer's and the minimal
loop's images/s and their ratio, and the operations each dispatches per step; the two loops train the
same arrays (the same images a round)."""

import re
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow  # the script in a subprocess

ROW = re.compile(r"^(?P<name>\S+)\s+(?P<trainer>\d+)\s+(?P<minimal>\d+)\s+(?P<ratio>[\d.]+)"
                 r"\s+(?P<trainer_ops>[\d.]+)\s+(?P<minimal_ops>[\d.]+)$")


def test_the_trainer_and_the_minimal_loop_are_timed_side_by_side():
    result = subprocess.run([sys.executable, str(REPO / "bench" / "trainer_limit.py"), "--steps", "2", "--rounds", "1",
                             "--threads", "1"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {m["name"]: m for m in map(ROW.match, result.stdout.splitlines()) if m}
    assert set(rows) == {"vanilla", "gnt_s0.5"}
    for row in rows.values():
        assert int(row["trainer"]) > 0 and int(row["minimal"]) > 0
        assert float(row["ratio"]) == pytest.approx(int(row["trainer"]) / int(row["minimal"]), rel=0.05, abs=0.01)
        # the trainer's step launches the method's work and its accuracy (3 operations), nothing per metric
        assert 0 < float(row["trainer_ops"]) - float(row["minimal_ops"]) <= 5
    assert re.search(r"\b600 images a timed epoch, batch 300, cpu, 1 threads", result.stdout), result.stdout


def test_host_mode_times_a_linear_model_at_batch_8():
    result = subprocess.run([sys.executable, str(REPO / "bench" / "trainer_limit.py"), "--host", "--steps", "4", "--rounds", "1",
                             "--threads", "1"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"\b32 images a timed epoch, batch 8, cpu", result.stdout), result.stdout
    rows = {m["name"]: m for m in map(ROW.match, result.stdout.splitlines()) if m}
    # Flatten, linear, cross-entropy, backward and SGD: a few dozen operations, the trainer 3 more a step
    assert set(rows) == {"vanilla", "gnt_s0.5"} and float(rows["vanilla"]["minimal_ops"]) < 30
    assert len(re.findall(r"host time a step: trainer \d+ us, minimal loop \d+ us", result.stdout)) == 2
