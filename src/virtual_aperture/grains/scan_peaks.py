"""Per-position Bragg peaks of a whole scan, as diffraction vectors (numba kernel over dask chunks).

A fast batched detector for the vector workflow of :mod:`.vectors` (it runs at every one of
e.g. 65 536 scan positions, where a per-pattern template matcher would be too slow).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask
import numpy as np

from ..compute.executor import check_cancel
from ._common import as_dataset, central_mask, report, tilt_array
from ._grain_kernels import find_peaks_kernel


def _block_vectors(block, y0, x0, cmask, r_in, r_out, threshold, max_peaks):
    cy, cx, ky, kx = block.shape
    frames = np.ascontiguousarray(block.reshape(cy * cx, ky, kx), dtype=np.float32)
    peaks, counts = find_peaks_kernel(frames, cmask, r_in, r_out, float(threshold), max_peaks)
    idx = np.repeat(np.arange(cy * cx), counts)
    rows = (
        np.concatenate([peaks[i, : counts[i]] for i in range(cy * cx)])
        if counts.sum()
        else np.zeros((0, 3), np.float32)
    )
    out = np.empty((len(idx), 5), np.float32)
    out[:, 0] = y0 + idx // cx
    out[:, 1] = x0 + idx % cx
    out[:, 2:] = rows
    return out


def find_vectors(
    dataset: Any,
    *,
    tilt: int = 0,
    threshold: float = 5.0,
    r_in: int = 1,
    r_out: int = 4,
    max_peaks: int = 64,
    client: Any = None,
    progress: Callable[[int, int], Any] | None = None,
    cancel: Any = None,
) -> np.ndarray:
    """Bragg peaks at every scan position, as diffraction vectors.

    Each pattern is box-filtered over ``(2 r_in + 1)²`` pixels, the local background (mean of
    the ring out to ``r_out`` pixels) subtracted; strict local maxima with a signal-to-noise
    ratio (Poisson) ≥ ``threshold`` outside the central disk are kept, refined to sub-pixel by a
    3×3 centroid.

    Returns
    -------
    numpy.ndarray
        float32 ``(n, 5)``: ``scan_y, scan_x`` (scan pixels), ``k_y, k_x`` (detector pixels),
        background-subtracted intensity (counts).

    Parameters
    ----------
    dataset
        A 4D/5D :class:`~virtual_aperture.Dataset` or array.
    tilt
        The tilt to search (5D data).
    threshold
        Minimum signal-to-noise ratio (Poisson) of a peak.
    r_in, r_out
        Radii (pixels) of the box filter and of the background ring.
    max_peaks
        At most this many peaks per pattern (the strongest).
    client, progress, cancel
        Optional dask.distributed client; ``progress(done, total)``; a cancel token.
    """
    ds = as_dataset(dataset, name="dataset")
    arr = tilt_array(ds, tilt)
    for name, v in (("r_in", r_in), ("r_out", r_out), ("max_peaks", max_peaks)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if r_out <= r_in:
        raise ValueError(f"r_out ({r_out}) must be larger than r_in ({r_in})")
    if 2 * r_out + 3 > min(ds.detector_shape):
        raise ValueError(f"r_out={r_out} too large for the detector {ds.detector_shape}")
    if not threshold > 0:
        raise ValueError(f"threshold must be a positive signal-to-noise ratio, got {threshold!r}")
    cm = central_mask(arr, 1, center=ds.calibration.center)
    yb = np.cumsum((0,) + arr.chunks[0])
    xb = np.cumsum((0,) + arr.chunks[1])
    blocks = arr.to_delayed()
    tasks = [
        dask.delayed(_block_vectors)(
            blocks[i, j, 0, 0], int(yb[i]), int(xb[j]), cm, r_in, r_out, threshold, max_peaks
        )
        for i in range(len(yb) - 1)
        for j in range(len(xb) - 1)
    ]
    parts = []
    for k in range(0, len(tasks), 4):
        check_cancel(cancel)
        batch = tasks[k : k + 4]
        parts.extend(client.gather(client.compute(batch)) if client is not None else dask.compute(*batch))
        report(progress, min(k + 4, len(tasks)), len(tasks))
    return np.concatenate(parts) if parts else np.zeros((0, 5), np.float32)
