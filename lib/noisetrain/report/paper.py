"""The paper's published numbers (``data/paper_values.csv``), for tables that show them beside ours."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

# Datasets on which the paper reports numbers; others (digits) get no paper column.
PAPER_DATASETS = ("mnist", "imagenet")


@lru_cache(maxsize=1)
def load_paper_values() -> pd.DataFrame:
    with resources.files("noisetrain.report").joinpath("paper_values.csv").open() as handle:
        return pd.read_csv(handle, dtype={"note": str})


def paper_value(table: str, dataset: str, model: str | None, column: str) -> float | None:
    """The paper's value of one cell, or None where the paper reports none."""
    if model is None:
        return None
    values = load_paper_values()
    hit = values[(values.table == table) & (values.dataset == dataset) & (values.model == model) & (values.column == column)]
    return float(hit.value.iloc[0]) if len(hit) else None
