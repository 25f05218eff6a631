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


def run(main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser, argv=None) -> None:
    args = parser.parse_args(argv)
    try:
        main(args)
    except NoisetrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
