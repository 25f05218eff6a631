"""Which tables and figures the study writes, with their captions: glue over tables/figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import figures, tables
from .paper import PAPER_DATASETS
from .results import to_frame

TABLE_NAMES = ("table11", "summary", "sigma_sweep")


def specs_from_records(records: list[dict]) -> dict[str, dict]:
    """Method -> training spec, as recorded in each result's provenance."""
    return {r["method"]: r.get("provenance", {}).get("spec", {}) for r in records}


def _paper_note(dataset: str, table: str) -> str:
    if dataset in PAPER_DATASETS:
        return f" Rows/columns marked 'paper' are the values printed in the paper's {table}; all others are computed by this pipeline."
    return f" The paper reports no {dataset} values, so every number here is computed by this pipeline."


def write_tables(records: list[dict], dataset: str, corruptions: list[str], method_order: list[str], out_dir: str | Path) -> dict[str, pd.DataFrame]:
    summary = tables.method_summary(to_frame(records))
    specs = specs_from_records(records)
    rows = tables.standard_rows(summary, specs, method_order)
    built = {
        "table11": (
            tables.corruption_table(summary, rows, corruptions, dataset, "Table 11"),
            f"Top-1 accuracy [%] on {dataset} clean test data and on each corruption of the MNIST-C benchmark "
            "(Table 11 layout); 'C mean' averages the corruptions. GNT is shown at the sigma with the best C mean."
            + _paper_note(dataset, "Table 11"),
        ),
        "summary": (
            tables.summary_table(summary, rows, dataset, "Table 11"),
            f"Top-1 accuracy [%] on {dataset}: clean, mean over corruptions, and mean without the noise "
            "category (Table 4 style)." + _paper_note(dataset, "Table 11"),
        ),
        "sigma_sweep": (
            tables.sweep_table(summary, specs),
            f"Top-1 accuracy [%] on {dataset} of every model of the sigma sweep (vanilla at sigma 0): "
            "the numbers behind Fig 6." + _paper_note(dataset, "Fig 6 (only its sigma 0.5 point, from Table 11)"),
        ),
    }
    out_dir = Path(out_dir)
    for name, (table, caption) in built.items():
        tables.write(table, caption, out_dir / f"{name}.md", out_dir / f"{name}.tex")
    return {name: table for name, (table, _) in built.items()}


def figure_sigma_sweep(records: list[dict], dataset: str, png: str | Path) -> None:
    summary = tables.method_summary(to_frame(records))
    figures.save(figures.accuracy_vs_sigma(summary, specs_from_records(records), dataset), png)
