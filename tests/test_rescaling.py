"""Tests for noisetrain.rescaling.rescale_to_norm (clipping-aware rescaling, footnote 2)."""

import time

import pytest
import torch

from noisetrain.noise.rescaling import rescale_factor, rescale_to_norm


def _norms(x, out):
    return (out.double() - x.double()).flatten(1).norm(dim=1)


def _bisect_eta(x, delta, eps, iters=200):
    """Reference: per-sample bisection on eta of ||clip(x + eta delta) - x|| = eps (float64)."""
    x, delta = x.double().flatten(1), delta.double().flatten(1)
    etas = []
    for xi, di in zip(x, delta):
        norm = lambda eta, xi=xi, di=di: ((xi + eta * di).clamp(0, 1) - xi).norm().item()  # noqa: E731
        lo, hi = 0.0, 1.0
        while norm(hi) < eps:
            hi *= 2
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if norm(mid) < eps else (lo, mid)
        etas.append(0.5 * (lo + hi))
    return torch.tensor(etas, dtype=torch.float64)


def _saturating_batch(seed, batch=8, shape=(1, 6, 6)):
    """Images with many pixels at or near the bounds and large deltas (many clipped pixels)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, *shape, generator=g)
    kind = torch.rand(batch, *shape, generator=g)
    x = torch.where(kind < 0.25, 0.0, torch.where(kind < 0.5, 1.0, x))
    x = torch.where((kind > 0.5) & (kind < 0.6), 0.999, x)
    delta = torch.randn(batch, *shape, generator=g) * 5
    return x, delta


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("eps", [0.3, 1.5, 3.0])
def test_matches_bisection_reference(seed, eps):
    x, delta = _saturating_batch(seed)
    eta = rescale_factor(x, delta, eps)
    assert torch.isfinite(eta).all()  # eps below the reachable maximum here
    ref = _bisect_eta(x, delta, eps)
    assert torch.allclose(eta, ref, rtol=1e-4, atol=0)
    out = rescale_to_norm(x, delta, eps)
    target = torch.full((len(x),), eps, dtype=torch.float64)
    assert torch.allclose(_norms(x, out), target, rtol=1e-4)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.allclose(out, (x + eta.float()[:, None, None, None] * delta).clamp(0, 1))


def test_norm_is_eps_on_generic_batch_with_tensor_eps():
    g = torch.Generator().manual_seed(5)
    x = torch.rand(16, 3, 8, 8, generator=g)
    delta = torch.randn(16, 3, 8, 8, generator=g)
    eps = torch.linspace(0.5, 6, 16)  # below the reachable maximum (~8)
    out = rescale_to_norm(x, delta, eps)
    assert torch.allclose(_norms(x, out), eps.double(), rtol=1e-5)
    assert out.min() >= 0 and out.max() <= 1


def test_eps_zero_returns_x():
    x, delta = _saturating_batch(3)
    assert torch.equal(rescale_to_norm(x, delta, 0.0), x)


def test_saturated_when_eps_unreachable():
    x, delta = _saturating_batch(4, batch=3)
    delta[:, :, 0, 0] = 0.0  # pixels without a direction must stay where they are
    full = torch.where(delta > 0, 1.0, torch.where(delta < 0, 0.0, x))
    max_norm = _norms(x, full)
    eps = torch.stack([max_norm[0] * 2, max_norm[1] * 0.5, max_norm[2] + 1e-3]).float()
    out = rescale_to_norm(x, delta, eps)
    assert torch.equal(out[0], full[0])
    assert torch.equal(out[2], full[2])
    assert torch.allclose(_norms(x, out)[1], eps[1].double(), rtol=1e-5)
    assert torch.equal(out[:, :, 0, 0], x[:, :, 0, 0])
    eta = rescale_factor(x, delta, eps)
    assert torch.isinf(eta[0]) and torch.isfinite(eta[1])


def test_reaching_exactly_the_maximum_norm():
    x, delta = _saturating_batch(6, batch=2)
    full = torch.where(delta > 0, 1.0, torch.where(delta < 0, 0.0, x))
    eps = _norms(x, full)
    out = rescale_to_norm(x.double(), delta.double(), eps)
    assert torch.allclose(out, full.double(), atol=1e-12)


def test_zero_delta_returns_x():
    x, delta = _saturating_batch(7, batch=3)
    delta[1] = 0.0
    out = rescale_to_norm(x, delta, 1.0)
    assert torch.equal(out[1], x[1])
    assert torch.allclose(_norms(x, out)[[0, 2]], torch.ones(2, dtype=torch.float64), rtol=1e-5)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(8)
    x = torch.rand(3, 1, 3, 4, generator=g, dtype=torch.float64) * 0.8 + 0.1
    x[0, 0, 0, :2] = torch.tensor([0.0, 1.0], dtype=torch.float64)  # pixels at the bounds
    delta = torch.randn(3, 1, 3, 4, generator=g, dtype=torch.float64).requires_grad_()
    eps = torch.tensor([0.2, 0.8, 1.2], dtype=torch.float64)
    # Some pixels are clipped, so the gradient goes through the closed-form solve for eta.
    out = rescale_to_norm(x, delta.detach(), eps)
    clipped = ((out == 0) | (out == 1)).sum()
    assert clipped > 2
    fn = lambda d: rescale_to_norm(x, d, eps)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (delta,), eps=1e-7, atol=1e-6)


def test_gradients_are_finite_including_edge_cases():
    x, delta = _saturating_batch(9, batch=4)
    delta[3] = 0.0
    delta.requires_grad_(True)
    eps = torch.tensor([0.0, 1.0, 1e3, 1.0])  # eta = 0, normal, saturated, zero delta
    out = rescale_to_norm(x, delta, eps)
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(delta.grad).all()


def test_gradient_of_the_norm_vanishes():
    # The norm is pinned to eps whatever delta is, so its gradient must be zero; with eta
    # treated as a constant it would not be.
    x, delta = _saturating_batch(10, batch=2)
    x, delta = x.double(), delta.double().requires_grad_()
    out = rescale_to_norm(x, delta, 1.0)
    (out - x).pow(2).sum().backward()
    assert delta.grad.abs().max() < 1e-10
    delta.grad = None
    eta = rescale_factor(x, delta, 1.0)[:, None, None, None].detach()
    ((x + eta * delta).clamp(0, 1) - x).pow(2).sum().backward()
    assert delta.grad.abs().max() > 1e-3


@pytest.mark.parametrize(
    "args",
    [
        (torch.rand(2, 1, 3, 3), torch.randn(2, 1, 3, 4), 1.0),
        (torch.rand(2, 1, 3, 3), torch.randn(2, 1, 3, 3), -1.0),
        (torch.rand(2, 1, 3, 3), torch.randn(2, 1, 3, 3), torch.tensor([1.0, -0.1])),
        (torch.rand(2, 1, 3, 3), torch.randn(2, 1, 3, 3), torch.ones(3)),
        (torch.rand(2, 1, 3, 3), torch.randn(2, 1, 3, 3), float("nan")),
        (torch.rand(3), torch.randn(3), 1.0),
    ],
)
def test_invalid_arguments_raise(args):
    with pytest.raises(ValueError):
        rescale_to_norm(*args)


def test_mnist_sized_batch_is_fast():
    # Not a timed assertion (shared machine): this just exercises the vectorised path on a
    # (300, 1, 28, 28) batch and prints the time, which should be a few milliseconds.
    g = torch.Generator().manual_seed(11)
    x = (torch.rand(300, 1, 28, 28, generator=g) * 1.6 - 0.3).clamp(0, 1)
    delta = torch.randn(300, 1, 28, 28, generator=g)
    rescale_to_norm(x, delta, 10.0)
    start = time.perf_counter()
    for _ in range(5):
        out = rescale_to_norm(x, delta, 10.0)
    print(f"rescale_to_norm (300, 1, 28, 28): {(time.perf_counter() - start) / 5 * 1e3:.2f} ms")
    assert torch.allclose(_norms(x, out), torch.full((300,), 10.0, dtype=torch.float64), rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("frac", [0.5, 0.9, 0.99, 0.999, 1 - 1e-6])
def test_exact_norm_when_delta_spans_sixteen_decades(dtype, frac):
    """|delta| from 1e-8 to 1e8: the sum of delta^2 over the pixels still moving is ~1e-16 of the
    total once the large ones have saturated, so total minus a prefix sum cancels to rounding
    noise, which the breakpoints (up to 1e16) then amplify: the old form missed eps by 1-5%."""
    g = torch.Generator().manual_seed(0)
    batch, n = 8, 2000
    x = torch.rand(batch, 1, n, generator=g, dtype=torch.float64)
    magnitude = 10.0 ** (16 * torch.rand(batch, 1, n, generator=g, dtype=torch.float64) - 8)
    delta = torch.where(torch.rand(batch, 1, n, generator=g) < 0.5, -magnitude, magnitude)
    x, delta = x.to(dtype), delta.to(dtype)
    room = torch.where(delta > 0, 1 - x, x).double()
    eps = frac * room.flatten(1).norm(dim=1)  # close to the largest reachable norm
    out = rescale_to_norm(x, delta, eps)
    # float32 images carry ~6e-8 absolute rounding per pixel; relative 1e-5 holds for both
    torch.testing.assert_close(_norms(x, out), eps, rtol=1e-5, atol=0)
    eta = rescale_factor(x, delta, eps)
    assert torch.isfinite(eta).all()
    assert torch.equal(out, (x + eta.to(dtype)[:, None, None] * delta).clamp(0, 1))


def _reference_rescale(x, delta, eps):
    """The sort-based solve this module used before its bucketed search (kept as the reference):
    every row's breakpoints sorted, f at each from cumulative sums, the segment of the first
    breakpoint with f >= eps^2; autograd's clamp. Same return as rescale_to_norm, and eta."""
    batch = x.shape[0]
    eps2 = torch.as_tensor(eps, dtype=torch.float64).expand(batch) ** 2
    d = delta.reshape(batch, -1)
    with torch.no_grad():
        xd, dd = x.reshape(batch, -1), d.detach()
        room = torch.where(dd > 0, 1.0 - xd, xd).clamp_(min=0.0)
        s = torch.where(dd != 0, (room / dd) ** 2, torch.inf)
        s_sorted, order = torch.sort(s, dim=1)
        b_cum = torch.cumsum(torch.gather(room, 1, order).double() ** 2, dim=1)
        d_sorted = torch.gather(dd, 1, order).double() ** 2
        d_after = torch.cat([torch.cumsum(d_sorted.flip(1), 1).flip(1)[:, 1:], torch.zeros_like(d_sorted[:, :1])], 1)
        f = b_cum + s_sorted.double() * d_after
        k = (f < eps2[:, None]).sum(dim=1)
        saturated = k >= (dd != 0).sum(dim=1)
        last = torch.gather(s_sorted, 1, (k - 1).clamp(min=0)[:, None])
        moving = s > torch.where(k[:, None] == 0, -1.0, last)
        budget_done = torch.where(moving, 0.0, room).double().pow(2).sum(dim=1)
    d_rest = torch.where(saturated, 1.0, (d * moving).double().pow(2).sum(dim=1))
    eta = torch.sqrt(torch.where(saturated, 0.0, (eps2 - budget_done).clamp(min=0.0))) * torch.rsqrt(d_rest)
    view = (batch,) + (1,) * (x.dim() - 1)
    out = torch.clamp(x + eta.to(delta.dtype).reshape(view) * delta, 0.0, 1.0)
    full = torch.where(delta > 0, 1.0, torch.where(delta < 0, 0.0, x)).to(out.dtype)
    return torch.where(saturated.reshape(view), full, out), torch.where(saturated, torch.inf, eta)


