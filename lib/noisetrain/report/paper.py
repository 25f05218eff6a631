"""The paper's published numbers (``paper_values.csv``): the one reader every table uses.

Each value is kept as the paper prints it (its precision), bracketed where the paper brackets it
(``paper_cell``), and as a number where a figure or a test computes with it (``paper_value``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

BRACKET_NOTE = "in brackets in the paper"
# The paper's printed name of each of its models (the ``model`` ids of paper_values.csv), by dataset.
PAPER_LABELS = {
    "imagenet": {
        "vanilla": "Vanilla RN50",
        "shift_inv": "Shift Inv [Zhang, 2019]",
        "patch_gn": "Patch GN [Lopes et al., 2019]",
        "sin_in": "SIN+IN [Geirhos et al., 2019]",
        "augmix": "AugMix [Hendrycks et al., 2020]",
        "speckle": "Speckle",
        "gnt_mult": "GNT mult",
        "gnt_s0.5": "GNT σ=0.5",
        "gnt_s0.5_sin": "GNT σ=0.5 + SIN",
        "ant1x1": "ANT 1x1",
        "ant1x1_sin": "ANT 1x1 + SIN",
        "ant1x1_noreplay": "ANT 1x1 w/o EP",
        "ant3x3": "ANT 3x3",
        "ant3x3_sin": "ANT 3x3 + SIN",
        "shafahi_at": "AT RN50 [Shafahi et al., 2019]",
        "vanilla_rn152": "Vanilla RN152",
        "at_rn152_denoise": "AT RN152 + denoising [Xie et al., 2019b]",
        "vanilla_alexnet": "Vanilla AlexNet",
        "uat_alexnet": "UAT AlexNet [Shafahi et al., 2018]",
        "ford_inception_v3_vanilla": "Vanilla InceptionV3 [Ford et al., 2019]",
        "ford_inception_v3_gn0.4": "Gaussian (σ=0.4) InceptionV3 [Ford et al., 2019]",
        "vanilla_inception_v3": "Vanilla InceptionV3",
        "gnt_s0.4_inception_v3": "GNT σ=0.4 InceptionV3",
        "gnt_s0.5_inception_v3": "GNT σ=0.5 InceptionV3",
        "vanilla_densenet121": "Vanilla DN121",
        "ant1x1_densenet121": "ANT 1x1 DN121",
        **{f"ant1x1_depth{depth}": f"ANT 1x1, generator depth {depth}" for depth in range(1, 6)},
    },
    "mnist": {
        "vanilla": "Vanilla",
        "gnt_s0.5": "GNT σ=0.5",
        "ant1x1": "ANT 1x1",
        "vanilla_madry_baseline": "Vanilla of [Madry et al., 2017]",
        "madry_pgd_at": "[Madry et al., 2017]",
        "vanilla_wong_baseline": "Vanilla of [Wong et al., 2018]",
        "wong_certified": "[Wong et al., 2018] (certified)",
        "vanilla_ddn_baseline": "Vanilla of DDN Tr [Rony et al., 2019]",
        "rony_ddn_at": "DDN Tr [Rony et al., 2019]",
    },
}


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


def paper_label(model: str, dataset: str) -> str:
    """The paper's printed name of one of its models (its id where none is recorded)."""
    return PAPER_LABELS.get(dataset, {}).get(model, model)
