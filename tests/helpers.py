"""Plain helpers for the tests (imported by name: pytest puts this folder on sys.path)."""

import torch
import torch.nn.functional as F
from torch import nn


def fit_full_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float = 1e-2) -> nn.Module:
    """Train a small classifier with Adam on the whole set at once (a quick 'vanilla' model)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def weights_only_round_trip(source: tuple, target: tuple) -> tuple:
    """Copy (model, optimizer, method step) ``source`` into ``target`` through a weights-only
    torch file, as a resumed job does; returns ``target``."""
    import io

    buffer = io.BytesIO()
    torch.save([part.state_dict() for part in source], buffer)
    buffer.seek(0)
    for part, state in zip(target, torch.load(buffer, weights_only=True)):
        part.load_state_dict(state)
    return target
