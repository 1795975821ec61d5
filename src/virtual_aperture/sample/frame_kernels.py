"""Numba kernel that turns rendered canvases into detector frames (shift, crop, noise).

For each scan position: the expected counts on the detector are the canvas (Bragg disks
scattered from sparse stamps with the position's reflection intensities + weighted central
disk + amorphous background) moved by the descan shift with bilinear interpolation and cropped;
Poisson counts are drawn by walking a unit-rate Poisson process
along the cumulative expected counts (exact, cost ∝ pixels + electrons), with direct Poisson
draws for bright pixels (λ > 10). The generator is re-seeded per position, so a frame does not
depend on how the scan is chunked or which thread renders it. ``render.FrameRenderer.shift_crop``
is the plain-numpy reference for the noiseless path.
"""

from __future__ import annotations

import math

import numba
import numpy as np


def position_seeds(seed: int, salt: int, tilt: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Deterministic 32-bit seeds per scan position (splitmix64 of seed, salt, tilt, y, x)."""
    with np.errstate(over="ignore"):
        z = (np.uint64(seed % 2**64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(salt)
        z = z ^ (np.uint64(tilt) * np.uint64(0xBF58476D1CE4E5B9))
        z = (
            z
            ^ (ys.astype(np.uint64) * np.uint64(0x94D049BB133111EB))
            ^ (xs.astype(np.uint64) << np.uint64(32))
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z & np.uint64(0x7FFFFFFF)).astype(np.int64)


@numba.njit(parallel=True, cache=True)
def frames_kernel(
    weights,
    indptr,
    indices,
    values,
    central_w,
    central_idx,
    central_val,
    bg,
    bg_level,
    scale,
    shifts,
    pad,
    W,
    ky,
    kx,
    seeds,
    noisy,
    rounded,
    top,
    out,
):
    """Fill ``out`` (n, ky, kx) float32 (see the module docstring).

    ``weights`` (n, n_refl) are reflection intensities per position; ``indptr``, ``indices``,
    ``values`` the CSR disk stamps (n_refl rows over the flattened canvas of width ``W``);
    ``central_idx``/``central_val`` the sparse central-disk stamp (weight ``central_w[p]``),
    ``bg`` the background canvas (weight ``bg_level``); everything is multiplied by ``scale``
    (electrons per pattern). Values are clipped to ``top``; ``rounded`` rounds noiseless values
    (for integer ``out``).
    """
    n = weights.shape[0]
    n_refl = weights.shape[1]
    for p in numba.prange(n):
        dy = shifts[p, 0]
        dx = shifts[p, 1]
        ny = math.floor(dy)
        nx = math.floor(dx)
        fy = dy - ny
        fx = dx - nx
        w00 = (1.0 - fy) * (1.0 - fx)
        w01 = (1.0 - fy) * fx
        w10 = fy * (1.0 - fx)
        w11 = fy * fx
        y0 = pad - int(ny)
        x0 = pad - int(nx)
        cw = central_w[p]
        if noisy:
            np.random.seed(seeds[p])
            nxt = -math.log(1.0 - np.random.random())
        # expected counts on the (ky + 1) × (kx + 1) canvas window this frame reads
        win = np.empty((ky + 1, kx + 1), dtype=np.float32)
        bscale = bg_level * scale
        for a in range(ky + 1):
            base = (y0 - 1 + a) * W + (x0 - 1)
            for b in range(kx + 1):
                win[a, b] = bg[base + b] * bscale
        cscale = cw * scale
        for k in range(central_idx.shape[0]):
            q = central_idx[k]
            a = q // W - (y0 - 1)
            b = q % W - (x0 - 1)
            if 0 <= a <= ky and 0 <= b <= kx:
                win[a, b] += cscale * central_val[k]
        for r in range(n_refl):
            wr = weights[p, r]
            if wr == 0.0:
                continue
            wr *= scale
            for k in range(indptr[r], indptr[r + 1]):
                q = indices[k]
                a = q // W - (y0 - 1)
                b = q % W - (x0 - 1)
                if 0 <= a <= ky and 0 <= b <= kx:
                    win[a, b] += wr * values[k]
        edge = 0.0
        for i in range(ky):
            for j in range(kx):
                v = w00 * win[i + 1, j + 1] + w01 * win[i + 1, j] + w10 * win[i, j + 1] + w11 * win[i, j]
                if v < 0.0:
                    v = 0.0
                if noisy:
                    if v > 10.0:
                        v = np.random.poisson(v)
                    else:
                        edge += v
                        c = 0
                        while nxt < edge:
                            c += 1
                            nxt += -math.log(1.0 - np.random.random())
                        v = c
                elif rounded:
                    v = math.floor(v + 0.5)
                if v > top:
                    v = top
                out[p, i, j] = v
    return out
