"""Drift between tilts and copying a grain aperture to a neighbouring tilt (no Qt)."""

from __future__ import annotations

import numpy as np


def measure_drift(image_from: np.ndarray, image_to: np.ndarray, *, upsample: int = 10) -> tuple[float, float]:
    """Shift ``(dy, dx)`` in scan pixels that carries ``image_from`` onto ``image_to``.

    Phase cross-correlation (scikit-image ``phase_cross_correlation``) of two virtual images of
    neighbouring tilts; ``image_to ≈ image_from`` moved by ``(dy, dx)``.
    """
    from skimage.registration import phase_cross_correlation

    a = np.asarray(image_from, dtype=np.float64)
    b = np.asarray(image_to, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"drift needs two 2D images of the same shape, got {a.shape} and {b.shape}")
    a = a - a.mean()
    b = b - b.mean()
    shift, _err, _phase = phase_cross_correlation(b, a, upsample_factor=upsample, normalization=None)
    return float(shift[0]), float(shift[1])


def shift_mask(mask: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """``mask`` moved by ``shift`` rounded to whole pixels; positions moved in from outside are False."""
    mask = np.asarray(mask, dtype=bool)
    dy, dx = (int(round(s)) for s in shift)
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out
