"""Exact piecewise-linear form of a single-channel 1x1 noise generator (MNIST's ANT^1x1).

With one channel and 1x1 kernels the generator is a scalar function ``g: R -> R`` applied to
every pixel's input noise, and a ReLU network of one input is continuous and piecewise linear:
on each interval between consecutive *breakpoints* (inputs where some ReLU switches) it is
``slope * z + intercept``. This module finds the breakpoints and the per-interval coefficients
from the weights, then evaluates all pixels with one binary search and one multiply-add.

Why: on MNIST the generator is a 20-wide MLP per pixel, and evaluating it densely (forward and
backward over 235k pixels x 20 channels per batch) costs half a classifier step on a CPU, far
more than its FLOPs suggest, because every hidden activation streams through memory. Here the
dense work is independent of the width and depth; everything that depends on the weights is a
computation over the (at most a few thousand) intervals, which autograd differentiates. The
gradient of the loss with respect to an interval's slope and intercept is a per-interval sum of
``grad * z`` and ``grad`` (one ``bincount`` each), so the backward pass is as cheap as the forward.

The result is the same function as the layer-by-layer evaluation up to float rounding (tests
compare both, values and gradients). Breakpoints and coefficients are computed in float64.

Finding the breakpoints, by induction over the hidden layers: if the ReLU patterns of layers
``< i`` are constant on every current interval, layer ``i``'s pre-activations are affine there
(``U z + V`` per unit), so their zero crossings ``-V / U`` inside an interval are exactly the
new breakpoints; after adding them, the patterns of layers ``<= i`` are constant on every interval.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from noisetrain.errors import InputError

ACC = torch.float64
# (weight of shape (out, in), bias of shape (out,)) per layer; ReLU after every layer but the last.
Layers = list[tuple[torch.Tensor, torch.Tensor]]


def _representatives(breaks: torch.Tensor) -> torch.Tensor:
    """One point strictly inside each interval that ``breaks`` (sorted) cuts the line into."""
    if breaks.numel() == 0:
        return torch.zeros(1, dtype=ACC, device=breaks.device)
    inner = (breaks[1:] + breaks[:-1]) / 2
    return torch.cat([breaks[:1] - 1, inner, breaks[-1:] + 1])


def _relu_patterns(layers: Layers, points: torch.Tensor) -> list[torch.Tensor]:
    """Which units of each hidden layer are active at ``points`` (one bool (P, width) per layer)."""
    h, patterns = points[:, None], []
    for w, b in layers[:-1]:
        pre = h @ w.T + b
        patterns.append(pre > 0)
        h = pre.clamp(min=0)
    return patterns


def _affine_inputs(layers: Layers, patterns: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients (A, B) with ``input of layer len(patterns) = A z + B`` on each interval."""
    n = patterns[0].shape[0] if patterns else 1
    a = torch.ones(n, 1, dtype=layers[0][0].dtype, device=layers[0][0].device)
    b = torch.zeros_like(a)
    for (w, bias), active in zip(layers, patterns):
        a, b = (a @ w.T) * active, (b @ w.T + bias) * active
    return a, b


@torch.no_grad()
def breakpoints(layers: Layers) -> torch.Tensor:
    """Sorted, distinct inputs at which some hidden ReLU of the network switches (float64)."""
    layers = [(w.detach().to(ACC), b.detach().to(ACC)) for w, b in layers]
    breaks = torch.empty(0, dtype=ACC, device=layers[0][0].device)
    inf = torch.full((1,), torch.inf, dtype=ACC, device=breaks.device)
    for i, (w, bias) in enumerate(layers[:-1]):
        patterns = _relu_patterns(layers, _representatives(breaks))[:i]
        a, b = _affine_inputs(layers, patterns)
        slope, offset = a @ w.T, b @ w.T + bias
        crossing = -offset / slope
        lower, upper = torch.cat([-inf, breaks])[:, None], torch.cat([breaks, inf])[:, None]
        inside = (slope != 0) & (crossing > lower) & (crossing < upper)
        breaks = torch.unique(torch.cat([breaks, crossing[inside]]))
    return breaks


class Pieces(NamedTuple):
    """``g(z) = slope[k] * z + intercept[k]`` on interval ``k``; the generator's output adds the
    residual ``z``. ``breaks`` (length P - 1) separates the P intervals."""

    breaks: torch.Tensor
    slope: torch.Tensor
    intercept: torch.Tensor

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """The generator output ``g(z) + z`` for input noise ``z`` of any shape."""
        piece = torch.searchsorted(self.breaks.to(z.dtype), z.reshape(-1)).reshape(z.shape)
        return _PiecewiseAffine.apply(z, piece, self.slope.to(z.dtype), self.intercept.to(z.dtype))


def pieces(layers: Layers) -> Pieces:
    """The piecewise-linear form of a scalar ReLU network; slope and intercept are
    differentiable with respect to the layers' weights and biases."""
    if layers[0][0].shape[1] != 1 or layers[-1][0].shape[0] != 1:
        raise InputError("the piecewise form needs a network with one input and one output channel")
    breaks = breakpoints(layers)
    wide = [(w.to(ACC), b.to(ACC)) for w, b in layers]
    with torch.no_grad():
        patterns = _relu_patterns(wide, _representatives(breaks))
    a, b = _affine_inputs(wide, patterns)
    w, bias = wide[-1]
    return Pieces(breaks, (a @ w.T)[:, 0], (b @ w.T + bias)[:, 0])


class _PiecewiseAffine(torch.autograd.Function):
    """``slope[piece] * z + intercept[piece] + z`` with a backward pass of two bincounts."""

    @staticmethod
    def forward(ctx, z, piece, slope, intercept):
        ctx.save_for_backward(z, piece, slope)
        return torch.take(slope, piece) * z + torch.take(intercept, piece) + z

    @staticmethod
    def backward(ctx, grad):
        z, piece, slope = ctx.saved_tensors
        grad_z = grad * (torch.take(slope, piece) + 1) if ctx.needs_input_grad[0] else None
        # Per-interval sums over up to millions of pixels: accumulate in float64.
        g, index, n = grad.reshape(-1).to(ACC), piece.reshape(-1), slope.numel()
        grad_slope = torch.bincount(index, weights=g * z.reshape(-1), minlength=n).to(slope.dtype)
        grad_intercept = torch.bincount(index, weights=g, minlength=n).to(slope.dtype)
        return grad_z, None, grad_slope, grad_intercept
