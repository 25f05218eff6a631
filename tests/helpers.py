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
