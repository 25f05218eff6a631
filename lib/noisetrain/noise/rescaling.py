"""Clipping-aware rescaling of a perturbation to an exact L2 norm (paper footnote 2).

Given images ``x`` in [0, 1] and directions ``delta``, :func:`rescale_to_norm` finds per sample
the scale ``eta >= 0`` such that the change actually applied after clipping,
``clip(x + eta * delta, 0, 1) - x``, has L2 norm exactly ``eps`` (the method of Rauber & Bethge,
2020, "Fast differentiable clipping-aware normalization and rescaling").

Derivation. Pixel ``i`` can move at most ``b_i`` (``1 - x_i`` if ``delta_i > 0``, ``x_i`` if
``delta_i < 0``) before it is clipped, which happens at ``eta_i = b_i / |delta_i|``. With
``s = eta^2`` the squared norm of the clipped change is

    f(s) = sum_{i: s_i <= s} b_i^2  +  s * sum_{i: s_i > s} delta_i^2,    s_i = eta_i^2,

which is continuous, non-decreasing and piecewise linear in ``s`` with breakpoints ``s_i``.
Sorting the breakpoints and taking cumulative sums gives ``f`` at every breakpoint at once
(the sum of ``delta_i^2`` over the pixels not yet saturated is summed from the end of the sorted
row, not taken as the total minus a prefix, which cancels when ``delta`` spans many decades);
the first breakpoint with ``f >= eps^2`` delimits the linear segment that contains the
solution, on which ``s = (eps^2 - B) / D`` with ``B`` the squared budget of the pixels already
saturated and ``D`` the squared norm of ``delta`` over the others. No iteration is needed and
every step is vectorised over the batch.
"""

from __future__ import annotations

import torch

from noisetrain.errors import InputError

# Cumulative sums (and the solve) run in float64: for ImageNet-sized inputs (~150k pixels)
# float32 cumulative sums lose several digits. The sort itself stays in the input dtype.
_ACC_DTYPE = torch.float64


