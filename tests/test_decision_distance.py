"""Tests of the epsilon* line search (paper section 3.4) in noisetrain.decision_distance."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from noisetrain.measure.decision_distance import (
    DistanceResult,
    decision_distances,
    fraction_inf,
    gaussian_directions,
    median_epsilon,
    uniform_directions,
)

pytestmark = pytest.mark.usefixtures("one_thread")


SHAPE = (1, 8, 8)
D = int(np.prod(SHAPE))


class TwoClassLinear(nn.Module):
    """logits = (z, -z) with z = w.x + b: the decision boundary is the hyperplane z = 0."""

    def __init__(self, w: torch.Tensor, b: float):
        super().__init__()
        self.w = nn.Parameter(w.flatten().clone(), requires_grad=False)
        self.b = nn.Parameter(torch.tensor(float(b)), requires_grad=False)

    def z(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w + self.b

    def forward(self, x):
        z = self.z(x)
        return torch.stack([z, -z], 1)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


def _linear_setup(seed=0, n=32):
    """Images near the centre of the cube, directions pointing towards the boundary."""
    g = torch.Generator().manual_seed(seed)
    w = _unit(torch.randn(D, generator=g))
    model = TwoClassLinear(w, b=-0.5 * float(w.sum()))  # boundary through the cube's centre
    x = (0.5 + 0.15 * (2 * torch.rand((n,) + SHAPE, generator=g) - 1)).float()
    z0 = model.z(x)
    labels = (z0 < 0).long()
    d = torch.randn((n,) + SHAPE, generator=g)
    d = d / d.flatten(1).norm(dim=1)[:, None, None, None]
    # random directions tilted towards the boundary, so most of them reach it
    toward = -torch.sign(z0)
    d = d + 0.5 * toward[:, None, None, None] * w.view(SHAPE)
    return model, x, labels, d


def _clipped_norm(x, u, t):
    return float(((x + t * u).clamp(0, 1) - x).norm())


def test_linear_no_clipping_matches_analytic_distance():
    model, x, labels, d = _linear_setup()
    u = d / d.flatten(1).norm(dim=1)[:, None, None, None]
    t_star = (model.z(x).abs() / (u.flatten(1) @ model.w).abs()).double()
    # the setup must not clip before the crossing, otherwise the analytic value does not apply
    step = (t_star[:, None] * u.flatten(1).abs().double()).amax(1)
    room = torch.minimum(x, 1 - x).flatten(1).amin(1).double()
    keep = step < room
    assert keep.sum() >= 16
    res = decision_distances(model, x[keep], labels[keep], d[keep], rel_tol=1e-3)
    assert isinstance(res, DistanceResult)
    assert res.distances.dtype == np.float64 and res.distances.shape == (int(keep.sum()),)
    expected = t_star[keep].numpy()
    rel = np.abs(res.distances - expected) / expected
    assert rel.max() <= 1e-3 + 1e-6
    # the returned size is on the far side: the decision has flipped there
    assert (res.distances >= expected * (1 - 1e-5)).all()  # up to float32 rounding
    # and it tightens with the tolerance, down to float32's absolute resolution of the points
    # on the ray (~1e-7 for pixels near 1), which dominates for the shortest distances
    fine = decision_distances(model, x[keep], labels[keep], d[keep], rel_tol=1e-5)
    assert (np.abs(fine.distances - expected) <= 1.1e-5 * expected + 2e-7).all()


def test_linear_with_clipping_matches_brute_force_scan():
    g = torch.Generator().manual_seed(1)
    w = _unit(torch.randn(D, generator=g))
    model = TwoClassLinear(w, b=-0.5 * float(w.sum()))
    # images spread over the whole cube, so pixels hit their bounds along the way
    x = torch.rand((6,) + SHAPE, generator=g)
    z0 = model.z(x)
    labels = (z0 < 0).long()
    d = torch.randn((6,) + SHAPE, generator=g)
    toward = -torch.sign(z0)
    # mostly along the normal, so the crossing exists, plus a random part that drives clipping
    d = 0.3 * toward[:, None, None, None] * w.view(SHAPE) + d / d.flatten(1).norm(dim=1)[:, None, None, None]
    res = decision_distances(model, x, labels, d, rel_tol=1e-3)
    u = d / d.flatten(1).norm(dim=1)[:, None, None, None]
    clipped_somewhere = False
    for i in range(len(x)):
        # brute force: fine geometric scan of t, the first point that flips the decision
        ts = torch.cat([torch.zeros(1), torch.logspace(-3, 3, 60001)])
        pts = (x[i] + ts[:, None, None, None] * u[i]).clamp(0, 1)
        flipped = (model(pts).argmax(1) != labels[i]).nonzero()
        assert len(flipped), "setup must cross the boundary before saturating"
        k = int(flipped[0])
        lo, hi = _clipped_norm(x[i], u[i], ts[k - 1]), _clipped_norm(x[i], u[i], ts[k])
        assert lo * (1 - 1e-3) <= res.distances[i] <= hi * (1 + 1e-3)
        if hi < 0.99 * float(ts[k]):  # the clipped change is shorter than t: clipping mattered
            clipped_somewhere = True
    assert clipped_somewhere


def test_inf_and_zero_cases():
    g = torch.Generator().manual_seed(2)
    half = D // 2
    w = torch.zeros(D)
    w[:half] = torch.rand(half, generator=g) + 0.1  # positive weights on the first half only
    model = TwoClassLinear(_unit(w), b=-0.5 * float(_unit(w).sum()))
    x = (0.5 + 0.1 * torch.rand((4,) + SHAPE, generator=g)).float()  # z > 0: class 0
    assert (model.z(x) > 0).all()
    labels = torch.zeros(4, dtype=torch.long)
    parallel = torch.zeros((4, D))
    parallel[:, half:] = torch.randn(4, D - half, generator=g)  # moves only pixels w ignores
    away = w.repeat(4, 1) * (1 + torch.rand(4, D, generator=g))  # only increases z, even clipped
    dirs = torch.cat([parallel, away]).view((8,) + SHAPE)
    res = decision_distances(model, torch.cat([x, x]), torch.cat([labels, labels]), dirs)
    assert np.isinf(res.distances).all()
    assert fraction_inf(res.distances) == 1.0 and median_epsilon(res.distances) == math.inf
    # already misclassified: distance 0, decided by the clean pass alone
    wrong = decision_distances(model, x, 1 - labels, gaussian_directions(x.shape, 0))
    assert (wrong.distances == 0).all()
    assert wrong.forward_passes == len(x)


def test_forward_passes_linear():
    model, x, labels, d = _linear_setup(seed=3, n=64)
    res = decision_distances(model, x, labels, d, rel_tol=1e-3)
    assert np.isfinite(res.distances).all()
    assert res.forward_passes_per_image <= 20
    assert res.forward_passes == pytest.approx(res.forward_passes_per_image * len(x))


def _stripes_data(n, seed):
    """3 classes of 3x16x16 images: horizontal stripes, vertical stripes, checkerboard."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    i = torch.arange(16.0)
    rows, cols = torch.sin(1.6 * i)[:, None].expand(16, 16), torch.sin(1.6 * i)[None, :].expand(16, 16)
    patterns = torch.stack([rows, cols, rows * cols])
    amp = 0.15 + 0.25 * torch.rand(n, 1, 1, 1, generator=g)
    base = 0.3 + 0.4 * torch.rand(n, 3, 1, 1, generator=g)
    x = base + amp * patterns[y][:, None] + 0.1 * torch.randn(n, 3, 16, 16, generator=g)
    return x.clamp(0, 1), y


