"""The builder of every paper table (:func:`spec_table`: a :class:`TableSpec` over the accuracy
frame, ours beside the paper's values) and the specs of the ImageNet-C tables (1, 4, 8, 9, 10, 13,
14, 15, 16). The small datasets' Table 11 and 16 (``study_tables``) and every dataset's robustness
tables (``robustness_tables``) are built by the same function.

Input is the tidy accuracy frame (one row per model, corruption and severity: ``model, corruption,
severity, top1, top5, images``; ``corruption == "clean"`` with severity 0 for the clean set; top-1 /
top-5 in percent): the prediction cache's (collect_accuracy) or the arrays' records
(``records.accuracy_frame``), read over a :class:`Benchmark` (ImageNet-C's, or a small dataset's own
corruptions); and the models dict (``name -> {"label", "paper_model", "trained_on", "replicates", ...}``).

Every table is a DataFrame of display text: a ``model`` column, a ``source`` column and one column
per quantity. ``source`` is ``"ours"`` for a number computed here, ``"paper (Table N)"`` for the
paper's row of the same model printed right below ours, and ``"paper (Table N), not evaluated
here"`` for a model of the paper's table this run did not evaluate. Ours have one decimal, the
paper's the precision it printed (Tables 9 and 10: integers). Missing cells are None (NaN in the
DataFrame) and render as a dash.

Which models a table lists: every evaluated model whose ``paper_model`` is one of the table's
paper rows; Tables 4, 9 and 10 list every evaluated model except those the paper reports only in
another ImageNet-C table (adversarial training: 1 / 8, InceptionV3: 13 / 14, DenseNet121: 15),
which appear there. The paper's rows follow the paper's order; our models without a paper row close
the table.

Brackets (the paper's Table 4 convention): an average over a set of test corruptions that contains
one the model was trained on (its ``trained_on``) is printed in brackets, as are the paper's values
it printed in brackets.

Partial evaluations (some corruptions, some severities): a per-corruption cell averages the
severities evaluated for its model and corruption (its CE sums the model's and the reference's
errors over them); a corruption not evaluated is a missing cell. A mean over corruptions needs every
benchmark corruption it averages (all 15; the 12 without noise for the "w/o noise" means), the mCE
all 15 CEs: otherwise it is missing. The caption says what was evaluated where it is less than the
paper's protocol (15 corruptions at 5 severities).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from noisetrain.errors import InputError
from noisetrain.measure.corruption_error import (
    BENCHMARK_CORRUPTIONS,
    UndefinedCorruptionError,
    benchmark_mean,
    corruption_error,
    mean_corruption_error,
    reference_from_model,
)
from noisetrain.report import paper, tables

DATASET = "imagenet"
SEVERITIES = (1, 2, 3, 4, 5)
NOISE_CORRUPTIONS = BENCHMARK_CORRUPTIONS[:3]
WITHOUT_NOISE = BENCHMARK_CORRUPTIONS[3:]
VALIDATION_IMAGES = 50_000
REQUIRED_COLUMNS = ("model", "corruption", "severity", "top1", "top5")

# Column titles of the per-corruption tables, as the paper abbreviates them.
SHORT_NAMES = {
    "gaussian_noise": "Gauss",
    "shot_noise": "Shot",
    "impulse_noise": "Impulse",
    "defocus_blur": "Defocus",
    "glass_blur": "Glass",
    "motion_blur": "Motion",
    "zoom_blur": "Zoom",
    "snow": "Snow",
    "frost": "Frost",
    "fog": "Fog",
    "brightness": "Bright",
    "contrast": "Contrast",
    "elastic_transform": "Elastic",
    "pixelate": "Pixel",
    "jpeg_compression": "JPEG",
}


@dataclass(frozen=True)
class Benchmark:
    """The corruptions a study's means average (all, and those outside the noise category) and the
    severities of its protocol: ImageNet-C's 15 at five severities, or a small dataset's own."""

    names: tuple[str, ...]
    without_noise: tuple[str, ...]
    severities: tuple[int, ...]

    @property
    def aggregates(self) -> dict[str, tuple[tuple[str, ...], str]]:
        """Averages: key -> (the corruptions averaged, the accuracy averaged). Each corruption is first
        averaged over its severities (those evaluated), then the corruptions are averaged."""
        return {
            "c_mean": (self.names, "top1"),
            "c_mean_top5": (self.names, "top5"),
            "c_mean_without_noise": (self.without_noise, "top1"),
            "c_mean_without_noise_top5": (self.without_noise, "top5"),
            "mce": (self.names, "top1"),
        }


IMAGENET_C = Benchmark(BENCHMARK_CORRUPTIONS, WITHOUT_NOISE, SEVERITIES)
AGGREGATES = IMAGENET_C.aggregates  # the keys are every benchmark's; the corruptions ImageNet-C's
PUBLISHED = "published"  # mce_reference: AlexNet's published errors (the config's evaluation.mce_reference)
MISSING = "–"  # how tables.render shows a missing cell (None) in markdown and HTML (LaTeX: --)


@dataclass(frozen=True)
class TableSpec:
    paper_table: str  # the paper's table (its name in paper_values.csv)
    columns: tuple[tuple[str, str], ...]  # (key, title): a key of AGGREGATES, "clean" or a corruption
    lists_all: bool  # Tables 4, 9, 10: every evaluated model (but those of the other tables' own)
    per_corruption: str = "top1"  # what a corruption column holds: "top1" (mean over severities) or "ce"
    what: str = ""  # the caption's first sentence; {severities}: "five" or, for a partial evaluation, "evaluated"


_SUMMARY = (
    ("clean", "clean"),
    ("c_mean", "IN-C top-1"),
    ("c_mean_top5", "IN-C top-5"),
    ("c_mean_without_noise", "IN-C w/o noise top-1"),
    ("c_mean_without_noise_top5", "IN-C w/o noise top-5"),
)
_CORRUPTIONS = tuple((name, SHORT_NAMES[name]) for name in BENCHMARK_CORRUPTIONS)
_AVERAGE = "each corruption averaged over its {severities} severities"

TABLES: dict[str, TableSpec] = {
    "table1": TableSpec(
        "Table 1",
        (("c_mean", "IN-C top-1"), ("c_mean_without_noise", "IN-C w/o noise top-1")),
        False,
        what="Top-1 accuracy [%] on ImageNet-C (15 corruptions) and on ImageNet-C without the noise category of vanilla "
        f"and adversarially trained models ({_AVERAGE}); higher is better.",
    ),
    "table4": TableSpec(
        "Table 4",
        _SUMMARY,
        True,
        what="Clean top-1 accuracy [%] on ImageNet val and average top-1 / top-5 accuracy [%] on ImageNet-C (15 "
        f"corruptions) and on ImageNet-C without the noise category ({_AVERAGE}); higher is better.",
    ),
    "table8": TableSpec(
        "Table 8",
        (("c_mean", "All"), *_CORRUPTIONS),
        False,
        what="Top-1 accuracy [%] per ImageNet-C corruption (mean over the {severities} severities) and over all 15 ('All') of "
        "vanilla and adversarially trained models; higher is better.",
    ),
    "table9": TableSpec(
        "Table 9",
        (("c_mean", "mean"), *_CORRUPTIONS),
        True,
        what="Top-1 accuracy [%] per ImageNet-C corruption (mean over the {severities} severities) and their mean; "
        "higher is better.",
    ),
    "table10": TableSpec(
        "Table 10",
        (("mce", "mCE"), *_CORRUPTIONS),
        True,
        per_corruption="ce",
        what="Corruption Error CE [%] per ImageNet-C corruption (top-1 errors summed over the {severities} severities, relative "
        "to the reference's) and their mean, the mCE; lower is better.",
    ),
    "table13": TableSpec(
        "Table 13",
        (("c_mean", "All"), *_CORRUPTIONS),
        False,
        what="Top-1 accuracy [%] of InceptionV3 models per ImageNet-C corruption (mean over the {severities} severities) and "
        "over all 15 ('All'), beside Ford et al.'s InceptionV3 models; higher is better.",
    ),
    "table14": TableSpec(
        "Table 14",
        (("clean", "clean"),),
        False,
        what="Clean top-1 accuracy [%] on ImageNet val of the InceptionV3 models of Table 13.",
    ),
    "table15": TableSpec(
        "Table 15",
        _SUMMARY,
        False,
        what="ANT 1x1 on ResNet50 (RN50) and DenseNet121 (DN121): clean top-1 accuracy [%] on ImageNet val and average "
        f"top-1 / top-5 accuracy [%] on ImageNet-C and on ImageNet-C without the noise category ({_AVERAGE}); "
        "higher is better.",
    ),
    "table16": TableSpec(
        "Table 16",
        (("params", "generator parameters"), ("clean", "clean"), ("c_mean", "IN-C top-1"),
         ("c_mean_without_noise", "IN-C w/o noise top-1")),
        False,
        what="ANT 1x1 with noise generators of depth 1 to 5 (the paper's default: 4): trainable parameters of the "
        "generator, clean top-1 accuracy [%] on ImageNet val and average top-1 accuracy [%] on ImageNet-C and on "
        f"ImageNet-C without the noise category ({_AVERAGE}); higher is better.",
    ),
}
IMAGENET_TABLE_NAMES = tuple(TABLES)


# ---------------------------------------------------------------------------------------------
# The paper's values (ImageNet's), at their printed precision


def paper_models(paper_table: str) -> list[str]:
    """The paper's ImageNet models of one table, in the order of its rows."""
    return paper.paper_models(paper_table, DATASET)


