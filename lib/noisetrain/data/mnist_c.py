"""The 15 MNIST-C corruptions (Mu & Gilmer 2019, arXiv:1906.02337), re-implemented.

This is an independent implementation (numpy / scipy.ndimage / skimage only; no ImageMagick)
of the corruptions of the *published* MNIST-C test set, the one released by
google-research/mnist-c (zenodo record 3239543). The facts below (which transformation each
corruption applies and with which constants) were read from ``corruptions.py`` of
https://github.com/google-research/mnist-c (commit aa075693). That script generates the
released set by calling every corruption with the *default* ``severity`` of its Python
signature (its visualisation notebook calls them the same way), so the constants here are
those of the default severity; the full severity ladder is quoted in each comment.

Conventions
-----------
* MNIST-C works on uint8 images in 0..255 and divides by 255 before every corruption; it
  returns float32 in 0..255. We work directly on floats in [0, 1]: every constant that MNIST-C
  applies *after* its ``/255`` is used unchanged, and the few constants given on the 0..255
  scale are divided by 255 (spatter colour 63 -> 63/255, the uint8 truncation inside
  glass blur -> ``floor(255 * v) / 255``). Outputs are ``float32`` in [0, 1]; unlike the
  released set they are *not* rounded to multiples of 1/255.
* Geometry uses ``x`` = column index, ``y`` = row index (row 0 at the top), and the image centre
  (13.5, 13.5), as in MNIST-C's skimage ``AffineTransform`` calls.
* Randomness: every random draw comes from the ``numpy.random.Generator`` passed in;
  ``corrupt_images`` derives one generator per image from
  ``SeedSequence([seed, crc32(name), index])`` so the result for image ``i`` does not depend
  on how many images are corrupted together. Random parameters are drawn per image (a
  "sample" step) and the transformation is then applied to a whole batch at once (an "apply"
  step), which is what makes 10,000 images per corruption take seconds, not minutes.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import numpy as np
from scipy import ndimage
from skimage import feature

# Names and categories live in a numpy-free module, so the config validation can import them.
from noisetrain.data.corruption_names import MNIST_C_CATEGORIES as CATEGORIES
from noisetrain.data.corruption_names import MNIST_C_CORRUPTIONS
from noisetrain.errors import InputError

__all__ = ["MNIST_C_CORRUPTIONS", "CATEGORIES", "corrupt_image", "corrupt_images"]

IMAGE_SIZE = 28
# Centre of a 28x28 image in pixel-index coordinates; MNIST-C keeps (13.5, 13.5) fixed in all of
# its affine corruptions (corruptions.py: "keep image center (13.5, 13.5) fixed").
IMAGE_CENTRE = 13.5

# Corruptions whose output does not depend on the random generator at all.
DETERMINISTIC_CORRUPTIONS: frozenset[str] = frozenset({"scale", "brightness", "stripe", "canny_edges"})

# ---------------------------------------------------------------------------------------------
# Parameters of the released set
# ---------------------------------------------------------------------------------------------

# shot_noise: mnist-c corruptions.py shot_noise(x, severity=5), c = [60, 25, 12, 5, 3] -> 3.
# out = clip(Poisson(c * x) / c, 0, 1); x already on [0, 1] there, so c is used unchanged.
SHOT_NOISE_PHOTONS = 3.0

# impulse_noise: corruptions.py impulse_noise(x, severity=4), c = [.03, .06, .09, .17, .27] -> 0.17,
# via skimage.util.random_noise(mode='s&p', amount=c) with its default salt_vs_pepper=0.5:
# each pixel is replaced with probability 0.17, by 1 (salt) or 0 (pepper) with equal odds.
IMPULSE_NOISE_AMOUNT = 0.17
IMPULSE_NOISE_SALT_FRACTION = 0.5

# glass_blur: corruptions.py glass_blur(x, severity=1), (sigma, max_delta, iterations) =
# [(0.7,1,2), (0.9,2,1), (1,2,3), (1.1,3,2), (1.5,4,2)] -> (0.7, 1, 2). Steps there:
#  1. skimage gaussian(x, sigma=0.7, multichannel=True) on the 2-D (28, 28) array. Because
#     multichannel=True makes skimage treat the LAST axis as channels, the blur is applied along
#     the row axis (axis 0, vertical) only (sigma = [0.7, 0]); we reproduce that quirk.
#     skimage's defaults: mode='nearest', truncate=4.
#  2. conversion to uint8 by truncation (np.uint8(v * 255)).
#  3. `iterations` sweeps over rows h and columns w from 27 down to 2 (i.e. range(28 - delta,
#     delta, -1)); at each position, with probability 1/2, the pixel is swapped with the pixel at
#     (h + dy, w + dx), dx, dy = np.random.randint(-delta, delta) -> uniform on {-1, 0}.
#  4. the same vertical-only Gaussian blur again, then clip.
GLASS_BLUR_SIGMA = 0.7
GLASS_BLUR_MAX_DELTA = 1
GLASS_BLUR_ITERATIONS = 2
GLASS_BLUR_SWAP_PROBABILITY = 0.5

# motion_blur: corruptions.py motion_blur(x, severity=1), (radius, sigma) =
# [(10,3), (15,5), (15,8), (15,12), (20,15)] -> (10, 3), angle ~ U(-45, 45) degrees, through
# ImageMagick's MotionBlurImage (MagickCore/effect.c), which we re-implement: kernel width
# 2*ceil(radius)+1 = 21 taps (GetOptimalKernelWidth1D), one-sided Gaussian weights
# exp(-i^2 / (2 sigma^2)), i = 0..20, normalised to sum 1; tap i reads the pixel at offset
# (round(i cos a), round(i sin a)) (x right, y down, rounding = ceil(v - 0.5)); pixels outside
# the image take the nearest edge value (ImageMagick's default "edge" virtual pixels).
MOTION_BLUR_RADIUS = 10
MOTION_BLUR_SIGMA = 3.0
MOTION_BLUR_ANGLE_RANGE_DEG = (-45.0, 45.0)

# shear: corruptions.py shear(x, severity=2), c = [0.2, 0.4, 0.6, 0.8, 1.] -> 0.4, sign +-1 with
# equal odds; skimage AffineTransform(shear=c) (skimage <= 0.18 definition: matrix
# [[1, -sin c], [0, cos c]] in (x, y)) made to fix the centre, used as warp's *inverse* map
# (output pixel p reads input at A (p - centre) + centre), bilinear, zero outside.
SHEAR_ANGLE_RAD = 0.4

# scale: corruptions.py scale(x, severity=3), inverse-map scale c = [1/.9, 1/.8, 1/.7, 1/.6, 1/.5]
# -> 1/0.7: the digit is shrunk about the centre by the factor 0.7. Not random.
SCALE_FACTOR = 0.7

# rotate: corruptions.py rotate(x, severity=2), c = [0.2, 0.4, 0.6, 0.8, 1.] rad -> 0.4 rad
# (22.9 degrees), sign +-1 with equal odds; AffineTransform(rotation=c) about the centre as the
# inverse map (bilinear, zero outside). With y pointing down, the inverse map with +c moves
# content counter-clockwise on screen by c.
ROTATE_ANGLE_RAD = 0.4

# brightness: corruptions.py brightness(x, severity=5), c = [.1, .2, .3, .4, .5] -> 0.5 added to the
# HSV value channel of the gray image (gray2rgb -> rgb2hsv -> V += c, clip -> hsv2rgb ->
# rgb2gray). For a gray pixel V equals the gray level and saturation is 0, so the whole chain is
# exactly out = clip(x + 0.5, 0, 1) on the [0, 1] scale.
BRIGHTNESS_OFFSET = 0.5

# translate: corruptions.py translate(x, severity=3), c = [1, 2, 3, 4, 5] -> 3 pixels along x
# and along y, each with an independent random sign; integer shift, zero fill.
TRANSLATE_PIXELS = 3

# stripe: corruptions.py stripe(x): no parameter; columns [0, 7) and [21, 28) are inverted
# (v -> 255 - v, i.e. 1 - v on our scale).
STRIPE_COLUMNS: tuple[int, ...] = tuple(range(0, 7)) + tuple(range(21, 28))

# fog: corruptions.py fog(x, severity=5), (thickness, wibbledecay) =
# [(1.5,2), (2.,2), (2.5,1.7), (2.5,1.5), (3.,1.4)] -> (3.0, 1.4).
# out = clip((x + 3 * P) * m / (m + 3), 0, 1), m = max(x), P = the top-left 28x28 crop of a
# 256x256 diamond-square plasma fractal normalised to [0, 1] over the whole 256x256 map. The
# fractal (mnist-c's plasma_fractal, after FLHerne/mapgen): toroidal grid, value 0 at (0, 0);
# each new point = mean of its 4 neighbours + wibble * U(-wibble, wibble); wibble starts at 100
# and is divided by wibbledecay after every level (step 256 -> 2).
FOG_THICKNESS = 3.0
FOG_WIBBLE_DECAY = 1.4
FOG_MAP_SIZE = 256
FOG_INITIAL_WIBBLE = 100.0

# spatter: corruptions.py spatter(x, severity=4), (loc, scale, sigma, threshold, sigma2, mode) =
# [..., (0.65, 0.3, 1, 0.65, 1.5, 1), ...] -> liquid ~ N(0.65, 0.3) per pixel, Gaussian-blurred
# with sigma 1; mask = liquid > 0.65; m = mask blurred with sigma 1.5, set to 0 where < 0.8;
# out = clip(x (1 - m) + (63/255) m, 0, 1) ("mud" colour 63 on the 0..255 scale). skimage
# gaussian defaults (mode='nearest', truncate=4), 2-D. The 6th entry ("mode") is unused there.
SPATTER_LIQUID_MEAN = 0.65
SPATTER_LIQUID_STD = 0.3
SPATTER_LIQUID_SIGMA = 1.0
SPATTER_THRESHOLD = 0.65
SPATTER_MASK_SIGMA = 1.5
SPATTER_MASK_CUTOFF = 0.8
SPATTER_COLOUR = 63.0 / 255.0

# Stroke profile shared by dotted_line and zigzag: corruptions.py line_from_points(c0, r0, c1, r1)
# draws the segment as intensity 1 + ln(1 - d / 2.3), clipped to [0, 1], where d is the
# *vertical* distance of a pixel row from the segment's line in that column, restricted to the
# columns floor(c0) <= col < ceil(c1) (none if c0 == c1); the stroke is added to the image and
# the sum clipped to [0, 1]. Nonzero for d < 2.3 (1 - 1/e) = 1.45 px.
LINE_PROFILE_WIDTH = 2.3

# dotted_line: corruptions.py dotted_line(x): a stroke from (col 0, row r0) to (col 27, row r1),
# r0, r1 = np.random.randint(0, 27) -> uniform on 0..26, with columns blanked in alternating
# pairs starting with blank: columns with (col // 2) even are removed, i.e. only columns with
# col % 4 in {2, 3} keep the stroke (and col 27 is outside [floor(0), ceil(27))).
DOTTED_LINE_ROW_RANGE = (0, 26)  # inclusive
DOTTED_LINE_PERIOD = 4
DOTTED_LINE_ON_PHASES = (2, 3)

# zigzag: corruptions.py zigzag(x): tooth half-length a = 2, amplitude b = 2; baseline from
# column 2 to column 25, start row r0 = randint(0, 27) (0..26), end row r1 = r0 + randint(-5, 5)
# (offset -5..4). Along the baseline (length d = 23 / cos(theta), theta = atan((r1 - r0) / 23)) the
# vertices are (0, 0), ((2i+1) a, (-1)^i b) for i = 0 .. floor((d - a) / 2a), and, since d is not a
# multiple of 2a, a last vertex (d, b_last / (2 (d - 2a floor(d / 2a)))), where b_last is the
# offset of the previous vertex; the polyline is rotated by theta, moved to (2, r0) and each
# segment drawn with the stroke profile above.
ZIGZAG_TOOTH_LENGTH = 2.0
ZIGZAG_AMPLITUDE = 2.0
ZIGZAG_COLUMNS = (2, 25)
ZIGZAG_START_ROW_RANGE = (0, 26)  # inclusive
ZIGZAG_END_OFFSET_RANGE = (-5, 4)  # inclusive

# canny_edges: corruptions.py canny_edges(x): skimage.feature.canny(x) with its defaults for a
# float image: sigma = 1, low/high hysteresis thresholds 0.1 / 0.2 (10% / 20% of the dtype max,
# 1.0 for floats). Output is the binary edge map (0 or 1). Not random.
CANNY_SIGMA = 1.0
CANNY_LOW_THRESHOLD = 0.1
CANNY_HIGH_THRESHOLD = 0.2


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------

_ROWS = np.arange(IMAGE_SIZE, dtype=np.float64)


def _random_sign(rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


def _inverse_affine_warp(batch: np.ndarray, matrices: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Bilinear warp of a batch about the image centre, zero outside the image.

    Output pixel (x, y) reads the input at ``M @ ((x, y) - c) + c + t`` (``M``: (n, 2, 2),
    ``t``: (n, 2), both in (x, y) order), which is how skimage.transform.warp uses an
    ``inverse_map``. Integer-valued sample positions return the input values exactly.
    """
    n = batch.shape[0]
    rel = _ROWS - IMAGE_CENTRE
    xo = rel[None, None, :]  # output column, relative to the centre
    yo = rel[None, :, None]  # output row, relative to the centre
    m = matrices
    src_x = m[:, 0, 0, None, None] * xo + m[:, 0, 1, None, None] * yo + IMAGE_CENTRE + shifts[:, 0, None, None]
    src_y = m[:, 1, 0, None, None] * xo + m[:, 1, 1, None, None] * yo + IMAGE_CENTRE + shifts[:, 1, None, None]
    x0 = np.floor(src_x)
    y0 = np.floor(src_y)
    fx = src_x - x0
    fy = src_y - y0
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    flat = batch.reshape(n, -1)
    base = np.arange(n)[:, None, None]

    def tap(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        inside = (yy >= 0) & (yy < IMAGE_SIZE) & (xx >= 0) & (xx < IMAGE_SIZE)
        idx = np.where(inside, yy * IMAGE_SIZE + xx, 0)
        return np.where(inside, flat[base, idx], 0.0)

    top = (1.0 - fx) * tap(y0, x0) + fx * tap(y0, x0 + 1)
    bottom = (1.0 - fx) * tap(y0 + 1, x0) + fx * tap(y0 + 1, x0 + 1)
    return (1.0 - fy) * top + fy * bottom


def _stroke(c_start, r_start, c_end, r_end) -> np.ndarray:
    """Stroke maps (n, 28, 28) of segments given as (n,) arrays of end points (col, row)."""
    c_start = np.asarray(c_start, dtype=np.float64)[:, None, None]
    r_start = np.asarray(r_start, dtype=np.float64)[:, None, None]
    c_end = np.asarray(c_end, dtype=np.float64)[:, None, None]
    r_end = np.asarray(r_end, dtype=np.float64)[:, None, None]
    cols = _ROWS[None, None, :]
    rows = _ROWS[None, :, None]
    width = c_end - c_start
    degenerate = width == 0
    slope = (r_end - r_start) / np.where(degenerate, 1.0, width)
    centre_row = r_start + slope * (cols - c_start)  # (n, 1, 28)
    dist = np.abs(rows - centre_row)  # (n, 28, 28)
    with np.errstate(divide="ignore"):
        value = 1.0 + np.log(np.clip(1.0 - dist / LINE_PROFILE_WIDTH, 0.0, None))
    value = np.clip(value, 0.0, 1.0)
    in_span = (cols >= np.floor(c_start)) & (cols < np.ceil(c_end)) & ~degenerate
    return np.where(in_span, value, 0.0)


# ---------------------------------------------------------------------------------------------
# Corruptions: each is a pair (sample, apply). sample(rng, image) draws the per-image random
# parameters as a tuple of arrays/floats; apply(batch, params) transforms a (n, 28, 28) float64
# batch given the per-image parameters stacked along a new first axis.
# ---------------------------------------------------------------------------------------------

_Params = tuple
_NO_PARAMS: _Params = ()


def _no_sample(rng: np.random.Generator, image: np.ndarray) -> _Params:
    return _NO_PARAMS


# --- noise ---


def _shot_noise_sample(rng, image):
    return (rng.poisson(SHOT_NOISE_PHOTONS * image).astype(np.float64),)


def _shot_noise_apply(batch, params):
    (counts,) = params
    return counts / SHOT_NOISE_PHOTONS


def _impulse_noise_sample(rng, image):
    hit = rng.random(image.shape) < IMPULSE_NOISE_AMOUNT
    salt = rng.random(image.shape) < IMPULSE_NOISE_SALT_FRACTION
    return hit, salt


def _impulse_noise_apply(batch, params):
    hit, salt = params
    return np.where(hit, salt.astype(np.float64), batch)


# --- blur ---

_GLASS_POSITIONS = np.arange(IMAGE_SIZE - GLASS_BLUR_MAX_DELTA, GLASS_BLUR_MAX_DELTA, -1)  # 27..2


def _glass_blur_sample(rng, image):
    k = len(_GLASS_POSITIONS)
    shape = (GLASS_BLUR_ITERATIONS, k, k)
    swap = rng.random(shape) < GLASS_BLUR_SWAP_PROBABILITY
    delta = rng.integers(-GLASS_BLUR_MAX_DELTA, GLASS_BLUR_MAX_DELTA, size=shape + (2,))
    delta[~swap] = 0  # a position that is not swapped behaves as a swap with itself
    return (delta.astype(np.int8),)


def _vertical_gaussian(batch, sigma):
    return ndimage.gaussian_filter1d(batch, sigma, axis=1, mode="nearest", truncate=4.0)


def _glass_blur_apply(batch, params):
    (delta,) = params  # (n, iterations, k, k, 2) as (dy, dx)
    n = batch.shape[0]
    levels = np.floor(np.clip(_vertical_gaussian(batch, GLASS_BLUR_SIGMA), 0.0, 1.0) * 255.0)
    img = np.ascontiguousarray(levels)
    which = np.arange(n)
    for it in range(GLASS_BLUR_ITERATIONS):
        for a, h in enumerate(_GLASS_POSITIONS):
            for b, w in enumerate(_GLASS_POSITIONS):
                hh = h + delta[:, it, a, b, 0]
                ww = w + delta[:, it, a, b, 1]
                here = img[:, h, w].copy()
                img[:, h, w] = img[which, hh, ww]
                img[which, hh, ww] = here
    return _vertical_gaussian(img / 255.0, GLASS_BLUR_SIGMA)


_MOTION_TAPS = np.arange(2 * math.ceil(MOTION_BLUR_RADIUS) + 1)
_MOTION_WEIGHTS = np.exp(-(_MOTION_TAPS.astype(np.float64) ** 2) / (2.0 * MOTION_BLUR_SIGMA**2))
_MOTION_WEIGHTS /= _MOTION_WEIGHTS.sum()


def _motion_blur_sample(rng, image):
    return (rng.uniform(*MOTION_BLUR_ANGLE_RANGE_DEG),)


def _motion_offsets(angle_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-tap integer offsets (n, taps) along x (columns) and y (rows)."""
    a = np.deg2rad(np.asarray(angle_deg, dtype=np.float64))[:, None]
    dx = np.ceil(_MOTION_TAPS[None, :] * np.cos(a) - 0.5).astype(np.int64)
    dy = np.ceil(_MOTION_TAPS[None, :] * np.sin(a) - 0.5).astype(np.int64)
    return dx, dy


def _motion_blur_apply(batch, params):
    (angle,) = params
    dx, dy = _motion_offsets(angle)
    n = batch.shape[0]
    idx = np.arange(IMAGE_SIZE)
    which = np.arange(n)[:, None, None]
    out = np.zeros_like(batch)
    for t, weight in enumerate(_MOTION_WEIGHTS):
        rows = np.clip(idx[None, :] + dy[:, t, None], 0, IMAGE_SIZE - 1)  # edge replication
        cols = np.clip(idx[None, :] + dx[:, t, None], 0, IMAGE_SIZE - 1)
        out += weight * batch[which, rows[:, :, None], cols[:, None, :]]
    return out


# --- affine ---


def _shear_sample(rng, image):
    return (_random_sign(rng) * SHEAR_ANGLE_RAD,)


def _shear_apply(batch, params):
    (angle,) = params
    n = batch.shape[0]
    m = np.zeros((n, 2, 2))
    m[:, 0, 0] = 1.0
    m[:, 0, 1] = -np.sin(angle)
    m[:, 1, 1] = np.cos(angle)
    return _inverse_affine_warp(batch, m, np.zeros((n, 2)))


def _scale_apply(batch, params):
    n = batch.shape[0]
    m = np.zeros((n, 2, 2))
    m[:, 0, 0] = m[:, 1, 1] = 1.0 / SCALE_FACTOR
    return _inverse_affine_warp(batch, m, np.zeros((n, 2)))


def _rotate_sample(rng, image):
    return (_random_sign(rng) * ROTATE_ANGLE_RAD,)


def _rotate_apply(batch, params):
    (angle,) = params
    n = batch.shape[0]
    cos, sin = np.cos(angle), np.sin(angle)
    m = np.empty((n, 2, 2))
    m[:, 0, 0], m[:, 0, 1] = cos, -sin
    m[:, 1, 0], m[:, 1, 1] = sin, cos
    return _inverse_affine_warp(batch, m, np.zeros((n, 2)))


def _translate_sample(rng, image):
    # inverse-map translation (tx, ty): content moves by (-tx, -ty)
    return (np.array([_random_sign(rng), _random_sign(rng)]) * TRANSLATE_PIXELS,)


def _translate_apply(batch, params):
    (shift,) = params
    n = batch.shape[0]
    m = np.broadcast_to(np.eye(2), (n, 2, 2))
    return _inverse_affine_warp(batch, m, shift)


# --- weather ---


def _brightness_apply(batch, params):
    return batch + BRIGHTNESS_OFFSET


def _fog_sample(rng, image):
    # The uniform draws of every level of the diamond-square fractal, in level order: per level
    # with step s there are (M/s)^2 square-step centres and 2 (M/s)^2 diamond-step points.
    total = 3 * sum((FOG_MAP_SIZE // s) ** 2 for s in _fog_steps())
    return (rng.uniform(-1.0, 1.0, size=total),)


def _fog_steps() -> list[int]:
    steps, s = [], FOG_MAP_SIZE
    while s >= 2:
        steps.append(s)
        s //= 2
    return steps


def _plasma(uniforms: np.ndarray) -> np.ndarray:
    """Batched toroidal diamond-square fractal, normalised to [0, 1] per map: (n, M, M).

    ``uniforms`` (n, 65535) holds U(-1, 1) draws consumed level by level (square step, then the
    two halves of the diamond step); each new point gets ``wibble**2 * u`` added to its mean.
    """
    n = uniforms.shape[0]
    size = FOG_MAP_SIZE
    grid = np.zeros((n, size, size))
    wibble = FOG_INITIAL_WIBBLE
    draws = iter(np.split(uniforms, np.cumsum([(size // s) ** 2 for s in _fog_steps() for _ in range(3)])[:-1], axis=1))
    for step in _fog_steps():
        half = step // 2
        k = size // step
        amplitude = wibble * wibble
        corners = grid[:, 0::step, 0::step]
        below = np.roll(corners, -1, axis=1)  # corner (i+1, j)
        right = np.roll(corners, -1, axis=2)  # corner (i, j+1)
        centres = (corners + below + right + np.roll(below, -1, axis=2)) / 4.0
        centres += amplitude * next(draws).reshape(n, k, k)
        grid[:, half::step, half::step] = centres
        # points on horizontal cell edges: corners left/right, centres below/above
        top = (corners + right + centres + np.roll(centres, 1, axis=1)) / 4.0
        grid[:, 0::step, half::step] = top + amplitude * next(draws).reshape(n, k, k)
        # points on vertical cell edges: corners above/below, centres right/left
        side = (corners + below + centres + np.roll(centres, 1, axis=2)) / 4.0
        grid[:, half::step, 0::step] = side + amplitude * next(draws).reshape(n, k, k)
        wibble /= FOG_WIBBLE_DECAY
    lo = grid.min(axis=(1, 2), keepdims=True)
    hi = grid.max(axis=(1, 2), keepdims=True)
    return (grid - lo) / (hi - lo)


def _fog_apply(batch, params):
    (uniforms,) = params
    haze = _plasma(uniforms)[:, :IMAGE_SIZE, :IMAGE_SIZE]
    peak = batch.max(axis=(1, 2), keepdims=True)
    return (batch + FOG_THICKNESS * haze) * (peak / (peak + FOG_THICKNESS))


def _spatter_sample(rng, image):
    return (rng.normal(SPATTER_LIQUID_MEAN, SPATTER_LIQUID_STD, size=image.shape),)


def _spatter_apply(batch, params):
    (liquid,) = params
    sig = (0.0, SPATTER_LIQUID_SIGMA, SPATTER_LIQUID_SIGMA)
    liquid = ndimage.gaussian_filter(liquid, sig, mode="nearest", truncate=4.0)
    wet = (liquid > SPATTER_THRESHOLD).astype(np.float64)
    sig = (0.0, SPATTER_MASK_SIGMA, SPATTER_MASK_SIGMA)
    mud = ndimage.gaussian_filter(wet, sig, mode="nearest", truncate=4.0)
    mud[mud < SPATTER_MASK_CUTOFF] = 0.0
    return batch * (1.0 - mud) + SPATTER_COLOUR * mud


# --- occlusion ---


def _dotted_line_sample(rng, image):
    lo, hi = DOTTED_LINE_ROW_RANGE
    return (rng.integers(lo, hi + 1, size=2).astype(np.float64),)


_DOTTED_COLUMNS_ON = np.isin(np.arange(IMAGE_SIZE) % DOTTED_LINE_PERIOD, DOTTED_LINE_ON_PHASES)


def _dotted_line_apply(batch, params):
    (rows,) = params
    n = batch.shape[0]
    line = _stroke(np.zeros(n), rows[:, 0], np.full(n, IMAGE_SIZE - 1.0), rows[:, 1])
    return batch + line * _DOTTED_COLUMNS_ON[None, None, :]


_ZIGZAG_MAX_VERTICES = 16


def _zigzag_vertices(start_row: int, end_row: int) -> np.ndarray:
    """Vertices (col, row) of the zigzag polyline, padded with its last vertex to a fixed count."""
    c_first, c_last = ZIGZAG_COLUMNS
    a, b = ZIGZAG_TOOTH_LENGTH, ZIGZAG_AMPLITUDE
    theta = math.atan((end_row - start_row) / (c_last - c_first))
    length = (c_last - c_first) / math.cos(theta)
    along, across = [0.0], [0.0]
    n_teeth = int((length - a) // (2.0 * a)) + 1
    for i in range(n_teeth):
        along.append((2 * i + 1) * a)
        across.append(b if i % 2 == 0 else -b)
    full = 2.0 * a * (length // (2.0 * a))
    if length != full:
        along.append(length)
        across.append(across[-1] / (2.0 * (length - full)))
    along_arr, across_arr = np.array(along), np.array(across)
    cols = c_first + along_arr * math.cos(theta) - across_arr * math.sin(theta)
    rows = start_row + along_arr * math.sin(theta) + across_arr * math.cos(theta)
    verts = np.stack([cols, rows], axis=1)
    pad = _ZIGZAG_MAX_VERTICES - len(verts)
    return np.concatenate([verts, np.repeat(verts[-1:], pad, axis=0)])


def _zigzag_sample(rng, image):
    lo, hi = ZIGZAG_START_ROW_RANGE
    start = int(rng.integers(lo, hi + 1))
    off_lo, off_hi = ZIGZAG_END_OFFSET_RANGE
    end = start + int(rng.integers(off_lo, off_hi + 1))
    return (_zigzag_vertices(start, end),)


def _zigzag_apply(batch, params):
    (verts,) = params  # (n, V, 2)
    strokes = np.zeros_like(batch)
    for k in range(verts.shape[1] - 1):
        a, b = verts[:, k], verts[:, k + 1]
        strokes += _stroke(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
    return batch + strokes  # strokes are >= 0, so one final clip equals clipping after each


# --- digital ---


_STRIPE_MASK = np.isin(np.arange(IMAGE_SIZE), STRIPE_COLUMNS)


def _stripe_apply(batch, params):
    return np.where(_STRIPE_MASK[None, None, :], 1.0 - batch, batch)


def _canny_edges_apply(batch, params):
    out = np.empty_like(batch)
    for i, img in enumerate(batch):
        out[i] = feature.canny(
            img, sigma=CANNY_SIGMA, low_threshold=CANNY_LOW_THRESHOLD, high_threshold=CANNY_HIGH_THRESHOLD
        )
    return out


_Sampler = Callable[[np.random.Generator, np.ndarray], _Params]
_Applier = Callable[[np.ndarray, _Params], np.ndarray]

_REGISTRY: dict[str, tuple[_Sampler, _Applier]] = {
    "shot_noise": (_shot_noise_sample, _shot_noise_apply),
    "impulse_noise": (_impulse_noise_sample, _impulse_noise_apply),
    "glass_blur": (_glass_blur_sample, _glass_blur_apply),
    "motion_blur": (_motion_blur_sample, _motion_blur_apply),
    "shear": (_shear_sample, _shear_apply),
    "scale": (_no_sample, _scale_apply),
    "rotate": (_rotate_sample, _rotate_apply),
    "brightness": (_no_sample, _brightness_apply),
    "translate": (_translate_sample, _translate_apply),
    "stripe": (_no_sample, _stripe_apply),
    "fog": (_fog_sample, _fog_apply),
    "spatter": (_spatter_sample, _spatter_apply),
    "dotted_line": (_dotted_line_sample, _dotted_line_apply),
    "zigzag": (_zigzag_sample, _zigzag_apply),
    "canny_edges": (_no_sample, _canny_edges_apply),
}
assert tuple(_REGISTRY) == MNIST_C_CORRUPTIONS and set(CATEGORIES) == set(MNIST_C_CORRUPTIONS)

# Images per vectorised batch; fog holds a 256x256 fractal per image, so it gets small batches.
_CHUNK = {"fog": 32}
_DEFAULT_CHUNK = 1000


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        raise InputError(f"unknown MNIST-C corruption {name!r}; valid names: {', '.join(MNIST_C_CORRUPTIONS)}")


def _check_pixels(arr: np.ndarray, what: str, expected_shape: str) -> np.ndarray:
    if not (np.issubdtype(arr.dtype, np.floating)):
        raise InputError(
            f"{what} must be a float array with values in [0, 1] of shape {expected_shape}; got dtype "
            f"{arr.dtype} (divide uint8 images by 255 first)"
        )
    if arr.size and not (np.all(np.isfinite(arr)) and arr.min() >= 0.0 and arr.max() <= 1.0):
        raise InputError(
            f"{what} must have values in [0, 1]; got range [{np.nanmin(arr)}, {np.nanmax(arr)}]"
            + (" with non-finite values" if not np.all(np.isfinite(arr)) else "")
        )
    return arr.astype(np.float64)


def _finish(out: np.ndarray) -> np.ndarray:
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _stack(params_list: list[_Params]) -> _Params:
    if not params_list or not params_list[0]:
        return _NO_PARAMS
    return tuple(np.stack([np.asarray(p[j]) for p in params_list]) for j in range(len(params_list[0])))


def corrupt_image(image: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    """Apply MNIST-C corruption ``name`` to one (28, 28) image with values in [0, 1].

    All randomness is drawn from ``rng``. Returns a new (28, 28) float32 array in [0, 1].
    """
    _check_name(name)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    image = np.asarray(image)
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise InputError(f"image must have shape (28, 28); got {image.shape}")
    x = _check_pixels(image, "image", "(28, 28)")
    sample, apply = _REGISTRY[name]
    params = _stack([sample(rng, x)])
    return _finish(apply(x[None], params))[0]


def _per_image_rng(seed: int, name: str, index: int) -> np.random.Generator:
    """The generator ``corrupt_images`` uses for image ``index``."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode("utf-8")), index]))


def corrupt_images(images: np.ndarray, name: str, seed: int) -> np.ndarray:
    """Apply MNIST-C corruption ``name`` to a batch (N, 28, 28) of images with values in [0, 1].

    Image ``i`` is corrupted with the generator
    ``default_rng(SeedSequence([seed, crc32(name), i]))``, so the output is bit-identical for the
    same (images, name, seed) and image ``i``'s output does not depend on N or on the other
    images. Returns (N, 28, 28) float32 in [0, 1].
    """
    _check_name(name)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer; got {seed!r}")
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise InputError(f"images must have shape (N, 28, 28); got {images.shape}")
    x = _check_pixels(images, "images", "(N, 28, 28)")
    sample, apply = _REGISTRY[name]
    out = np.empty(x.shape, dtype=np.float32)
    chunk = _CHUNK.get(name, _DEFAULT_CHUNK)
    for start in range(0, len(x), chunk):
        block = x[start : start + chunk]
        params = _stack([sample(_per_image_rng(int(seed), name, start + j), img) for j, img in enumerate(block)])
        out[start : start + chunk] = _finish(apply(block, params))
    return out
