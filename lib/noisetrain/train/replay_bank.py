"""ANT's experience-replay memory (paper section 3.2.2): generator states "saved at regular
intervals", from which replayed noise is drawn "randomly from previous distributions".

Over ANT's 80 ImageNet epochs a snapshot every 20 steps is about 73,000 states (0.3 GB for the 1x1
generator, 1.2 GB for the 3x3), written into every checkpoint and the model file. The bank therefore
keeps at most ``capacity`` states, a uniform sample of every snapshot offered so far (reservoir
sampling, Vitter's algorithm R): after n offers each snapshot is held with probability
min(1, capacity / n), whatever its age, so replay still draws from the whole history. Until it is
full the bank is every snapshot, exactly as an unbounded one. States are held in the order they were
taken (a newcomer replaces a uniformly drawn member and joins at the end), so Fig 4 can show them
in training order.

The reservoir's draws come from their own seeded stream, checkpointed with the bank, so a resumed
run keeps the same states.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

State = dict[str, torch.Tensor]


class ReplayBank:
    def __init__(self, capacity: int, rng: torch.Generator):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"replay bank capacity must be a positive int, got {capacity!r}")
        self.capacity = capacity
        self.rng = rng
        self.states: list[State] = []
        self.taken_at: list[int] = []  # the training step of each state (unique: one snapshot a step at most)
        self.offered = 0

    def __len__(self) -> int:
        return len(self.states)

    def __bool__(self) -> bool:
        return bool(self.states)

    def offer(self, step: int, take: Callable[[], State]) -> int | None:
        """Offer the snapshot of training step ``step``; ``take`` copies the state, and is called
        only when the bank keeps it. Returns the step of the state it displaced, if any."""
        self.offered += 1
        displaced = None
        if len(self.states) >= self.capacity:
            slot = int(torch.randint(self.offered, (1,), generator=self.rng))
            if slot >= self.capacity:
                return None
            displaced = self.taken_at.pop(slot)
            del self.states[slot]
        self.states.append(take())
        self.taken_at.append(step)
        return displaced

    def state_dict(self) -> dict:
        return {"states": [dict(s) for s in self.states], "taken_at": list(self.taken_at),
                "offered": self.offered, "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.states = [{k: v.to("cpu", copy=True) for k, v in s.items()} for s in state["states"]]
        self.taken_at = [int(step) for step in state["taken_at"]]
        self.offered = int(state["offered"])
        self.rng.set_state(state["rng"])
