"""Detector masks for virtual images: disks, annuli, rectangles, bright field and ADF.

All masks are ``(k_y, k_x)`` boolean arrays (pixel in/out, pixel centres tested), usable
directly with :func:`virtual_aperture.virtual_image`; float weight masks work too (multiply or
build your own). Coordinates are detector pixels ``(k_y, k_x)``, row first; a pixel ``(i, j)``
has its centre at ``(i, j)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _shape(shape: Any) -> tuple[int, int]:
    try:
        ky, kx = (int(s) for s in shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"detector shape must be (k_y, k_x), got {shape!r}") from exc
    if ky <= 0 or kx <= 0:
        raise ValueError(f"detector shape must be positive, got {shape!r}")
    return ky, kx


def _radius_grid(shape: Any, center: tuple[float, float]) -> np.ndarray:
    ky, kx = _shape(shape)
    cy, cx = (float(c) for c in center)
    if not (math.isfinite(cy) and math.isfinite(cx)):
        raise ValueError(f"center must be finite (k_y, k_x), got {center!r}")
    check_center((ky, kx), (cy, cx))
    yy, xx = np.ogrid[:ky, :kx]
    return np.hypot(yy - cy, xx - cx)


def check_center(shape: Any, center: Any) -> tuple[float, float]:
    """``center`` as floats; ValueError (one line) when it is not on the ``shape`` detector."""
    ky, kx = _shape(shape)
    cy, cx = (float(c) for c in center)
    if not (-0.5 <= cy <= ky - 0.5 and -0.5 <= cx <= kx - 0.5):
        raise ValueError(f"center ({cy:g}, {cx:g}) px (k_y, k_x) is off the {ky}×{kx} detector")
    return cy, cx


def given_center(data: Any) -> tuple[float, float] | None:
    """The beam centre set in a dataset's calibration (user or file), or None."""
    cal = getattr(data, "calibration", None)
    c = getattr(cal, "center", None)
    return None if c is None else (float(c[0]), float(c[1]))


def _check_r(name: str, r: float) -> float:
    r = float(r)
    if not math.isfinite(r) or r < 0:
        raise ValueError(f"{name} must be a finite radius >= 0 pixels, got {r!r}")
    return r


def disk(shape: Any, center: tuple[float, float], radius: float) -> np.ndarray:
    """Boolean disk: pixels whose centre is within ``radius`` pixels of ``center`` (k_y, k_x)."""
    r = _check_r("radius", radius)
    if r == 0:
        raise ValueError("radius must be > 0 pixels")
    return _radius_grid(shape, center) <= r


def annulus(shape: Any, center: tuple[float, float], r_inner: float, r_outer: float) -> np.ndarray:
    """Boolean annulus ``r_inner <= r <= r_outer`` (pixels) around ``center`` (k_y, k_x)."""
    ri, ro = _check_r("r_inner", r_inner), _check_r("r_outer", r_outer)
    if ro <= ri:
        raise ValueError(f"r_outer ({ro}) must be larger than r_inner ({ri})")
    r = _radius_grid(shape, center)
    return (r >= ri) & (r <= ro)


