"""Clipping-aware rescaling of a perturbation to an exact L2 norm (paper footnote 2).

Given images ``x`` in [0, 1] and directions ``delta``, :func:`rescale_to_norm` finds per sample
the scale ``eta >= 0`` such that the change actually applied after clipping,
``clip(x + eta * delta, 0, 1) - x``, has L2 norm exactly ``eps`` (the method of Rauber & Bethge,
2020, "Fast differentiable clipping-aware normalization and rescaling").

Derivation. Pixel ``i`` can move at most ``b_i`` (``1 - x_i`` if ``delta_i > 0``, ``x_i`` if
``delta_i < 0``) before it is clipped, which happens at ``eta_i = b_i / |delta_i|``. With
``s = eta^2`` the squared norm of the clipped change is

    f(s) = sum_{i: s_i <= s} b_i^2  +  s * sum_{i: s_i > s} delta_i^2,    s_i = eta_i^2,

which is continuous, non-decreasing and piecewise linear in ``s`` with breakpoints ``s_i``. The
solution lies on the linear segment after the last breakpoint ``s_k`` with ``f(s_k) < eps^2``;
there ``s = (eps^2 - B) / D`` with ``B`` the squared budget of the pixels already saturated and
``D`` the squared norm of ``delta`` over the others.

Finding that segment needs no full sort (a sort of every row cost more than the rest of the
rescaling together). The bits of a non-negative float order like the float, so their top bits
put every breakpoint in one of a few thousand buckets per row, each a range of values; per-bucket
sums of ``b_i^2`` and ``delta_i^2`` (one scatter-add each) give ``f`` at every bucket's lower edge,
which brackets the solution in one bucket. Only the breakpoints in that bucket (about 0.1% of
an ImageNet row) are sorted and ``f`` evaluated at each, exactly as on a fully sorted row: the same segment,
so the same ``B`` and ``D``, summed over the pixels as before. Sums of squares run in float64 and
the sum of ``delta_i^2`` over the pixels still moving is summed from the large end of ``s`` (the
small terms first), never taken as a total minus a prefix, which cancels when ``delta`` spans
many decades. Every step is vectorised over the batch.
"""

from __future__ import annotations

import torch

from noisetrain.errors import InputError
from noisetrain.threads import one_thread

# Sums of squares (and the solve) run in float64: for ImageNet-sized inputs (~150k pixels)
# float32 sums lose several digits. The breakpoints themselves stay in the input dtype.
_ACC_DTYPE = torch.float64
# Buckets per row: at most 2^15 (float32 ImageNet rows: 128 to an octave of values), and about
# one per pixel for small rows (MNIST), where the bucket arrays would otherwise outweigh the row.
_MAX_BUCKET_BITS = 15


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
        if torch.isnan(eps).any() or (eps < 0).any():
            raise InputError("eps must be >= 0 (and not NaN)")
        return eps
    if not float(eps) >= 0:  # checked on the host: a number's check must not wait for a GPU
        raise InputError("eps must be >= 0 (and not NaN)")
    return torch.full((batch,), float(eps), device=device, dtype=_ACC_DTYPE)


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
    with one_thread():
        eta, saturated = _solve_eta(x, delta, eps)
        view = (x.shape[0],) + (1,) * (x.dim() - 1)
        eta = eta.to(delta.dtype).reshape(view)
        out = _ClipAdd.apply(x, eta, delta)
        if out.device.type != "cpu" or saturated.any():  # on a GPU the test would wait for it
            full = torch.where(delta > 0, 1.0, torch.where(delta < 0, 0.0, x)).to(out.dtype)
            out = torch.where(saturated.reshape(view), full, out)
    return out


