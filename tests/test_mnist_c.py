"""Tests of noisetrain.mnist_c: our re-implementation of the 15 MNIST-C corruptions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage, stats
from skimage.transform import resize
from sklearn.datasets import load_digits

from noisetrain.data import mnist_c as mc
from noisetrain.data.mnist_c import CATEGORIES, MNIST_C_CORRUPTIONS, corrupt_image, corrupt_images

RANDOM = [n for n in MNIST_C_CORRUPTIONS if n not in mc.DETERMINISTIC_CORRUPTIONS]
RANDOM_SIGN = {"shear", "rotate", "translate"}
YY, XX = np.mgrid[0:28, 0:28].astype(np.float64)


def _digits(n: int = 6) -> np.ndarray:
    """sklearn 8x8 digits (0..16) scaled to [0, 1], upsampled to 20x20 and centred in 28x28
    like MNIST (digit in a 20x20 box, 4-pixel empty margin)."""
    raw = load_digits().images[:n] / 16.0
    out = np.zeros((n, 28, 28))
    for i, im in enumerate(raw):
        out[i, 4:24, 4:24] = np.clip(resize(im, (20, 20), order=1), 0.0, 1.0)
    return out


DIGITS = _digits()


def _blob(x: float, y: float, sigma: float = 1.5) -> np.ndarray:
    return np.exp(-((XX - x) ** 2 + (YY - y) ** 2) / (2 * sigma**2))


def _com(img: np.ndarray) -> np.ndarray:
    """Centre of mass as (x, y) = (column, row)."""
    m = img.sum()
    return np.array([(img * XX).sum() / m, (img * YY).sum() / m])


def _seeds_outputs(img: np.ndarray, name: str, n: int) -> np.ndarray:
    """Corrupt n copies of one image (each copy gets its own per-image generator)."""
    return corrupt_images(np.repeat(img[None], n, axis=0), name, seed=11)


# ------------------------------------------------------------------------------------ interface


def test_names_and_categories():
    assert MNIST_C_CORRUPTIONS == (
        "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate",
        "brightness", "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges",
    )  # fmt: skip
    assert set(CATEGORIES) == set(MNIST_C_CORRUPTIONS)
    assert CATEGORIES["shot_noise"] == CATEGORIES["impulse_noise"] == "noise"
    assert CATEGORIES["glass_blur"] == CATEGORIES["motion_blur"] == "blur"
    assert {CATEGORIES[n] for n in ("shear", "scale", "rotate", "translate")} == {"affine"}


@pytest.mark.parametrize("name", MNIST_C_CORRUPTIONS)
def test_generic_contract(name):
    out = corrupt_images(DIGITS, name, seed=3)
    assert out.shape == DIGITS.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    # every image is changed
    assert np.all(np.abs(out - DIGITS).reshape(len(DIGITS), -1).max(axis=1) > 0.05)
    # deterministic for (images, name, seed), also from float32 input of the same values
    assert np.array_equal(out, corrupt_images(DIGITS, name, seed=3))
    assert np.array_equal(
        corrupt_images(DIGITS.astype(np.float32), name, 3),
        corrupt_images(DIGITS.astype(np.float32).astype(np.float64), name, 3),
    )
    # image i does not depend on N
    assert np.array_equal(out[:2], corrupt_images(DIGITS[:2], name, seed=3))
    # corrupt_image with the documented per-image generator gives the same image
    single = corrupt_image(DIGITS[4], name, mc._per_image_rng(3, name, 4))
    assert single.shape == (28, 28) and single.dtype == np.float32
    assert np.array_equal(single, out[4])
    other = corrupt_images(DIGITS, name, seed=4)
    if name in RANDOM_SIGN:  # one or two random signs per image: some images may coincide
        assert not np.array_equal(out, other)
    elif name in RANDOM:
        assert all(not np.array_equal(a, b) for a, b in zip(out, other))
    else:
        assert np.array_equal(out, other)


def test_validation_errors():
    with pytest.raises(ValueError, match="shot_noise.*canny_edges"):
        corrupt_images(DIGITS, "gaussian_noise", 0)
    with pytest.raises(ValueError, match="valid names"):
        corrupt_image(DIGITS[0], "nope", np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        corrupt_images(DIGITS[0], "rotate", 0)
    with pytest.raises(ValueError, match=r"\(28, 28\)"):
        corrupt_image(DIGITS[:2], "rotate", np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt_images(DIGITS * 255, "rotate", 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt_image(DIGITS[0] - 0.5, "rotate", np.random.default_rng(0))
    bad = DIGITS.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt_images(bad, "rotate", 0)
    with pytest.raises(ValueError, match="float"):
        corrupt_images((DIGITS * 255).astype(np.uint8), "rotate", 0)
    with pytest.raises(TypeError, match="Generator"):
        corrupt_image(DIGITS[0], "rotate", np.random.RandomState(0))
    with pytest.raises(ValueError, match="seed"):
        corrupt_images(DIGITS, "rotate", -1)
    assert corrupt_images(np.zeros((0, 28, 28)), "fog", 0).shape == (0, 28, 28)


# ------------------------------------------------------------------------------------ noise


def test_shot_noise_is_poisson_with_3_photons():
    x = DIGITS[2]
    out = _seeds_outputs(x, "shot_noise", 400).astype(np.float64)
    # values are k / 3, zero stays zero
    assert np.allclose(out * 3, np.round(out * 3), atol=1e-5)
    assert np.all(out[:, x == 0] == 0)
    # per-pixel mean matches E[min(Poisson(3x), 3)] / 3 (clipping only bites for bright pixels)
    lam = 3 * x
    k = np.arange(3)
    expected = (sum(kk * stats.poisson.pmf(kk, lam) for kk in k) + 3 * stats.poisson.sf(2, lam)) / 3
    se = out.std(axis=0) / math.sqrt(len(out)) + 1e-3
    assert np.all(np.abs(out.mean(axis=0) - expected) < 5 * se)
    # where clipping is negligible, the mean is the original value
    dim = (x > 0) & (x <= 0.3)
    assert abs(out.mean(axis=0)[dim].mean() - x[dim].mean()) < 0.01


def test_impulse_noise_fraction():
    grey = np.full((30, 28, 28), 0.5)
    out = corrupt_images(grey, "impulse_noise", seed=5)
    hit = out != np.float32(0.5)
    assert np.all(np.isin(out[hit], [0.0, 1.0]))
    assert abs(hit.mean() - 0.17) < 0.015
    assert abs((out[hit] == 1.0).mean() - 0.5) < 0.04


# ------------------------------------------------------------------------------------ blur


def test_glass_blur_local_vertical():
    x = np.zeros((28, 28))
    x[:, 14] = 1.0  # a full-height line: the vertical-only Gaussian leaves it intact
    out = corrupt_images(np.repeat(x[None], 8, axis=0), "glass_blur", seed=1)
    # a pixel moves right by at most one column per sweep (2 sweeps; the sweep runs right to left
    # and only swaps with the up/left neighbours), and the Gaussian blur is vertical only
    assert np.all(out[:, :, 17:] == 0)
    assert out[:, :, 16].sum() > 0  # ... and two sweeps do reach two columns to the right
    assert out[:, :, :12].sum() < 0.05 * out.sum()  # chained left moves are rare
    assert np.all(out[:, :, [13, 15]].sum(axis=(1, 2)) > 0)  # pixels were actually shuffled
    assert np.allclose(out.sum(axis=(1, 2)), 28.0, rtol=0.02)  # mass is (almost) kept
    d = corrupt_images(DIGITS, "glass_blur", 2)
    assert np.allclose(d.sum(axis=(1, 2)), DIGITS.sum(axis=(1, 2)), rtol=0.05)


def test_motion_blur_is_one_sided_line():
    x = np.zeros((28, 28))
    x[14, 14] = 1.0
    out = corrupt_images(np.repeat(x[None], 12, axis=0), "motion_blur", seed=2).astype(np.float64)
    w = np.exp(-np.arange(21) ** 2 / 18.0)
    k0 = 1.0 / w.sum()  # weight of tap 0 of the half-Gaussian (radius 10 -> 21 taps, sigma 3)
    cum = np.cumsum(w) / w.sum()
    angles = []
    for o in out:
        assert o.sum() == pytest.approx(1.0, abs=1e-5)
        # tap 0 stays on the point; taps i >= 1 move by round(i cos a) >= 1 columns
        assert o[14, 14] == pytest.approx(k0, abs=1e-6)
        ys, xs = np.nonzero(o > 1e-9)
        dx, dy = 14 - xs, 14 - ys  # trail behind the point
        assert np.all(dx >= 0) and np.all(np.abs(dy) <= dx + 1)  # within +-45 degrees
        dist = np.hypot(dx, dy)
        assert np.all(dist <= 20.6)
        # a straight digital line: every tap is the rounding of a point on one ray
        far = np.argmax(dist)
        phi = np.arctan2(dy[far], dx[far])
        assert np.all(np.abs(-np.sin(phi) * dx + np.cos(phi) * dy) <= 1.0)
        assert dist.max() >= 14  # 21 taps spread over ~20 px unless clipped by the border
        # half-Gaussian profile: tap i lands within 0.71 px of distance i
        for r in (2, 5, 9):
            assert o[ys[dist <= r + 0.75], xs[dist <= r + 0.75]].sum() >= cum[r] - 1e-6
            assert o[ys[dist <= r - 0.75], xs[dist <= r - 0.75]].sum() <= cum[r] + 1e-6
        angles.append(phi)
    assert np.std(angles) > 0.1  # the angle is random


# ------------------------------------------------------------------------------------ affine


def test_rotate_moves_blob_as_predicted():
    p = np.array([19.0, 9.0])  # (x, y) of an off-centre blob
    blob = _blob(*p)
    out = _seeds_outputs(blob, "rotate", 10).astype(np.float64)
    c = mc.IMAGE_CENTRE
    signs = set()
    for o in out:
        assert o.sum() == pytest.approx(blob.sum(), rel=0.01)
        com = _com(o)
        preds = {}
        for s in (+1, -1):
            a = -s * 0.4  # the output shows the input rotated by the inverse of the sampling map
            r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
            preds[s] = r @ (p - c) + c
        s = min(preds, key=lambda k: np.linalg.norm(com - preds[k]))
        assert np.linalg.norm(com - preds[s]) < 0.1
        assert np.linalg.norm(com - preds[-s]) > 3
        # the distance to the centre is kept
        assert np.linalg.norm(com - c) == pytest.approx(np.linalg.norm(p - c), abs=0.1)
        signs.add(s)
    assert signs == {1, -1}


def test_shear_moves_blob_and_stretches():
    p = np.array([16.0, 7.0])
    blob = _blob(*p)
    out = _seeds_outputs(blob, "shear", 10).astype(np.float64)
    c = mc.IMAGE_CENTRE
    signs = set()
    for o in out:
        # inverse map [[1, -sin t], [0, cos t]] has determinant cos t: the mass grows by 1/cos(0.4)
        assert o.sum() / blob.sum() == pytest.approx(1 / math.cos(0.4), rel=0.01)
        com = _com(o)
        preds = {}
        for s in (+1, -1):
            t = s * 0.4
            m = np.array([[1.0, -math.sin(t)], [0.0, math.cos(t)]])
            preds[s] = np.linalg.solve(m, p - c) + c
        s = min(preds, key=lambda k: np.linalg.norm(com - preds[k]))
        assert np.linalg.norm(com - preds[s]) < 0.1
        assert np.linalg.norm(com - preds[-s]) > 3
        signs.add(s)
    assert signs == {1, -1}


def test_scale_shrinks_by_0_7():
    blob = _blob(13.5, 13.5, sigma=4.0)
    out = corrupt_image(blob, "scale", np.random.default_rng(0)).astype(np.float64)
    assert out.sum() / blob.sum() == pytest.approx(0.49, rel=0.02)
    assert np.allclose(_com(out), 13.5, atol=1e-6)

    def gyration(img):
        cx, cy = _com(img)
        return math.sqrt((img * ((XX - cx) ** 2 + (YY - cy) ** 2)).sum() / img.sum())

    assert gyration(out) / gyration(blob) == pytest.approx(0.7, rel=0.03)
    d = corrupt_images(DIGITS, "scale", 0).astype(np.float64)
    for a, b in zip(DIGITS, d):
        assert gyration(b) / gyration(a) == pytest.approx(0.7, rel=0.05)


def test_translate_shifts_by_3_pixels():
    out = corrupt_images(DIGITS, "translate", seed=8)
    shifts = set()
    for a, b in zip(DIGITS, out):
        delta = _com(b.astype(np.float64)) - _com(a)
        assert np.allclose(np.abs(delta), 3.0, atol=1e-4)
        dx, dy = np.round(delta).astype(int)
        expected = np.roll(np.roll(a, dy, axis=0), dx, axis=1)  # digits have a 4-px empty margin
        assert np.array_equal(b, expected.astype(np.float32))
        shifts.add((dx, dy))
    more = corrupt_images(np.repeat(DIGITS[:1], 16, axis=0), "translate", seed=9)
    for b in more:
        shifts.add(tuple(np.round(_com(b.astype(np.float64)) - _com(DIGITS[0])).astype(int)))
    assert shifts == {(3, 3), (3, -3), (-3, 3), (-3, -3)}


# ------------------------------------------------------------------------------------ weather


def test_brightness_adds_half():
    out = corrupt_images(DIGITS, "brightness", 0)
    assert np.allclose(out, np.minimum(DIGITS + 0.5, 1.0), atol=1e-7)
    assert np.all(out[DIGITS == 0] == 0.5)


def test_fog_adds_smooth_field():
    imgs = DIGITS[:4]
    out = corrupt_images(imgs, "fog", seed=4).astype(np.float64)
    peak = imgs.max(axis=(1, 2), keepdims=True)
    field = out * (peak + 3.0) / peak - imgs  # = 3 * plasma crop, in [0, 3]
    assert field.min() > -1e-4 and field.max() < 3 + 1e-4
    for f in field:
        assert f.max() - f.min() > 0.1  # a real field, not a constant
        roughness = np.abs(np.diff(f, axis=1)).mean() / f.std()
        shuffled = np.random.default_rng(0).permutation(f.ravel()).reshape(28, 28)
        assert roughness < 0.5 < np.abs(np.diff(shuffled, axis=1)).mean() / shuffled.std()
    assert not np.allclose(field[0], field[1])


def test_spatter_only_mixes_towards_mud():
    imgs = np.concatenate([DIGITS, DIGITS])
    out = corrupt_images(imgs, "spatter", seed=6).astype(np.float64)
    mud = 63 / 255
    same = np.abs(out - imgs) < 1e-6
    # spattered pixels are x (1 - m) + mud m with m in [0.8, 1]
    close = np.abs(out - mud) <= 0.2 * np.abs(imgs - mud) + 1e-6
    assert np.all(same | close)
    spattered = ~same & (np.abs(imgs - mud) > 0.05)
    assert 0.01 < spattered.mean() < 0.5
    # splashes are blobs (mask blurred with sigma 1.5), not isolated pixels
    labels, n = ndimage.label(~same)
    sizes = ndimage.sum(np.ones_like(labels), labels, index=range(1, n + 1))
    assert np.median(sizes) >= 3


# ------------------------------------------------------------------------------------ occlusion


def test_dotted_line_pattern():
    black = np.zeros((10, 28, 28))
    out = corrupt_images(black, "dotted_line", seed=7)
    on = np.arange(28) % 4 >= 2
    on[27] = False
    assert np.all(out[:, :, ~on] == 0)
    assert np.all(out[:, :, on].max(axis=1) >= 0.75)  # the line crosses every kept column
    # the stroke centre follows one straight line from column 0 to 27
    for o in out:
        cols = np.nonzero(on)[0]
        rows = (o[:, cols] * YY[:, :1]).sum(axis=0) / o[:, cols].sum(axis=0)
        fit = np.polyfit(cols, rows, 1)
        assert np.abs(np.polyval(fit, cols) - rows).max() < 0.6
    d = corrupt_images(DIGITS, "dotted_line", seed=7)
    assert np.all(d >= DIGITS.astype(np.float32))  # only brightens


def test_zigzag_pattern():
    black = np.zeros((10, 28, 28))
    out = corrupt_images(black, "zigzag", seed=1)
    assert np.all(out[:, :, :2] == 0) and np.all(out[:, :, 26:] == 0)
    for o in out:
        visible = np.nonzero(o.max(axis=0) > 0.5)[0]
        assert len(visible) >= 10
        rows = np.array([np.argmax(o[:, c]) for c in visible])
        turns = np.sum(np.diff(np.sign(np.diff(rows[np.abs(np.diff(rows, prepend=-99)) > 0]))) != 0)
        assert turns >= 3  # goes up and down repeatedly
        assert np.ptp(rows) <= 2 * 2 + 5 + 2  # amplitude 2 around a baseline rising <= 5 rows
    d = corrupt_images(DIGITS, "zigzag", seed=1)
    assert np.all(d >= DIGITS.astype(np.float32))


# ------------------------------------------------------------------------------------ digital


def test_stripe_inverts_outer_columns():
    out = corrupt_images(DIGITS, "stripe", 0)
    x = DIGITS.astype(np.float32)
    outer = np.r_[0:7, 21:28]
    assert np.array_equal(out[:, :, outer], (1.0 - DIGITS[:, :, outer]).astype(np.float32))
    assert np.array_equal(out[:, :, 7:21], x[:, :, 7:21])


def test_canny_edges_on_digit_boundary():
    out = corrupt_images(DIGITS, "canny_edges", 0)
    assert set(np.unique(out)) <= {0.0, 1.0}
    for x, e in zip(DIGITS, out):
        edge = e > 0
        assert edge.sum() >= 15
        # every edge pixel sits on an intensity transition of the digit: the local contrast in
        # its 5x5 neighbourhood is large
        contrast = ndimage.maximum_filter(x, size=5) - ndimage.minimum_filter(x, size=5)
        assert contrast[edge].min() > 0.3
        near_fg = ndimage.binary_dilation(x > 0.3, iterations=2)
        assert not edge[~near_fg].any()
        # edges outline the digit: each edge pixel is on the transition, not inside flat areas
        assert edge.sum() < 0.5 * near_fg.sum()
