"""ImageNet-C's ``elastic_transform``, ``frost`` and ``snow`` as Hendrycks & Dietterich made the published set.

The reference is ``ImageNet-C/create_c/make_imagenet_c.py`` of hendrycks/robustness (the script that
wrote the published ImageNet-C from 224x224 val crops). The ``imagecorruptions-imaug`` package that
generates the other 16 corruptions re-parameterised these three, so they are implemented here with
the recipe's parameters and steps:

- ``elastic_transform``: a random affine warp of three points (``cv2.warpAffine``, bilinear,
  ``BORDER_REFLECT_101``) and then a Gaussian-smoothed random displacement field resampled with
  ``scipy.ndimage.map_coordinates`` (bilinear, ``reflect``); the package drops the affine step and
  uses a far weaker field (severities 1-2 move pixels about 4x less).
- ``frost``: one of the first five frost textures (the recipe's ``randint(5)``, the package draws
  among six), a random 224x224 crop of the texture at its own size (the package enlarges it by 1.1
  first), blended as ``clip(c0 * image + c1 * frost)``.
- ``snow``: the zoomed and thresholded snow layer is cropped to the image and truncated to uint8
  *before* its motion blur (ImageMagick via Wand in the recipe; here the package's numpy port of
  ImageMagick's motion-blur kernel, ``imagecorruptions.corruptions._motion_blur``), whose result is
  rounded to uint8 as the recipe's 8-bit PNG round trip does.

Randomness: every function takes an explicit ``numpy.random.RandomState`` and makes exactly the
recipe's legacy ``np.random`` calls on it, in the recipe's order, so a ``RandomState`` seeded like
``np.random.seed(s)`` reproduces the recipe run under that seed (up to the Wand motion blur of
snow). Draws per image: elastic ``uniform`` 3x2 (affine) then two ``uniform`` HxW (the field's dx,
dy); frost ``randint(5)`` (texture), ``randint`` twice (crop corner); snow ``normal`` HxW (layer),
``uniform(-135, -45)`` (blur angle).

Parameters are the published ones, in pixels, as the recipe applied them to 224x224 crops; other
image sizes get the same steps (the recipe itself only ever saw 224x224) and, for frost, a texture
enlarged just enough to hold the image when it is larger than the texture.
"""

from __future__ import annotations

import functools
import importlib.resources

import cv2  # a dependency of imagecorruptions-imaug; imported only when these corruptions run
import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.ndimage import zoom as scipy_zoom

RECIPE_CORRUPTIONS = ("elastic_transform", "frost", "snow")

