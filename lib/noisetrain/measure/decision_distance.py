"""Line search for the smallest L2 perturbation along a fixed direction that flips a decision.

This is the robustness measure epsilon* of the paper (section 3.4, eq. 4): for every test image
x with label y and a noise direction d (Gaussian, uniform or drawn from a trained noise
generator), find the smallest L2 size of the clipped change

    c(t) = clip(x + t * d / |d|, 0, 1) - x

at which the model's decision argmax f(x + c(t)) differs from y; epsilon* is the median of
these sizes over the test set, with images that never flip counting as infinitely robust
(footnote 4).

How the search works (per image, all images of a batch advancing together):

* The search runs in the reported quantity n = |c(t)| rather than in t. |c(t)| is monotone in t
  but saturates once every pixel has hit its bound; in t the saturation point can lie orders of
  magnitude beyond the crossing (a pixel with a tiny direction component takes a huge t to
  saturate), while in n it is a small multiple of it. A proposed size n is turned into the t
  that produces it by an exact inversion that costs no model evaluation (`_Rays.t_for_norm`).
* Pass 1 evaluates the clean image (misclassified -> 0). The coarse phase then walks up the ray
  from a small first probe, as the authors' search does (bethgelab/game-of-noise,
  `zero_accuracy_perturbation`: eta = 1, 1.8, 1.8^2, ... until the decision changes, then
  bisection between the last unchanged and the first changed grid point). The first probe is
  the change of unclipped size t = `first_size` (default 1, the authors' first eta): a norm of
  ~1 on ImageNet (n_max ~ 224, n_max: the norm of the fully saturated change), ~0.7 on MNIST
  (n_max ~ 19), so 6 to 10 steps of 1.8 reach the end of the ray. Consecutive probes are at
  most a factor 1.8 apart in n, and, over the range of the authors' grid (t up to
  first_size * 1.8^9), also in t: where pixels saturate, n grows slower than t and a step of
  1.8 in t is the finer of the two. Each step may be shorter: it goes to just past where the
  line through the last two margins m(n) = logit_y - max_{j != y} logit_j crosses zero, so an
  accurate estimate lands the first changed probe right behind the crossing.
  The first probe whose decision changed and the last unchanged one before it bracket the first
  decision change the walk can see, and only that bracket is refined: along noise directions
  the margin can dip below zero and come back (a few % of MNIST images), and a search started
  high up the ray, or one bracketing [0, n_max] at once, lands on a later crossing or reports
  inf when the saturated image is classified correctly again. Reaching the saturated image
  without a change gives inf.
* Resolution: a decision change that reverts within one coarse cell (less than a factor 1.8 in
  n, and in t while t <= first_size * 1.8^9) can be stepped over, exactly as in the authors'
  grid search; so can one that starts and ends below the first probe. Within the bracket, a
  second change of decision is not looked for either (the refinement assumes one crossing).
* Refinement of the bracket [lo, hi] uses the margin, not only its sign: the root of the
  parabola through the two ends and the latest discarded point, Illinois-weighted regula falsi
  when one end keeps surviving, bisection when the bracket stops shrinking. Proposals keep
  about rel_tol * n away from the ends, so once an estimate is accurate the next evaluation
  closes the bracket instead of creeping up to it.
* It stops when hi - lo <= rel_tol * hi on the reported norm and returns hi, the size of a
  change that was evaluated and does flip the decision.

Cost at rel_tol = 1e-3 (model evaluations per image, clean pass included, Gaussian / uniform
directions): 10.4 / 10.3 for a small CNN on the 28 x 28 digits (median eps* 12 of n_max ~19),
8.5 / 7.6 for a random linear 10-class model on 3 x 32 x 32 images (eps* 6 of n_max ~29).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from noisetrain.errors import InputError
from noisetrain.models.devices import model_device

__all__ = [
    "DistanceResult",
    "decision_distances",
    "median_epsilon",
    "fraction_inf",
    "gaussian_directions",
    "uniform_directions",
]


@dataclass(frozen=True)
class DistanceResult:
    """Per-image decision distances and the cost of finding them."""

    distances: np.ndarray  # float64 (N,), 0 for misclassified images, inf when it never flips
    forward_passes: int  # total number of per-image model evaluations
    forward_passes_per_image: float

    @property
    def median(self) -> float:
        return median_epsilon(self.distances)


# --------------------------------------------------------------------------------------------
# directions


def _generator(seed: int) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return gen


def gaussian_directions(shape, seed: int) -> torch.Tensor:
    """Standard normal directions (CPU float32) of the given shape, reproducible from `seed`."""
    return torch.randn(tuple(shape), generator=_generator(seed), dtype=torch.float32)


def uniform_directions(shape, seed: int) -> torch.Tensor:
    """Directions uniform in [-1, 1] (centred, so the noise has no brightness bias)."""
    u = torch.rand(tuple(shape), generator=_generator(seed), dtype=torch.float32)
    return 2.0 * u - 1.0


# --------------------------------------------------------------------------------------------
# medians


def median_epsilon(distances) -> float:
    """Median of the distances with inf ranking above every finite value (paper footnote 4).

    For an even count the two middle values are averaged; if one of them is inf, so is the median.
    """
    d = np.asarray(distances, dtype=np.float64).ravel()
    if d.size == 0:
        raise InputError("median_epsilon: got no distances")
    if np.isnan(d).any():
        raise InputError("median_epsilon: distances contain NaN")
    # np.sort places inf last, which is exactly the ordering footnote 4 asks for
    d = np.sort(d)
    k = d.size // 2
    if d.size % 2:
        return float(d[k])
    lo, hi = d[k - 1], d[k]
    return float("inf") if np.isinf(hi) else float(0.5 * (lo + hi))


def fraction_inf(distances) -> float:
    """Fraction of images whose decision never changed along the ray."""
    d = np.asarray(distances, dtype=np.float64).ravel()
    if d.size == 0:
        raise InputError("fraction_inf: got no distances")
    return float(np.isinf(d).mean())


# --------------------------------------------------------------------------------------------
# geometry of the clipped ray


class _Rays:
    """The clipped rays of one batch, flattened to (B, D), and the inversion n -> t.

    With s_i the distance of pixel i to the bound it moves towards and tau_i = s_i / |u_i| the t
    at which it saturates, |c(t)|^2 = sum_{tau_i <= t} s_i^2 + t^2 * sum_{tau_i > t} u_i^2.
    """

    def __init__(self, x: torch.Tensor, d: torch.Tensor):
        self.shape = x.shape
        x = x.reshape(x.shape[0], -1)
        d = d.reshape(d.shape[0], -1).to(x.dtype)
        norms = torch.linalg.vector_norm(d.double(), dim=1)
        self.x = x
        self.u = (d.double() / norms[:, None]).to(x.dtype)
        moving = self.u != 0
        s = torch.where(self.u > 0, 1.0 - x, x).clamp_min(0.0)
        self.s2 = torch.where(moving, s * s, torch.zeros_like(s))
        self.u2 = self.u * self.u
        # pixels that do not move never saturate; those already at their bound do so at t = 0
        self.tau = torch.where(moving, s / self.u.abs().clamp_min(1e-30), torch.full_like(s, math.inf))
        self.n_max = torch.sqrt(self.s2.sum(1, dtype=torch.float64))
        # the end of the ray: every moving pixel sits on its bound
        self.x_sat = torch.where(self.u > 0, torch.ones_like(x), torch.where(self.u < 0, torch.zeros_like(x), x))

    def t_for_norm(self, idx: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """The t at which |c(t)| = n, for rows idx (n < n_max, float64).

        Fixed point t <- sqrt((n^2 - S(t)) / U(t)): it solves the equation as if no further pixel
        saturated, so it can only undershoot and approaches the root monotonically from below,
        starting from t = n (a lower bound because |c(t)| <= t). It is exact as soon as the set
        of saturated pixels stops changing, which takes a handful of iterations.
        """
        tau, s2, u2 = self.tau[idx], self.s2[idx], self.u2[idx]
        n2 = n * n
        t = n.clone()
        for _ in range(100):
            sat = tau <= t.to(tau.dtype)[:, None]
            S = torch.where(sat, s2, 0.0).sum(1, dtype=torch.float64)
            U = torch.where(sat, 0.0, u2).sum(1, dtype=torch.float64)
            t_new = torch.sqrt((n2 - S).clamp_min(0.0) / U.clamp_min(1e-300))
            t_new = torch.maximum(t_new, t)
            done = bool(((t_new - t) <= 1e-12 * t_new).all())
            t = t_new
            if done:
                break
        return t

    def points(self, idx: torch.Tensor, n_target: np.ndarray) -> torch.Tensor:
        """Flattened perturbed images x + c(t(n_target)) for rows idx."""
        return self.points_and_t(idx, n_target)[0]

    def points_and_t(self, idx: torch.Tensor, n_target) -> tuple[torch.Tensor, torch.Tensor]:
        """`points` and the t of each (float64; 0 for n = 0, inf for the saturated end)."""
        n_target = torch.as_tensor(n_target, dtype=torch.float64, device=self.x.device)
        x = self.x[idx]
        out = x.clone()
        ts = torch.where(n_target > 0, torch.full_like(n_target, math.inf), torch.zeros_like(n_target))
        sat = n_target >= self.n_max[idx]
        if sat.any():
            out[sat] = self.x_sat[idx[sat]]
        inner = (~sat) & (n_target > 0)
        if inner.any():
            rows = idx[inner]
            t = self.t_for_norm(rows, n_target[inner])
            out[inner] = (self.x[rows] + t.to(x.dtype)[:, None] * self.u[rows]).clamp(0.0, 1.0)
            ts[inner] = t
        return out, ts

    def norms_at(self, idx: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """|c(t)| for rows idx (float64), one t per row; t = inf gives n_max."""
        finite = torch.isfinite(t)
        tt = torch.where(finite, t, 0.0).to(self.x.dtype)[:, None]
        change = (self.x[idx] + tt * self.u[idx]).clamp(0.0, 1.0) - self.x[idx]
        return torch.where(finite, torch.linalg.vector_norm(change.double(), dim=1), self.n_max[idx])


# --------------------------------------------------------------------------------------------
# per-image search


# The coarse walk's largest step, as a factor on the norm (and on t, see the module docstring),
# and the extent of the authors' grid in t: eta = 1.8^0 ... 1.8^9 times `first_size`.
_COARSE_FACTOR = 1.8
_COARSE_T_STEPS = 9
_MAX_REFINE_STEPS = 100


@dataclass
class _Pt:
    n: float
    m: float


# receives (norm actually evaluated, margin, decision changed); yields the next norm to try
_Search = Generator[float, tuple[float, float, bool], float]


def _quadratic_root(a: _Pt, b: _Pt, c: _Pt) -> float:
    """Root in (a.n, b.n) of the parabola through a, b, c, where a.m > 0 >= b.m.

    A parabola changing sign on [a.n, b.n] has exactly one root there, so this is well defined.
    """
    if len({a.n, b.n, c.n}) < 3:
        return math.nan
    d1 = (b.m - a.m) / (b.n - a.n)
    d2 = ((c.m - b.m) / (c.n - b.n) - d1) / (c.n - a.n)
    # m(n) = a.m + (n - a.n) * (d1 + d2 * (n - b.n)); write it in h = n - a.n
    A = d2
    B = d1 - d2 * (b.n - a.n)
    C = a.m
    if abs(A) * (b.n - a.n) <= 1e-12 * abs(B):
        return a.n - C / B if B != 0 else math.nan
    disc = B * B - 4 * A * C
    if disc < 0:
        return math.nan
    # numerically stable pair of roots; keep the one inside the bracket
    q = -0.5 * (B + math.copysign(math.sqrt(disc), B))
    roots = [q / A, C / q] if q != 0 else [-B / (2 * A)]
    for h in roots:
        if 0 < h < b.n - a.n:
            return a.n + h
    return math.nan


def _search(rel_tol: float, n_max: float, n_first: float, factor: float) -> _Search:
    """One image's search, as a generator: yields norms to evaluate, returns the distance.

    It is sent (norm evaluated, margin, decision changed, cap) for every yielded norm, where cap
    is the norm at `factor` times the t evaluated (inf where the t grid does not apply). The
    coarse phase walks up from n_first, each probe no further than `factor` times the last
    probe whose decision was unchanged, nor than that probe's cap, until the decision changes
    (the saturated end without a change: inf); the refinement then shrinks the bracket
    [last unchanged probe, first changed probe] to rel_tol.
    """
    _, m0, adv0, _ = yield 0.0
    if adv0:
        return 0.0
    if not n_max > 0:  # nothing can move: the saturated image is the clean one
        return math.inf

    # Coarse phase: walk up from the clean image. Each step goes to where the line through the
    # last two margins crosses zero (just past it), but never beyond the grid step, so the walk
    # is at least as fine as the plain grid, and the first changed probe with the last unchanged
    # one before it brackets the first change the walk can see.
    clean = _Pt(0.0, m0)
    lo, prev = clean, None
    p = n_first if 0 < n_first < n_max * (1.0 - 0.5 * rel_tol) else math.inf
    while True:
        n, m, adv, cap = yield p
        if adv:
            hi = _Pt(n, m)
            break
        if p >= n_max:  # the fully saturated image is still classified correctly
            return math.inf
        prev, lo = lo, _Pt(n, m)
        est = math.inf
        if prev.m > lo.m:
            est = lo.n + lo.m * (lo.n - prev.n) / (prev.m - lo.m)
        step = lo.n * (1.0 + rel_tol)
        # aim a little beyond the estimate so an accurate one brackets the flip
        p = min(max(est + 0.5 * rel_tol * est, step), max(min(lo.n * factor, cap), step))
        if p >= n_max * (1.0 - 0.5 * rel_tol):
            p = math.inf  # evaluate the end of the ray exactly

    third: _Pt | None = prev  # latest point that is no longer a bracket end
    stuck_lo = stuck_hi = 0  # how many steps in a row an end has survived
    widths = [hi.n - lo.n]

    # the cap only matters when float32 images cannot resolve a tiny rel_tol any more
    for _ in range(_MAX_REFINE_STEPS):
        if hi.n - lo.n <= rel_tol * hi.n:
            break
        width = hi.n - lo.n
        p = math.nan
        if len(widths) >= 4 and width > 0.5 * widths[-4]:
            pass  # the bracket stopped shrinking: bisect
        elif max(stuck_lo, stuck_hi) >= 2:
            # Illinois: damp the end that keeps surviving so the estimate crosses the root
            mlo = lo.m * (0.5 ** (stuck_lo - 1) if stuck_lo >= 2 else 1.0)
            mhi = hi.m * (0.5 ** (stuck_hi - 1) if stuck_hi >= 2 else 1.0)
            if mlo > mhi:
                p = lo.n + width * mlo / (mlo - mhi)
        else:
            if third is not None:
                p = _quadratic_root(lo, hi, third)
            if not math.isfinite(p) and lo.m > hi.m:
                p = lo.n + width * lo.m / (lo.m - hi.m)
        if not (math.isfinite(p) and lo.n < p < hi.n):
            p = lo.n + 0.5 * width

        # keep a step of ~rel_tol away from both ends: landing there closes the bracket
        tol = 0.9 * rel_tol * lo.n
        if width > 2.0 * tol:
            p = min(max(p, lo.n + tol), hi.n - tol)
        else:
            p = lo.n + 0.5 * width

        n, m, adv, _ = yield p
        new = _Pt(n, m)
        if adv:
            if n <= lo.n:  # the decision flipped below a point that was still correct
                lo = clean
            third, hi = hi, new
            stuck_lo, stuck_hi = stuck_lo + 1, 0
        elif n < hi.n:
            third, lo = lo, new
            stuck_lo, stuck_hi = 0, stuck_hi + 1
        else:  # correct again beyond a decision change: keep the bracket
            third = new
        widths.append(hi.n - lo.n)
    return hi.n


# --------------------------------------------------------------------------------------------
# driver


def _margins(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logit of the label minus the best other logit, decision differs from the label)."""
    logits = logits.double()
    own = logits.gather(1, labels[:, None]).squeeze(1)
    other = logits.scatter(1, labels[:, None], -math.inf).amax(1)
    return own - other, logits.argmax(1) != labels