def paper_cell(paper_table: str, paper_model: str, column: str) -> str | None:
    """The paper's ImageNet value as printed (bracketed where the paper brackets it), or None."""
    return paper.paper_cell(paper_table, DATASET, paper_model, column)


# ---------------------------------------------------------------------------------------------
# Our numbers


class Measured:
    """The accuracy frame indexed for lookups, with clear errors for what a table needs and lacks.

    A corruption may have been evaluated at some severities only, or not at all: per-corruption
    values cover the severities evaluated, and are None for a corruption not evaluated."""

    def __init__(self, accuracy: pd.DataFrame, benchmark: Benchmark = IMAGENET_C):
        self.benchmark = benchmark
        missing = [c for c in REQUIRED_COLUMNS if c not in accuracy.columns]
        if missing:
            raise InputError(
                f"the accuracy frame lacks the column(s) {', '.join(missing)} (it needs {', '.join(REQUIRED_COLUMNS)})"
            )
        frame = accuracy.assign(severity=accuracy.severity.astype(int))
        duplicated = frame.duplicated(["model", "corruption", "severity"])
        if duplicated.any():
            first = frame[duplicated].iloc[0]
            raise InputError(
                f"the accuracy frame has several rows for model {first.model!r}, corruption "
                f"{first.corruption!r}, severity {first.severity}"
            )
        self.frame = frame
        self.models = list(dict.fromkeys(frame.model))
        self._cells = frame.set_index(["model", "corruption", "severity"])[["top1", "top5"]].to_dict("index")
        levels: dict[tuple[str, str], list[int]] = {}
        for model, corruption, severity in self._cells:
            if corruption != "clean" and severity in benchmark.severities:
                levels.setdefault((model, corruption), []).append(int(severity))
        self._levels = {key: tuple(sorted(found)) for key, found in levels.items()}

    def clean(self, model: str, which: str = "top1") -> float:
        cell = self._cells.get((model, "clean", 0))
        if cell is None:
            raise InputError(f"model {model!r} has no clean accuracy (corruption 'clean', severity 0) in the accuracy frame")
        return float(cell[which])

    def severities(self, model: str, corruption: str) -> tuple[int, ...]:
        """The severities at which ``model`` was evaluated on ``corruption`` (empty: not evaluated)."""
        return self._levels.get((model, corruption), ())

    def evaluated(self, model: str, corruptions: Sequence[str] | None = None) -> list[str]:
        """The corruptions of ``corruptions`` (the benchmark's) that ``model`` was evaluated on (at any severity)."""
        return [name for name in corruptions or self.benchmark.names if self.severities(model, name)]

    def accuracies(self, model: str, corruption: str, which: str = "top1") -> dict[int, float]:
        """severity -> accuracy [%] of one corruption, over the severities evaluated."""
        return {s: float(self._cells[(model, corruption, s)][which]) for s in self.severities(model, corruption)}

    def corruption_mean(self, model: str, corruption: str, which: str = "top1") -> float | None:
        """Accuracy [%] averaged over the severities evaluated; None where the corruption was not."""
        values = self.accuracies(model, corruption, which)
        return float(np.mean(list(values.values()))) if values else None

    def aggregate(self, model: str, key: str) -> float | None:
        """A mean over corruptions (the benchmark's aggregates); None unless every corruption it averages was evaluated."""
        names, which = self.benchmark.aggregates[key]
        return benchmark_mean({name: self.accuracies(model, name, which) for name in names}, names)

    def errors(self, model: str, corruptions: Sequence[str] | None = None) -> dict[str, dict[int, float]]:
        """Top-1 errors (fractions) per corruption evaluated and severity: the input of the CE."""
        return {
            name: {s: 1.0 - a / 100.0 for s, a in self.accuracies(model, name).items()}
            for name in self.evaluated(model, corruptions)
        }

    def corruption_error(self, model: str, corruption: str, reference: Mapping | None) -> float | None:
        """CE [%] of one corruption over its evaluated severities; None where the corruption was not
        evaluated or the reference cannot normalise those severities."""
        errors = self.errors(model, [corruption])
        if not errors:
            return None
        try:
            return corruption_error(corruption, errors[corruption], reference)
        except UndefinedCorruptionError:
            return None

    def mce(self, model: str, reference: Mapping | None) -> float | None:
        """mCE [%]; None unless all 15 benchmark corruptions were evaluated and each CE is defined."""
        errors = self.errors(model)
        if len(errors) < len(self.benchmark.names):
            return None
        try:
            return mean_corruption_error(errors, reference).mce
        except UndefinedCorruptionError:
            return None

    def images(self, models: Sequence[str]) -> tuple[int, int] | None:
        """Fewest and most images behind one accuracy of these models (None without an ``images`` column)."""
        if "images" not in self.frame.columns:
            return None
        counts = self.frame[self.frame.model.isin(list(models))].images.dropna()
        return (int(counts.min()), int(counts.max())) if len(counts) else None


