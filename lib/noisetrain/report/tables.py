"""The arrays' own tables from the tidy result frame (summary, sigma sweep, eps search, depths), the
rows every table of the arrays shows, and rendering (markdown, LaTeX and HTML via tabulate).

Accuracies are stored as fractions and shown in percent. Where the dataset is one the paper
reports on, the summary puts the paper's column beside each of ours. The paper's own tables
(Table 11, the robustness tables) are laid out by the one builder of :mod:`noisetrain.report.paper_tables`.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from noisetrain import methods
from noisetrain.config_names import PAPER_DATASETS
from noisetrain.noise.diagnostics import ERASING_THRESHOLD, SATURATED_PIXEL_FRACTION, is_erasing
from noisetrain.report.paper import paper_label, paper_value
from noisetrain.report.sweep_choice import sweep_sigmas
from noisetrain.storage import atomic_write

SUMMARY_COLUMNS = {"clean": "clean", "c_mean": "C mean", "c_mean_without_noise": "C w/o noise"}
# Table 11's adversarially trained baselines (appendix E), by the paper's model (its key in
# paper_values.csv), with the paper's name for it. Each is compared against its own vanilla model.
TABLE11_BASELINES = {model: paper_label(model, "mnist") for model in ("madry_pgd_at", "rony_ddn_at")}

def method_label(method: str, spec: dict) -> str:
    """How a model is named in tables and figures: by its kind (a record without a spec, by its name)."""
    return methods.label(spec) if methods.has_kind(spec) else method


@dataclass(frozen=True)
class Row:
    label: str  # shown in the table
    method: str | None  # our method name; None for a row of the paper's values only
    paper_model: str | None  # the paper's model whose numbers sit beside it, if any
    paper_label: str | None = None  # the paper's name for that model, where it differs from label


def _cell(summary: pd.DataFrame, method: str, column: str, scale: float = 1.0):
    """One value of the method summary, scaled (100 for percent); None where it is missing."""
    if column not in summary.columns or pd.isna(summary.at[method, column]):
        return None
    return scale * float(summary.at[method, column])


def method_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per method: clean, c_mean, c_mean_without_noise and each corruption (mean over severities)."""
    clean = frame[frame.metric == "clean"].groupby("method").value.mean().rename("clean")
    corrupt = frame[frame.metric == "corruptions"]
    per_corruption = corrupt[corrupt.category != "aggregate"].groupby(["method", "corruption"]).value.mean().unstack()
    aggregates = corrupt[corrupt.category == "aggregate"].pivot_table(index="method", columns="corruption", values="value")
    aggregates = aggregates.rename(columns={"mean": "c_mean", "mean_without_noise": "c_mean_without_noise"})
    # Robustness quantities (eps_gn, eps_un, eps_an, eps_an_std, linf_pgd, l2_ddn, ...) by name.
    measured = frame[frame.metric.isin(["noise_robustness", "adversarial"])]
    quantities = measured.pivot_table(index="method", columns="corruption", values="value", aggfunc="first")
    return pd.concat([clean, aggregates, per_corruption, quantities], axis=1)


