"""The CLIs' error handling: a user's mistake is one line, a bug keeps its traceback."""

import argparse

import pytest

from noisetrain.cli import run
from noisetrain.errors import CheckpointError, ConfigError, DataError, InputError, TrainingError


@pytest.mark.parametrize("error", [ConfigError, DataError, CheckpointError, InputError, TrainingError])
def test_expected_errors_end_in_one_line(error, capsys):
    def main(args):
        raise error("model.pt is broken: delete it and rerun")

    with pytest.raises(SystemExit) as info:
        run(main, argparse.ArgumentParser(), [])
    assert info.value.code == 1
    assert capsys.readouterr().err == "error: model.pt is broken: delete it and rerun\n"


def test_a_bug_keeps_its_traceback():
    def main(args):
        raise ValueError("operands could not be broadcast together")  # numpy's, not ours

    with pytest.raises(ValueError, match="broadcast"):
        run(main, argparse.ArgumentParser(), [])