def resolve_reference(measured: Measured, mce_reference) -> tuple[dict | None, str]:
    """The mCE reference (as :func:`~noisetrain.measure.corruption_error.mean_corruption_error` takes
    it: corruption -> error averaged over the five severities, or errors per severity) and its caption text.

    ``mce_reference``: None (or "published", the config's word) for AlexNet's published ImageNet-C
    errors; the name of an evaluated model (an AlexNet the config evaluated) to use its errors at the
    severities it was evaluated at; or a mapping corruption -> that model's five per-severity top-1
    errors, a mapping severity -> error, or their mean over the five severities, fractions.
    """
    if mce_reference is None or mce_reference == PUBLISHED:
        return None, "AlexNet's published ImageNet-C errors (Hendrycks & Dietterich, 2019)"
    if isinstance(mce_reference, str):
        if mce_reference not in measured.models:
            raise InputError(
                f"mce_reference {mce_reference!r} is not a model of the accuracy frame (it has {', '.join(measured.models)})"
            )
        errors = measured.errors(mce_reference)
        reference = reference_from_model(errors, per_severity=True) if errors else {}
        return reference, f"the errors of {mce_reference!r} evaluated here"
    if isinstance(mce_reference, Mapping):
        reference = {
            name: float(value) if isinstance(value, int | float) else reference_from_model({name: value}, per_severity=True)[name]
            for name, value in mce_reference.items()
        }
        return reference, "the given reference errors"
    raise InputError(f"mce_reference must be None, a model name or a mapping corruption -> errors, got {mce_reference!r}")


