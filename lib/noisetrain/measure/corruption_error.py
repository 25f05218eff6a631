"""The metrics over a corruption benchmark, for every dataset: the mean accuracy over corruptions
(:func:`benchmark_mean`), and on ImageNet-C the Corruption Error (CE) and mean Corruption Error
(mCE) (paper appendix D, eq. 5).

A benchmark mean averages each corruption over the severities evaluated, then the corruptions: the
paper's "IN-C" and "C mean" columns, and without the noise category its "w/o Noises" column.

For a classifier f and a corruption c with top-1 errors E_{s,c} at severities s = 1..5,

    CE_c(f) = sum_s E_{s,c}(f) / sum_s E_{s,c}(AlexNet)

and mCE is the mean of CE_c over the 15 benchmark corruptions of Hendrycks & Dietterich (ICLR 2019).
The four extra corruptions (speckle noise, Gaussian blur, spatter, saturate) are not part of the
benchmark: their CE is reported, and their mean apart (``extras_mce``), never mixed into the mCE.

Because the denominator only needs the AlexNet errors summed over severities, the reference is one
number per corruption: AlexNet's error averaged over the five severities (:data:`ALEXNET_ERRORS`).
CE and mCE are returned in percent, as the paper's Table 10 prints them.

Partial evaluations: a corruption's errors may also be given at some of the severities only (a
mapping severity -> error). Its CE then sums over those severities S, for the model and the
reference alike, CE_c = sum_{s in S} E_{s,c}(f) / sum_{s in S} E_{s,c}(reference), which needs the
reference's errors per severity (:data:`ALEXNET_SEVERITY_ERRORS` for the published AlexNet); where the
reference cannot give them, the CE is undefined (:class:`UndefinedCorruptionError`). The mCE still
needs all 15 benchmark corruptions; over fewer than five severities it is not the paper's metric.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from noisetrain.data.corruption_names import IMAGENET_C_CORRUPTIONS, IMAGENET_C_EXTRAS, SEVERITIES
from noisetrain.errors import InputError

# The 15 benchmark corruptions in Table 9 / Table 10 order, and the four extras (not in the mCE).
BENCHMARK_CORRUPTIONS: tuple[str, ...] = IMAGENET_C_CORRUPTIONS
EXTRA_CORRUPTIONS: tuple[str, ...] = IMAGENET_C_EXTRAS
N_SEVERITIES = len(SEVERITIES)

# A corruption's top-1 errors (fractions): its five per-severity errors in severity order, or a
# mapping severity -> error over the severities that were evaluated.
Errors = Sequence[float] | Mapping[int, float]
# A reference's entry for one corruption: its error averaged over the five severities (one number,
# usable for errors at all five severities only), or its errors per severity as in Errors.
ReferenceErrors = float | Errors

# AlexNet top-1 error on ImageNet-C per corruption and severity (fractions), as published by
# Hendrycks & Dietterich in the ImageNet-C repository, github.com/hendrycks/robustness, README.md,
# section "AlexNet ImageNet-C Error" ("Use these values to normalize raw corruption error to
# calculate mCE"), columns "Severity 1" .. "Severity 5".
ALEXNET_SEVERITY_ERRORS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    "shot_noise": (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    "impulse_noise": (0.78374, 0.89808, 0.94870, 0.98720, 0.99548),
    "defocus_blur": (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    "glass_blur": (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    "motion_blur": (0.58430, 0.70048, 0.82108, 0.89750, 0.92638),
    "zoom_blur": (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    "snow": (0.71726, 0.88392, 0.86468, 0.91870, 0.94952),
    "frost": (0.61390, 0.79734, 0.88790, 0.89942, 0.93430),
    "fog": (0.67474, 0.76050, 0.84378, 0.87260, 0.94500),
    "brightness": (0.45140, 0.48502, 0.54048, 0.62166, 0.72440),
    "contrast": (0.64548, 0.76150, 0.88874, 0.97760, 0.99270),
    "elastic_transform": (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    "pixelate": (0.52218, 0.54620, 0.73728, 0.87092, 0.91262),
    "jpeg_compression": (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
    "speckle_noise": (0.66192, 0.74440, 0.90246, 0.94548, 0.97268),
    "gaussian_blur": (0.54732, 0.70444, 0.82574, 0.89864, 0.95940),
    "spatter": (0.47196, 0.62194, 0.75052, 0.84132, 0.90182),
    "saturate": (0.59342, 0.65514, 0.51174, 0.70834, 0.82260),
}

# The same table's "Average" column: AlexNet's top-1 error per corruption, averaged over the five
# severities (fractions). Source as above (hendrycks/robustness README.md, "AlexNet ImageNet-C
# Error"). Each equals the mean of its row in ALEXNET_SEVERITY_ERRORS (checked by the tests).
ALEXNET_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428,
    "shot_noise": 0.894468,
    "impulse_noise": 0.922640,
    "defocus_blur": 0.819880,
    "glass_blur": 0.826268,
    "motion_blur": 0.785948,
    "zoom_blur": 0.798360,
    "snow": 0.866816,
    "frost": 0.826572,
    "fog": 0.819324,
    "brightness": 0.564592,
    "contrast": 0.853204,
    "elastic_transform": 0.646056,
    "pixelate": 0.717840,
    "jpeg_compression": 0.606500,
    "speckle_noise": 0.845388,
    "gaussian_blur": 0.787108,
    "spatter": 0.717512,
    "saturate": 0.658248,
}


@dataclass(frozen=True)
class CorruptionErrors:
    """CE per corruption and their means, all in percent (lower is better).

    ``mce`` averages the 15 benchmark corruptions only; ``extras_mce`` averages the extra
    corruptions that were given (None when none was); ``ce`` holds every given corruption,
    benchmark order first, then the extras; ``severities`` the severities each CE sums over.
    """

    mce: float
    ce: dict[str, float] = field(default_factory=dict)
    extras_mce: float | None = None
    severities: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def as_row(self) -> dict[str, float]:
        """One flat row: ``mce``, each corruption's CE, and ``extras_mce`` when there are extras."""
        row = {"mce": self.mce, **self.ce}
        if self.extras_mce is not None:
            row["extras_mce"] = self.extras_mce
        return row