@torch.no_grad()
def _positive(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number, got {value!r}") from None
    if not (number > 0 and math.isfinite(number)):
        raise InputError(f"{name} must be a positive number, got {value!r}")
    return number


def decision_distances(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    directions: torch.Tensor,
    *,
    rel_tol: float = 1e-3,
    batch_size: int = 500,
    first_size: float = 1.0,
) -> DistanceResult:
    """Smallest L2 size of the clipped change along each direction that flips the decision.

    Args:
        model: classifier taking [0, 1] images (NCHW) and returning logits; evaluated in eval
            mode (its training flag is restored afterwards).
        images: (N, C, H, W) in [0, 1].
        labels: (N,) integer class labels.
        directions: same shape as images; each image's direction need not be normalised but
            must not be zero.
        rel_tol: relative precision of each distance: the flip lies in [lo, hi] with
            hi - lo <= rel_tol * hi, and hi is returned.
        batch_size: images evaluated together.
        first_size: unclipped L2 size t of the first probe along the ray (the authors' first
            grid point, eta = 1); the coarse walk goes up from there in steps of at most 1.8.
            A decision change that reverts below it, or within one step, can be missed.
    """
    rel_tol = _positive("rel_tol", rel_tol)
    if int(batch_size) < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size!r}")
    first_size = _positive("first_size", first_size)
    images = torch.as_tensor(images)
    labels = torch.as_tensor(labels)
    directions = torch.as_tensor(directions)
    if images.ndim < 2:
        raise InputError(f"images must be (N, ...) with N images, got shape {tuple(images.shape)}")
    if tuple(directions.shape) != tuple(images.shape):
        raise InputError(
            f"directions must have the images' shape {tuple(images.shape)}, got {tuple(directions.shape)}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise InputError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    if not images.is_floating_point():
        raise InputError(f"images must be a float tensor in [0, 1], got dtype {images.dtype}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise InputError("images must lie in [0, 1]")
    zero = directions.reshape(directions.shape[0], -1).abs().amax(1) == 0 if directions.numel() else None
    if zero is not None and bool(zero.any()):
        bad = torch.nonzero(zero).flatten()[:5].tolist()
        raise InputError(f"directions must be nonzero; image(s) {bad} have a zero direction")
    if not torch.isfinite(directions).all():
        raise InputError("directions must be finite")

    N = images.shape[0]
    t_grid_end = first_size * _COARSE_FACTOR**_COARSE_T_STEPS
    distances = np.empty(N, dtype=np.float64)
    passes = 0
    device = model_device(model, images.device)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, N, int(batch_size)):
            stop = min(N, start + int(batch_size))
            x = images[start:stop].to(device=device, dtype=torch.float32)
            y = labels[start:stop].to(device=device, dtype=torch.long)
            rays = _Rays(x, directions[start:stop].to(device=device, dtype=torch.float32))
            n_max = rays.n_max.cpu().numpy()
            all_rows = torch.arange(len(x), device=device)
            first_t = torch.full((len(x),), first_size, dtype=torch.float64, device=device)
            n_first = rays.norms_at(all_rows, first_t).cpu().numpy()
            searches = [
                _search(rel_tol, float(n_max[i]), float(n_first[i]), _COARSE_FACTOR) for i in range(len(x))
            ]
            proposals = np.array([next(s) for s in searches], dtype=np.float64)
            active = np.arange(len(x))
            while active.size:
                idx = torch.as_tensor(active, device=device)
                pts, ts = rays.points_and_t(idx, proposals[active])
                logits = model(pts.reshape((-1,) + tuple(rays.shape[1:])))
                margin, adv = _margins(logits, y[idx])
                # report the size of the change actually evaluated
                norms = torch.linalg.vector_norm((pts - rays.x[idx]).double(), dim=1)
                # the coarse walk's cap from the t grid: the norm one grid step further in t
                on_grid = (ts > 0) & (ts <= t_grid_end)
                caps = torch.where(on_grid, rays.norms_at(idx, ts * _COARSE_FACTOR), math.inf)
                passes += active.size
                results = zip(norms.tolist(), margin.tolist(), adv.tolist(), caps.tolist())
                still = []
                for i, res in zip(active.tolist(), results):
                    try:
                        proposals[i] = searches[i].send(res)
                        still.append(i)
                    except StopIteration as done:
                        distances[start + i] = done.value
                active = np.asarray(still, dtype=np.int64)
    finally:
        model.train(was_training)
    return DistanceResult(
        distances=distances,
        forward_passes=int(passes),
        forward_passes_per_image=float(passes / N) if N else 0.0,
    )
