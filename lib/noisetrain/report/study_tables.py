"""Which tables and figures the study writes, with their captions: glue over tables/figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from noisetrain import methods
from noisetrain.config_names import DATASETS, PAPER_DATASETS
from noisetrain.report import bootstrap, figures, tables
from noisetrain.report.paper import paper_value
from noisetrain.report.paper_tables import Benchmark, Measured, TableSpec, printable, spec_table
from noisetrain.report.records import accuracy_frame, to_frame
from noisetrain.report.robustness_tables import Clean, write_robustness_tables
from noisetrain.report.sweep_choice import is_main_model


def specs_from_records(records: list[dict]) -> dict[str, dict]:
    """Method -> training spec, as recorded in each result's provenance."""
    return {r["method"]: r.get("provenance", {}).get("spec", {}) for r in records}


def training_diagnostics_from_records(records: list[dict]) -> dict[str, dict]:
    """Method -> its training's final diagnostics, as the model file recorded them (copied into
    every result's provenance); methods without any are left out."""
    found = {}
    for r in records:
        diagnostics = r.get("provenance", {}).get("model", {}).get("training_diagnostics")
        if diagnostics:
            found[r["method"]] = diagnostics
    return found


def _paper_note(dataset: str, table: str) -> str:
    if dataset in PAPER_DATASETS:
        return (f" Rows/columns marked 'paper' are the values printed in the paper's {table}; "
                "all others are computed by this pipeline.")
    return f" The paper reports no {dataset} values, so every number here is computed by this pipeline."


def _baselines_note(dataset: str, specs: dict[str, dict]) -> str:
    """Caption note on Table 11's adversarially trained baselines."""
    note = ""
    if any(tables.is_table11_baseline(spec) for spec in specs.values()):
        note = (" The adversarially trained models (PGD AT, DDN AT) train from scratch with the vanilla schedule, "
                "as their authors trained them, so our Vanilla row is their own vanilla.")
    if paper_value("Table 11", dataset, "wong_certified", "clean") is not None:
        note += (" Wong et al.'s certified model and the paper's own vanilla models of Madry et al., Wong et al. and "
                 "DDN Tr are not trained here: their rows are the paper's values only ('not evaluated here').")
    return note


def _imagenet_note(dataset: str, table: str) -> str:
    """Caption note for the tables the paper gives for ImageNet alone."""
    if dataset == "imagenet":
        return _paper_note(dataset, table)
    return f" The paper reports {table} for ImageNet only; every number here is computed by this pipeline."


# The summary's columns, as the arrays' tables title them.
_SUMMARY_TITLES = tuple(tables.SUMMARY_COLUMNS.items())


def measured_records(records: list[dict], corruptions: list[str]) -> Measured:
    """The clean and corruptions records as the accuracy table every paper table reads, over the
    study's own benchmark: its corruptions, those outside the noise category, its severities."""
    frame = accuracy_frame(records)
    categories = dict(zip(frame.corruption, frame.category))
    severities = tuple(sorted({int(s) for s in frame[frame.corruption != "clean"].severity}))
    without_noise = tuple(c for c in corruptions if categories.get(c) != "noise")
    return Measured(frame, Benchmark(tuple(corruptions), without_noise, severities))


def replicates_of(specs: dict[str, dict]) -> dict[str, list[str]]:
    """Each model's replicates (the same training with other seeds), whose mean the tables show."""
    found: dict[str, list[str]] = {}
    for method, spec in specs.items():
        if "replicate_of" in spec:
            found.setdefault(spec["replicate_of"], []).append(method)
    return found


