"""Which tables and figures the study writes, with their captions: glue over tables/figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from noisetrain.data import datasets
from noisetrain.report import figures, tables
from noisetrain.report.paper import PAPER_DATASETS, paper_value
from noisetrain.report.records import to_frame


def specs_from_records(records: list[dict]) -> dict[str, dict]:
    """Method -> training spec, as recorded in each result's provenance."""
    return {r["method"]: r.get("provenance", {}).get("spec", {}) for r in records}


def _paper_note(dataset: str, table: str) -> str:
    if dataset in PAPER_DATASETS:
        return (f" Rows/columns marked 'paper' are the values printed in the paper's {table}; "
                "all others are computed by this pipeline.")
    return f" The paper reports no {dataset} values, so every number here is computed by this pipeline."


def _baselines_note(dataset: str, specs: dict[str, dict]) -> str:
    """Caption note on Table 11's adversarially trained baselines."""
    note = ""
    if any(spec.get("kind") in tables.PAPER_BASELINES for spec in specs.values()):
        note = (" The adversarially trained models (PGD AT, DDN AT) train from scratch with the vanilla schedule, "
                "as their authors trained them, so our Vanilla row is their own vanilla.")
    if paper_value("Table 11", dataset, tables.WONG_ROWS[-1][1], "clean") is not None:
        note += (" Wong et al.'s certified model and the paper's own vanilla models of Wong et al. and of DDN Tr "
                 "are not trained here: their rows are the paper's values only.")
    return note


def _imagenet_note(dataset: str, table: str) -> str:
    """Caption note for the tables the paper gives for ImageNet alone."""
    if dataset == "imagenet":
        return _paper_note(dataset, table)
    return f" The paper reports {table} for ImageNet only; every number here is computed by this pipeline."


def write_tables(records: list[dict], dataset: str, corruptions: list[str], method_order: list[str], out_dir: str | Path,
                 best_gnt: str | None = None) -> dict[str, pd.DataFrame]:
    """Every table of the study from the records; ``best_gnt`` is the sweep's choice (its GNT row)."""
    frame = to_frame(records)
    summary = tables.method_summary(frame)
    specs = specs_from_records(records)
    rows = tables.standard_rows(summary, specs, method_order, best_gnt)
    listed = {row.method for row in rows}
    every_row = rows + [tables.Row(m, m, None) for m in method_order if m in summary.index and m not in listed]
    measured = [r for r in every_row if "eps_gn" in summary.columns and pd.notna(summary.at[r.method, "eps_gn"])]
    attack_eps = frame[frame.metric == "adversarial"].groupby("corruption").severity.first().to_dict()
    built = {
        "table11": (
            tables.corruption_table(summary, tables.table11_rows(rows, specs), corruptions, dataset, "Table 11"),
            f"Top-1 accuracy [%] on {dataset} clean test data and on each corruption of the MNIST-C benchmark "
            "(Table 11 layout); 'C mean' averages the corruptions. GNT is shown at the sigma with the best C mean."
            + _baselines_note(dataset, specs) + _paper_note(dataset, "Table 11"),
        ),
        "summary": (
            tables.summary_table(summary, rows, dataset, "Table 11"),
            f"Top-1 accuracy [%] on {dataset}: clean, mean over corruptions, and mean without the noise "
            "category (Table 4 style)." + _paper_note(dataset, "Table 11"),
        ),
        "table16": (
            tables.depth_table(summary, specs, datasets.CHANNELS[dataset], dataset),
            f"Top-1 accuracy [%] on {dataset} of ANT 1x1 with noise generators of depth 1 to 5 (Table 16 "
            "layout); generator parameters are counted for this dataset's channels."
            + _imagenet_note(dataset, "Table 16"),
        ),
        "table2": (
            tables.epsilon_table(summary, [r for r in rows if r.method == "vanilla"], dataset, False, "Table 2"),
            "Median L2 size ε* of the smallest change along Gaussian (GN), uniform (UN) and adversarial noise "
            f"(AN, mean ± std over fresh generators) that flips the vanilla model's decision on {dataset} "
            "(Table 2 layout); lower means the noise is more severe." + _imagenet_note(dataset, "Table 2"),
        ),
        "table3": (
            tables.epsilon_table(summary, measured, dataset, True, "Table 3"),
            f"Clean accuracy [%] and median ε* along Gaussian, uniform and adversarial noise on {dataset} "
            "(Table 3 layout; the paper's rows first, then every other model whose robustness was measured, "
            "see robustness.methods); higher ε* is more robust."
            + _imagenet_note(dataset, "Table 3"),
        ),
        "adversarial": (
            tables.adversarial_table(summary, rows, dataset, attack_eps),
            f"Accuracy [%] on {dataset} under L2 DDN and L∞ PGD attacks (foolbox; Table 5 / Table 12 layout)."
            + _paper_note(dataset, "Table 12" if dataset == "mnist" else "Table 5"),
        ),
        "sigma_sweep": (
            tables.sweep_table(summary, specs),
            f"Top-1 accuracy [%] on {dataset} of every model of the sigma sweep (vanilla at sigma 0): "
            "the numbers behind Fig 6." + _paper_note(dataset, "Fig 6 (only its sigma 0.5 point, from Table 11)"),
        ),
    }
    out_dir = Path(out_dir)
    for name, (table, caption) in built.items():
        tables.write(table, caption, out_dir, name)
    return {name: table for name, (table, _) in built.items()}


def figure_sigma_sweep(records: list[dict], dataset: str, png: str | Path) -> None:
    summary = tables.method_summary(to_frame(records))
    figures.save(figures.accuracy_vs_sigma(summary, specs_from_records(records), dataset), png)
