"""An epoch's running sums of the step metrics, read from the training device in batches.

A method step returns its metrics as 0-dim tensors on the device (``noisetrain.train.steps``). Summing
them there would cost the trainer a few kernel launches per metric and step (a cast, a product, a sum:
on a small network on a GPU, launch time the minimal loop does not pay); reading them per step would
make every step wait for the device. So the steps' metrics wait here as they came, and
:meth:`EpochSums.settle` (once a minute, before a checkpoint, at the end of the epoch) reads all of
them in one transfer and adds them up on the host, step by step in order, in float64: the sums of
summing every step's floats as they come, bit for bit.
"""

from __future__ import annotations

from noisetrain.host_values import read_floats
from noisetrain.train.steps import Metrics


class EpochSums:
    """Per metric, the sum over the epoch's steps of the step's value times its images (``totals``,
    floats, with ``images``: how many the steps had), and the steps added since the last settle."""

    def __init__(self, totals: dict[str, float] | None = None):
        self.totals = dict(totals or {})
        self._pending: list[tuple[Metrics, int, dict | None]] = []
        self.last: dict[str, float] = {}  # the last settled step's metrics

    def add(self, metrics: Metrics, images: int, row: dict | None = None) -> None:
        """A step's metrics over ``images`` images; ``row``: its per-step log row without the metrics."""
        self._pending.append((metrics, images, row))

    def settle(self) -> list[dict]:
        """Read the pending steps (one transfer) into ``totals``; returns their log rows, each with its
        step's metrics (as floats) after the row's own keys."""
        tensors = {(i, key): value for i, (metrics, _, _) in enumerate(self._pending) for key, value in metrics.items()}
        values = read_floats(tensors)
        rows = []
        for i, (metrics, images, row) in enumerate(self._pending):
            read = {key: values[(i, key)] for key in metrics}
            for key, value in read.items():
                self.totals[key] = self.totals.get(key, 0.0) + value * images
            self.totals["images"] = self.totals.get("images", 0.0) + images
            self.last = read
            if row is not None:
                rows.append({**row, **read})
        self._pending = []
        return rows

    def means(self) -> dict[str, float]:
        """Every metric's mean over the epoch's images so far, and ``images`` (settle first)."""
        totals = dict(self.totals)
        images = max(totals.pop("images", 0.0), 1.0)
        return {**{key: total / images for key, total in totals.items()}, "images": images}
