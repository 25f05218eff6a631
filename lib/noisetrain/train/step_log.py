"""The per-step training log: one CSV row per classifier update, written as training goes (loss,
accuracy on the composed batch, every metric of the method step, lr, images/s, GPU memory), so that
a long ImageNet run can be watched and plotted while it trains.

It lives beside the checkpoint; a resumed run first drops the rows written after the checkpoint it
resumes from (those steps are trained again), so the finished log has each step once.

The trainer writes the rows in batches, once their metrics are read from the training device
(``noisetrain.train.epoch_sums``: once a minute, before every checkpoint and at the end of an epoch),
so that logging a step does not make it wait for the device. A row's images/s is the host's rate
between steps: on a GPU it follows the device's once the queue of launched work is full.
"""

from __future__ import annotations

import csv
from pathlib import Path

from noisetrain.storage import atomic_write

FIRST_COLUMNS = ("epoch", "step", "loss", "accuracy")
LAST_COLUMNS = ("lr", "images_per_second", "gpu_memory_mb")


def _step_of(row: dict) -> float:
    """A row's step; a line cut short by a killed job (a field missing) counts as after any step."""
    if None in row.values() or not str(row.get("step", "")).isdigit():
        return float("inf")
    return int(row["step"])


class StepLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.columns: list[str] | None = None
        self._handle = None
        self._writer = None

    def keep_until(self, step: int) -> None:
        """Drop every row after global step ``step`` (0: start empty)."""
        rows, columns = [], None
        if step > 0 and self.path.exists():
            with open(self.path, newline="") as handle:
                reader = csv.DictReader(handle)
                columns = reader.fieldnames
                rows = [row for row in reader if _step_of(row) <= step]

        def write(tmp):
            with open(tmp, "w", newline="") as handle:
                if columns:
                    writer = csv.DictWriter(handle, fieldnames=columns)
                    writer.writeheader()
                    writer.writerows(rows)

        atomic_write(self.path, write)
        self.columns = list(columns) if columns else None

    def write(self, rows: list[dict]) -> None:
        """Append ``rows`` (the columns: the first row's, or the file's when it has rows already)."""
        if rows:
            self._open(rows[0])
            self._writer.writerows(rows)

    def _open(self, row: dict) -> None:
        if self._writer is None:
            if self.columns is None:
                extra = [key for key in row if key not in FIRST_COLUMNS + LAST_COLUMNS]
                self.columns = [*FIRST_COLUMNS, *extra, *LAST_COLUMNS]
            new = not self.path.exists() or self.path.stat().st_size == 0
            self._handle = open(self.path, "a", newline="")
            self._writer = csv.DictWriter(self._handle, fieldnames=self.columns, extrasaction="ignore")
            if new:
                self._writer.writeheader()

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = self._writer = None
