"""The paper's tables, built from the tidy result frame alone (markdown and LaTeX via tabulate).

Accuracies are stored as fractions and shown in percent. Where the dataset is one the paper
reports on, each row of ours is followed by the paper's row (Table 11) or each column by the
paper's column (summary), with the paper's table named in the caption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from .paper import PAPER_DATASETS, paper_value
from .selection import best_gnt, sweep_sigmas

SUMMARY_COLUMNS = {"clean": "clean", "c_mean": "C mean", "c_mean_without_noise": "C w/o noise"}
LABELS = {"vanilla": "Vanilla", "gnt_mult": "GNT mult", "speckle": "Speckle"}


@dataclass(frozen=True)
class Row:
    label: str  # shown in the table
    method: str  # our method name
    paper_model: str | None  # the paper's model whose numbers sit beside it, if any


def method_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per method: clean, c_mean, c_mean_without_noise and each corruption (mean over severities)."""
    clean = frame[frame.metric == "clean"].groupby("method").value.mean().rename("clean")
    corrupt = frame[frame.metric == "corruptions"]
    per_corruption = corrupt[corrupt.category != "aggregate"].groupby(["method", "corruption"]).value.mean().unstack()
    aggregates = corrupt[corrupt.category == "aggregate"].pivot_table(index="method", columns="corruption", values="value")
    aggregates = aggregates.rename(columns={"mean": "c_mean", "mean_without_noise": "c_mean_without_noise"})
    return pd.concat([clean, aggregates, per_corruption], axis=1)


def standard_rows(summary: pd.DataFrame, specs: dict[str, dict], extra: list[str]) -> list[Row]:
    """Vanilla, GNT at the best sigma, then the other named methods in config order."""
    sigmas = sweep_sigmas(specs)
    rows = [Row("Vanilla", "vanilla", "vanilla")] if "vanilla" in summary.index else []
    best = best_gnt(summary, sigmas)
    if best:
        rows.append(Row(f"GNT σ={sigmas[best]:g} (best)", best, "gnt_s0.5"))
    for method in extra:
        if method in summary.index and method not in sigmas and method != "vanilla":
            rows.append(Row(LABELS.get(method, method), method, method))
    return rows


def _percent(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else 100.0 * value


def corruption_table(summary: pd.DataFrame, rows: list[Row], corruptions: list[str], dataset: str, paper_table: str) -> pd.DataFrame:
    """Table 11's layout: clean, C mean and every corruption, one row per model (and the paper's rows)."""
    columns = ["clean", "c_mean", *corruptions]
    records = []
    for row in rows:
        records.append({"model": row.label, "source": "ours",
                        **{c: _percent(summary.at[row.method, c]) if c in summary.columns else None for c in columns}})
        if dataset in PAPER_DATASETS:
            paper = {c: paper_value(paper_table, dataset, row.paper_model, c) for c in columns}
            if any(v is not None for v in paper.values()):
                records.append({"model": row.label, "source": f"paper ({paper_table})", **paper})
    return pd.DataFrame(records, columns=["model", "source", *columns]).rename(columns={"c_mean": "C mean"})


def summary_table(summary: pd.DataFrame, rows: list[Row], dataset: str, paper_table: str) -> pd.DataFrame:
    """Table 4 style: clean, C mean, C without noise; a paper column beside each where one exists."""
    with_paper = dataset in PAPER_DATASETS
    records = []
    for row in rows:
        record = {"model": row.label}
        for key, title in SUMMARY_COLUMNS.items():
            record[title] = _percent(summary.at[row.method, key]) if key in summary.columns else None
            if with_paper:
                record[f"{title} (paper)"] = paper_value(paper_table, dataset, row.paper_model, key)
        records.append(record)
    return pd.DataFrame(records)


def sweep_table(summary: pd.DataFrame, specs: dict[str, dict]) -> pd.DataFrame:
    """Every point of the sigma sweep (vanilla as sigma 0): the numbers behind Fig 6."""
    points = sorted((s, m) for m, s in sweep_sigmas(specs).items() if m in summary.index)
    if "vanilla" in summary.index:
        points.insert(0, (0.0, "vanilla"))
    return pd.DataFrame(
        [{"sigma": s, "model": m, **{title: _percent(summary.at[m, key]) for key, title in SUMMARY_COLUMNS.items() if key in summary.columns}}
         for s, m in points]
    )


def render(table: pd.DataFrame, caption: str) -> tuple[str, str]:
    """(markdown, LaTeX) of a table; missing cells show as a dash."""
    headers = list(table.columns)
    body = table.astype(object).where(table.notna(), None).values.tolist()
    options = dict(headers=headers, floatfmt=".1f", missingval="–")
    markdown = f"{caption}\n\n{tabulate(body, tablefmt='github', **options)}\n"
    latex = (
        "\\begin{table}[t]\n\\centering\n\\small\n"
        + tabulate(body, tablefmt="latex_booktabs", **{**options, "missingval": "--"})
        + f"\n\\caption{{{latex_escape(caption)}}}\n\\end{{table}}\n"
    )
    return markdown, latex


def latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("σ", r"$\sigma$")):
        text = text.replace(char, escaped)
    return text


def write(table: pd.DataFrame, caption: str, markdown_path: str | Path, latex_path: str | Path) -> None:
    markdown, latex = render(table, caption)
    for path, text in ((markdown_path, markdown), (latex_path, latex)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