def table11(measured: Measured, specs: dict[str, dict], rows: list[tables.Row], dataset: str) -> pd.DataFrame:
    """Table 11 (appendix E), by the builder of every paper table: clean, C mean and each corruption
    of vanilla, the adversarially trained baselines (PGD AT, DDN AT) and the noise-trained models,
    each model the mean over its seeds, with the paper's row of its paper model below it."""
    baselines = [row for row in rows if tables.is_table11_baseline(specs.get(row.method, {}))]
    order = [*(row for row in rows if row.method == "vanilla"), *baselines,
             *(row for row in rows if row.method != "vanilla" and row not in baselines)]
    replicates = replicates_of(specs)
    models = {row.method: {"label": row.label, "paper_model": row.paper_model, "replicates": replicates.get(row.method, [])}
              for row in order}
    corruptions = tuple((c, c) for c in measured.benchmark.names)
    spec = TableSpec("Table 11", (("clean", "clean"), ("c_mean", "C mean"), *corruptions), True)
    return spec_table(spec, measured, models, list(models), dataset=dataset)


def table16(measured: Measured, specs: dict[str, dict], summary: pd.DataFrame, dataset: str) -> tuple[pd.DataFrame, list[str]]:
    """Table 16's layout: ANT 1x1 with generators of depth 1 to 5 (replay on, no +SIN; the default
    depth 4 is ant1x1 itself), the generators' parameters counted for this dataset's channels (the
    paper's 12 / 143 / 563 / 983 / 1403 are for 3 channels); and the models, in the rows' order."""
    by_depth: dict[int, str] = {}
    for method, spec in specs.items():
        keys = methods.noise_keys(spec)
        depth = keys.get("generator_depth")
        if keys.get("depth_ablation") and method in summary.index and (depth not in by_depth or method == "ant1x1"):
            by_depth[depth] = method
    replicates = replicates_of(specs)
    channels = DATASETS[dataset].channels
    models = {method: {**methods.noise_keys(specs[method]), "label": tables.method_label(method, specs[method]),
                       "channels": channels, "replicates": replicates.get(method, [])}
              for _, method in sorted(by_depth.items())}
    spec = TableSpec("Table 16", (("params", "generator parameters"), *_SUMMARY_TITLES), False)
    return spec_table(spec, measured, models, list(models), dataset=dataset), list(models)


def _depths(specs: dict[str, dict], models: list[str]) -> str:
    depths = [str(methods.noise_keys(specs[m])["generator_depth"]) for m in models]
    return ", ".join(depths) or "none (no such model in this study)"


