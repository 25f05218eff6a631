"""Stopping a training job on request: slurm sends SIGTERM before it preempts a job or ends it at
its time limit (and SIGUSR1 ahead of time with ``--signal``). The trainer checks the request after
every step, writes a checkpoint and stops with :class:`~noisetrain.errors.Preempted`; Snakemake's
retry (or the user's rerun) resumes from that checkpoint.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def ignore_stop_signals(_worker_id: int | None = None) -> None:
    """A DataLoader worker's init: slurm signals every process of the job, and a worker killed by
    SIGTERM makes the loader raise mid-step; the workers ignore the stop signals and leave them to
    the training process, which checkpoints after its step and ends them with itself."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def worker_batches(loader) -> Iterator:
    """The batches of a DataLoader whose workers never die of a stop signal: their init is
    :func:`ignore_stop_signals`, and the signals stay blocked while they are forked, so one that
    arrives before a worker ignores them waits, in the training process, until the workers are started."""
    if loader.worker_init_fn not in (None, ignore_stop_signals):
        raise ValueError("worker_batches sets the workers' init itself: build the loader without worker_init_fn")
    loader.worker_init_fn = ignore_stop_signals
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        iterator = iter(loader)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    yield from iterator


class StopRequest:
    """A context that turns the stop signals into a flag the training loop polls; the previous
    handlers come back on exit. Outside the main thread (where Python cannot take signals) it only
    holds the flag."""

    def __init__(self):
        self.received: str | None = None
        self._previous: dict = {}

    @property
    def requested(self) -> bool:
        return self.received is not None

    def _handle(self, signum, frame) -> None:
        self.received = signal.Signals(signum).name

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
