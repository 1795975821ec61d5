"""Numba kernels of the grain tools (each has a plain numpy/python reference in the tests)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def seed_scores(u: np.ndarray) -> np.ndarray:
    """Mean cosine of each position's unit feature vector with its 4-neighbours. u: (sy, sx, k)."""
    sy, sx, k = u.shape
    out = np.zeros((sy, sx), np.float32)
    for y in range(sy):
        for x in range(sx):
            acc = 0.0
            n = 0
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                qy, qx = y + dy, x + dx
                if 0 <= qy < sy and 0 <= qx < sx:
                    d = 0.0
                    for c in range(k):
                        d += u[y, x, c] * u[qy, qx, c]
                    acc += d
                    n += 1
            out[y, x] = acc / n if n > 0 else 0.0
    return out


@numba.njit(cache=True)
def grow_regions(u: np.ndarray, order: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Seeded region growing on unit feature vectors ``u`` (sy, sx, k).

    Seeds are taken in ``order`` (flat indices, best first) while their score ≥ threshold; a
    region absorbs a 4-neighbour when the neighbour's cosine with the region's running mean
    direction is ≥ threshold. Returns int32 labels 1..n (0 = unassigned).
    """
    sy, sx, k = u.shape
    labels = np.zeros((sy, sx), np.int32)
    queue = np.empty(sy * sx, np.int64)
    r = np.zeros(k, np.float64)
    cur = 0
    for idx in order:
        y0 = idx // sx
        x0 = idx % sx
        if labels[y0, x0] != 0:
            continue
        if scores[y0, x0] < threshold:
            break
        cur += 1
        labels[y0, x0] = cur
        for c in range(k):
            r[c] = u[y0, x0, c]
        head = 0
        tail = 1
        queue[0] = idx
        while head < tail:
            p = queue[head]
            head += 1
            py = p // sx
            px = p % sx
            nr = 0.0
            for c in range(k):
                nr += r[c] * r[c]
            nr = np.sqrt(nr)
            if nr == 0.0:
                continue
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                qy, qx = py + dy, px + dx
                if 0 <= qy < sy and 0 <= qx < sx and labels[qy, qx] == 0:
                    d = 0.0
                    for c in range(k):
                        d += u[qy, qx, c] * r[c]
                    if d / nr >= threshold:
                        labels[qy, qx] = cur
                        for c in range(k):
                            r[c] += u[qy, qx, c]
                        queue[tail] = qy * sx + qx
                        tail += 1
    return labels


@numba.njit(parallel=True, cache=True)
def find_peaks_kernel(
    frames: np.ndarray,
    cmask: np.ndarray,
    r_in: int,
    r_out: int,
    threshold: float,
    max_peaks: int,
    n_blocks: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of a background-subtracted box filter in each pattern.

    frames: (n, ky, kx) float32. For every pixel, signal = sum over the (2r_in+1)² box minus the
    box area × the mean of the surrounding ring out to r_out; noise = sqrt(box area × ring mean
    + 1). Peaks are strict 3×3 local maxima of signal (on a plateau the first pixel in raster
    order) with signal/noise ≥ threshold, outside ``cmask``. Returns (peaks (n, max_peaks, 3) =
    k_y, k_x, intensity with sub-pixel centroid, counts (n,)). Work buffers are allocated once
    per block of frames (``n_blocks`` blocks run in parallel), not per frame.
    """
    n, ky, kx = frames.shape
    peaks = np.zeros((n, max_peaks, 3), np.float32)
    counts = np.zeros(n, np.int32)
    a_in = (2 * r_in + 1) ** 2
    a_out = (2 * r_out + 1) ** 2 - a_in
    thr2 = threshold * threshold
    n_blocks = max(1, min(n, n_blocks))
    for blk in numba.prange(n_blocks):
        ii = np.zeros((ky + 1, kx + 1), np.float64)
        sig = np.full((ky, kx), -1e30, np.float64)
        ok = np.zeros((ky, kx), np.bool_)
        for i in range(blk * n // n_blocks, (blk + 1) * n // n_blocks):
            for y in range(ky):
                row = 0.0
                for x in range(kx):
                    row += frames[i, y, x]
                    ii[y + 1, x + 1] = ii[y, x + 1] + row
            for y in range(r_out, ky - r_out):
                for x in range(r_out, kx - r_out):
                    s_in = (
                        ii[y + r_in + 1, x + r_in + 1]
                        - ii[y - r_in, x + r_in + 1]
                        - ii[y + r_in + 1, x - r_in]
                        + ii[y - r_in, x - r_in]
                    )
                    s_out = (
                        ii[y + r_out + 1, x + r_out + 1]
                        - ii[y - r_out, x + r_out + 1]
                        - ii[y + r_out + 1, x - r_out]
                        + ii[y - r_out, x - r_out]
                    )
                    bg = (s_out - s_in) / a_out
                    if bg < 0.0:
                        bg = 0.0
                    v = s_in - a_in * bg
                    sig[y, x] = v
                    ok[y, x] = v > 0.0 and v * v >= thr2 * (a_in * bg + 1.0) and not cmask[y, x]
            c = 0
            for y in range(r_out, ky - r_out):
                for x in range(r_out, kx - r_out):
                    if not ok[y, x]:
                        continue
                    v = sig[y, x]
                    is_max = True
                    for dy in range(-1, 2):
                        for dx in range(-1, 2):
                            if dy == 0 and dx == 0:
                                continue
                            w = sig[y + dy, x + dx]
                            if w > v or (w == v and (dy < 0 or (dy == 0 and dx < 0))):
                                is_max = False
                    if not is_max or c >= max_peaks:
                        continue
                    wy = 0.0
                    wx = 0.0
                    wt = 0.0
                    for dy in range(-1, 2):
                        for dx in range(-1, 2):
                            val = frames[i, y + dy, x + dx]
                            wy += val * dy
                            wx += val * dx
                            wt += val
                    peaks[i, c, 0] = y + (wy / wt if wt > 0 else 0.0)
                    peaks[i, c, 1] = x + (wx / wt if wt > 0 else 0.0)
                    peaks[i, c, 2] = v
                    c += 1
            counts[i] = c
    return peaks, counts


@numba.njit(parallel=True, cache=True)
def bin_sum_kernel(frames: np.ndarray, b: int) -> np.ndarray:
    """Sum b×b detector pixels of (n, ky, kx) frames of any numeric dtype → (n, ky//b, kx//b) float32."""
    n, ky, kx = frames.shape
    by, bx = ky // b, kx // b
    out = np.zeros((n, by, bx), np.float32)
    for i in numba.prange(n):
        for y in range(by * b):
            oy = y // b
            for x in range(bx * b):
                out[i, oy, x // b] += frames[i, y, x]
    return out
