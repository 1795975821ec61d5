"""Single-pattern and small-region fetches for hover views."""

from __future__ import annotations

from typing import Any

import numpy as np

from .incremental import ApertureSum
from .source import Source
from .validate import prepare_positions, prepare_scan_mask


def pattern_at(data: Any, y: int, x: int, *, tilt: int = 0) -> np.ndarray:
    """The diffraction pattern at scan position ``(y, x)`` as a numpy array (a copy).

    Parameters
    ----------
    data
        ``Dataset``, dask or numpy array (4D or 5D).
    y, x
        Scan position (row, column) in scan pixels.
    tilt
        Tilt index for 5D data.

    Returns
    -------
    numpy.ndarray
        ``(k_y, k_x)`` in the data's dtype. In-memory data: a frame copy (microseconds);
        file-backed data: reads the chunk holding the frame.
    """
    src = Source(data)
    t = src.check_tilt(tilt)
    ys, xs = prepare_positions([[y, x]], src.scan_shape, name="scan position")
    for flat, local, _ in src.frames_groups(t, ys, xs):
        return flat[local[0]].reshape(src.det_shape).copy()
    raise AssertionError("position not found in any block")  # pragma: no cover


def region_mean(data: Any, mask_or_positions: Any, *, tilt: int = 0) -> np.ndarray:
    """Mean pattern over a small scan region, float64 ``(k_y, k_x)``.

    ``mask_or_positions``: a boolean scan mask ``(sy, sx)`` or positions ``(n, 2)`` int (y, x)
    (duplicates counted once). Raises ``ValueError`` for an empty region.

    Parameters
    ----------
    data
        A 4D/5D :class:`~virtual_aperture.Dataset` or array.
    mask_or_positions
        A boolean scan mask ``(sy, sx)`` or int positions ``(n, 2)`` ``(y, x)``.
    tilt
        The tilt to read (5D data).

    Returns
    -------
    numpy.ndarray
        float64 ``(k_y, k_x)`` mean pattern.
    """
    src = Source(data)
    m = np.asarray(mask_or_positions)
    is_mask = m.shape == src.scan_shape and (m.dtype == bool or m.shape[1] != 2)
    if is_mask:
        mask = prepare_scan_mask(m, src.scan_shape)
    else:
        ys, xs = prepare_positions(m, src.scan_shape)
        mask = np.zeros(src.scan_shape, dtype=bool)
        mask[ys, xs] = True
    if not mask.any():
        raise ValueError("region_mean: the region is empty (no scan positions)")
    return ApertureSum(data, mask=mask, tilt=tilt).mean
