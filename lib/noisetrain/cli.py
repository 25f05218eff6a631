"""What every CLI in ``workflow_scripts/`` shares: JSON arguments, threads, and clean failure.

Scripts parse their arguments and call into the library. A failure the user can fix (a
:class:`~noisetrain.errors.NoisetrainError`: bad config value, missing or corrupt file, divergence)
ends them with one line on stderr and exit status 1; anything else is a bug and keeps its full
traceback in the rule's log.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from noisetrain.errors import NoisetrainError


def json_arg(text: str):
    """argparse type for a JSON object given on the command line."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg} at position {exc.pos}): {text[:80]}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))


def say(message: str) -> None:
    """A plain progress line (Snakemake redirects stderr into the rule's log file)."""
    print(message, file=sys.stderr, flush=True)


def one_line(exc: NoisetrainError) -> str:
    """The error's message. A DataLoader worker's error reaches the main process re-raised with the
    worker's traceback in its text ("Caught DataError in DataLoader worker process 0. Original
    Traceback ..."): its last line holds the original message."""
    text = str(exc).strip()
    if text.startswith("Caught ") and "Original Traceback" in text:
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return text


def run(main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser, argv=None) -> None:
    args = parser.parse_args(argv)
    try:
        main(args)
    except NoisetrainError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        sys.exit(1)