def rectangle(shape: Any, start: tuple[int, int], stop: tuple[int, int]) -> np.ndarray:
    """Boolean rectangle of pixels ``start[0] <= k_y < stop[0]``, ``start[1] <= k_x < stop[1]``."""
    ky, kx = _shape(shape)
    (y0, x0), (y1, x1) = ((int(a), int(b)) for a, b in (start, stop))
    if not (0 <= y0 < y1 <= ky and 0 <= x0 < x1 <= kx):
        raise ValueError(f"rectangle {start}–{stop} is empty or outside the detector {ky}×{kx}")
    m = np.zeros((ky, kx), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def mean_pattern(data: Any, *, tilt: int = 0, max_rows: int = 4) -> np.ndarray:
    """Mean pattern of ``data`` (a 2D pattern is returned as float64) from ≤ ``max_rows`` scan rows.

    Evenly spaced whole scan rows are averaged, so file-backed data reads at most ``max_rows``
    chunk rows.
    """
    arr = np.asarray(data) if isinstance(data, (list, tuple)) else data
    if getattr(arr, "ndim", None) == 2 and not hasattr(arr, "calibration"):
        p = np.asarray(arr, dtype=np.float64)
        if not np.isfinite(p).all():
            raise ValueError("pattern has NaN or infinite values")
        return p
    from .single_pattern import region_mean
    from .source import Source

    src = Source(data)
    rows = np.unique(np.linspace(0, src.sy - 1, min(max_rows, src.sy)).round().astype(int))
    mask = np.zeros(src.scan_shape, dtype=bool)
    mask[rows] = True
    return region_mean(data, mask, tilt=tilt)


def _finite_pattern(p: np.ndarray) -> np.ndarray:
    """``p`` with NaN/inf pixels (dead or masked pixels) set to the median of the finite ones."""
    good = np.isfinite(p)
    if good.all():
        return p
    if not good.any():
        raise ValueError("no central disk found: every pixel of the mean pattern is NaN or infinite")
    return np.where(good, p, np.median(p[good]))


def measure_central_disk(
    data: Any, *, tilt: int = 0, center: Any = None
) -> tuple[tuple[float, float], float]:
    """Centre ``(k_y, k_x)`` and radius (pixels) of the unscattered central disk.

    The mean pattern is smoothed (σ = 1 px) and thresholded half-way between its median and its
    maximum; the connected region holding the maximum gives the intensity-weighted centre and
    the radius ``sqrt(area / π)``. NaN/inf pixels count as the median pattern value.

    A given ``center`` is kept as the centre: only the radius is measured, from the region
    holding that pixel.
    """
    from scipy import ndimage

    if getattr(data, "ndim", None) == 2 and not hasattr(data, "calibration"):
        p = np.asarray(data, dtype=np.float64)
    else:
        p = mean_pattern(data, tilt=tilt)
    if center is not None:
        center = check_center(p.shape, center)
    s = ndimage.gaussian_filter(_finite_pattern(p), 1.0)
    top, bg = float(s.max()), float(np.median(s))
    if not top > bg:
        raise ValueError("no central disk found: the mean pattern is flat")
    region, _ = ndimage.label(s > bg + 0.5 * (top - bg))
    at = np.unravel_index(np.argmax(s), s.shape)
    if center is not None:
        iy, ix = (min(max(round(c), 0), n - 1) for c, n in zip(center, s.shape))
        if region[iy, ix]:
            at = (iy, ix)
    disk_px = region == region[at]
    r = float(math.sqrt(disk_px.sum() / math.pi))
    if center is not None:
        return center, r
    wts = np.where(disk_px, s - bg, 0.0)
    cy, cx = ndimage.center_of_mass(wts)
    return (float(cy), float(cx)), r


def bright_field(
    dataset_or_pattern: Any, *, scale: float = 1.0, tilt: int = 0, center: Any = None
) -> np.ndarray:
    """Boolean bright-field disk sized from the measured central disk, radius × ``scale``.

    Centred on ``center`` (k_y, k_x), else on a centre set in the dataset's calibration, else on
    the measured disk centre.
    """
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be > 0, got {scale!r}")
    if center is None:
        center = given_center(dataset_or_pattern)
    (cy, cx), r = measure_central_disk(dataset_or_pattern, tilt=tilt, center=center)
    shape = (
        np.shape(dataset_or_pattern) if np.ndim(dataset_or_pattern) == 2 else _det_shape(dataset_or_pattern)
    )
    return disk(shape, (cy, cx), max(r * scale, 0.5))


def annular_dark_field(
    dataset_or_pattern: Any,
    *,
    inner: float = 1.5,
    outer: float | None = None,
    tilt: int = 0,
    center: Any = None,
) -> np.ndarray:
    """Boolean ADF annulus around the central disk (centre as in :func:`bright_field`).

    ``inner`` and ``outer`` are multiples of the measured bright-field disk radius
    (``outer=None``: out to the farthest detector corner).
    """
    if center is None:
        center = given_center(dataset_or_pattern)
    (cy, cx), r = measure_central_disk(dataset_or_pattern, tilt=tilt, center=center)
    shape = (
        np.shape(dataset_or_pattern) if np.ndim(dataset_or_pattern) == 2 else _det_shape(dataset_or_pattern)
    )
    ky, kx = shape
    far = max(math.hypot(y - cy, x - cx) for y in (0, ky - 1) for x in (0, kx - 1))
    r_out = far + 1 if outer is None else outer * r
    return annulus(shape, (cy, cx), inner * r, r_out)


def _det_shape(data: Any) -> tuple[int, int]:
    arr = getattr(data, "data", data)
    return tuple(int(s) for s in arr.shape[-2:])  # type: ignore[return-value]
