"""The paper's robustness tables for every dataset: Tables 2 and 3 (median epsilon* along Gaussian,
uniform and adversarial noise) and the accuracy under the PGD / DDN attacks (ImageNet's Table 5,
MNIST's Table 12), from the robustness records, laid out like the ImageNet-C tables of
:mod:`noisetrain.report.paper_tables`: each measured model's row ('ours'), the paper's row of its
paper model right below where the paper reports the dataset, the paper's models this run did not
measure with the paper's values only, then our models without a paper row.

Clean accuracy comes from the caller (``Clean``): on image folders the prediction cache's, on arrays
the clean records' (a model trained with several seeds: the mean over them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from noisetrain.errors import InputError
from noisetrain.report import outputs, tables
from noisetrain.report.paper import paper_cell, paper_models
from noisetrain.report.paper_tables import Measured, cell_text, printable, rows_beside_paper


@dataclass(frozen=True)
class RobustnessTableSpec:
    paper_table: str
    columns: tuple[tuple[str, str], ...]  # (key, title); keys: clean, eps_gn, eps_un, eps_an, l2_acc, linf_acc
    what: str  # the caption's first sentence
    vanilla_only: bool = False  # the paper's table of the vanilla model (Table 2)


@dataclass(frozen=True)
class Clean:
    """Clean top-1 accuracy [%] by model, and where it comes from (a caption sentence)."""

    accuracy: Mapping[str, float]
    source: str


_EPSILON = (("eps_gn", "ε*_GN"), ("eps_un", "ε*_UN"), ("eps_an", "ε*_AN"))
_ATTACK_COLUMNS = (("clean", "clean"), ("l2_acc", "L2 acc"), ("linf_acc", "L∞ acc"))
_ATTACK_WHAT = "Clean top-1 accuracy [%] and accuracy [%] under the white-box L2 DDN and L∞ PGD attacks (foolbox; {appendix})."
ROBUSTNESS_TABLES: dict[str, RobustnessTableSpec] = {
    "table2": RobustnessTableSpec(
        "Table 2",
        _EPSILON,
        "Median L2 perturbation size ε* that misclassifies an image, along Gaussian (GN), uniform (UN) and adversarial "
        "noise (AN: one generator trained from scratch against the model, as the paper's Table 2) for the vanilla model; "
        "a lower ε* is a more severe noise.",
        vanilla_only=True,
    ),
    "table3": RobustnessTableSpec(
        "Table 3",
        (("clean", "clean"), *_EPSILON),
        "Clean top-1 accuracy [%] and median L2 perturbation size ε* that misclassifies an image, along Gaussian (GN), "
        "uniform (UN) and adversarial noise (AN: mean ± std over the fresh generators trained against the model); a "
        "higher ε* is a more robust model.",
    ),
    "table5": RobustnessTableSpec("Table 5", _ATTACK_COLUMNS, _ATTACK_WHAT.format(appendix="appendix F")),
    "table12": RobustnessTableSpec("Table 12", _ATTACK_COLUMNS, _ATTACK_WHAT.format(appendix="appendix E")),
}
# Our record's quantity behind each attack column, and the attack named in the caption.
_ATTACKS = {"l2_acc": ("l2_ddn", "DDN"), "linf_acc": ("linf_pgd", "PGD")}


def table_names(image_folders: bool) -> tuple[str, ...]:
    """The robustness tables of a study of one data form (image folders or not)."""
    return outputs.ROBUSTNESS_TABLES[image_folders]


class Robustness:
    """The robustness records (noise_robustness and adversarial, one of each per model) indexed for
    the tables: each model's quantities by name, the attack budgets, and the settings measured with."""

    def __init__(self, records: Sequence[Mapping], dataset: str):
        self.dataset = dataset
        self.values: dict[str, dict[str, float]] = {}
        self.budgets: dict[str, float] = {}
        self.settings: dict[str, dict] = {}
        for record in records:
            if record.get("dataset") != dataset or record.get("metric") not in ("noise_robustness", "adversarial"):
                raise InputError(
                    f"not a {dataset} robustness record: dataset {record.get('dataset')!r}, metric "
                    f"{record.get('metric')!r} (expected {dataset}, noise_robustness or adversarial)"
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


def clean_from_cache(accuracy: pd.DataFrame) -> Clean:
    """Clean top-1 of every model of the accuracy table (collect_accuracy: the prediction cache's)."""
    clean = Measured(accuracy).frame.query("corruption == 'clean'")
    counts = clean["images"].dropna().unique() if "images" in clean.columns else []
    over = f" over {int(counts[0]):,} val images" if len(counts) == 1 else ""
    return Clean(dict(zip(clean.model, clean.top1.astype(float))), f"top-1 of the evaluation's prediction cache{over}")


def _our_robustness_cell(robust: Robustness, clean: Clean, model: str, key: str, paper_table: str) -> str | None:
    if key == "clean":
        value = clean.accuracy.get(model)  # None: a model without a clean evaluation
        return None if value is None else cell_text(value, False)
    if key in _ATTACKS:
        value = robust.value(model, _ATTACKS[key][0])
        return None if value is None else cell_text(100.0 * value, False)
    if key != "eps_an":
        return _number(robust.value(model, key))
    if paper_table == "Table 2":  # one generator, as the paper's Table 2
        text = _number(robust.value(model, "eps_an_seed0"))
    else:
        mean, std = robust.value(model, "eps_an"), robust.value(model, "eps_an_std")
        text = _number(mean)
        if text is not None and std is not None and math.isfinite(mean) and math.isfinite(std):
            text = f"{text} ± {std:.1f}"
    if text is not None and tables.an_generators_erase(robust.value(model, "an_erased_fraction")):
        text = f"{text} {tables.ERASING_MARK}"
    return text


def _paper_robustness_cell(paper_table: str, dataset: str, paper_model: str, key: str) -> str | None:
    value = paper_cell(paper_table, dataset, paper_model, key)
    std = paper_cell(paper_table, dataset, paper_model, "eps_an_std") if key == "eps_an" else None
    return f"{value} ± {std}" if value is not None and std is not None else value


def _attack_title(robust: Robustness, key: str, title: str) -> str:
    budget = robust.budgets.get(_ATTACKS[key][0])
    return title if budget is None else f"{title} (ε={budget:g})"


def listed_models(name: str, robust: Robustness, models: Mapping[str, dict]) -> list[str]:
    """The measured models table ``name`` lists, in the models' order: Table 2 the study's vanilla
    model and those of the paper's Table 2 (its vanilla), the others every measured model."""
    spec = ROBUSTNESS_TABLES[name]
    ours = [m for m in models if m in robust.models] + [m for m in robust.models if m not in models]
    if spec.vanilla_only:
        rows = paper_models(spec.paper_table, robust.dataset)
        ours = [m for m in ours if m == "vanilla" or (models.get(m) or {}).get("paper_model") in rows]
    return ours


def build_robustness_table(name: str, robust: Robustness, clean: Clean, models: Mapping[str, dict]) -> pd.DataFrame:
    """One robustness table (``name`` in ROBUSTNESS_TABLES) as display text; ``models``: name ->
    {label, paper_model}, in the order of the rows."""
    if name not in ROBUSTNESS_TABLES:
        raise InputError(f"unknown robustness table {name!r}; known: {', '.join(ROBUSTNESS_TABLES)}")
    spec = ROBUSTNESS_TABLES[name]
    keys = [key for key, _ in spec.columns]
    rows = rows_beside_paper(
        spec.paper_table, listed_models(name, robust, models), models,
        lambda model: {key: _our_robustness_cell(robust, clean, model, key, spec.paper_table) for key in keys},
        lambda paper_model: {key: _paper_robustness_cell(spec.paper_table, robust.dataset, paper_model, key) for key in keys},
        robust.dataset,
    )
    titles = {key: _attack_title(robust, key, title) if key in _ATTACKS else title for key, title in spec.columns}
    return pd.DataFrame(rows, columns=["model", "source", *keys]).rename(columns=titles)


def _images_measured(robust: Robustness, image_folders: bool, images: int) -> tuple[str, str]:
    """What the medians are over, and what the AN generators train on."""
    if image_folders:
        return ("ImageNet val images (stratified by class, fixed seed; 224x224 centre crops)",
                f"on {images} training images")
    return f"{robust.dataset} test images (stratified by class, fixed seed)", "on the training set"


def robustness_caption(name: str, robust: Robustness, clean: Clean, image_folders: bool,
                       table: pd.DataFrame | None = None) -> str:
    """What table ``name`` shows and how our numbers were measured (images, generators, attacks)."""
    spec = ROBUSTNESS_TABLES[name]
    text = f"{spec.what} Layout of the paper's {spec.paper_table}."
    noise = robust.settings.get("noise_robustness", {}).get("robustness", {})
    attacks = robust.settings.get("adversarial", {}).get("attacks", {})
    if name in ("table2", "table3") and noise:
        over, trained_on = _images_measured(robust, image_folders, noise["images"])
        text += (
            f" Ours: medians over {noise['images']} {over}, each distance found to a relative precision of "
            f"{noise['rel_tol']:g}; AN: {noise['an_seeds']} generator(s) of 1x1 convolutions, each trained from scratch "
            f"{trained_on} for {noise['an_steps']} Adam steps (lr {noise['an_lr']:g}, batch "
            f"{noise['an_batch_size']}) at L2 size {noise['an_eps']:g}; ∞: more than half of the images never change "
            "class along the noise."
        )
    if spec.paper_table in ("Table 5", "Table 12") and attacks:
        pgd, ddn = attacks.get("linf_pgd", {}), attacks.get("l2_ddn", {})
        attacked = "of the robustness set's val images" if image_folders else f"{robust.dataset} test images"
        text += (
            f" Ours: {attacks['images']} {attacked}; PGD {pgd.get('steps')} steps of {pgd.get('step_size', 0):g} within L∞ "
            f"{pgd.get('epsilon', 0):g}; DDN {ddn.get('steps')} steps, γ {ddn.get('gamma', 0):g}, L2 budget "
            f"{ddn.get('epsilon', 0):g}"
            + (" (appendix F: 0.125; the paper's Table 5 prints 0.12)." if spec.paper_table == "Table 5" else ".")
        )
    if any(key == "clean" for key, _ in spec.columns):
        text += f" Clean: {clean.source}."
    if paper_models(spec.paper_table, robust.dataset):
        text += (
            f" Source 'ours': measured by this pipeline; 'paper ({spec.paper_table})': the value printed in the paper, "
            "right below our model(s) of that paper model; 'not evaluated here': a model of the paper's table this run "
            "did not measure (the paper's values only)."
        )
    else:
        text += f" The paper reports no {robust.dataset} values here: every number is computed by this pipeline."
    if table is not None and "ε*_AN" in table.columns:
        text += tables.erasing_caption(table)
    return text


def write_robustness_tables(records: Sequence[Mapping], dataset: str, clean: Clean, models: Mapping[str, dict],
                            out_dir: str | Path, *, image_folders: bool) -> dict[str, pd.DataFrame]:
    """The robustness tables of a study (``table_names(image_folders)``) as ``out_dir/<name>.md|.tex|.html``."""
    robust = Robustness(records, dataset)
    built = {}
    for name in table_names(image_folders):
        table = build_robustness_table(name, robust, clean, models)
        tables.write(printable(table), robustness_caption(name, robust, clean, image_folders, table), out_dir, name)
        built[name] = table
    return built
