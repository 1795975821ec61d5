"""Bragg peaks as napari Points and back (Qt-free): what the Index tab shows and reads after the
user added, moved or deleted peaks by hand."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["peaks_to_points", "points_to_peaks"]


def peaks_to_points(peaks: Sequence, *, ndim: int = 3) -> np.ndarray:
    """``(n, 3)`` rows (pattern, k_y, k_x) of every peak of one PeakList per pattern; ``(n, 2)``
    (k_y, k_x) when the patterns are one 2D image (``ndim=2``)."""
    rows = [np.column_stack([np.full(len(p), t), p.y, p.x]) for t, p in enumerate(peaks)]
    pts = np.concatenate(rows) if rows else np.zeros((0, 3))
    return pts[:, 1:] if ndim == 2 else pts


def points_to_peaks(points, original: Sequence, *, calibration=None) -> list:
    """One :class:`~virtual_aperture.crystal.peaks.PeakList` per pattern of ``original`` from the
    Points data ``points`` (as :func:`peaks_to_points` wrote them, then edited). Peaks not moved
    keep their measured intensity, σ and S/N (added ones: what ``PeakList.from_positions`` gives,
    measured later by integration); each pattern keeps the original's beam centre. ``points`` is
    not changed."""
    from virtual_aperture.crystal.peaks import PeakList

    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] not in (2, 3):
        raise ValueError(f"peak points must be (n, 2) or (n, 3) rows, got shape {pts.shape}")
    if pts.shape[1] == 2:
        pts = np.column_stack([np.zeros(len(pts)), pts])
    out = []
    for t, orig in enumerate(original):
        sel = np.rint(pts[:, 0]).astype(int) == t
        pl = PeakList.from_positions(pts[sel, 1:], tilt=t, center=orig.center, calibration=calibration)
        if len(pl) and len(orig):
            d = np.linalg.norm(pl.positions[:, None] - orig.positions[None], axis=-1)
            j, same = d.argmin(1), d.min(1) < 1e-3
            for name in ("intensity", "sigma", "snr"):
                getattr(pl, name)[same] = getattr(orig, name)[j[same]]
        out.append(pl)
    return out
