"""Shared helpers of the grain tools: input checks, compressed "spot" features, cancellation.

The similarity measures, proposals and tracking all compare diffraction patterns on a
*compressed* detector: binned by an integer factor, square-root scaled (variance-stabilising
for Poisson counts), with the smooth background (central-beam tails, amorphous rings) removed
by a local-mean high-pass and the central disk masked. What is left is the Bragg-spot signal,
so two patterns correlate when they share reflections, i.e. come from the same crystal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np
from scipy import ndimage

from ..compute.executor import check_cancel
from ..model.dataset import Dataset

#: Largest number of binned detector pixels used by automatic binning.
MAX_FEATURES = 1024


def report(progress: Callable[[int, int], Any] | None, done: int, total: int) -> None:
    if progress is not None:
        progress(int(done), int(total))


def as_dataset(data: Any, *, name: str = "data") -> Dataset:
    """Accept a :class:`Dataset` or a 4D/5D array; raise one clear ValueError otherwise."""
    if isinstance(data, Dataset):
        return data
    if data is None:
        raise ValueError(f"{name} is None; expected a Dataset or a 4D/5D array")
    arr = data if isinstance(data, da.Array) else np.asarray(data)
    if arr.ndim not in (4, 5):
        raise ValueError(
            f"{name} must be 4D (scan_y, scan_x, k_y, k_x) or 5D (tilt, ...), got shape {arr.shape}"
        )
    if any(s == 0 for s in arr.shape):
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if arr.ndim == 5:
        from ..model.calibration import Calibration

        return Dataset(da.asarray(arr), Calibration(tilt_angles_deg=tuple(range(arr.shape[0]))))
    return Dataset(da.asarray(arr))


def tilt_array(ds: Dataset, tilt: int) -> da.Array:
    """The 4D dask array ``(scan_y, scan_x, k_y, k_x)`` of one tilt."""
    if not isinstance(tilt, (int, np.integer)):
        raise ValueError(f"tilt must be an integer, got {tilt!r}")
    if ds.is_tilt_series:
        if not -ds.n_tilts <= tilt < ds.n_tilts:
            raise ValueError(f"tilt {tilt} out of range for {ds.n_tilts} tilts")
        return ds.data[int(tilt)]
    if tilt not in (0, -1):
        raise ValueError(f"tilt {tilt} out of range: the dataset is 4D (one tilt)")
    return ds.data


def check_bin(binning: int | None, detector_shape: tuple[int, int], *, name: str = "binning") -> int:
    """Validate a detector binning factor; ``None`` picks one giving ≤ MAX_FEATURES pixels."""
    ky, kx = detector_shape
    if binning is None:
        return max(1, math.ceil(math.sqrt(ky * kx / MAX_FEATURES)))
    if not isinstance(binning, (int, np.integer)) or isinstance(binning, bool) or binning < 1:
        raise ValueError(f"{name} must be a positive integer, got {binning!r}")
    if binning > min(ky, kx):
        raise ValueError(f"{name}={binning} is larger than the detector {ky}×{kx}")
    return int(binning)


def bin_frames(frames: np.ndarray, binning: int) -> np.ndarray:
    """Sum ``binning``×``binning`` detector pixels (trailing rows/columns that do not fit are dropped)."""
    *lead, ky, kx = frames.shape
    by, bx = ky // binning, kx // binning
    f = np.asarray(frames)[..., : by * binning, : bx * binning]
    if binning == 1:
        return f.astype(np.float32, copy=True)  # callers modify the result in place
    n = int(np.prod(lead)) if lead else 1
    if n >= 16 and f.dtype.kind in "uif":  # numba kernel: no float copy of the full frames
        from ._grain_kernels import bin_sum_kernel

        flat = np.ascontiguousarray(f.reshape(n, by * binning, bx * binning))
        return bin_sum_kernel(flat, int(binning)).reshape(*lead, by, bx)
    return f.reshape(*lead, by, binning, bx, binning).sum(axis=(-3, -1), dtype=np.float32)


def central_mask(
    data4d: Any, binning: int, *, center: tuple[float, float] | None = None, rows: int | None = None
) -> np.ndarray:
    """Boolean mask of the (binned) central disk, found on the mean pattern of a few scan rows.

    Reads one chunk-sized block of rows (or ``rows`` rows of an in-memory array) from the middle
    of the scan. Returns an all-False mask when no dominant direct beam is found.
    """
    sy = data4d.shape[0]
    if rows is None:
        rows = data4d.chunks[0][0] if isinstance(data4d, da.Array) else 32
    rows = max(1, min(sy, rows))
    y0 = max(0, sy // 2 - rows // 2)
    block = data4d[y0 : y0 + rows]
    step = max(1, int(math.ceil(block.shape[1] / 64)))
    mean = block[:, ::step].mean(axis=(0, 1), dtype=np.float64)
    mean = bin_frames(np.asarray(mean.compute() if isinstance(mean, da.Array) else mean), binning)
    mean = ndimage.uniform_filter(mean, 3)
    med = float(np.median(mean))
    peak = float(mean.max())
    if peak <= 0 or peak < 4 * max(med, 1e-12):
        return np.zeros(mean.shape, bool)
    if center is not None:
        cy, cx = int(round(center[0] / binning)), int(round(center[1] / binning))
        cy, cx = min(max(cy, 0), mean.shape[0] - 1), min(max(cx, 0), mean.shape[1] - 1)
    else:
        cy, cx = np.unravel_index(int(np.argmax(mean)), mean.shape)
    bright = mean > med + 0.2 * (mean[cy, cx] - med)
    lab, _ = ndimage.label(bright)
    if lab[cy, cx] == 0:
        return np.zeros(mean.shape, bool)
    # margin for descan shifts of the disk across the scan (a few detector pixels)
    return ndimage.binary_dilation(lab == lab[cy, cx], iterations=1 + math.ceil(3 / binning))


def _rings(shape: tuple[int, int], cmask: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer radius (binned pixels) of every pixel from the central-disk centroid."""
    by, bx = shape
    if cmask.any():
        cy, cx = np.argwhere(cmask).mean(axis=0)
    else:
        cy, cx = (by - 1) / 2.0, (bx - 1) / 2.0
    yy, xx = np.mgrid[0:by, 0:bx]
    r = np.round(np.hypot(yy - cy, xx - cx)).astype(np.int64).ravel()
    return r, int(r.max()) + 1