def _mixed_batch(seed, shape, dtype):
    """Pixels at 0, at 1 and in between, deltas over four decades with some exact zeros, one
    all-zero delta; eps per sample: 0, beyond the reachable norm, and fractions of it."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=dtype)
    kind = torch.rand(shape, generator=g)
    x = torch.where(kind < 0.2, 0.0, torch.where(kind < 0.4, 1.0, x)).to(dtype)
    delta = torch.randn(shape, generator=g, dtype=dtype) * 10 ** (4 * torch.rand(1, generator=g).item() - 2)
    delta[0].view(-1)[:5] = 0
    delta[-1] = 0
    full = torch.where(delta > 0, 1.0, torch.where(delta < 0, 0.0, x))
    reach = (full.double() - x.double()).flatten(1).norm(dim=1)
    eps = torch.rand(shape[0], generator=g, dtype=torch.float64) * reach
    eps[0], eps[1] = 0.0, 1.5 * reach[1]
    return x, delta, eps.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(6, 1, 28, 28), (5, 3, 17, 13), (4, 1, 6, 6), (3, 3, 224, 224)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bucketed_search_equals_the_sorted_solve(dtype, shape, seed):
    """Bit for bit, outputs, eta and gradients with respect to delta: the bucketed search finds the
    segment the full sort found, and B, D and the output are computed as they were. Rows of
    784 and 150k pixels use 512 and 32768 buckets, float64 rows other key bits."""
    x, delta, eps = _mixed_batch(seed, shape, dtype)
    grad = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 100), dtype=dtype)
    for e in (eps, float(eps[2])):
        want_d, got_d = delta.clone().requires_grad_(), delta.clone().requires_grad_()
        want, want_eta = _reference_rescale(x, want_d, e)
        got = rescale_to_norm(x, got_d, e)
        assert torch.equal(got, want)
        assert torch.equal(rescale_factor(x, delta, e), want_eta)
        (want * grad).sum().backward()
        (got * grad).sum().backward()
        assert torch.equal(got_d.grad, want_d.grad)


def test_one_bucket_holding_every_breakpoint():
    # Constant images and deltas: every breakpoint of a row is equal, so its one bucket is the row.
    x = torch.full((3, 1, 20, 20), 0.3)
    delta = torch.ones(3, 1, 20, 20) * torch.tensor([1.0, -2.0, 0.5])[:, None, None, None]
    delta[2, 0, :10] = -0.5
    for eps in (0.5, 5.0, 100.0):
        want, want_eta = _reference_rescale(x, delta, eps)
        assert torch.equal(rescale_to_norm(x, delta, eps), want)
        assert torch.equal(rescale_factor(x, delta, eps), want_eta)


def test_eps_at_exactly_the_reachable_norm_agrees_to_rounding():
    """eps set to the norm of the fully saturated change lies on the last breakpoint to rounding:
    either segment gives the same image (float64 inputs, where the two sums round apart)."""
    for seed in range(8):
        x, delta, _ = _mixed_batch(seed, (4, 3, 17, 13), torch.float64)
        full = torch.where(delta > 0, 1.0, torch.where(delta < 0, 0.0, x))
        eps = (full - x).flatten(1).norm(dim=1)
        torch.testing.assert_close(rescale_to_norm(x, delta, eps), _reference_rescale(x, delta, eps)[0],
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    x, delta, eps = _mixed_batch(3, (4, 3, 17, 13), torch.float32)
    x, delta = x.to(dtype), delta.to(dtype)
    want, want_eta = _reference_rescale(x, delta, eps)
    assert torch.equal(rescale_to_norm(x, delta, eps), want)
    assert torch.equal(rescale_factor(x, delta, eps), want_eta)


def test_one_thread_sets_and_restores_the_thread_count():
    from noisetrain.threads import one_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), one_thread():
            raise RuntimeError("restored on the way out")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(6, 1, 28, 28), (5, 3, 17, 13), (3, 3, 224, 224)])
def test_the_gpus_sorted_search_finds_the_cpus_breakpoint(dtype, shape):
    """A GPU finds the last saturating breakpoint from a full sort (no data-dependent shapes, so no
    wait for the device), the CPU from the bucketed search: the same segment (the bucketed search may
    return a bound just below its bucket instead of the breakpoint below it: the same pixels move)."""
    from noisetrain.noise import rescaling

    x, delta, eps = _mixed_batch(3, shape, dtype)
    room = torch.where(delta > 0, 1.0 - x, x).flatten(1)
    s = ((room / delta.flatten(1)) ** 2).nan_to_num_(nan=torch.inf, posinf=torch.inf)
    room2, d2 = room.double().square(), delta.flatten(1).double().square()
    eps2 = eps.double() ** 2
    sorted_last, bucketed_last = (f(s, room2, d2, eps2)[:, None] for f in (rescaling._last_sorted, rescaling._last_bucketed))
    assert torch.equal(s > sorted_last, s > bucketed_last)
    assert torch.equal(sorted_last < 0, bucketed_last < 0)  # no breakpoint below eps^2 in the same rows