# ---------------------------------------------------------------------------------------------
# Tables


def _spec(models: Mapping[str, dict], name: str) -> dict:
    return models.get(name) or {}


def _trained_on(spec: dict) -> set[str]:
    return set(spec.get("trained_on") or ())


def _bracketed(spec: dict, key: str, benchmark: Benchmark) -> bool:
    """Whether a cell of ours is an average over test corruptions one of which the model trained on."""
    return key in AGGREGATES and bool(_trained_on(spec) & set(benchmark.aggregates[key][0]))


def _ours(measured: Measured, model: str, key: str, per_corruption: str, reference) -> float | None:
    """Our value of one cell; None where the evaluation does not define it (shown as MISSING)."""
    if key == "clean":
        return measured.clean(model)
    if key == "mce":
        return measured.mce(model, reference)
    if key in AGGREGATES:
        return measured.aggregate(model, key)
    if per_corruption == "ce":
        return measured.corruption_error(model, key, reference)
    return measured.corruption_mean(model, key)


def cell_text(value: float | None, bracket: bool) -> str | None:
    if value is None or not math.isfinite(value):
        return None
    return f"({value:.1f})" if bracket else f"{value:.1f}"


def evaluated_models(measured: Measured, models: Mapping[str, dict]) -> list[str]:
    """The models of the accuracy frame: in the models' ``position`` (else the dict's order), then any others."""
    ordered = sorted(models, key=lambda m: models[m].get("position", math.inf))
    return [m for m in ordered if m in measured.models] + [m for m in measured.models if m not in models]


