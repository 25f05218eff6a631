"""Counting the tensor operations a block of code dispatches: a device-independent measure of the
kernel launches a GPU would wait for. A small network's step on a GPU (the Madry CNN, ANT's generator
and rescaling on MNIST) takes about as long as the host needs to launch its kernels, so their number,
counted here on any device, predicts what the GPU can only measure (issue 21)."""

from __future__ import annotations

from collections import Counter

from torch.utils._python_dispatch import TorchDispatchMode


class OpCount(TorchDispatchMode):
    """``with OpCount() as count:`` counts the operations dispatched in the block (views excepted:
    they launch no kernel): ``count.ops`` in all, ``count.by_op`` per ATen operation."""

    def __init__(self):
        super().__init__()
        self.by_op: Counter[str] = Counter()

    @property
    def ops(self) -> int:
        return sum(self.by_op.values())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.by_op[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))
