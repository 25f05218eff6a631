"""The paper's ImageNet Tables 2, 3 and 5: median epsilon* along Gaussian, uniform and adversarial
noise and the accuracy under PGD / DDN, from the robustness records, with the paper's values below
our rows, laid out like the ImageNet-C tables of :mod:`noisetrain.report.imagenet_tables`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from noisetrain.errors import InputError
from noisetrain.report import tables
from noisetrain.report.imagenet_tables import DATASET, Measured, _printable, _text, paper_cell, rows_beside_paper


@dataclass(frozen=True)
class RobustnessTableSpec:
    paper_table: str
    columns: tuple[tuple[str, str], ...]  # (key, title); keys: clean, eps_gn, eps_un, eps_an, l2_acc, linf_acc
    what: str  # the caption's first sentence


_EPSILON = (("eps_gn", "ε*_GN"), ("eps_un", "ε*_UN"), ("eps_an", "ε*_AN"))
ROBUSTNESS_TABLES: dict[str, RobustnessTableSpec] = {
    "table2": RobustnessTableSpec(
        "Table 2",
        _EPSILON,
        "Median L2 perturbation size ε* that misclassifies an image, along Gaussian (GN), uniform (UN) and adversarial "
        "noise (AN: one generator trained from scratch against the model, as the paper's Table 2); a lower ε* is a more "
        "severe noise.",
    ),
    "table3": RobustnessTableSpec(
        "Table 3",
        (("clean", "clean"), *_EPSILON),
        "Clean top-1 accuracy [%] and median L2 perturbation size ε* that misclassifies an image, along Gaussian (GN), "
        "uniform (UN) and adversarial noise (AN: mean ± std over the fresh generators trained against the model); a "
        "higher ε* is a more robust model.",
    ),
    "table5": RobustnessTableSpec(
        "Table 5",
        (("clean", "clean"), ("l2_acc", "L2 acc"), ("linf_acc", "L∞ acc")),
        "Clean top-1 accuracy [%] and accuracy [%] under the white-box L2 DDN and L∞ PGD attacks (appendix F).",
    ),
}
ROBUSTNESS_TABLE_NAMES = tuple(ROBUSTNESS_TABLES)
# Our record's quantity behind each attack column, and the attack named in the caption.
_ATTACKS = {"l2_acc": ("l2_ddn", "DDN"), "linf_acc": ("linf_pgd", "PGD")}


class Robustness:
    """The robustness records (noise_robustness and adversarial, one of each per model) indexed for
    the tables: each model's quantities by name, the attack budgets, and the settings measured with."""

    def __init__(self, records: Sequence[Mapping]):
        self.values: dict[str, dict[str, float]] = {}
        self.budgets: dict[str, float] = {}
        self.settings: dict[str, dict] = {}
        for record in records:
            if record.get("dataset") != DATASET or record.get("metric") not in ("noise_robustness", "adversarial"):
                raise InputError(
                    f"not an ImageNet robustness record: dataset {record.get('dataset')!r}, metric "
                    f"{record.get('metric')!r} (expected {DATASET}, noise_robustness or adversarial)"
                )
            cells = self.values.setdefault(record["method"], {})
            for row in record["rows"]:
                cells[row["corruption"]] = float(row["value"])
                if record["metric"] == "adversarial" and row["severity"] is not None:
                    self.budgets.setdefault(row["corruption"], float(row["severity"]))
            self.settings.setdefault(record["metric"], record.get("provenance", {}).get("settings", {}))
        self.models = list(self.values)

    def value(self, model: str, quantity: str) -> float | None:
        return self.values.get(model, {}).get(quantity)


def _number(value: float | None) -> str | None:
    """ε* with one decimal; ∞ where more than half of the images never flipped (footnote 4)."""
    if value is None or math.isnan(value):
        return None
    return "∞" if math.isinf(value) else f"{value:.1f}"


def _our_robustness_cell(robust: Robustness, measured: Measured, model: str, key: str, paper_table: str) -> str | None:
    if key == "clean":
        try:
            return _text(measured.clean(model), False)
        except InputError:  # a model without a clean evaluation in the cache
            return None
    if key in _ATTACKS:
        value = robust.value(model, _ATTACKS[key][0])
        return None if value is None else _text(100.0 * value, False)
    if key != "eps_an":
        return _number(robust.value(model, key))
    if paper_table == "Table 2":  # one generator, as the paper's Table 2
        text = _number(robust.value(model, "eps_an_seed0"))
    else:
        mean, std = robust.value(model, "eps_an"), robust.value(model, "eps_an_std")
        text = _number(mean)
        if text is not None and std is not None and math.isfinite(mean) and math.isfinite(std):
            text = f"{text} ± {std:.1f}"
    if text is not None and tables.is_erasing({"an_erased_fraction": robust.value(model, "an_erased_fraction")}):
        text = f"{text} {tables.ERASING_MARK}"
    return text


