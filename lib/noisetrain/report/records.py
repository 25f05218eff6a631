"""The tidy record format: one JSON file per (dataset, method, metric), read into one DataFrame.

A record holds rows ``{corruption, category, severity, value}`` (a clean metric has one row with
corruption 'clean') and the provenance of the number: config hash, git commit, seed, versions.
Tables and figures are built from these frames alone.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from noisetrain import __version__
from noisetrain.config_load import REPO_ROOT
from noisetrain.config_names import spec_hash
from noisetrain.errors import DataError, InputError
from noisetrain.storage import write_json

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("dataset", "method", "metric", "corruption", "category", "severity", "value")


def git_commit() -> str:
    """Commit of the code that produced a result ('+dirty' when uncommitted changes exist)."""
    try:
        git = ["git", "-C", str(REPO_ROOT)]
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "lib"], capture_output=True, text=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def library_version(name: str) -> str:
    """A library's version without importing it (importing torchvision costs seconds a job); the
    imported module's own string where the job has it (torch's names its CUDA build)."""
    module = sys.modules.get(name)
    if module is not None:
        return module.__version__
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def provenance(model_info: dict, settings: dict | None = None) -> dict:
    """What produced a number: the model's training spec and identity (data and initial-model
    hashes, code version, as saved in the model file), the measurement's own settings, the code
    and library versions. ``config_hash`` covers everything that shaped the number, so a stale
    and a fresh result can be told apart."""
    model_info = dict(model_info)
    spec = model_info.pop("spec", {})
    shaped_by = {"spec": spec, "model": model_info, "settings": settings or {}, "code_version": __version__}
    return {
        "config_hash": spec_hash(shaped_by),
        "spec": spec,
        "model": model_info,
        "settings": settings or {},
        "seed": spec.get("seed"),
        "git_commit": git_commit(),
        "versions": {"noisetrain": __version__, "torch": library_version("torch"),
                     "torchvision": library_version("torchvision"), "python": platform.python_version()},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def make_record(dataset: str, method: str, metric: str, rows: list[dict], model_info: dict,
                settings: dict | None = None) -> dict:
    for row in rows:
        missing = {"corruption", "category", "severity", "value"} - set(row)
        if missing:
            raise InputError(f"record row {row} lacks {sorted(missing)}")
    return {"dataset": dataset, "method": method, "metric": metric, "rows": rows,
            "provenance": provenance(model_info, settings)}


def write_record(record: dict, path: str | Path) -> None:
    write_json(record, path)


def read_record(path: str | Path) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not a readable result record ({exc}); delete it and rerun its evaluation") from exc
    for key in ("dataset", "method", "metric", "rows"):
        if key not in record:
            raise DataError(f"{path} is not a result record: it lacks '{key}'; delete it and rerun its evaluation")
    return record


def to_frame(records: list[dict]) -> pd.DataFrame:
    import pandas as pd  # here: only the table jobs need it; every job that writes records saves 0.3 s

    rows = [
        {"dataset": r["dataset"], "method": r["method"], "metric": r["metric"], **row}
        for r in records
        for row in r["rows"]
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def accuracy_frame(records: list[dict]) -> pd.DataFrame:
    """The clean and corruptions records as the accuracy table of an image-folder study (columns
    ``model, corruption, severity, top1, top5, category``; top-1 in percent, the clean set at
    severity 0; no top-5: the arrays' records keep top-1), so that every table reads one format."""
    import pandas as pd

    rows = [
        {"model": r["method"], "corruption": row["corruption"], "severity": row["severity"] or 0,
         "top1": 100.0 * row["value"], "top5": float("nan"), "category": row["category"]}
        for r in records
        if r["metric"] in ("clean", "corruptions")
        for row in r["rows"]
        if row["category"] != "aggregate"
    ]
    return pd.DataFrame(rows, columns=["model", "corruption", "severity", "top1", "top5", "category"])