@pytest.fixture(scope="module")
def conv_net():
    """A small conv net trained for 60 steps (~1 s) on the stripes task."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(64, 3),
    )
    x, y = _stripes_data(512, 0)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(60):
        b = torch.randint(0, len(x), (64,))
        loss = nn.functional.cross_entropy(model(x[b]), y[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("make_dirs", [gaussian_directions, uniform_directions])
def test_forward_passes_conv_net(conv_net, make_dirs):
    x, labels = _stripes_data(64, 1)
    dirs = make_dirs(x.shape, 5)
    res = decision_distances(conv_net, x, labels, dirs, rel_tol=1e-3, batch_size=24)
    finite = np.isfinite(res.distances) & (res.distances > 0)
    assert finite.mean() >= 0.5  # the count is only meaningful if most searches refine
    assert res.forward_passes_per_image <= 20
    # check the bracket on the net itself: the returned size flips the decision, a size
    # rel_tol below it does not (a flip further down the ray is possible, but rare)
    from noisetrain.measure.decision_distance import _Rays

    idx = torch.as_tensor(np.flatnonzero(finite))
    rays = _Rays(x[idx], dirs[idx])
    rows = torch.arange(len(idx))
    with torch.no_grad():
        at = conv_net(rays.points(rows, res.distances[finite]).view(-1, 3, 16, 16)).argmax(1)
        below = conv_net(rays.points(rows, res.distances[finite] * (1 - 1e-3)).view(-1, 3, 16, 16)).argmax(1)
    assert (at != labels[idx]).all()
    assert (below == labels[idx]).float().mean() >= 0.9


def test_larger_margin_raises_median_epsilon():
    model, x, labels, d = _linear_setup(seed=6, n=40)
    keep = labels == 0  # class 0 sits on the side z > 0
    x, labels, d = x[keep], labels[keep], d[keep]
    medians = []
    for shift in (0.0, 0.05, 0.2):
        shifted = TwoClassLinear(model.w.detach(), float(model.b) + shift)  # boundary moves away
        medians.append(median_epsilon(decision_distances(shifted, x, labels, d).distances))
    assert medians[0] < medians[1] < medians[2]


def test_batches_and_determinism_and_training_flag():
    model, x, labels, d = _linear_setup(seed=7, n=20)
    model.train()
    a = decision_distances(model, x, labels, d, batch_size=7)
    assert model.training  # restored
    again = decision_distances(model, x, labels, d, batch_size=7)
    np.testing.assert_array_equal(a.distances, again.distances)
    # another batching changes float rounding in the model, so results agree to the tolerance
    b = decision_distances(model, x, labels, d, batch_size=500)
    np.testing.assert_allclose(a.distances, b.distances, rtol=1.01e-3)


def test_median_and_fraction_inf():
    inf = math.inf
    assert median_epsilon([3.0, 1.0, 2.0]) == 2.0
    assert median_epsilon([1.0, 2.0, 3.0, inf]) == 2.5
    assert median_epsilon([1.0, 2.0, inf]) == 2.0
    assert median_epsilon([1.0, inf, inf]) == inf  # more than half are inf
    assert median_epsilon([1.0, 2.0, inf, inf]) == inf
    assert median_epsilon(np.array([0.0, 0.0, 5.0])) == 0.0
    assert fraction_inf([1.0, inf, inf, 0.0]) == 0.5
    with pytest.raises(ValueError):
        median_epsilon([])


def test_direction_helpers():
    g = gaussian_directions((4, 3, 5, 5), seed=1)
    u = uniform_directions((4, 3, 5, 5), seed=1)
    assert g.shape == u.shape == (4, 3, 5, 5) and g.dtype == u.dtype == torch.float32
    assert torch.equal(g, gaussian_directions((4, 3, 5, 5), seed=1))
    assert not torch.equal(g, gaussian_directions((4, 3, 5, 5), seed=2))
    assert u.min() >= -1 and u.max() <= 1 and u.min() < -0.9 and u.max() > 0.9
    assert abs(float(u.mean())) < 0.1  # centred


def test_input_errors():
    model, x, labels, d = _linear_setup(n=4)
    with pytest.raises(ValueError, match="shape"):
        decision_distances(model, x, labels, d[:3])
    with pytest.raises(ValueError, match="labels"):
        decision_distances(model, x, labels[:3], d)
    zero = d.clone()
    zero[2] = 0
    with pytest.raises(ValueError, match="nonzero"):
        decision_distances(model, x, labels, zero)
    for bad in (0.0, -1e-3):
        with pytest.raises(ValueError, match="rel_tol"):
            decision_distances(model, x, labels, d, rel_tol=bad)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        decision_distances(model, x + 1.0, labels, d)


# --------------------------------------------------------------------------------------------
# the first decision change along the ray


class Radial(nn.Module):
    """Two classes; the margin of class 0 is a function of n = |x - x0| alone, the L2 size of the
    change the line search applies to x0, so the decision along every ray is known exactly.
    With `roots` the margin is -prod(n - r) / 1000 (class 0 at n = 0 for an odd count); it
    records the sizes it is evaluated at."""

    def __init__(self, x0: torch.Tensor, margin):
        super().__init__()
        self.register_buffer("x0", x0.clone())
        self.margin = margin
        self.seen: list[float] = []

    def forward(self, x):
        n = (x.double() - self.x0.double()).flatten(1).norm(dim=1)
        self.seen.extend(n.tolist())
        m = self.margin(n).float()
        return torch.stack([m, torch.zeros_like(m)], 1)


def _roots(*roots):
    return lambda n: -math.prod(n - r for r in roots) / 1000.0


def _radial_batch(margin, shape=(3, 64, 64), k=4, x0=None):
    """k copies of one image (0.5 grey: nothing clips before t ~ 14) with different directions."""
    x0 = torch.full((1,) + shape, 0.5) if x0 is None else x0
    dirs = torch.cat([gaussian_directions((2,) + shape, 11), uniform_directions((k - 2,) + shape, 12)])
    return Radial(x0, margin), x0.expand((k,) + shape).clone(), torch.zeros(k, dtype=torch.long), dirs


def test_first_of_several_decision_changes_is_found():
    # wrong on (2, 5), right again on (5, 40), wrong beyond 40: the first change is at 2. A
    # search that starts high up the ray (n_max ~ 55 here) sees only the one at 40.
    model, x, labels, d = _radial_batch(_roots(2.0, 5.0, 40.0))
    res = decision_distances(model, x, labels, d, rel_tol=1e-3)
    assert np.all(res.distances >= 2.0 * (1 - 1e-6)), res.distances
    assert np.all(res.distances <= 2.0 * (1 + 1e-3) + 1e-6), res.distances
    assert res.forward_passes_per_image <= 12


def test_a_change_within_the_first_probe_needs_a_smaller_first_size():
    # wrong on (0.3, 0.8) only: the default first probe (t = 1, a change of size ~1 here)
    # lies beyond that dip, as the authors' first grid point would; a smaller first size finds it
    model, x, labels, d = _radial_batch(_roots(0.3, 0.8, 1e3))
    assert np.all(decision_distances(model, x, labels, d).distances > 0.8)
    res = decision_distances(model, x, labels, d, first_size=0.1, rel_tol=1e-3)
    np.testing.assert_allclose(res.distances, 0.3, rtol=1.01e-3)


def test_radial_monotone_never_and_already_wrong():
    model, x, labels, d = _radial_batch(lambda n: 7.0 - n)  # wrong from 7 on
    res = decision_distances(model, x, labels, d, rel_tol=1e-4)
    assert np.all((res.distances >= 7.0 * (1 - 1e-6)) & (res.distances <= 7.0 * (1 + 1e-4) + 1e-6))
    model, x, labels, d = _radial_batch(lambda n: 1.0 + n)  # right up to the saturated image
    res = decision_distances(model, x, labels, d)
    assert np.isinf(res.distances).all()
    # the walk ended on the saturated image itself
    n_max = float((torch.where(d[:1] > 0, 1.0, 0.0) - x[:1]).norm())
    assert max(model.seen) == pytest.approx(n_max, rel=1e-6)
    model, x, labels, d = _radial_batch(lambda n: n - 1.0)  # wrong on the clean image
    res = decision_distances(model, x, labels, d)
    assert (res.distances == 0).all() and res.forward_passes == len(x)


def test_coarse_walk_steps_at_most_1_8_in_norm_and_in_t():
    # a ray through a clipping-heavy image (pixels spread over [0, 1], many at the bounds),
    # never fooled, so the walk goes all the way up; one image, so every call is its probe
    g = torch.Generator().manual_seed(3)
    x0 = torch.rand(1, 1, 28, 28, generator=g)
    x0[0, 0, :10] = 0.0
    d = gaussian_directions(x0.shape, 4)
    model = Radial(x0, lambda n: 1.0 + n)
    res = decision_distances(model, x0, torch.zeros(1, dtype=torch.long), d)
    assert np.isinf(res.distances).all()
    from noisetrain.measure.decision_distance import _Rays

    rays = _Rays(x0, d)
    n_max = float(rays.n_max[0])
    probes = np.array(model.seen[1:])  # after the clean image
    first = float(((x0 + d / d.norm()).clamp(0, 1) - x0).norm())  # the change at t = 1
    assert probes[0] == pytest.approx(first, rel=1e-5)
    assert probes[-1] == pytest.approx(n_max, rel=1e-6)
    assert np.all(probes[1:] / probes[:-1] <= 1.8 * (1 + 1e-5))
    inner = torch.as_tensor(probes[:-1])
    t = rays.t_for_norm(torch.zeros(len(inner), dtype=torch.long), inner).numpy()
    on_grid = t[:-1] <= 1.8**9
    assert on_grid.sum() >= 3 and np.all((t[1:] / t[:-1])[on_grid] <= 1.8 * (1 + 1e-4))
    # t grew faster than n here: the t grid was the finer one somewhere
    assert np.any(probes[1:] / probes[:-1] < 1.7)


def _random_linear(n, seed):
    """A random 10-class linear model on 3x32x32 images of mid grey plus pixel noise: the
    median eps* is ~1/5 of n_max, about where a vanilla ResNet50's lies on ImageNet (39 of 224)."""
    g = torch.Generator().manual_seed(seed)
    dim = 3 * 32 * 32
    model = nn.Sequential(nn.Flatten(), nn.Linear(dim, 10))
    with torch.no_grad():
        w = torch.randn(10, dim, generator=g)
        model[1].weight.copy_(w - w.mean(1, keepdim=True))  # no response to brightness
        model[1].bias.zero_()
    x = (0.3 + 0.4 * torch.rand(n, 1, 1, 1, generator=g) + 0.1 * torch.randn(n, 3, 32, 32, generator=g)).clamp(0, 1)
    with torch.no_grad():
        labels = model(x).argmax(1)
    return model.eval(), x, labels


@pytest.mark.parametrize("make_dirs", [gaussian_directions, uniform_directions])
def test_forward_passes_random_linear_3x32x32(make_dirs):
    model, x, labels = _random_linear(128, 0)
    res = decision_distances(model, x, labels, make_dirs(x.shape, 5), rel_tol=1e-3)
    finite = np.isfinite(res.distances)
    assert finite.mean() >= 0.8 and (res.distances > 0).all()
    assert res.forward_passes_per_image <= 12


def test_first_size_errors():
    model, x, labels, d = _linear_setup(n=4)
    for bad in (0.0, -1.0, math.inf, "x"):
        with pytest.raises(ValueError, match="first_size"):
            decision_distances(model, x, labels, d, first_size=bad)