def _as_eps(eps: float | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """Validate ``eps`` and return it as a (B,) float64 tensor."""
    if isinstance(eps, torch.Tensor):
        if eps.dim() == 0:
            eps = eps.reshape(1).expand(batch)
        elif eps.shape != (batch,):
            raise InputError(
                f"eps must be a scalar or have shape ({batch},), got {tuple(eps.shape)}"
            )
        eps = eps.to(device=device, dtype=_ACC_DTYPE)
    else:
        eps = torch.full((batch,), float(eps), device=device, dtype=_ACC_DTYPE)
    if torch.isnan(eps).any() or (eps < 0).any():
        raise InputError("eps must be >= 0 (and not NaN)")
    return eps


def rescale_to_norm(
    x: torch.Tensor, delta: torch.Tensor, eps: float | torch.Tensor
) -> torch.Tensor:
    """Return ``clip(x + eta * delta, 0, 1)``, ``eta`` per sample so the change has L2 norm ``eps``.

    Args:
        x: images in [0, 1], shape (B, ...) (typically NCHW). Not differentiated.
        delta: perturbation directions, same shape as ``x``. The result is differentiable with
            respect to ``delta``, including through the choice of ``eta``.
        eps: target L2 norm over all non-batch dimensions; a float or a (B,) tensor, >= 0.

    Where ``eps`` exceeds the largest reachable change of a sample (every pixel with nonzero
    ``delta`` clipped), that sample is returned fully saturated: each pixel moved to the
    bound in the direction of ``delta``, pixels with ``delta == 0`` unchanged; its norm is then
    below ``eps``. A sample whose ``delta`` is all zero is returned unchanged.
    """
    eta, saturated = _solve_eta(x, delta, eps)
    view = (x.shape[0],) + (1,) * (x.dim() - 1)
    eta = eta.to(delta.dtype).reshape(view)
    out = torch.clamp(x + eta * delta, 0.0, 1.0)
    if saturated.any():
        full = torch.where(delta > 0, 1.0, torch.where(delta < 0, 0.0, x)).to(out.dtype)
        out = torch.where(saturated.reshape(view), full, out)
    return out


def rescale_factor(x: torch.Tensor, delta: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """The per-sample scale ``eta`` (shape (B,), float64) used by :func:`rescale_to_norm`.

    ``inf`` marks samples that cannot reach ``eps`` (fully saturated, or ``delta`` all zero).
    """
    eta, saturated = _solve_eta(x, delta, eps)
    return torch.where(saturated, torch.full_like(eta, torch.inf), eta)


def _solve_eta(
    x: torch.Tensor, delta: torch.Tensor, eps: float | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form per-sample eta (float64, finite; 0 where saturated) and the saturated mask."""
    if not isinstance(x, torch.Tensor) or not isinstance(delta, torch.Tensor):
        raise InputError("x and delta must be tensors")
    if x.shape != delta.shape:
        raise InputError(
            f"x and delta must have the same shape, got {tuple(x.shape)} and {tuple(delta.shape)}"
        )
    if x.dim() < 2:
        raise InputError(f"x needs a batch dimension and at least one more, got {tuple(x.shape)}")
    if not (x.is_floating_point() and delta.is_floating_point()):
        raise InputError("x and delta must be floating point")
    batch = x.shape[0]
    eps2 = _as_eps(eps, batch, x.device) ** 2
    d = delta.reshape(batch, -1)

    with torch.no_grad():
        xd, dd = x.detach().reshape(batch, -1), d.detach()
        # Room each pixel has in the direction of its delta before it is clipped.
        room = torch.where(dd > 0, 1.0 - xd, xd).clamp_(min=0.0)
        # Breakpoints s_i = eta_i^2. Pixels with delta == 0 never saturate: give them s = inf
        # so that they sort last (their room then never enters a sum that is used).
        s = torch.where(dd != 0, (room / dd) ** 2, torch.inf)
        s_sorted, order = _sort_rows(s)
        b_cum = torch.cumsum(torch.gather(room, 1, order).to(_ACC_DTYPE) ** 2, dim=1)
        d_rest_sorted = _suffix_sums(torch.gather(dd, 1, order).to(_ACC_DTYPE) ** 2)
        # f at each breakpoint: pixels up to it saturated, the rest still scaling linearly.
        # Past the last nonzero delta this is inf * 0 = NaN, which the count below ignores.
        f = b_cum + s_sorted.to(_ACC_DTYPE) * d_rest_sorted
        # f is non-decreasing, so counting breakpoints below eps^2 gives the first index k with
        # f >= eps^2 (robust even if rounding breaks exact monotonicity). The solution lies on
        # the segment where the pixels with s_i <= s_(k-1) are saturated and the others are not
        # (pixels tied with s_(k-1) saturate at the segment's start, so ties are consistent).
        k = (f < eps2[:, None]).sum(dim=1)
        # Not even saturating every pixel with nonzero delta reaches eps (or delta is all zero).
        saturated = k >= (dd != 0).sum(dim=1)
        last = torch.gather(s_sorted, 1, (k - 1).clamp_(min=0)[:, None])
        moving = s > torch.where(k[:, None] == 0, -1.0, last)
        # B: squared room of the saturated pixels.
        budget_done = torch.where(moving, 0.0, room).to(_ACC_DTYPE).pow_(2).sum(dim=1)

    # D, the squared delta of the pixels still moving, is the only delta-dependent term: an
    # elementwise mask keeps the backward pass as cheap as the forward.
    d_rest = (d * moving).to(_ACC_DTYPE).pow(2).sum(dim=1)
    # Keep the unused branch finite so that no NaN/inf leaks into gradients.
    d_rest = torch.where(saturated, 1.0, d_rest)
    numer = torch.where(saturated, 0.0, (eps2 - budget_done).clamp(min=0.0))
    # eta = sqrt(eps^2 - B) / sqrt(D): written this way the gradient stays finite at eta = 0.
    eta = torch.sqrt(numer) * torch.rsqrt(d_rest)
    return eta, saturated


def _suffix_sums(v: torch.Tensor) -> torch.Tensor:
    """Per row, ``out[:, k] = v[:, k + 1:].sum(1)`` for non-negative ``v``, summed from the end.

    The sum of the pixels still moving at breakpoint k. Taking it as the row total minus a
    prefix sum cancels catastrophically: sorted by breakpoint, the large deltas come first, so
    the remainder can be ~1e-16 of the total (deltas spanning 1e8 in magnitude) and would be
    pure rounding error, which the huge breakpoints s_k then multiply. A cumulative sum run
    from the end adds the small terms first, so every entry has a relative error of a few ulp.
    """
    inclusive = torch.cumsum(v.flip(1), dim=1).flip(1)
    return torch.cat([inclusive[:, 1:], torch.zeros_like(inclusive[:, :1])], dim=1)


def _sort_rows(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.sort(s, dim=1)`` for non-negative ``s`` (no NaN), faster for float32.

    The bits of a non-negative float32, read as an integer, order like the float. With the row
    number in the high 32 bits, one flat sort of int64 keys sorts every row at once, and on CPU
    torch sorts flat integer keys by radix, about 3x faster than its per-row float sort.
    """
    if s.dtype != torch.float32:
        return torch.sort(s, dim=1)
    rows, n = s.shape
    offset = torch.arange(rows, device=s.device, dtype=torch.int64)[:, None]
    keys = (offset << 32) | s.view(torch.int32).to(torch.int64)
    sorted_keys, flat = torch.sort(keys.reshape(-1))
    low = (sorted_keys & 0xFFFFFFFF).to(torch.int32).view(torch.float32).reshape(rows, n)
    return low, flat.reshape(rows, n) - offset * n