def over_seeds(summary: pd.DataFrame, specs: dict[str, dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each model's numbers as the mean over its seeds (itself and its replicates ``<m>_seed<k>``),
    and their standard deviation (NaN for a model of one seed). Replicates drop out of the index."""
    base = pd.Series({m: specs.get(m, {}).get("replicate_of", m) for m in summary.index})
    grouped = summary.groupby(base, sort=False)
    spread = grouped.std(ddof=1)
    spread["seed_count"] = grouped.size()
    return grouped.mean(), spread


def is_depth_ablation(spec: dict) -> bool:
    """An ablation (ANT generators of another depth than the paper's) belongs to its own table
    (Table 16), not to the main tables."""
    return methods.has_kind(spec) and not methods.kind_of(spec).main_tables(spec)


def is_table11_baseline(spec: dict) -> bool:
    return methods.paper_model(spec) in TABLE11_BASELINES


def method_row(method: str, spec: dict) -> Row:
    """A named method's row: the paper's model it reproduces beside it (an adversarial-training
    baseline under the paper's name for it)."""
    model = methods.paper_model(spec)
    return Row(method_label(method, spec), method, model, TABLE11_BASELINES.get(model))


def standard_rows(summary: pd.DataFrame, specs: dict[str, dict], extra: list[str], best: str | None) -> list[Row]:
    """Vanilla, GNT at the best sigma (``best``, the sweep's choice), then the other named
    methods in config order."""
    sigmas = sweep_sigmas(specs)
    rows = [method_row("vanilla", specs.get("vanilla", {"kind": "vanilla"}))] if "vanilla" in summary.index else []
    # The paper's GNT numbers are for sigma 0.5: they sit beside our best model only when it is
    # sigma 0.5; otherwise our sigma 0.5 model, if trained, gets its own row beside them.
    paper_sigma = next((m for m, s in sigmas.items() if s == 0.5), None)
    if best in summary.index:
        row = method_row(best, specs[best])
        rows.append(Row(f"{row.label} (best)", best, row.paper_model))
    if paper_sigma and paper_sigma != best and paper_sigma in summary.index:
        rows.append(method_row(paper_sigma, specs[paper_sigma]))
    for method in extra:
        shown = method in summary.index and method not in sigmas and method != "vanilla"
        if shown and not is_depth_ablation(specs.get(method, {})):
            rows.append(method_row(method, specs.get(method, {})))
    return rows


def summary_table(summary: pd.DataFrame, rows: list[Row], dataset: str, paper_table: str,
                  spread: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 4 style: clean, C mean, C without noise, as mean ± std over seeds where ``spread``
    has a model's std; a paper column beside each where one exists."""
    with_paper = dataset in PAPER_DATASETS
    records = []
    for row in rows:
        record = {"model": row.label} | ({"seeds": _seeds(spread, row.method)} if spread is not None else {})
        for key, title in SUMMARY_COLUMNS.items():
            record[title] = _pm(summary, spread, row.method, key)
            if with_paper:
                record[f"{title} (paper)"] = paper_value(paper_table, dataset, row.paper_model, key)
        records.append(record)
    return pd.DataFrame(records)


def _seeds(spread: pd.DataFrame | None, method: str) -> int:
    if spread is None or "seed_count" not in spread.columns or method not in spread.index:
        return 1
    return int(spread.at[method, "seed_count"])


def _pm(summary: pd.DataFrame, spread: pd.DataFrame | None, method: str, column: str) -> str | float | None:
    """A percentage, with ' ± std' when the model has several seeds."""
    mean = _cell(summary, method, column, 100.0)
    if spread is None or mean is None:
        return mean
    std = _cell(spread, method, column, 100.0) if method in spread.index else None
    # Text in every cell of the column, so that tabulate does not mix formatted and raw numbers.
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def sweep_table(summary: pd.DataFrame, specs: dict[str, dict]) -> pd.DataFrame:
    """Every point of the sigma sweep (vanilla as sigma 0): the numbers behind Fig 6."""
    points = sorted((s, m) for m, s in sweep_sigmas(specs).items() if m in summary.index)
    if "vanilla" in summary.index:
        points.insert(0, (0.0, "vanilla"))
    return pd.DataFrame(
        [{"sigma": s, "model": m,
          **{title: _cell(summary, m, key, 100.0) for key, title in SUMMARY_COLUMNS.items() if key in summary.columns}}
         for s, m in points]
    )


def eps_search_table(summary: pd.DataFrame, specs: dict[str, dict]) -> pd.DataFrame:
    """Every candidate of the eps search: the numbers behind the chosen eps."""
    points = sorted((spec["eps"], m) for m, spec in specs.items() if "candidate_of" in spec and m in summary.index)
    return pd.DataFrame(
        [{"eps": e, "model": m, **{title: _cell(summary, m, key, 100.0) for key, title in SUMMARY_COLUMNS.items()}}
         for e, m in points], columns=["eps", "model", *SUMMARY_COLUMNS.values()])


# Columns that hold a setting (a swept sigma or eps) rather than a measurement: shown as set
# (0.25, not rounded to one decimal like the accuracies).
SETTING_COLUMNS = ("sigma", "eps")


def render(table: pd.DataFrame, caption: str) -> dict[str, str]:
    """The table as markdown, LaTeX (booktabs) and HTML (for the Snakemake report); missing
    cells show as a dash."""
    headers = list(table.columns)
    body = table.astype(object).where(table.notna(), None).values.tolist()
    floatfmt = ["g" if header in SETTING_COLUMNS else ".1f" for header in headers]
    options = dict(headers=headers, floatfmt=floatfmt, missingval="–")
    latex = (
        "\\begin{table}[t]\n\\centering\n\\small\n"
        + latex_symbols(tabulate(body, tablefmt="latex_booktabs", **{**options, "missingval": "--"}))
        + f"\n\\caption{{{latex_escape(caption)}}}\n\\end{{table}}\n"
    )
    html = f"<p>{escape(caption)}</p>\n{tabulate(body, tablefmt='html', **options)}\n"
    return {"md": f"{caption}\n\n{tabulate(body, tablefmt='github', **options)}\n", "tex": latex, "html": html}


# Characters pdflatex cannot typeset from a plain table, and what typesets them.
LATEX_TEXT = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#"}
LATEX_UNICODE = {"σ": r"$\sigma$", "ε": r"$\epsilon$", "γ": r"$\gamma$", "±": r"$\pm$", "∞": r"$\infty$", "–": "--",
                 "×": r"$\times$", "≤": r"$\leq$", "≥": r"$\geq$", "†": r"$\dagger$"}


def latex_escape(text: str) -> str:
    """Plain text (a caption) as LaTeX: special characters escaped, symbols in math mode."""
    for char, escaped in LATEX_TEXT.items():
        text = text.replace(char, escaped)
    return latex_symbols(text)


def latex_symbols(text: str) -> str:
    """Replace the symbols our tables use by their LaTeX commands (tabulate escapes the rest)."""
    for char, escaped in LATEX_UNICODE.items():
        text = text.replace(char, escaped)
    return text


def write(table: pd.DataFrame, caption: str, out_dir: str | Path, name: str) -> None:
    """``out_dir/name.md``, ``.tex`` and ``.html``."""
    for ext, text in render(table, caption).items():
        atomic_write(Path(out_dir) / f"{name}.{ext}", lambda tmp, text=text: tmp.write_text(text))


# Generators that erase the images (noisetrain.noise.diagnostics, issue 9): a marker on the eps*_AN
# cell of Tables 2 and 3, and a note column in the summary and Table 16 for ANT training.
ERASING_MARK = "†"
ERASING_DEFINITION = (f"more than {ERASING_THRESHOLD:.0%} of the perturbed images erased or saturated, i.e. at least "
                      f"{SATURATED_PIXEL_FRACTION:.0%} of their pixels black (or white)")


def an_generators_erase(erased_fraction: float | None) -> bool:
    """Whether a model's fresh eps*_AN generators erase the images (their mean erased fraction)."""
    return is_erasing({"an_erased_fraction": erased_fraction})


def erasing_caption(table: pd.DataFrame) -> str:
    """Caption note for Tables 2 and 3 where an eps*_AN cell carries the marker; '' otherwise."""
    marked = "ε*_AN" in table.columns and table["ε*_AN"].astype(str).str.endswith(ERASING_MARK).any()
    if not marked:
        return ""
    return (f" {ERASING_MARK}: the fresh adversarial-noise generators of this model erase the images at the eps they "
            f"were trained at ({ERASING_DEFINITION}; 'an_erased_fraction' in its noise_robustness record): "
            "ε*_AN then measures how far erasing the image is from the decision, not a noise pattern.")


def training_note(diagnostics: dict | None) -> str | None:
    """The note for a model whose training generators erased the images (its model file's
    ``training_diagnostics``: the last epoch's metrics and ``epochs_erasing``), else None."""
    if not diagnostics or not (is_erasing(diagnostics) or diagnostics.get("epochs_erasing", 0) > 0):
        return None
    shares = [f"{diagnostics[key]:.0%} {part}" for key, part in
              (("erased_fraction", "current"), ("replay_erased_fraction", "replay")) if key in diagnostics]
    epochs = diagnostics.get("epochs_erasing")
    return (f"generators erase images: {' / '.join(shares)} erased in epoch {diagnostics.get('epoch', '?')}"
            + (f" ({epochs} of {diagnostics['epoch']} epochs erasing)" if epochs is not None and "epoch" in diagnostics else ""))


def add_note_column(table: pd.DataFrame, methods: list[str], notes: dict[str, str | None]) -> pd.DataFrame:
    """``table`` (one row per entry of ``methods``) with a 'note' column (empty where a row has
    none) where any row has a note; unchanged otherwise."""
    column = [notes.get(method) or "" for method in methods]
    if not any(column):
        return table
    return table.assign(note=column)


def notes_caption(table: pd.DataFrame) -> str:
    """Caption note for a table with a 'note' column; '' otherwise."""
    if "note" not in table.columns:
        return ""
    return (" 'note': the ANT model's noise generators erased the training images in its last epoch or "
            f"earlier ({ERASING_DEFINITION}; 'erased_fraction' and 'replay_erased_fraction' in its training log), "
            "so much of its noisy training data was blank images.")
