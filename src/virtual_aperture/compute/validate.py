"""Input checks shared by the compute functions: masks, shifts, labels, scan positions.

Every check raises one ``ValueError`` naming the parameter and the shapes involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Masks:
    """Detector masks cut to their common bounding box.

    ``weights`` (n, h, w) float64 C-contiguous at detector offset (y0, x0); ``stacked`` tells
    whether the caller passed a stack (n, ky, kx) or a single mask.
    """

    weights: np.ndarray
    y0: int
    x0: int
    stacked: bool
    #: the same weights as uint32 when every weight is 0 or 1 (exact integer kernel), else None
    binary: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.weights.shape[0])

    def padded(self) -> np.ndarray:
        """(n, h + 2, w + 2) with a one-pixel zero border (for shifted masks)."""
        n, h, w = self.weights.shape
        out = np.zeros((n, h + 2, w + 2))
        out[:, 1:-1, 1:-1] = self.weights
        return out


def as_weights(
    mask: Any,
    det_shape: tuple[int, int],
    *,
    name: str = "mask",
    allow_stack: bool = True,
    allow_empty: bool = False,
) -> tuple[np.ndarray, bool]:
    """``mask`` as float64 (n, ky, kx) plus whether it was a stack; checks shape and values."""
    m = np.asarray(mask)
    if m.dtype == object or not (
        m.dtype == bool or np.issubdtype(m.dtype, np.integer) or np.issubdtype(m.dtype, np.floating)
    ):
        raise ValueError(f"{name} must be a bool or real-valued array, got dtype {m.dtype}")
    stacked = m.ndim == 3
    if m.ndim not in ((2, 3) if allow_stack else (2,)):
        want = "(k_y, k_x) or a stack (n, k_y, k_x)" if allow_stack else "(k_y, k_x)"
        raise ValueError(f"{name} must be {want}, got shape {m.shape}")
    if tuple(m.shape[-2:]) != tuple(det_shape):
        raise ValueError(f"{name} shape {m.shape[-2:]} does not match the detector shape {tuple(det_shape)}")
    if stacked and m.shape[0] == 0:
        raise ValueError(f"{name} stack holds no masks (shape {m.shape})")
    w = m.astype(np.float64).reshape(-1, *det_shape)
    if not np.isfinite(w).all():
        raise ValueError(f"{name} has NaN or infinite weights")
    if not allow_empty:
        empty = np.flatnonzero(~w.reshape(w.shape[0], -1).any(axis=1))
        if empty.size:
            which = f"mask {int(empty[0])} of the stack is" if stacked else f"{name} is"
            raise ValueError(f"{which} empty (all weights zero)")
    return w, stacked


def prepare_masks(mask: Any, det_shape: tuple[int, int], *, name: str = "mask") -> Masks:
    """Validate ``mask`` and cut it to the bounding box of its non-zero weights."""
    w, stacked = as_weights(mask, det_shape, name=name)
    nz = np.asarray(w.any(axis=0))
    rows = np.flatnonzero(nz.any(axis=1))
    cols = np.flatnonzero(nz.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    cut = np.ascontiguousarray(w[:, y0:y1, x0:x1])
    binary = cut.astype(np.uint32) if np.isin(cut, (0.0, 1.0)).all() else None
    return Masks(cut, y0, x0, stacked, binary)


def prepare_shifts(shifts: Any, n_tilt: int, scan_shape: tuple[int, int], is5d: bool) -> np.ndarray | None:
    """Shifts as float64 (n_tilt, sy, sx, 2), or None."""
    if shifts is None:
        return None
    s = np.asarray(shifts)
    if not (np.issubdtype(s.dtype, np.integer) or np.issubdtype(s.dtype, np.floating)) or s.dtype == bool:
        raise ValueError(f"shifts must be real numbers (detector pixels), got dtype {s.dtype}")
    sy, sx = scan_shape
    if s.shape == (sy, sx, 2):
        s = np.broadcast_to(s, (n_tilt, sy, sx, 2))
    elif not (is5d and s.shape == (n_tilt, sy, sx, 2)):
        want = f"({sy}, {sx}, 2)" + (f" or ({n_tilt}, {sy}, {sx}, 2)" if is5d else "")
        raise ValueError(f"shifts shape {s.shape} does not match the scan: expected {want}")
    s = np.ascontiguousarray(s, dtype=np.float64)
    if not np.isfinite(s).all():
        raise ValueError("shifts contain NaN or infinite values")
    return s


def prepare_labels(labels: Any, n_tilt: int, scan_shape: tuple[int, int], is5d: bool) -> np.ndarray:
    """Labels as int64 (n_tilt, sy, sx); 0 means no aperture."""
    lab = np.asarray(labels)
    if lab.dtype == bool:
        lab = lab.astype(np.int64)
    if np.issubdtype(lab.dtype, np.floating):
        if not np.isfinite(lab).all() or not np.array_equal(lab, np.round(lab)):
            raise ValueError("labels must be integers (0 = no aperture); got non-integer float values")
        raise ValueError(
            f"labels must have an integer dtype, got {lab.dtype} (cast with .astype(int) if intended)"
        )
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels must be an integer array, got dtype {lab.dtype}")
    sy, sx = scan_shape
    if lab.shape == (sy, sx):
        lab = np.broadcast_to(lab, (n_tilt, sy, sx))
    elif not (is5d and lab.shape == (n_tilt, sy, sx)):
        want = f"({sy}, {sx})" + (f" or ({n_tilt}, {sy}, {sx})" if is5d else "")
        raise ValueError(f"labels shape {lab.shape} does not match the scan: expected {want}")
    if lab.size and lab.min() < 0:
        raise ValueError(f"labels must be >= 0 (0 = no aperture); found {int(lab.min())}")
    return np.ascontiguousarray(lab, dtype=np.int64)


def prepare_positions(
    positions: Any, scan_shape: tuple[int, int], *, name: str = "positions"
) -> tuple[np.ndarray, np.ndarray]:
    """Scan positions ``(n, 2)`` int (y, x) → (ys, xs) int64, checked against the scan."""
    p = np.asarray(positions)
    if p.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if p.dtype == bool or not np.issubdtype(p.dtype, np.integer):
        if np.issubdtype(p.dtype, np.floating) and np.isfinite(p).all() and np.array_equal(p, np.round(p)):
            p = p.astype(np.int64)
        else:
            raise ValueError(f"{name} must be integer (y, x) scan positions, got dtype {p.dtype}")
    if p.ndim == 1 and p.shape[0] == 2:
        p = p[None]
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2) as (y, x), got {p.shape}")
    ys, xs = p[:, 0].astype(np.int64), p[:, 1].astype(np.int64)
    sy, sx = scan_shape
    bad = (ys < 0) | (ys >= sy) | (xs < 0) | (xs >= sx)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: ({ys[i]}, {xs[i]}) is outside the scan {sy}×{sx}")
    return ys, xs


def prepare_scan_mask(mask: Any, scan_shape: tuple[int, int], *, name: str = "mask") -> np.ndarray:
    """A boolean scan-space mask (sy, sx)."""
    m = np.asarray(mask)
    if m.shape != tuple(scan_shape):
        raise ValueError(f"{name} shape {m.shape} does not match the scan shape {tuple(scan_shape)}")
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.number) or not np.isin(m, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1), got dtype {m.dtype}")
        m = m.astype(bool)
    return m