def write_tables(records: list[dict], dataset: str, corruptions: list[str], method_order: list[str], out_dir: str | Path,
                 best_gnt: str | None = None) -> dict[str, pd.DataFrame]:
    """Every table of the study from the records; ``best_gnt`` is the sweep's choice (its GNT row)."""
    frame = to_frame(records)
    specs = specs_from_records(records)
    # Replicates fold into their model: every number is the mean over its seeds.
    summary, spread = tables.over_seeds(tables.method_summary(frame), specs)
    replicated = bool((spread["seed_count"] > 1).any())
    seeds_note = (" Models trained with several seeds show the mean over them (± the std over seeds in the "
                  "summary table, whose 'seeds' column counts them)." if replicated else "")
    main = [m for m in method_order if is_main_model(specs.get(m, {}))]
    rows = tables.standard_rows(summary, specs, main, best_gnt)
    listed = {row.method for row in rows}
    every_row = rows + [tables.Row(m, m, None) for m in main if m in summary.index and m not in listed]
    notes = {m: tables.training_note(d) for m, d in training_diagnostics_from_records(records).items()}
    summary_rows = tables.summary_table(summary, rows, dataset, "Table 11", spread if replicated else None)
    summary_rows = tables.add_note_column(summary_rows, [r.method for r in rows], notes)
    measured = measured_records(records, corruptions)
    depths, depth_models = table16(measured, specs, summary, dataset)
    depths = tables.add_note_column(depths, depth_models, notes)
    built = {
        "table11": (
            table11(measured, specs, rows, dataset),
            f"Top-1 accuracy [%] on {dataset} clean test data and on each corruption of the MNIST-C benchmark "
            "(Table 11 layout); 'C mean' averages the corruptions. GNT is shown at the sigma with the best C mean."
            + seeds_note + _baselines_note(dataset, specs) + _paper_note(dataset, "Table 11"),
        ),
        "summary": (
            summary_rows,
            f"Top-1 accuracy [%] on {dataset}: clean, mean over corruptions, and mean without the noise "
            "category (Table 4 style)." + seeds_note + _paper_note(dataset, "Table 11") + tables.notes_caption(summary_rows),
        ),
        "table16": (
            depths,
            f"Top-1 accuracy [%] on {dataset} of ANT 1x1 with noise generators of depth {_depths(specs, depth_models)} "
            "(Table 16 layout: the paper's has depths 1 to 5, each a method of the config); generator parameters are "
            "counted for this dataset's channels."
            + _imagenet_note(dataset, "Table 16") + tables.notes_caption(depths),
        ),
        "eps_search": (
            tables.eps_search_table(summary, specs),
            f"Top-1 accuracy [%] on {dataset} of the ANT models of the eps search, one per candidate eps "
            "(appendix B.2: eps chosen by a line search like sigma's); the candidate with the best C mean gives the eps "
            "of every method with eps 'search'. Empty when the study searches no eps.",
        ),
        "sigma_sweep": (
            tables.sweep_table(summary, specs),
            f"Top-1 accuracy [%] on {dataset} of every model of the sigma sweep (vanilla at sigma 0): "
            "the numbers behind Fig 6." + _paper_note(dataset, "Fig 6 (only its sigma 0.5 point, from Table 11)"),
        ),
    }
    out_dir = Path(out_dir)
    for name, (table, caption) in built.items():
        tables.write(printable(table), caption, out_dir, name)
    robust = [r for r in records if r["metric"] in ("noise_robustness", "adversarial")]
    models = {row.method: {"label": row.label, "paper_model": row.paper_model} for row in every_row}
    clean = Clean({m: 100.0 * summary.at[m, "clean"] for m in summary.index if pd.notna(summary.at[m, "clean"])},
                  f"top-1 on the {dataset} test set" + (", the mean over its seeds for a model of several" if replicated else ""))
    built_robustness = write_robustness_tables(robust, dataset, clean, models, out_dir, image_folders=False)
    return {name: table for name, (table, _) in built.items()} | built_robustness


def figure_sigma_sweep(records: list[dict], dataset: str, png: str | Path) -> None:
    specs = specs_from_records(records)
    summary, spread = tables.over_seeds(tables.method_summary(to_frame(records)), specs)
    figures.save(figures.accuracy_vs_sigma(summary, specs, dataset, spread), png)


def correct_by_method(paths: dict[str, str | Path], specs: dict[str, dict]) -> dict[str, dict[str, np.ndarray]]:
    """Per-image correctness of each model (``paths``: method -> correct.npz), its seed replicates
    stacked in as extra seeds: base method -> corruption -> (seeds, images) booleans."""
    by_base: dict[str, list[tuple[int, str]]] = {}
    for method in paths:
        spec = specs.get(method, {})
        if "candidate_of" not in spec:
            by_base.setdefault(spec.get("replicate_of", method), []).append((spec.get("seed", 0), method))
    stacked = {}
    for base, members in by_base.items():
        arrays = [dict(np.load(paths[method])) for _, method in sorted(members)]
        stacked[base] = bootstrap.stack_seeds(arrays, [k for k in arrays[0] if k != "clean"])
    return stacked


def claims_caption(dataset: str, correct: dict) -> str:
    seeds = max((len(next(iter(c.values()))) for c in correct.values()), default=1)
    return (f"The paper's qualitative claims tested on {dataset}. Accuracy claims: the difference of the two models' "
            "mean accuracy over the corruptions in percentage points, with a paired bootstrap 95% interval over test "
            f"images and seeds (up to {seeds} seeds per model); held / not held when the interval excludes zero, "
            "inconclusive when it contains zero. ε* claims: the difference of median ε* (L2), with a bootstrap 95% "
            "interval over the measured test images (the same images for both), read the same way. Other claims "
            "compare single measurements without an interval. "
            "'GNT' is the sweep's best sigma, chosen on these same test images, which favours it slightly in the "
            "claims that compare it. The paper's numbers are the values printed in the tables named.")
