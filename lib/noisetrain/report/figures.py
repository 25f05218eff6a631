"""The paper's figures (matplotlib, PNG and PDF): result plots from the tidy frame alone, example
images from the prepared data files."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # rules run headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from noisetrain import methods  # noqa: E402
from noisetrain.config_names import PAPER_DATASETS  # noqa: E402
from noisetrain.report.paper import paper_value  # noqa: E402
from noisetrain.report.sweep_choice import is_main_model, sweep_sigmas  # noqa: E402
from noisetrain.report.tables import method_label  # noqa: E402
from noisetrain.storage import atomic_write  # noqa: E402

if TYPE_CHECKING:
    import torch


def save(fig, png_path: str | Path, pdf_path: str | Path | None = None) -> None:
    """The figure as PNG (150 dpi) and PDF (beside it unless ``pdf_path``), each written atomically:
    a killed job never leaves a half-written figure under its final name. Every figure goes through here."""
    png_path = Path(png_path)
    pdf_path = Path(pdf_path) if pdf_path is not None else png_path.with_suffix(".pdf")
    try:
        for path, fmt, options in ((png_path, "png", {"dpi": 150}), (pdf_path, "pdf", {})):
            atomic_write(path, lambda tmp, fmt=fmt, options=options: fig.savefig(tmp, format=fmt, bbox_inches="tight", **options))
    finally:
        plt.close(fig)


def sigma_set(spec: dict) -> list[float]:
    """The sigmas of a model trained on a set of them (Fig 2's green lines), [] for any other."""
    if methods.in_sigma_sweep(spec):
        return []
    return methods.noise_keys(spec).get("sigmas", [])


def accuracy_vs_sigma(summary: pd.DataFrame, specs: dict[str, dict], dataset: str, spread: pd.DataFrame | None = None):
    """Fig 6 (and Fig 2's layout): corruption accuracy of every GNT model against its sigma,
    vanilla at sigma = 0, every GNT_mult model (one per sigma set) and Speckle as horizontal
    lines; two panels, with and without the noise corruptions. Models with several seeds are
    drawn at their mean with an error bar of ± one std over seeds (``spread``)."""
    sigmas = {m: s for m, s in sweep_sigmas(specs).items() if is_main_model(specs[m])}
    panels = [("c_mean", "all corruptions"), ("c_mean_without_noise", "without noise corruptions")]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True)
    for ax, (column, title) in zip(axes, panels):
        points = sorted((s, 100 * summary.at[m, column]) for m, s in sigmas.items() if m in summary.index)
        if "vanilla" in summary.index:
            points.insert(0, (0.0, 100 * summary.at["vanilla", column]))
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, "o-", color="black", label="GNT (one σ); vanilla at σ = 0")
            by_sigma = {0.0: "vanilla", **{s: m for m, s in sigmas.items()}}
            bars = [(x, y, 100 * spread.at[by_sigma[x], column]) for x, y in points
                    if spread is not None and by_sigma[x] in spread.index and pd.notna(spread.at[by_sigma[x], column])]
            if bars:
                ax.errorbar(*zip(*bars), fmt="none", ecolor="black", capsize=3, label="± std over seeds")
        # Fig 2's green lines: each model trained on a set of sigmas, stars at the set's sigmas.
        sets = {m: sigma_set(spec) for m, spec in specs.items() if sigma_set(spec) and is_main_model(spec)}
        greens = plt.cm.Greens(np.linspace(0.5, 0.95, max(len(sets), 1)))
        for (method, levels), color in zip(sets.items(), greens):
            if method in summary.index:
                level = 100 * summary.at[method, column]
                ax.axhline(level, color=color, ls="--", label=f"{method_label(method, specs[method])}: σ from a set")
                ax.plot(levels, [level] * len(levels), "*", color=color)
        if "speckle" in summary.index:
            ax.axhline(100 * summary.at["speckle", column], color="tab:purple", ls=":",
                       label=method_label("speckle", specs.get("speckle", {})))
        if dataset in PAPER_DATASETS and column == "c_mean":
            paper = [(0.0, paper_value("Table 11", dataset, "vanilla", "c_mean")),
                     (0.5, paper_value("Table 11", dataset, "gnt_s0.5", "c_mean"))]
            paper = [(s, v) for s, v in paper if v is not None]
            if paper:
                ax.plot(*zip(*paper), "s", mfc="none", color="tab:red", label="paper (Table 11)")
        ax.set_title(f"{dataset}: {title}")
        ax.set_xlabel("σ of Gaussian noise during training")
        ax.set_ylabel("top-1 accuracy [%]")
        ax.grid(alpha=0.3)
    # Below the panels, not over them: inside, it covered the horizontal lines (Speckle's on digits).
    handles, labels = axes[0].get_legend_handles_labels()
    rows = -(-len(handles) // 3)
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.055 * rows, 1, 1))
    return fig


