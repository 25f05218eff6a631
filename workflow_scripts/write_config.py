#!/usr/bin/env python
"""Write the study's resolved config (YAML, and HTML for the report's Config item)."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import json_arg, run, say
from noisetrain.report import config_page


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=json_arg, required=True, help="the resolved config as JSON")
    parser.add_argument("--study", required=True, help="the study's name (its results folder)")
    parser.add_argument("--yaml", required=True, help="output config (.yaml)")
    parser.add_argument("--html", required=True, help="output page for the Snakemake report (.html)")
    return parser


def main(args) -> None:
    config_page.write(args.config, args.yaml, args.html, args.study)
    say(f"config of {args.study} -> {args.yaml}, {args.html}")


if __name__ == "__main__":
    run(main, get_parser())