def _own_tables_only() -> set[str]:
    """Paper models the paper reports only in ImageNet-C tables other than 4, 9 and 10."""
    listed = {m for spec in TABLES.values() if spec.lists_all for m in paper_models(spec.paper_table)}
    others = {m for spec in TABLES.values() if not spec.lists_all for m in paper_models(spec.paper_table)}
    return others - listed


def depth_view(models: Mapping[str, dict]) -> dict[str, dict]:
    """Table 16's view of the models: our ANT 1x1 models of the depth ablation (replay, no SIN), in
    the paper's setting under the paper's row of their generator depth (its ANT 1x1 is the depth-4
    row), in any other (a small network, random init) as rows of their own."""
    view = {}
    for name, spec in models.items():
        if spec.get("depth_ablation") and spec.get("paper_model") is not None:
            spec = {**spec, "paper_model": f"ant1x1_depth{spec['generator_depth']}"}
        view[name] = spec
    return view


def generator_parameters(spec: dict) -> int | None:
    """Trainable parameters of a model's noise generator (Table 16), from its depth and kernel (and its
    images' channels: ImageNet's 3 unless the spec says)."""
    if "generator_depth" not in spec:
        return None
    import torch

    from noisetrain.noise.generators import NoiseGenerator, count_parameters

    generator = NoiseGenerator(channels=spec.get("channels", 3), depth=spec["generator_depth"], kernel=spec["generator_kernel"],
                               rng=torch.Generator().manual_seed(0))
    return count_parameters(generator)


def listed_models(name: str, measured: Measured, models: Mapping[str, dict]) -> list[str]:
    """The evaluated models that table ``name`` lists (see the module's docstring)."""
    spec = TABLES[name]
    evaluated = evaluated_models(measured, models)
    if name == "table16":
        models = depth_view(models)
        rows = set(paper_models(spec.paper_table))
        return [m for m in evaluated if _spec(models, m).get("depth_ablation") or _spec(models, m).get("paper_model") in rows]
    if spec.lists_all:
        elsewhere = _own_tables_only()
        return [m for m in evaluated if _spec(models, m).get("paper_model") not in elsewhere]
    rows = set(paper_models(spec.paper_table))
    return [m for m in evaluated if _spec(models, m).get("paper_model") in rows]


def build_table(name: str, accuracy: pd.DataFrame | Measured, models: Mapping[str, dict], mce_reference=None) -> pd.DataFrame:
    """One of the paper's ImageNet-C tables (``name`` in IMAGENET_TABLE_NAMES) as display text."""
    if name not in TABLES:
        raise InputError(f"unknown ImageNet table {name!r}; known: {', '.join(TABLES)}")
    measured = accuracy if isinstance(accuracy, Measured) else Measured(accuracy)
    reference, _ = resolve_reference(measured, mce_reference) if name == "table10" else (None, "")
    ours = listed_models(name, measured, models)
    return spec_table(TABLES[name], measured, depth_view(models) if name == "table16" else models, ours, reference)


