"""The study's compute cost: every job's Snakemake ``benchmark:`` file in one table.

Snakemake writes one TSV per job (columns ``s``, ``h:m:s``, ``max_rss``, ..., ``cpu_time``; one
row per run, several with ``repeat()``; ``NA`` where a job ended before the first measurement).
The rules keep them under ``results/<dataset>/benchmarks/``, one file per rule
(``tables.tsv``) or one folder per rule with one file per job (``train/vanilla.tsv``). The
table has one row per job: rule, job, wall seconds, max RSS (MB) and CPU seconds, the mean over
repeated runs; rules with the most wall time come first, and a total row closes it.

The markdown starts with one provenance line (the git commit of this checkout, the code
version, the dataset): the report's front page (``report/workflow.rst``) shows that line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from pathlib import Path

import pandas as pd

from noisetrain import __version__
from noisetrain.errors import DataError
from noisetrain.report.tables import render
from noisetrain.storage import atomic_write

# Snakemake's benchmark column -> ours.
COLUMNS = {"s": "wall [s]", "max_rss": "max RSS [MB]", "cpu_time": "CPU time [s]"}
TABLE_COLUMNS = ["rule", "job", *COLUMNS.values()]


def read_benchmark(path: str | Path) -> dict[str, float]:
    """One benchmark TSV as {our column: value}, the mean over its runs (NaN where not measured)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep="\t", na_values=["NA", "-"])
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path} is not a readable Snakemake benchmark file ({exc}); delete it and rerun its job") from exc
    missing = set(COLUMNS) - set(frame.columns)
    if missing or frame.empty:
        what = f"lacks the columns {sorted(missing)}" if missing else "has no rows"
        raise DataError(f"{path} {what}: not a Snakemake benchmark file; delete it and rerun its job")
    values = frame[list(COLUMNS)].apply(pd.to_numeric, errors="coerce")
    return {ours: float(values[theirs].mean()) for theirs, ours in COLUMNS.items()}


def collect(root: str | Path) -> pd.DataFrame:
    """Every ``*.tsv`` under ``root``: one row per job, named by its path (``train/vanilla.tsv``
    is rule 'train', job 'vanilla'; ``tables.tsv`` is rule 'tables', job '')."""
    root = Path(root)
    paths = sorted(root.rglob("*.tsv"))
    if not paths:
        raise DataError(f"no benchmark files (*.tsv) under {root}: run the study first (snakemake --cores N)")
    rows = []
    for path in paths:
        parts = path.relative_to(root).with_suffix("").parts
        rows.append({"rule": parts[0] if len(parts) > 1 else parts[-1], "job": "/".join(parts[1:]),
                     **read_benchmark(path)})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def cost_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Jobs grouped by rule, rules by their total wall time (largest first), jobs within a rule
    by wall time (largest first, then name); then a total row: wall and CPU time summed over
    jobs, max RSS the largest of any job."""
    wall = COLUMNS["s"]
    order = jobs.groupby("rule")[wall].sum().sort_values(ascending=False, kind="stable")
    rank = {rule: i for i, rule in enumerate(order.index)}
    ordered = (jobs.assign(_rank=jobs["rule"].map(rank), _wall=jobs[wall].fillna(-1.0))
               .sort_values(["_rank", "_wall", "job"], ascending=[True, False, True], kind="stable")
               .drop(columns=["_rank", "_wall"]))
    total = {"rule": "total", "job": f"{len(jobs)} jobs",
             COLUMNS["s"]: jobs[COLUMNS["s"]].sum(min_count=1),
             COLUMNS["max_rss"]: jobs[COLUMNS["max_rss"]].max(),
             COLUMNS["cpu_time"]: jobs[COLUMNS["cpu_time"]].sum(min_count=1)}
    return pd.concat([ordered, pd.DataFrame([total])], ignore_index=True)[TABLE_COLUMNS]


def caption(dataset: str) -> str:
    return (f"Compute cost of every job of the {dataset} study, from Snakemake's benchmark files "
            f"(results/{dataset}/benchmarks/): wall-clock seconds, peak resident memory (max RSS, MB) and "
            "CPU seconds (user + system, summed over the job's processes; above the wall time when a job uses "
            "several threads). Repeated runs of a job are averaged; a dash is a job that ended before "
            "Snakemake's first measurement. The total row sums wall and CPU time over all jobs (jobs run in "
            "parallel, so the study's elapsed time is shorter) and gives the largest max RSS of any job.")


def provenance_line(dataset: str, commit: str, when: datetime | None = None) -> str:
    """The one line that says which code produced the study (plain text: also valid rst)."""
    when = (when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    return f"Produced by git commit {commit} (noisetrain {__version__}) for dataset {dataset}; table written {when}."


def write(table: pd.DataFrame, dataset: str, md: str | Path, html: str | Path, commit: str | None = None) -> None:
    """``md`` (provenance line, caption, table) and ``html`` (the same, for the Snakemake report).
    ``commit`` defaults to this checkout's git commit."""
    if commit is None:
        from noisetrain.report.records import git_commit

        commit = git_commit()
    line = provenance_line(dataset, commit)
    rendered = render(table, caption(dataset))
    texts = {md: f"{line}\n\n{rendered['md']}", html: f"<p>{escape(line)}</p>\n{rendered['html']}"}
    for path, text in texts.items():
        atomic_write(path, lambda tmp, text=text: tmp.write_text(text))