def noise_levels(image: np.ndarray, sigmas: list[float], seed: int):
    """Fig 7: one test image with additive Gaussian noise at every sigma (clipped to [0, 1])."""
    import torch  # here, not at the top: the tables and most figures need no torch (seconds a job)

    from noisetrain.noise.pixel_noise import gaussian_noise

    x = torch.from_numpy(image.astype(np.float32) / 255.0)[None]
    levels = [0.0, *sorted(sigmas)]
    fig, axes = plt.subplots(1, len(levels), figsize=(1.4 * len(levels), 1.8))
    for ax, sigma in zip(np.atleast_1d(axes), levels):
        noisy = gaussian_noise(x, sigma, torch.Generator().manual_seed(seed)) if sigma else x
        ax.imshow(_hwc(noisy[0].numpy()), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"σ = {sigma:g}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


def corruption_examples(clean: np.ndarray, corrupted: dict[str, np.ndarray]):
    """One test image under every corruption (uint8 images, C x H x W)."""
    panels = [("clean", clean), *corrupted.items()]
    cols = 8
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.7 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, (name, image) in zip(np.ravel(axes), panels):
        ax.imshow(_hwc(image / 255.0), cmap="gray", vmin=0, vmax=1)
        ax.set_title(name.replace("_", " "), fontsize=8)
    fig.tight_layout()
    return fig


def _hwc(image: np.ndarray) -> np.ndarray:
    """C x H x W -> H x W (gray) or H x W x C for imshow."""
    return image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))


