"""The paper's ImageNet-C figures (matplotlib, PNG and PDF, written atomically).

* Fig 2: top-1 accuracy on ImageNet-C (left) and on ImageNet-C without the noise category (right)
  against the training sigma of the GNT models: one black dot per single-sigma model, the vanilla
  model at sigma 0, and a green line with stars per sigma set (GNT mult) spanning its sigmas.

* Fig 5: top-1 accuracy against corruption severity, one panel per benchmark corruption (3 x 5),
  one line per model, clean accuracy drawn at severity 0; from the tidy accuracy frame alone
  (``model, corruption, severity, top1, ...``; see :mod:`noisetrain.report.paper_tables`).
* Fig 9: an ImageNet-C JPEG-compression image beside the same clean crop after
  ``PIL.ImageOps.posterize`` with 1-4 bits (appendix J: AugMix's Posterize looks like the JPEG
  corruption of the test set).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # rules run headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from noisetrain.errors import InputError  # noqa: E402
from noisetrain.measure.corruption_error import BENCHMARK_CORRUPTIONS  # noqa: E402
from noisetrain.report.figures import save  # noqa: E402  (the one atomic save of every figure)
from noisetrain.report.paper_tables import NOISE_CORRUPTIONS, REQUIRED_COLUMNS, Measured  # noqa: E402

POSTERIZE_BITS = (1, 2, 3, 4)
# Fig 5: each model's points shift sideways by up to this much severity, each with its own marker,
# so that models of equal accuracy (common on a small sample) stay visible instead of overplotting.
DODGE = 0.25
MARKERS = "osD^v<>ph*"
# ImageNet-C images are the validation images resized to 256 (shorter side) and centre-cropped to 224.
RESIZE, CROP = 256, 224


def accuracy_vs_severity(accuracy: pd.DataFrame, models: Mapping[str, dict] | None = None, selected: Sequence[str] | None = None):
    """Fig 5: top-1 accuracy [%] against severity (clean at 0) for each of the 15 benchmark
    corruptions, one line per model (``selected``: which and in what order; default every model
    of the frame, in the order of ``models``). A panel shows whatever severities a model has; one of a
    corruption no model was evaluated on says so."""
    missing = [c for c in REQUIRED_COLUMNS if c not in accuracy.columns]
    if missing:
        raise InputError(f"the accuracy frame lacks the column(s) {', '.join(missing)}")
    models = models or {}
    present = list(dict.fromkeys(accuracy.model))
    if selected is None:
        selected = [m for m in models if m in present] + [m for m in present if m not in models]
    absent = [m for m in selected if m not in present]
    if absent:
        raise InputError(f"Fig 5: no accuracy for model(s) {', '.join(absent)} (the frame has {', '.join(present)})")
    frame = accuracy.assign(severity=accuracy.severity.astype(int))
    clean = frame[frame.corruption == "clean"].groupby("model").top1.mean()
    colors = plt.cm.tab10.colors if len(selected) <= 10 else plt.cm.tab20.colors
    shifts = np.linspace(-DODGE, DODGE, len(selected)) if len(selected) > 1 else [0.0]

    fig, axes = plt.subplots(3, 5, figsize=(15, 9), sharex=True, sharey=True)
    handles = []
    for ax, corruption in zip(axes.ravel(), BENCHMARK_CORRUPTIONS):
        rows = frame[frame.corruption == corruption]
        ax.set_xticks(range(6))
        ax.set_xlim(-0.5, 5.5)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        if rows.empty:  # a partial protocol: no model was evaluated on it, so no clean dot either
            ax.set_title(f"{corruption.replace('_', ' ')}: not evaluated", fontsize=9, color="0.5")
            ax.text(0.5, 0.5, "not evaluated", ha="center", va="center", color="0.5", fontsize=10, transform=ax.transAxes)
            continue
        ax.set_title(corruption.replace("_", " "), fontsize=9)
        for index, model in enumerate(selected):
            points = rows[rows.model == model].sort_values("severity")
            xs, ys = list(points.severity), list(points.top1)
            if model in clean.index:
                xs, ys = [0, *xs], [float(clean[model]), *ys]
            label = (models.get(model) or {}).get("label") or model
            line, = ax.plot(np.add(xs, shifts[index]), ys, lw=1.2, ms=4, color=colors[index % len(colors)],
                            marker=MARKERS[index % len(MARKERS)], label=label)
            if len(handles) < len(selected):
                handles.append(line)
    for ax in axes[-1]:
        ax.set_xlabel("severity (0 = clean)")
    for ax in axes[:, 0]:
        ax.set_ylabel("top-1 accuracy [%]")
    labels = [handle.get_label() for handle in handles]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5) or 1, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.02 * (len(labels) // 5), 1, 1))
    return fig


def _rgb(image) -> Image.Image:
    """A PIL RGB image from a path, a PIL image, or an H x W (x C) array (uint8, or floats in [0, 1])."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, str | Path):
        path = Path(image)
        if not path.is_file():
            raise InputError(f"Fig 9: image file {path} does not exist")
        with Image.open(path) as opened:
            return opened.convert("RGB")
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(np.round(array.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = np.transpose(array, (1, 2, 0))  # C x H x W -> H x W x C
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3):
        raise InputError(f"Fig 9: an image must be H x W or H x W x C, got shape {array.shape}")
    return Image.fromarray(array).convert("RGB")


def imagenet_c_crop(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The crop ImageNet-C was made from: a validation image resized so its shorter side is
    256/224 of the crop, then centre-cropped to ``size`` (width, height); unchanged when it
    already has that size."""
    if image.size == size:
        return image
    width, height = size
    scale = RESIZE / CROP * max(width, height) / min(image.size)
    resized = image.resize((max(width, round(image.width * scale)), max(height, round(image.height * scale))), Image.BILINEAR)
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def posterize_vs_jpeg(jpeg_image, clean_image, bits: Sequence[int] = POSTERIZE_BITS, jpeg_title: str = "ImageNet-C JPEG"):
    """Fig 9: the ImageNet-C JPEG-compression image, then the same clean crop posterized
    (``PIL.ImageOps.posterize``) to each number of ``bits``. Images: paths, PIL images or arrays;
    a clean validation image of another size is cropped as ImageNet-C's images were."""
    bad = [b for b in bits if not (isinstance(b, int | np.integer) and 1 <= b <= 8)]
    if bad or not bits:
        raise InputError(f"Fig 9: posterize bits must be integers in 1..8, got {list(bits)}")
    jpeg = _rgb(jpeg_image)
    clean = imagenet_c_crop(_rgb(clean_image), jpeg.size)
    panels = [
        (jpeg_title, jpeg),
        *((f"posterize {b} bit{'s' if b > 1 else ''}", ImageOps.posterize(clean, int(b))) for b in bits),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.5))
    for ax, (title, image) in zip(np.atleast_1d(axes), panels):
        ax.imshow(np.asarray(image))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def _mean_over(measured: Measured, model: str, corruptions: Sequence[str]) -> float | None:
    """Top-1 [%] averaged over the given corruptions that were evaluated (None: none was)."""
    means = [measured.corruption_mean(model, name) for name in measured.evaluated(model, corruptions)]
    return float(np.mean(means)) if means else None


def accuracy_vs_sigma(accuracy: pd.DataFrame, models: Mapping[str, dict], vanilla: str | None = "vanilla"):
    """Fig 2 from the accuracy frame and the models' ``sigmas`` (one: a GNT model; several: a
    GNT mult set). Each panel averages the benchmark corruptions evaluated (all 15 / the 12 without
    noise in the paper's protocol; the title says how many)."""
    measured = Measured(accuracy)
    noisy = [m for m, spec in models.items() if spec.get("sigmas") and m in measured.models]
    if not noisy:
        raise InputError("Fig 2 needs GNT models (a sigma sweep or GNT mult sets) in the accuracy frame")
    panels = (("ImageNet-C", BENCHMARK_CORRUPTIONS),
              ("ImageNet-C w/o noise", [c for c in BENCHMARK_CORRUPTIONS if c not in NOISE_CORRUPTIONS]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    greens = plt.cm.Greens(np.linspace(0.45, 0.95, max(1, sum(len(models[m]["sigmas"]) > 1 for m in noisy))))
    for ax, (title, corruptions) in zip(axes, panels):
        sets, dots = 0, False
        for model in noisy:
            sigmas, value = models[model]["sigmas"], _mean_over(measured, model, corruptions)
            if value is None:
                continue
            if len(sigmas) == 1:
                ax.plot(sigmas, [value], "o", color="black", label="GNT, one σ" if not dots else None)
                dots = True
            else:
                ax.plot([min(sigmas), max(sigmas)], [value, value], "-", color=greens[sets], label=models[model]["label"])
                ax.plot(sigmas, [value] * len(sigmas), "*", color=greens[sets], markersize=9)
                sets += 1
        if vanilla in measured.models and _mean_over(measured, vanilla, corruptions) is not None:
            ax.plot([0.0], [_mean_over(measured, vanilla, corruptions)], "o", color="black", markerfacecolor="white",
                    label=models.get(vanilla, {}).get("label", vanilla) + " (σ = 0)")
        evaluated = len({c for m in noisy for c in measured.evaluated(m, corruptions)})
        ax.set(title=f"{title} ({evaluated} of {len(corruptions)} corruptions)", xlabel="σ of the Gaussian noise in training",
               ylabel="top-1 accuracy [%]")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def write_fig2(accuracy: pd.DataFrame, models: Mapping[str, dict], png_path: str | Path) -> None:
    save(accuracy_vs_sigma(accuracy, models), png_path)


def write_fig5(
    accuracy: pd.DataFrame, models: Mapping[str, dict] | None, png_path: str | Path, selected: Sequence[str] | None = None
) -> None:
    save(accuracy_vs_severity(accuracy, models, selected), png_path)


def write_fig9(
    jpeg_image, clean_image, png_path: str | Path, bits: Sequence[int] = POSTERIZE_BITS, jpeg_title: str = "ImageNet-C JPEG"
) -> None:
    save(posterize_vs_jpeg(jpeg_image, clean_image, bits, jpeg_title), png_path)
