"""bench/train_step.py in its smallest settings, with the adversarial baselines (run once for the
module): every row prints a ratio to vanilla, the schedule line projects config/mnist.yaml's from-scratch
budgets from the measured step times, and the foolbox rows (the attacks as training ran them before
issue 21) print their speed-up lines."""

import re
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow  # the script in a subprocess

SCRIPT = REPO / "bench" / "train_step.py"
TINY = ["--batch-size", "8", "--steps", "1", "--rounds", "1", "--threads", "1", "--epoch-steps", "10",
        "--adversarial", "--adversarial-steps", "1"]
ROW = re.compile(r"^(?P<name>\S.*?)\s+(?P<images>\d+)\s+(?P<ratio>[\d.]+)$")
HOURS = re.compile(r"^(?P<name>\w+): (?P<epochs>\d+) epochs of 10 steps \(config/mnist.yaml\) "
                   r"take about (?P<hours>[\d.]+) h here$")


SPEED_UP = re.compile(r"^(?P<name>\w+): (?P<plain>[\d.]+) vanilla steps a step with the plain-torch attack, "
                      r"(?P<old>[\d.]+) with foolbox's: (?P<factor>[\d.]+)x as fast$")


@pytest.fixture(scope="module")
def printed() -> str:
    result = subprocess.run([sys.executable, str(SCRIPT), *TINY], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_adversarial_rows_cost_many_vanilla_steps_and_project_the_schedule(printed):
    lines = printed.splitlines()
    table = {m["name"]: m for m in map(ROW.match, lines) if m}
    assert {"vanilla", "gnt", "ant1x1", "ant floor", "pgd_at", "ddn_at"} <= set(table), list(table)
    assert float(table["vanilla"]["ratio"]) == 1.0
    # 40 PGD steps and 100 DDN steps a batch, each an input-gradient pass of the classifier.
    assert float(table["pgd_at"]["ratio"]) > 5 and float(table["ddn_at"]["ratio"]) > 5
    hours = {m["name"]: float(m["hours"]) for m in map(HOURS.match, lines) if m}
    assert set(hours) == {"vanilla", "pgd_at", "ddn_at"}
    # each model's own schedule: Madry et al.'s 100k steps of 50 images, Rony et al.'s 50 epochs
    assert {m["name"]: int(m["epochs"]) for m in map(HOURS.match, lines) if m} == {"vanilla": 30, "pgd_at": 84, "ddn_at": 50}
    assert hours["pgd_at"] >= hours["vanilla"] and hours["ddn_at"] >= hours["vanilla"]
    assert "(pgd_at, ddn_at: 1)" in printed


def test_the_foolbox_rows_and_the_speed_up_lines(printed):
    lines = printed.splitlines()
    table = {m["name"]: float(m["ratio"]) for m in map(ROW.match, lines) if m}
    assert {"pgd_at", "ddn_at", "pgd_at foolbox", "ddn_at foolbox"} <= set(table), list(table)
    speed_ups = {m["name"]: m for m in map(SPEED_UP.match, lines) if m}
    assert set(speed_ups) == {"pgd_at", "ddn_at"}
    for name, m in speed_ups.items():
        # the line restates the table's ratios (rounded to one decimal there, three in the table)
        assert float(m["plain"]) == pytest.approx(table[name], abs=0.051)
        assert float(m["old"]) == pytest.approx(table[f"{name} foolbox"], abs=0.051)
        assert float(m["factor"]) == pytest.approx(table[f"{name} foolbox"] / table[name], rel=0.02)