def adversarial_noise(images: np.ndarray, uncorrelated, correlated, seed: int, states: int = 6):
    """Fig 4: (A) density of the noise value of generator states saved during ANT 1x1 (the noise
    as added before clipping, scaled to ANT's L2 size eps); (B) images with uncorrelated noise;
    (C) noise patches of a 3x3 generator; (D) images with correlated noise. ``uncorrelated`` and
    ``correlated`` are the generator banks stored in ANT model files (the replay bank's states,
    then the final generator). Where the shown generator erases most of the shown images (issue 9,
    ``noisetrain.noise.diagnostics``), the titles of its panels say so in red."""
    import torch

    from noisetrain.noise.diagnostics import is_erasing, perturbation_diagnostics
    from noisetrain.noise.rescaling import rescale_to_norm

    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    columns = len(x)
    rows = 4 if correlated else 2
    fig = plt.figure(figsize=(1.5 * columns, 1.7 * rows + 1.0))
    grid = fig.add_gridspec(rows, columns, height_ratios=[1.6] + [1] * (rows - 1))

    def sample(bank, index=-1):
        with torch.no_grad():
            return bank.build(index)(x, torch.Generator().manual_seed(seed))

    eps = uncorrelated.eps
    ax = fig.add_subplot(grid[0, :])
    saved = len(uncorrelated.states) - 1  # the replay bank; the last state is the final generator
    picks = np.unique(np.linspace(0, saved - 1, min(states, saved)).astype(int)).tolist() if saved else []
    values = []
    for index in [*picks, -1]:
        delta = sample(uncorrelated, index)
        values.append((delta * (eps / delta.flatten(1).norm(dim=1)).view(-1, 1, 1, 1)).flatten().numpy())
    bins = np.histogram_bin_edges(np.concatenate(values), bins=80)
    for index, value in zip([*picks, -1], values):
        label = "final generator" if index == -1 else f"saved state {index + 1}/{saved}"
        ax.hist(value, bins=bins, density=True, histtype="step", label=label)
    ax.set_title(f"A: density of the noise value of ANT 1x1 generator states (L2 size eps = {eps:.2f}); "
                 f"largest total-variation distance between two: {largest_distance(values, bins):.2f}", fontsize=9)
    ax.set_xlabel("noise value (before clipping)")
    ax.legend(fontsize=6, ncol=2)

    panels = [("B: images with uncorrelated adversarial noise", uncorrelated, False)]
    if correlated:
        panels += [("C: noise patches of the 3x3 generator", correlated, True),
                   ("D: images with correlated adversarial noise", correlated, False)]
    for row, (title, bank, raw) in enumerate(panels, start=1):
        delta = sample(bank)
        noisy = rescale_to_norm(x, delta, bank.eps)
        diagnostics = perturbation_diagnostics(x, noisy)
        warning = erasing_warning(diagnostics, bank.eps) if is_erasing(diagnostics) else None
        if raw:  # show the noise itself, each patch stretched to [0, 1]
            lo = delta.flatten(1).min(1).values.view(-1, 1, 1, 1)
            hi = delta.flatten(1).max(1).values.view(-1, 1, 1, 1)
            shown = (delta - lo) / (hi - lo).clamp_min(1e-12)
        else:
            shown = noisy
        for col in range(columns):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(_hwc(shown[col].numpy()), cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
            if col == 0:
                ax.set_title(title + (f"\n{warning}" if warning else ""), fontsize=8, loc="left",
                             color="tab:red" if warning else "black")
    fig.tight_layout()
    return fig


def largest_distance(samples: list[np.ndarray], bins: np.ndarray) -> float:
    """The largest total-variation distance between the histograms (on shared ``bins``) of any two
    samples: 0 when Fig 4 A's densities coincide (a generator that barely moved), 1 when disjoint."""
    shares = [np.histogram(sample, bins=bins)[0] / max(len(sample), 1) for sample in samples]
    return max((0.5 * float(np.abs(a - b).sum()) for i, a in enumerate(shares) for b in shares[i + 1:]), default=0.0)


def erasing_warning(diagnostics: dict[str, float], eps: float) -> str:
    """The panel-title warning for a generator that erases the images it perturbs."""
    return f"WARNING: erases {diagnostics['erased_fraction']:.0%} of images (eps {eps:.3g})"


def epsilon_examples(image: np.ndarray, models: list[tuple[str, dict[str, float], dict[str, torch.Tensor]]]):
    """Figs 3 and 8: one test image changed along each noise direction by exactly the model's
    median epsilon* (clipping-aware rescaling), one row per model, one column per noise type.
    ``models`` holds (label, {noise type: eps*}, {noise type: direction of the image's shape})."""
    import torch

    from noisetrain.noise.rescaling import rescale_to_norm

    x = torch.from_numpy(image.astype(np.float32) / 255.0)[None]
    kinds = list(models[0][1])
    fig, axes = plt.subplots(len(models), len(kinds) + 1, figsize=(1.7 * (len(kinds) + 1), 1.9 * len(models)), squeeze=False)
    names = {"gn": "Gaussian", "un": "uniform", "an": "adversarial"}
    for row, (label, eps, directions) in enumerate(models):
        axes[row, 0].imshow(_hwc(x[0].numpy()), cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_title("clean" if row == 0 else "", fontsize=8)
        axes[row, 0].set_ylabel(textwrap.fill(label, 24), fontsize=8)  # ImageNet labels name the network too
        for col, kind in enumerate(kinds, start=1):
            size = eps[kind]
            shown = rescale_to_norm(x, directions[kind], size if math.isfinite(size) else 1e9)
            axes[row, col].imshow(_hwc(shown[0].numpy()), cmap="gray", vmin=0, vmax=1)
            axes[row, col].set_title(f"{names.get(kind, kind)} ε*={size:.2f}{epsilon_remark(size)}", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def epsilon_remark(size: float) -> str:
    """What a panel of Figs 3 / 8 shows where the median epsilon* is no distance at all: 0 when the
    model is wrong on at least half of the clean images (their epsilon* is 0), so the image is
    unchanged; infinite when no noise size flips most of them."""
    if size == 0:
        return "\n(= the clean image)"
    return "" if math.isfinite(size) else "\n(never flips)"