def _paper_robustness_cell(paper_table: str, paper_model: str, key: str) -> str | None:
    value = paper_cell(paper_table, paper_model, key)
    std = paper_cell(paper_table, paper_model, "eps_an_std") if key == "eps_an" else None
    return f"{value} ± {std}" if value is not None and std is not None else value


def _attack_title(robust: Robustness, key: str, title: str) -> str:
    budget = robust.budgets.get(_ATTACKS[key][0])
    return title if budget is None else f"{title} (ε={budget:g})"


def build_robustness_table(
    name: str, records: Sequence[Mapping] | Robustness, accuracy: pd.DataFrame | Measured, models: Mapping[str, dict]
) -> pd.DataFrame:
    """Table 2, 3 or 5 (``name`` in ROBUSTNESS_TABLE_NAMES) as display text, in the layout of the
    ImageNet-C tables: each measured model's row ('ours'), the paper's row of its paper model right
    below, the paper's models this run did not measure with the paper's values only, then our models
    without a paper row. Clean accuracy comes from the prediction cache."""
    if name not in ROBUSTNESS_TABLES:
        raise InputError(f"unknown ImageNet robustness table {name!r}; known: {', '.join(ROBUSTNESS_TABLES)}")
    spec = ROBUSTNESS_TABLES[name]
    robust = records if isinstance(records, Robustness) else Robustness(records)
    measured = accuracy if isinstance(accuracy, Measured) else Measured(accuracy)
    ours = [m for m in models if m in robust.models] + [m for m in robust.models if m not in models]
    keys = [key for key, _ in spec.columns]

    rows = rows_beside_paper(
        spec.paper_table, ours, models,
        lambda model: {key: _our_robustness_cell(robust, measured, model, key, spec.paper_table) for key in keys},
        lambda paper_model: {key: _paper_robustness_cell(spec.paper_table, paper_model, key) for key in keys},
    )
    titles = {key: _attack_title(robust, key, title) if key in _ATTACKS else title for key, title in spec.columns}
    return pd.DataFrame(rows, columns=["model", "source", *keys]).rename(columns=titles)


def robustness_caption(
    name: str, robust: Robustness, measured: Measured, models: Mapping[str, dict], table: pd.DataFrame | None = None
) -> str:
    """What table ``name`` shows and how our numbers were measured (images, generators, attacks)."""
    spec = ROBUSTNESS_TABLES[name]
    text = f"{spec.what} Layout of the paper's {spec.paper_table}."
    noise = robust.settings.get("noise_robustness", {}).get("robustness", {})
    attacks = robust.settings.get("adversarial", {}).get("attacks", {})
    if name in ("table2", "table3") and noise:
        text += (
            f" Ours: medians over {noise['images']} ImageNet val images (stratified by class, fixed seed; 224x224 centre "
            f"crops), each distance found to a relative precision of {noise['rel_tol']:g}; AN: {noise['an_seeds']} "
            f"generator(s) of 1x1 convolutions, each trained from scratch on {noise['images']} training images for "
            f"{noise['an_steps']} Adam steps (lr {noise['an_lr']:g}, batch {noise['an_batch_size']}) at L2 size "
            f"{noise['an_eps']:g}; ∞: more than half of the images never change class along the noise."
        )
    if name == "table5" and attacks:
        pgd, ddn = attacks.get("linf_pgd", {}), attacks.get("l2_ddn", {})
        text += (
            f" Ours: {attacks['images']} of the robustness set's val images; PGD {pgd.get('steps')} steps of "
            f"{pgd.get('step_size', 0):g} within L∞ {pgd.get('epsilon', 0):g}; DDN {ddn.get('steps')} steps, γ "
            f"{ddn.get('gamma', 0):g}, L2 budget {ddn.get('epsilon', 0):g} (appendix F: 0.125; the paper's Table 5 "
            "prints 0.12)."
        )
    if any(key == "clean" for key, _ in spec.columns):
        listed = [m for m in robust.models if m in measured.models]
        counts = measured.images(listed)
        over = f" over {counts[0]:,} val images" if counts and counts[0] == counts[1] else ""
        text += f" Clean: top-1 of the evaluation's prediction cache{over}."
    text += (
        f" Source 'ours': measured by this pipeline; 'paper ({spec.paper_table})': the value printed in the paper, right "
        "below our model(s) of that paper model; 'not evaluated here': a model of the paper's table this run did not "
        "measure (the paper's values only)."
    )
    if table is not None and "ε*_AN" in table.columns:
        text += tables.erasing_caption(table)
    return text


def write_robustness_tables(
    records: Sequence[Mapping], accuracy: pd.DataFrame, models: Mapping[str, dict], out_dir: str | Path
) -> dict[str, pd.DataFrame]:
    """Tables 2, 3 and 5 as ``out_dir/<name>.md|.tex|.html`` (names: ROBUSTNESS_TABLE_NAMES)."""
    robust, measured = Robustness(records), Measured(accuracy)
    built = {}
    for name in ROBUSTNESS_TABLES:
        table = build_robustness_table(name, robust, measured, models)
        tables.write(_printable(table), robustness_caption(name, robust, measured, models, table), out_dir, name)
        built[name] = table
    return built