class UndefinedCorruptionError(InputError):
    """The CE of a corruption is undefined relative to the reference: the reference has no error for
    the corruption, none at a severity the model was evaluated at (a reference given as one mean over
    the five severities has none at any single one), or makes no error at all at those severities."""


def _levels(severities: Sequence[int]) -> str:
    return ", ".join(map(str, severities))


def _severity_errors(corruption: str, values, what: str = "errors") -> tuple[tuple[int, ...], np.ndarray]:
    """The severities and per-severity errors of one corruption as floats, or an InputError naming it.

    ``values``: the five errors in severity order, or a mapping severity -> error over some severities
    (returned in severity order)."""
    if isinstance(values, Mapping):
        if not values:
            raise InputError(f"{what} of {corruption!r} hold no severity")
        by_level = {}
        for key, value in values.items():
            try:
                level = operator.index(key)
            except TypeError:
                level = None
            if level not in SEVERITIES:
                raise InputError(f"{what} of {corruption!r}: severity {key!r} is not one of {_levels(SEVERITIES)}")
            by_level[level] = value
        severities = tuple(sorted(by_level))
        raw = [by_level[level] for level in severities]
    else:
        severities, raw = SEVERITIES, values
    try:
        array = np.asarray(raw, dtype=float)
    except (TypeError, ValueError) as exc:
        expected = "a mapping severity -> number" if isinstance(values, Mapping) else f"{N_SEVERITIES} numbers"
        raise InputError(f"{what} of {corruption!r} must be {expected}, got {values!r}") from exc
    if array.shape != (len(severities),):
        count = "" if isinstance(values, Mapping) else f" ({N_SEVERITIES})"
        raise InputError(f"{what} of {corruption!r} must hold one value per severity{count}, got shape {array.shape}: {values!r}")
    bad = [float(v) for v in array if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
    if bad:
        raise InputError(f"{what} of {corruption!r} must be fractions in [0, 1] (top-1 error, not percent), got {bad}")
    return severities, array


def _reference_mean(corruption: str, value: ReferenceErrors, severities: tuple[int, ...]) -> float:
    """The reference's error on ``corruption`` averaged over ``severities`` (so that the ratio of the
    means is the ratio of the sums over the same severities)."""
    if not isinstance(value, Mapping) and np.ndim(value) == 0:
        try:
            mean = float(value)
            valid = 0.0 < mean <= 1.0
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise InputError(f"the reference error of {corruption!r} must be a fraction in (0, 1], got {value!r}")
        if severities != SEVERITIES:
            raise UndefinedCorruptionError(
                f"the reference error of {corruption!r} is one mean over the {N_SEVERITIES} severities: the CE at "
                f"severities {_levels(severities)} needs the reference's errors at those severities"
            )
        return mean
    levels, array = _severity_errors(corruption, value, what="the reference errors")
    lacking = [level for level in severities if level not in levels]
    if lacking:
        raise UndefinedCorruptionError(
            f"the reference has no error on {corruption!r} at severit{'y' if len(lacking) == 1 else 'ies'} "
            f"{_levels(lacking)}: the CE at severities {_levels(severities)} is undefined"
        )
    mean = float(np.asarray([array[levels.index(level)] for level in severities]).mean())
    if mean <= 0.0:
        raise UndefinedCorruptionError(
            f"the reference makes no error on {corruption!r} at severities {_levels(severities)}: "
            "the CE relative to it is undefined"
        )
    return mean


def _default_reference(corruption: str, severities: tuple[int, ...]) -> ReferenceErrors:
    """AlexNet's published error: the five-severity mean (as published) for all five severities, the
    per-severity errors otherwise."""
    if corruption not in ALEXNET_ERRORS:
        raise UndefinedCorruptionError(f"no reference error for {corruption!r} (the reference has {', '.join(ALEXNET_ERRORS)})")
    return ALEXNET_ERRORS[corruption] if severities == SEVERITIES else ALEXNET_SEVERITY_ERRORS[corruption]


def _corruption_error(corruption, severities, array, reference) -> float:
    if reference is None:
        value = _default_reference(corruption, severities)
    elif corruption in reference:
        value = reference[corruption]
    else:
        raise UndefinedCorruptionError(f"no reference error for {corruption!r} (the reference has {', '.join(reference)})")
    return 100.0 * float(array.mean()) / _reference_mean(corruption, value, severities)


def corruption_error(corruption: str, errors: Errors, reference: Mapping[str, ReferenceErrors] | None = None) -> float:
    """CE of one corruption (percent) over the severities ``errors`` holds (see the module's docstring).

    ``reference`` as in :func:`mean_corruption_error`. Raises :class:`UndefinedCorruptionError` where
    the reference cannot normalise these severities, an InputError for values out of range."""
    severities, array = _severity_errors(corruption, errors)
    return _corruption_error(corruption, severities, array, reference)


def reference_from_model(errors: Mapping[str, Errors], *, per_severity: bool = False) -> dict[str, ReferenceErrors]:
    """A CE reference from a model's own top-1 errors (e.g. an AlexNet evaluated by the config).

    By default corruption -> error averaged over the five severities, as in :data:`ALEXNET_ERRORS`:
    each corruption needs its errors at all five. ``per_severity=True`` keeps corruption -> {severity:
    error} at whatever severities were given, the reference for partial evaluations (a CE at a
    severity it lacks, or where it makes no error, is then undefined rather than an error here)."""
    if not errors:
        raise InputError("a reference needs the errors of at least one corruption")
    reference: dict[str, ReferenceErrors] = {}
    for corruption, values in errors.items():
        severities, array = _severity_errors(corruption, values)
        if per_severity:
            reference[corruption] = {level: float(error) for level, error in zip(severities, array)}
            continue
        if severities != SEVERITIES:
            raise InputError(
                f"the reference has errors of {corruption!r} at severities {_levels(severities)} only; one mean per "
                f"corruption needs all {N_SEVERITIES} (per_severity=True keeps the errors per severity)"
            )
        mean = float(array.mean())
        if mean <= 0.0:
            raise InputError(f"the reference model makes no error on {corruption!r}: the CE relative to it is undefined")
        reference[corruption] = mean
    return reference


def mean_corruption_error(
    errors: Mapping[str, Errors], reference: Mapping[str, ReferenceErrors] | None = None
) -> CorruptionErrors:
    """CE of every corruption and the mCE over the 15 benchmark corruptions (percent).

    ``errors`` maps corruption -> its five per-severity top-1 errors (fractions in [0, 1]), or a
    mapping severity -> error over the severities evaluated (the CE then sums over those); it must
    contain all 15 benchmark corruptions (an InputError names the missing ones) and may contain
    extras. ``reference`` maps corruption -> the reference model's error averaged over the five
    severities, or its errors per severity (a sequence of five or a mapping severity -> error); by
    default AlexNet's published errors. A CE the reference cannot normalise raises
    :class:`UndefinedCorruptionError`.
    """
    missing = [name for name in BENCHMARK_CORRUPTIONS if name not in errors]
    if missing:
        raise InputError(
            f"the mCE is defined over all {len(BENCHMARK_CORRUPTIONS)} ImageNet-C benchmark corruptions; "
            f"missing: {', '.join(missing)}"
        )
    names = ALEXNET_ERRORS if reference is None else reference
    no_reference = [name for name in errors if name not in names]
    if no_reference:
        raise UndefinedCorruptionError(
            f"no reference error for {', '.join(map(repr, no_reference))} (the reference has {', '.join(names)})"
        )

    order = [*BENCHMARK_CORRUPTIONS, *(name for name in errors if name not in BENCHMARK_CORRUPTIONS)]
    parsed = {name: _severity_errors(name, errors[name]) for name in order}
    ce = {name: _corruption_error(name, *parsed[name], reference) for name in order}
    extras = [ce[name] for name in order[len(BENCHMARK_CORRUPTIONS) :]]
    return CorruptionErrors(
        mce=float(np.mean([ce[name] for name in BENCHMARK_CORRUPTIONS])),
        ce=ce,
        extras_mce=float(np.mean(extras)) if extras else None,
        severities={name: parsed[name][0] for name in order},
    )


def benchmark_mean(per_severity: Mapping[str, Mapping[int, float]], names: Sequence[str]) -> float | None:
    """Mean over the corruptions ``names`` of each one's values (``per_severity``: corruption ->
    severity -> value) averaged over its severities; None unless every name has a value."""
    means = [np.mean(list(per_severity[name].values())) for name in names if per_severity.get(name)]
    return float(np.mean(means)) if names and len(means) == len(names) else None


def severity_errors(records, model: str, *, partial: bool = False) -> dict[str, Errors]:
    """Per-severity top-1 errors (fractions) of one model from accuracy records (the tidy table of
    :func:`noisetrain.measure.prediction_cache.accuracy_records`: model, corruption, severity,
    top1 in percent), ready for :func:`mean_corruption_error`. Clean rows (severity 0) are skipped.

    By default every corruption present must have exactly the severities 1..5 (its five errors, a
    list); with ``partial=True`` any of them, each at most once (a mapping severity -> error)."""
    rows = records[(records["model"] == model) & (records["severity"] > 0)]
    if rows.empty:
        raise InputError(f"no corruption records of model {model!r}")
    errors: dict[str, Errors] = {}
    for corruption, group in rows.groupby("corruption", sort=False):
        levels = sorted(int(level) for level in group["severity"])
        ordered = group.sort_values("severity")
        if partial:
            if len(set(levels)) != len(levels) or not set(levels) <= set(SEVERITIES):
                raise InputError(
                    f"model {model!r} has severities {levels} of {corruption!r}; the CE needs some of {SEVERITIES}, each once"
                )
            errors[str(corruption)] = {
                int(level): 1.0 - float(top1) / 100.0 for level, top1 in zip(ordered["severity"], ordered["top1"])
            }
            continue
        if levels != list(SEVERITIES):
            raise InputError(f"model {model!r} has severities {levels} of {corruption!r}; the CE needs each of {SEVERITIES} once")
        errors[str(corruption)] = [1.0 - float(top1) / 100.0 for top1 in ordered["top1"]]
    return errors