def spec_table(spec: TableSpec, measured: Measured, models: Mapping[str, dict], ours: Sequence[str], reference=None,
               dataset: str = DATASET) -> pd.DataFrame:
    """A table of the paper's layout as display text, for any dataset: the columns of ``spec``, a row
    per model of ``ours`` with the paper's row of its paper model below it. A model whose spec lists
    ``replicates`` (the same model trained with other seeds) shows the mean over all of its seeds."""
    keys = [key for key, _ in spec.columns]

    def value(model: str, key: str) -> float | None:
        seeds = [model, *_spec(models, model).get("replicates", ())]
        values = [_ours(measured, seed, key, spec.per_corruption, reference) for seed in seeds]
        return None if any(v is None for v in values) else float(np.mean(values)) if len(values) > 1 else values[0]

    def our_cells(model: str) -> dict:
        model_spec = _spec(models, model)
        cells = {key: cell_text(value(model, key), _bracketed(model_spec, key, measured.benchmark))
                 for key in keys if key != "params"}
        if "params" in keys:  # a count, not a percentage
            count = generator_parameters(model_spec)
            cells["params"] = None if count is None else str(count)
        return cells

    def paper_cells(paper_model: str) -> dict:
        return {key: paper.paper_cell(spec.paper_table, dataset, paper_model, key) for key in keys}

    rows = rows_beside_paper(spec.paper_table, ours, models, our_cells, paper_cells, dataset)
    return pd.DataFrame(rows, columns=["model", "source", *keys]).rename(columns=dict(spec.columns))


def rows_beside_paper(paper_table: str, ours: Sequence[str], models: Mapping[str, dict],
                      our_cells: Callable[[str], dict], paper_cells: Callable[[str], dict],
                      dataset: str = DATASET) -> list[dict]:
    """The rows of a table in the paper's order: for each of its models, ours of that paper model
    (source 'ours') and below them the paper's row (marked 'not evaluated here' without ours),
    then our models the paper's table does not have."""
    def our_row(model: str) -> dict:
        return {"model": _spec(models, model).get("label") or model, "source": "ours", **our_cells(model)}

    rows = []
    paper_rows = paper.paper_models(paper_table, dataset)
    for paper_model in paper_rows:
        mine = [m for m in ours if _spec(models, m).get("paper_model") == paper_model]
        rows.extend(our_row(m) for m in mine)
        source = f"paper ({paper_table})" + ("" if mine else ", not evaluated here")
        rows.append({"model": paper.paper_label(paper_model, dataset), "source": source, **paper_cells(paper_model)})
    rows.extend(our_row(m) for m in ours if _spec(models, m).get("paper_model") not in paper_rows)
    return rows


# ---------------------------------------------------------------------------------------------
# Captions and files


def _images_note(measured: Measured, listed: Sequence[str]) -> str:
    counts = measured.images(listed)
    if counts is None or counts[0] >= VALIDATION_IMAGES:
        return ""
    fewest, most = counts
    n = f"{fewest:,}" if fewest == most else f"{fewest:,}–{most:,}"
    return (
        f" Our numbers come from the prediction cache over {n} images per corruption and severity (of the "
        f"{VALIDATION_IMAGES:,} ImageNet validation images), so they differ from full-set numbers by sampling error."
    )


