"""The tidy record format: one JSON file per (dataset, method, metric), read into one DataFrame.

A record holds rows ``{corruption, category, severity, value}`` (a clean metric has one row with
corruption 'clean') and the provenance of the number: config hash, git commit, seed, versions.
Tables and figures are built from these frames alone.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from . import __version__
from .config import REPO_ROOT, spec_hash

COLUMNS = ("dataset", "method", "metric", "corruption", "category", "severity", "value")


def git_commit() -> str:
    """Commit of the code that produced a result ('+dirty' when uncommitted changes exist)."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "lib"], capture_output=True, text=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(spec: dict) -> dict:
    import torch
    import torchvision

    return {
        "config_hash": spec_hash(spec),
        "spec": spec,
        "seed": spec.get("seed"),
        "git_commit": git_commit(),
        "versions": {"noisetrain": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
                     "python": platform.python_version()},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def make_record(dataset: str, method: str, metric: str, rows: list[dict], spec: dict) -> dict:
    for row in rows:
        missing = {"corruption", "category", "severity", "value"} - set(row)
        if missing:
            raise ValueError(f"record row {row} lacks {sorted(missing)}")
    return {"dataset": dataset, "method": method, "metric": metric, "rows": rows, "provenance": provenance(spec)}


def write_record(record: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
    tmp.replace(path)


def read_record(path: str | Path) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a readable result record ({exc}); delete it and rerun its evaluation") from exc
    for key in ("dataset", "method", "metric", "rows"):
        if key not in record:
            raise ValueError(f"{path} is not a result record: it lacks '{key}'")
    return record


def to_frame(records: list[dict]) -> pd.DataFrame:
    rows = [
        {"dataset": r["dataset"], "method": r["method"], "metric": r["metric"], **row}
        for r in records
        for row in r["rows"]
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def load_frame(paths) -> pd.DataFrame:
    return to_frame([read_record(path) for path in paths])