def spot_features(frames: np.ndarray, binning: int, cmask: np.ndarray, *, window: int = 5) -> np.ndarray:
    """Bragg-spot features of patterns ``(..., k_y, k_x)`` → ``(..., k_y//binning, k_x//binning)`` float32.

    sqrt of the binned counts minus its radial mean profile about the central disk, minus its
    local mean over ``window``×``window`` binned pixels (a linear high-pass: a smooth background,
    like vacuum or amorphous rings, leaves zero-mean noise that does not correlate between
    positions), central disk (``cmask``) zeroed.
    """
    b = bin_frames(frames, binning)
    np.maximum(b, 0, out=b)
    np.sqrt(b, out=b)
    # remove the radially symmetric background (amorphous rings, diffuse scattering): it differs
    # between vacuum, support and crystals, so left in, it makes areas without crystals coherent
    lead, (by, bx) = b.shape[:-2], b.shape[-2:]
    ring, nr = _rings((by, bx), cmask)
    flat = b.reshape(-1, by * bx)
    onehot = np.zeros((by * bx, nr), np.float32)
    onehot[np.arange(by * bx), ring] = 1.0
    outside = ~cmask.ravel()
    onehot[~outside] = 0.0
    counts = np.maximum(onehot.sum(axis=0), 1.0)
    profile = (flat @ onehot) / counts
    flat -= profile @ onehot.T
    b = flat.reshape(*lead, by, bx)
    size = (1,) * (b.ndim - 2) + (window, window)
    bg = ndimage.uniform_filter(b, size=size, mode="nearest")
    b -= bg
    if cmask.any():
        b[..., cmask] = 0
    return b


def feature_array(data4d: da.Array, binning: int, cmask: np.ndarray) -> da.Array:
    """Lazy spot features of every scan position: ``(scan_y, scan_x, k_y//binning, k_x//binning)``."""
    ky, kx = data4d.shape[-2:]
    by, bx = ky // binning, kx // binning
    return data4d.map_blocks(
        spot_features, binning, cmask, chunks=data4d.chunks[:2] + ((by,), (bx,)), dtype=np.float32
    )


def normalise_rows(f: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-norm rows (last axis); all-constant rows become zeros."""
    f = f - f.mean(axis=-1, keepdims=True)
    n = np.linalg.norm(f, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n > 0, f / np.where(n > 0, n, 1), 0)
    return out.astype(np.float32, copy=False)


def compute_rows(
    arr: da.Array,
    *,
    client: Any = None,
    progress: Callable[[int, int], Any] | None = None,
    cancel: Any = None,
    offset: int = 0,
    total: int | None = None,
) -> np.ndarray:
    """Compute a dask array a few rows of scan chunks at a time (progress/cancel in between).

    Each step computes at least ~4 chunks so both cores stay busy. ``offset``/``total`` place
    this computation inside a larger progress count (in units of scan positions along axis 0).
    """
    n_rows = arr.shape[0]
    total = n_rows if total is None else total
    per_row = int(np.prod([len(c) for c in arr.chunks[1:]]))
    group = max(1, -(-4 // max(per_row, 1)))
    bounds = np.cumsum((0,) + arr.chunks[0])
    parts: list[np.ndarray] = []
    for i in range(0, len(arr.chunks[0]), group):
        check_cancel(cancel)
        lo, hi = int(bounds[i]), int(bounds[min(i + group, len(bounds) - 1)])
        block = arr[lo:hi]
        parts.append(np.asarray(client.compute(block).result() if client is not None else block.compute()))
        report(progress, offset + hi, total)
    check_cancel(cancel)
    return np.concatenate(parts, axis=0)
