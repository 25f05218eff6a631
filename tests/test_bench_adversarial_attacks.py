"""bench/train_step.py --adversarial times the adversarial steps with the plain-torch attacks
training runs, and the same steps with foolbox's attacks in the loop (before issue 21), on the same
machine in the same rounds, and prints the speed-up."""

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
SPEED_UP = re.compile(r"^(?P<name>\w+): (?P<plain>[\d.]+) vanilla steps a step with the plain-torch attack, "
                      r"(?P<old>[\d.]+) with foolbox's: (?P<factor>[\d.]+)x as fast$")


def test_the_foolbox_rows_and_the_speed_up_lines():
    result = subprocess.run([sys.executable, str(SCRIPT), *TINY], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    table = {m["name"]: float(m["ratio"]) for m in map(ROW.match, lines) if m}
    assert {"pgd_at", "ddn_at", "pgd_at foolbox", "ddn_at foolbox"} <= set(table), list(table)
    speed_ups = {m["name"]: m for m in map(SPEED_UP.match, lines) if m}
    assert set(speed_ups) == {"pgd_at", "ddn_at"}
    for name, m in speed_ups.items():
        # the line restates the table's ratios (rounded to one decimal there, three in the table)
        assert float(m["plain"]) == pytest.approx(table[name], abs=0.051)
        assert float(m["old"]) == pytest.approx(table[f"{name} foolbox"], abs=0.051)
        assert float(m["factor"]) == pytest.approx(table[f"{name} foolbox"] / table[name], rel=0.02)
