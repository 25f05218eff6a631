"""bench/ant_launches.py: an MNIST ANT step's operations on the GPU's code path, counted on the CPU.
With replay in one pass, the count does not grow with the bank states replayed."""

import re
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow  # the script in a subprocess, ANT steps at batch 300

LINE = re.compile(r"joint step (\d+) operations, fresh-generator update (\d+), ([\d.]+) updates a step: (\d+) operations")


def counts(bank: int) -> tuple[int, ...]:
    result = subprocess.run([sys.executable, str(REPO / "bench" / "ant_launches.py"), "--bank", str(bank), "--steps", "1"],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    match = LINE.search(result.stdout)
    assert match, result.stdout
    joint, fresh, rate, total = int(match[1]), int(match[2]), float(match[3]), int(match[4])
    assert rate == pytest.approx(100 / 66, abs=0.01)  # config/mnist.yaml: 100 updates every 0.33 epochs
    assert total == pytest.approx(joint + rate * fresh, abs=1)  # the rate is printed rounded
    return joint, fresh


def test_the_count_does_not_grow_with_the_states_replayed():
    few, many = counts(2), counts(12)  # 60 replay images draw 2, or most of 12, states
    assert few == many
    joint, fresh = few
    assert 100 < fresh < joint < 500  # a fresh update is the joint step's generator half