def rescale_factor(x: torch.Tensor, delta: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """The per-sample scale ``eta`` (shape (B,), float64) used by :func:`rescale_to_norm`.

    ``inf`` marks samples that cannot reach ``eps`` (fully saturated, or ``delta`` all zero).
    """
    with one_thread():
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
        # Breakpoints s_i = eta_i^2. Pixels with delta == 0 never saturate: s = inf (room / 0 is
        # inf, or NaN where room is 0 too). On the CPU torch.where is several times slower than this.
        s = ((room / dd) ** 2).nan_to_num_(nan=torch.inf, posinf=torch.inf)
        # Exact squares (a float32 squared fits a float64 mantissa); copies, as dd views delta.
        room2 = room.to(_ACC_DTYPE, copy=True).square_()
        d2 = dd.to(_ACC_DTYPE, copy=True).square_()
        s_key = s if s.dtype == torch.float64 else s.float()  # exact for half types
        last = _last_saturating(s_key, room2, d2, eps2)
        # The segment of the solution: the pixels with s_i <= s_(k-1) are saturated (pixels tied
        # with s_(k-1) saturate at the segment's start, so ties are consistent), the others move.
        moving = s_key > last[:, None]
        # B: squared room of the saturated pixels (a product with the mask: the values of
        # torch.where(moving, 0, room2), at a third of its cost on the CPU).
        budget_done = (room2 * moving.logical_not()).sum(dim=1)

    # D, the squared delta of the pixels still moving, is the only delta-dependent term.
    d_rest = _MovingSquares.apply(d, moving, d2)
    # Not even saturating every pixel with nonzero delta reaches eps (or delta is all zero): then
    # the last breakpoint below eps is the largest one and no pixel with a delta still moves.
    saturated = d_rest.detach() == 0
    # Keep the unused branch finite so that no NaN/inf leaks into gradients.
    d_rest = torch.where(saturated, 1.0, d_rest)
    numer = torch.where(saturated, 0.0, (eps2 - budget_done).clamp(min=0.0))
    # eta = sqrt(eps^2 - B) / sqrt(D): written this way the gradient stays finite at eta = 0.
    eta = torch.sqrt(numer) * torch.rsqrt(d_rest)
    return eta, saturated


class _ClipAdd(torch.autograd.Function):
    """``clamp(x + eta * delta, 0, 1)``, differentiable in ``eta`` and ``delta`` (not ``x``), with
    the values and gradients of autograd's clamp of a sum (up to the sign of zero gradients; like
    torch.clamp's, the gradient is 0 at the bounds): the gradient is masked by a product with the
    mask of pixels strictly inside, a third of the cost of the torch.where in clamp's backward."""

    @staticmethod
    def forward(ctx, x, eta, delta):
        out = x + eta * delta
        inside = (out > 0.0) & (out < 1.0) if any(ctx.needs_input_grad) else None
        ctx.save_for_backward(eta, delta, inside)
        return out.clamp_(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad):
        eta, delta, inside = ctx.saved_tensors
        with one_thread():
            grad = grad * inside
            grad_eta = (grad * delta).sum_to_size(eta.shape) if ctx.needs_input_grad[1] else None
            grad_delta = grad * eta if ctx.needs_input_grad[2] else None
        return None, grad_eta, grad_delta


class _MovingSquares(torch.autograd.Function):
    """``sum_i moving_i * d_i^2`` per row, in float64, from the squares ``d2`` already made: the
    values and gradient (``2 d_i grad`` rounded once to the dtype of ``d``) of the masked
    ``(d * moving).double().pow(2).sum(1)``, in fewer passes over the pixels."""

    @staticmethod
    def forward(ctx, d, moving, d2):
        ctx.save_for_backward(d, moving)
        return (d2 * moving).sum(dim=1)

    @staticmethod
    def backward(ctx, grad):
        d, moving = ctx.saved_tensors
        with one_thread():
            return (d.to(grad.dtype) * (2.0 * grad)[:, None]).to(d.dtype) * moving, None, None


def _last_saturating(s: torch.Tensor, room2: torch.Tensor, d2: torch.Tensor, eps2: torch.Tensor) -> torch.Tensor:
    """Per row, the largest breakpoint ``s_(k-1)`` with ``f < eps^2`` (-1 if none, e.g. eps = 0),
    in the dtype of ``s`` (float32 or float64): every pixel with ``s_i`` at most that value is
    saturated on the solution's segment and every other one still moves. On the CPU from the
    bucketed search; on a GPU, where a sort is cheap and the search's data-dependent shapes would
    make the step wait for the device, from a full sort (the same value: the tests compare them)."""
    if s.device.type == "cpu":
        return _last_bucketed(s, room2, d2, eps2)
    return _last_sorted(s, room2, d2, eps2)


def _last_sorted(s: torch.Tensor, room2: torch.Tensor, d2: torch.Tensor, eps2: torch.Tensor) -> torch.Tensor:
    """:func:`_last_saturating` from every row sorted: f at each breakpoint from cumulative sums."""
    s_sorted, order = torch.sort(s, dim=1)
    return _last_below(s_sorted, room2.gather(1, order), d2.gather(1, order), eps2, none=-1.0)


def _last_bucketed(s: torch.Tensor, room2: torch.Tensor, d2: torch.Tensor, eps2: torch.Tensor) -> torch.Tensor:
    """:func:`_last_saturating` from per-bucket sums and a sort of one bucket per row."""
    keys, edges = _bucket_keys(s)
    rows, buckets = s.shape[0], edges.numel()
    room_in = room2.new_zeros(rows, buckets).scatter_add_(1, keys, room2)
    delta_in = d2.new_zeros(rows, buckets).scatter_add_(1, keys, d2)
    room_below = torch.cat([room_in.new_zeros(rows, 1), torch.cumsum(room_in, dim=1)[:, :-1]], dim=1)
    delta_from = torch.cat([_suffix_sums(delta_in, inclusive=True), delta_in.new_zeros(rows, 1)], dim=1)
    # f at every bucket's lower edge: the buckets below saturated, the rest scaling linearly. Past
    # the last finite edge this is inf * 0 = NaN, which the count ignores. f is non-decreasing, so
    # counting edges below eps^2 gives the last bucket that starts below the solution.
    f_edge = room_below + edges.to(_ACC_DTYPE) * delta_from[:, :-1]
    bucket = (f_edge < eps2[:, None]).sum(dim=1) - 1
    found = bucket >= 0
    bucket = bucket.clamp(min=0)
    last = _last_in_bucket(
        s, room2, d2, keys == torch.where(found, bucket, -1)[:, None],
        room_below.gather(1, bucket[:, None])[:, 0], delta_from.gather(1, bucket[:, None] + 1)[:, 0], eps2,
    )
    # No breakpoint in the bucket is below the solution: the last one is below the bucket.
    below_edge = torch.nextafter(edges[bucket], torch.tensor(-torch.inf, dtype=s.dtype, device=s.device))
    last = torch.where(torch.isnan(last), below_edge, last)
    return torch.where(found, last, -1.0)


def _bucket_keys(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each breakpoint's bucket (int64, shape of ``s``) and every bucket's lower edge (dtype of ``s``).

    A non-negative float's bits, read as an integer, order like the float, so their top bits
    (sign, exponent and the top mantissa bits) number ranges of values in order, and the lower
    edge of a range is a float itself: the comparisons below are exact.
    """
    if s.dtype == torch.float64:
        bits, exponent_bits, mantissa_bits = s.view(torch.int64), 11, 52
    else:
        bits, exponent_bits, mantissa_bits = s.view(torch.int32), 8, 23
    width = s.shape[1].bit_length() - 1  # ~ log2 of the row length
    kept = min(max(width, exponent_bits), _MAX_BUCKET_BITS) - exponent_bits  # mantissa bits kept
    shift = mantissa_bits - kept
    buckets = 1 << (exponent_bits + kept)  # the sign bit is 0
    edges = (torch.arange(buckets, dtype=bits.dtype, device=s.device) << shift).view(s.dtype)
    return (bits >> shift).long(), edges


def _last_in_bucket(
    s: torch.Tensor, room2: torch.Tensor, d2: torch.Tensor, in_bucket: torch.Tensor,
    room_below: torch.Tensor, delta_above: torch.Tensor, eps2: torch.Tensor,
) -> torch.Tensor:
    """Per row, the largest breakpoint of the bucket ``in_bucket`` with ``f < eps^2`` (NaN if none).

    ``room_below`` and ``delta_above`` are the squared room of the pixels below the bucket and the
    squared delta of those above it. The bucket's breakpoints are gathered into a padded (rows,
    width) array, sorted and evaluated like a sorted row: cumulative sums up each breakpoint.
    """
    rows = s.shape[0]
    row, col = in_bucket.nonzero(as_tuple=True)
    counts = torch.bincount(row, minlength=rows)
    width = max(int(counts.max()) if row.numel() else 0, 1)
    pos = torch.arange(row.numel(), device=s.device) - (torch.cumsum(counts, 0) - counts)[row]
    values = s.new_full((rows, width), torch.inf)  # padding sorts last and never counts below
    values[row, pos] = s[row, col]
    values, order = torch.sort(values, dim=1)
    room_sorted, delta_sorted = (
        room2.new_zeros(rows, width).index_put_((row, pos), v[row, col]).gather(1, order) for v in (room2, d2)
    )
    return _last_below(values, room_sorted, delta_sorted, eps2, none=torch.nan, room_below=room_below,
                       delta_above=delta_above)


def _last_below(
    values: torch.Tensor, room_sorted: torch.Tensor, delta_sorted: torch.Tensor, eps2: torch.Tensor, *, none: float,
    room_below: torch.Tensor | None = None, delta_above: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per row of breakpoints ``values`` sorted ascending (with each one's squared room and squared delta
    in the same order), the largest with ``f < eps^2``, else ``none``. f at a breakpoint: the squared room
    of the breakpoints up to it, plus the breakpoint times the squared delta of those after it; with
    ``room_below`` and ``delta_above`` (a bucket of a row), plus the room of the row's pixels below the
    bucket and the delta of those above it."""
    room = torch.cumsum(room_sorted, dim=1)
    delta = _suffix_sums(delta_sorted)
    if room_below is not None:
        room = room_below[:, None] + room
        delta = delta_above[:, None] + delta
    f = room + values.to(_ACC_DTYPE) * delta
    k = (f < eps2[:, None]).sum(dim=1)
    last = values.gather(1, (k - 1).clamp(min=0)[:, None])[:, 0]
    return torch.where(k > 0, last, none)


def _suffix_sums(v: torch.Tensor, inclusive: bool = False) -> torch.Tensor:
    """Per row, ``out[:, k] = v[:, k + 1:].sum(1)`` (``v[:, k:]`` if ``inclusive``) for non-negative
    ``v``, summed from the end.

    The sum of the pixels still moving at breakpoint k. Taking it as the row total minus a
    prefix sum cancels catastrophically: in breakpoint order the large deltas come first, so
    the remainder can be ~1e-16 of the total (deltas spanning 1e8 in magnitude) and would be
    pure rounding error, which the huge breakpoints s_k then multiply. A cumulative sum run
    from the end adds the small terms first, so every entry has a relative error of a few ulp.
    """
    out = torch.cumsum(v.flip(1), dim=1).flip(1)
    if inclusive:
        return out
    return torch.cat([out[:, 1:], torch.zeros_like(out[:, :1])], dim=1)
