"""Names, categories and severities of the two corruption benchmarks, MNIST-C (the small datasets)
and ImageNet-C (image folders), without the corruptions themselves.

Kept apart from :mod:`noisetrain.data.mnist_c` (numpy, scipy, skimage) and
:mod:`noisetrain.data.imagenet_c` (numpy, PIL, imagecorruptions) so that the config validation,
which Snakemake imports while building its job graph, can check corruption names with the standard
library only. Both re-export what they use.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# MNIST-C

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
MNIST_C_CATEGORIES: dict[str, str] = {
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


# ---------------------------------------------------------------------------------------------
# ImageNet-C

# The 15 benchmark corruptions of Hendrycks & Dietterich (2019), in the column order of the paper's
# Table 9 (noise, blur, weather, digital).
IMAGENET_C_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)

# The four held-out "validation" corruptions of ImageNet-C (its extra.tar); not part of mCE.
IMAGENET_C_EXTRAS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")

ALL_CORRUPTIONS: tuple[str, ...] = IMAGENET_C_CORRUPTIONS + IMAGENET_C_EXTRAS

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# ImageNet-C's four categories; each extra joins the category of the benchmark corruption it was
# designed to resemble (speckle ~ noise, Gaussian blur ~ blur, spatter ~ weather, saturate ~ digital).
IMAGENET_C_CATEGORIES: dict[str, str] = {
    "gaussian_noise": "noise",
    "shot_noise": "noise",
    "impulse_noise": "noise",
    "defocus_blur": "blur",
    "glass_blur": "blur",
    "motion_blur": "blur",
    "zoom_blur": "blur",
    "snow": "weather",
    "frost": "weather",
    "fog": "weather",
    "brightness": "weather",
    "contrast": "digital",
    "elastic_transform": "digital",
    "pixelate": "digital",
    "jpeg_compression": "digital",
    "speckle_noise": "noise",
    "gaussian_blur": "blur",
    "spatter": "weather",
    "saturate": "digital",
}

# The benchmark's noise category: the corruptions the paper's Gaussian and adversarial noise target.
NOISE_CORRUPTIONS: tuple[str, ...] = ("gaussian_noise", "shot_noise", "impulse_noise")
