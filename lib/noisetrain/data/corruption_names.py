"""Names and categories of the 15 MNIST-C corruptions, without the corruptions themselves.

Kept apart from :mod:`noisetrain.data.mnist_c` (numpy, scipy, skimage) so that the config
validation, which Snakemake imports while building its job graph, can check
``corruptions.names`` with the standard library only. ``mnist_c`` re-exports both names.
"""

from __future__ import annotations

# Paper Table 11 order (= the order of the CORRUPTIONS list in mnist-c corruptions.py, minus
# 'identity').
MNIST_C_CORRUPTIONS: tuple[str, ...] = (
    "shot_noise",
    "impulse_noise",
    "glass_blur",
    "motion_blur",
    "shear",
    "scale",
    "rotate",
    "brightness",
    "translate",
    "stripe",
    "fog",
    "spatter",
    "dotted_line",
    "zigzag",
    "canny_edges",
)

# Grouping (our choice; MNIST-C itself only names noise, blur and affine groups in its text):
#   noise     - per-pixel random noise (shot, impulse)
#   blur      - blur kernels (glass, motion)
#   affine    - geometric transforms about the image centre (shear, scale, rotate, translate)
#   weather   - global photometric / overlay effects, following ImageNet-C, which files
#               brightness and fog under "weather" and spatter with its weather-like extras
#   occlusion - synthetic strokes drawn over the digit (dotted_line, zigzag)
#   digital   - pixel re-encodings of the image (stripe: inverted bands, canny_edges: edge map)
CATEGORIES: dict[str, str] = {
    "shot_noise": "noise",
    "impulse_noise": "noise",
    "glass_blur": "blur",
    "motion_blur": "blur",
    "shear": "affine",
    "scale": "affine",
    "rotate": "affine",
    "translate": "affine",
    "brightness": "weather",
    "fog": "weather",
    "spatter": "weather",
    "dotted_line": "occlusion",
    "zigzag": "occlusion",
    "stripe": "digital",
    "canny_edges": "digital",
}