# (alpha: field scale, sigma: field smoothing, affine: max corner shift); the recipe writes 244 * f
# where 224 * f was meant, and its authors kept 244 ("ultimately nothing is incorrect").
_ELASTIC = [
    (244 * 2, 244 * 0.7, 244 * 0.1),
    (244 * 2, 244 * 0.08, 244 * 0.2),
    (244 * 0.05, 244 * 0.01, 244 * 0.02),
    (244 * 0.07, 244 * 0.01, 244 * 0.02),
    (244 * 0.12, 244 * 0.01, 244 * 0.02),
]
# (image weight, frost weight)
_FROST = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)]
# The recipe lists six textures and draws randint(5): frost6.jpg is never used. (frost2.png and frost3.png of the
# package are the same picture, so that texture is drawn 2 times in 5.)
FROST_TEXTURES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
# (layer mean, layer std, zoom, threshold, blur radius, blur sigma, image weight)
_SNOW = [
    (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
    (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
    (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
    (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
    (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
]


def corrupt(image: np.ndarray, corruption: str, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Corrupt a uint8 HxWx3 image with the recipe; uint8 of the same shape (truncated, as the recipe's ``np.uint8``)."""
    function = {"elastic_transform": elastic_transform, "frost": frost, "snow": snow}[corruption]
    out = function(np.asarray(image), severity, rng)
    return np.clip(out, 0, 255).astype(np.uint8)


def elastic_transform(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Random affine warp, then a smoothed random displacement field; float in [0, 255]."""
    alpha, sigma, affine = _ELASTIC[severity - 1]
    image = np.asarray(image, dtype=np.float32) / 255.0
    height, width = image.shape[:2]

    # Three points on a square around the centre move by up to `affine` pixels; the image follows the
    # affine map between them. The recipe builds the points from (height, width) and cv2 reads them as
    # (x, y); for the square crops it was made for the order does not matter, and it is kept as is.
    centre = np.float32([height, width]) // 2
    side = min(height, width) // 3
    source = np.float32([centre + side, [centre[0] + side, centre[1] - side], centre - side])
    target = source + rng.uniform(-affine, affine, size=source.shape).astype(np.float32)
    matrix = cv2.getAffineTransform(source, target)
    image = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT_101)

    # skimage's gaussian(..., mode='reflect', truncate=3) of the recipe is this scipy filter on float64.
    dx = gaussian_filter(rng.uniform(-1, 1, size=(height, width)), sigma, mode="reflect", truncate=3) * alpha
    dy = gaussian_filter(rng.uniform(-1, 1, size=(height, width)), sigma, mode="reflect", truncate=3) * alpha
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    coordinates = np.stack([rows + dy.astype(np.float32), cols + dx.astype(np.float32)])
    # Per channel: the recipe's 3-D map_coordinates samples whole channel indices, i.e. the same.
    channels = [map_coordinates(image[..., k], coordinates, order=1, mode="reflect") for k in range(image.shape[2])]
    return np.clip(np.stack(channels, axis=-1), 0, 1) * 255


@functools.lru_cache(maxsize=len(FROST_TEXTURES))
def frost_texture(name: str) -> np.ndarray:
    """One frost texture of the imagecorruptions package as a read-only uint8 HxWx3 RGB array."""
    ref = importlib.resources.files("imagecorruptions") / "frost" / name
    with importlib.resources.as_file(ref) as path:
        bgr = cv2.imread(str(path))  # 3 channels: an alpha channel is dropped, as in the recipe
    if bgr is None:
        raise FileNotFoundError(f"frost texture {ref} of the imagecorruptions package could not be read")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    rgb.flags.writeable = False
    return rgb


def frost(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Blend a random crop of a random frost texture into the image; float in [0, 255]."""
    image_weight, frost_weight = _FROST[severity - 1]
    image = np.asarray(image)
    height, width = image.shape[:2]
    texture = frost_texture(FROST_TEXTURES[rng.randint(len(FROST_TEXTURES))])
    if texture.shape[0] <= height or texture.shape[1] <= width:  # never for 224x224 crops (textures >= 315)
        scale = max((height + 1) / texture.shape[0], (width + 1) / texture.shape[1])
        size = (int(np.ceil(texture.shape[1] * scale)), int(np.ceil(texture.shape[0] * scale)))
        texture = cv2.resize(texture, size, interpolation=cv2.INTER_CUBIC)
    top = rng.randint(0, texture.shape[0] - height)
    left = rng.randint(0, texture.shape[1] - width)
    crop = texture[top : top + height, left : left + width]
    return np.clip(image_weight * image + frost_weight * crop.astype(np.float64), 0, 255)


def _centre_zoom(layer: np.ndarray, factor: float) -> np.ndarray:
    """Zoom the centre of a HxW layer by ``factor`` (bilinear) and crop the result back to HxW."""
    height, width = layer.shape
    crop_h, crop_w = int(np.ceil(height / factor)), int(np.ceil(width / factor))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    zoomed = scipy_zoom(layer[top : top + crop_h, left : left + crop_w], factor, order=1)
    trim_top, trim_left = (zoomed.shape[0] - height) // 2, (zoomed.shape[1] - width) // 2
    return zoomed[trim_top : trim_top + height, trim_left : trim_left + width]


def snow(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Add a motion-blurred snow layer (and its 180-degree rotation) to a brightened image; float in [0, 255]."""
    from imagecorruptions.corruptions import _motion_blur  # numpy port of ImageMagick's MotionBlurImage

    mean, std, factor, threshold, radius, blur_sigma, image_weight = _SNOW[severity - 1]
    image = np.asarray(image, dtype=np.float32) / 255.0
    height, width = image.shape[:2]

    layer = _centre_zoom(rng.normal(size=(height, width), loc=mean, scale=std), factor)
    layer[layer < threshold] = 0
    # The recipe hands the layer to ImageMagick as an 8-bit image: truncated to uint8 first.
    layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8)
    blurred = _motion_blur(layer.astype(np.float32), radius=radius, sigma=blur_sigma, angle=rng.uniform(-135, -45))
    # ... and reads the blurred 8-bit PNG back: rounded to uint8.
    layer = (np.clip(np.floor(np.asarray(blurred, dtype=np.float64) + 0.5), 0, 255) / 255.0)[..., np.newaxis]

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., np.newaxis]
    image = image_weight * image + (1 - image_weight) * np.maximum(image, grey * 1.5 + 0.5)
    return np.clip(image + layer + np.rot90(layer, k=2), 0, 1) * 255
