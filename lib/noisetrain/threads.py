"""Torch's CPU threads for a stretch of work (issue 21's ANT step on a busy machine, bit-for-bit tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch's intra-op threads set to one, then restored, for a run of many CPU operations of
    0.1-3 million values (the rescaling, a blockwise generator, ANT's batch composition). OpenMP
    synchronises its threads at every operation: when another process holds one of the cores (the
    data loader's workers in training), each operation can wait for a time slice. Measured at batch
    16 on two cores with another process busy: the generator's forward and backward 0.2 s on one
    thread, 1-20 s on two; the rescaling 0.08 s against 0.5 s. With the second core mostly idle
    the generator took 0.19 s on one thread and 0.13-0.16 s on two."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