def _coverage_note(spec: TableSpec, measured: Measured, models: Mapping[str, dict], listed: Sequence[str], reference) -> str:
    """What the caption must say where the evaluation is less than the paper's protocol (all 15
    benchmark corruptions at all five severities): the severities evaluated, the corruptions not
    evaluated (missing cells, and missing means over corruptions), and for Table 10 the CEs the
    reference cannot normalise. Empty for the full protocol."""
    keys = [key for key, _ in spec.columns]
    means = [key for key in keys if key in AGGREGATES]
    per_corruption = any(key in BENCHMARK_CORRUPTIONS for key in keys)
    evaluated = {m: measured.evaluated(m) for m in listed}
    pairs = [(m, c) for m in listed for c in evaluated[m]]
    note = ""

    levels = sorted({s for m, c in pairs for s in measured.severities(m, c)})
    if any(measured.severities(m, c) != SEVERITIES for m, c in pairs):
        shared = {measured.severities(m, c) for m, c in pairs} == {tuple(levels)}
        note += f" Evaluated at severities {', '.join(map(str, levels))} of {len(SEVERITIES)}"
        note += (
            ": per-corruption values average those."
            if shared
            else " (not every corruption at each): a per-corruption value averages the severities evaluated for its model "
            "and corruption."
        )
        shown = [key for key in means if any(_ours(measured, m, key, spec.per_corruption, reference) is not None for m in listed)]
        if shown:
            what = "means over corruptions" + (" and the mCE" if "mce" in shown else "")
            note += (
                f" The {what} use these per-corruption values, where the paper's use all {len(SEVERITIES)} severities; "
                "they are not the paper's metric."
            )
        if spec.per_corruption == "ce":
            note += " Each CE sums the errors of the model and of the reference over the same severities."

    lacking = {m: [c for c in BENCHMARK_CORRUPTIONS if c not in evaluated[m]] for m in listed}
    if any(lacking.values()):
        if means:
            needs = f"need all {len(BENCHMARK_CORRUPTIONS)} benchmark corruptions"
            if any(key in AGGREGATES and AGGREGATES[key][0] == WITHOUT_NOISE for key in means):
                needs += f" (those without noise: the {len(WITHOUT_NOISE)} others)"
            what = "Means over corruptions" + (" and the mCE" if "mce" in means else "")
            note += f" {what} {needs};"
        else:
            note += " Corruptions not evaluated are shown as " + MISSING + ";"
        every = set().union(*evaluated.values())
        if len({tuple(missing) for missing in lacking.values()}) == 1:
            done = [c for c in BENCHMARK_CORRUPTIONS if c in every]
            note += f" this run evaluated {len(done)} ({', '.join(done) or 'none'})"
        else:
            note += " " + "; ".join(
                f"{_spec(models, m).get('label') or m} lacks {', '.join(missing)}" for m, missing in lacking.items() if missing
            )
        note += f": shown as {MISSING}." if means else "."
        if means and per_corruption:
            note += f" A corruption not evaluated: {MISSING}."

    if spec.per_corruption == "ce":
        undefined = [
            f"{_spec(models, m).get('label') or m}: {c}"
            for m, c in pairs
            if c in keys and measured.corruption_error(m, c, reference) is None
        ]
        if undefined:
            note += (
                f" CE shown as {MISSING} where the reference has no error at the severities the model was evaluated at, "
                f"or makes none there ({', '.join(undefined)}); the mCE needs every CE."
            )
    return note


def caption(
    name: str, measured: Measured, models: Mapping[str, dict], mce_reference=None, table: pd.DataFrame | None = None
) -> str:
    """What table ``name`` shows, where its numbers come from, and what its marks mean (the brackets'
    meaning only where ``table``, the built table, has a bracketed cell)."""
    spec = TABLES[name]
    listed = listed_models(name, measured, models)
    keys = [key for key, _ in spec.columns]
    uses_corruptions = any(key != "clean" for key in keys)
    full = not uses_corruptions or all(measured.severities(m, c) == SEVERITIES for m in listed for c in measured.evaluated(m))
    text = f"{spec.what.replace('{severities}', 'five' if full else 'evaluated')} Layout of the paper's {spec.paper_table}."
    reference = None
    if name == "table10":
        reference, described = resolve_reference(measured, mce_reference)
        text += f" CE reference: {described}."
    if uses_corruptions:
        text += _coverage_note(spec, measured, models, listed, reference)
    text += (
        f" Source 'ours': computed by this pipeline; 'paper ({spec.paper_table})': the value printed in the paper, "
        "at its printed precision, right below our model(s) of that paper model; 'not evaluated here': a model of the "
        "paper's table this run did not evaluate (the paper's values only)."
    )
    bracketed = table is None or table.drop(columns=["model", "source"]).map(lambda c: str(c).startswith("(")).any().any()
    if bracketed and any(key in AGGREGATES for key, _ in spec.columns):
        text += (
            " Values in brackets: a corruption of the test set averaged in that cell was used in training "
            "(ours: the model's trained_on; the paper's: as printed)."
        )
    return text + _images_note(measured, listed)


class _Printed:
    """A cell shown exactly as given: tabulate would re-format numeric-looking text (77 -> 77.0),
    which would lose the paper's printed precision."""

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text


def printable(table: pd.DataFrame) -> pd.DataFrame:
    return table.map(lambda cell: _Printed(cell) if isinstance(cell, str) else cell)


def write_imagenet_tables(
    accuracy: pd.DataFrame, models: Mapping[str, dict], out_dir: str | Path, mce_reference=None
) -> dict[str, pd.DataFrame]:
    """Every ImageNet-C table as ``out_dir/<name>.md|.tex|.html`` (names: IMAGENET_TABLE_NAMES)."""
    measured = Measured(accuracy)
    built = {}
    for name in TABLES:
        table = build_table(name, measured, models, mce_reference)
        tables.write(printable(table), caption(name, measured, models, mce_reference, table), out_dir, name)
        built[name] = table
    return built
