"""The paper's published numbers (``paper_values.csv``): the one reader every table uses.

Each value is kept as the paper prints it (its precision), bracketed where the paper brackets it
(``paper_cell``), and as a number where a figure or a test computes with it (``paper_value``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

# Datasets on which the paper reports numbers; others (digits) get no paper column.
PAPER_DATASETS = ("mnist", "imagenet")
BRACKET_NOTE = "in brackets in the paper"


@lru_cache(maxsize=1)
def _printed() -> pd.DataFrame:
    """paper_values.csv with every value as printed (text)."""
    with resources.files("noisetrain.report").joinpath("paper_values.csv").open() as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)


def load_paper_values() -> pd.DataFrame:
    """Every published value, as numbers (``value`` a float)."""
    return _printed().assign(value=lambda frame: frame.value.astype(float))


@lru_cache(maxsize=1)
def _index() -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str, str, str], tuple[str, bool]]]:
    """The paper's models per (table, dataset) in the order of its rows, and each cell: (printed, bracketed)."""
    order: dict[tuple[str, str], list[str]] = {}
    cells: dict[tuple[str, str, str, str], tuple[str, bool]] = {}
    columns = ["table", "dataset", "model", "column", "value", "note"]
    for table, dataset, model, column, value, note in _printed()[columns].itertuples(index=False):
        models = order.setdefault((table, dataset), [])
        if model not in models:
            models.append(model)
        cells[(table, dataset, model, column)] = (value, BRACKET_NOTE in note)
    return order, cells


def paper_models(table: str, dataset: str) -> list[str]:
    """The paper's models of one table on one dataset, in the order of its rows."""
    return list(_index()[0].get((table, dataset), []))


def paper_cell(table: str, dataset: str, model: str | None, column: str) -> str | None:
    """The paper's value as printed (bracketed where the paper brackets it), or None."""
    found = _index()[1].get((table, dataset, model, column))
    if found is None:
        return None
    value, bracketed = found
    return f"({value})" if bracketed else value


def paper_value(table: str, dataset: str, model: str | None, column: str) -> float | None:
    """The paper's value of one cell as a number, or None where the paper reports none."""
    found = _index()[1].get((table, dataset, model, column))
    return None if found is None else float(found[0])
