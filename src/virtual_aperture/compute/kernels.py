"""numba kernels of the compute engine (each has a plain-numpy reference in the tests).

All kernels are ``parallel=True, cache=True, nogil=True``. They are called either directly on
in-memory numpy blocks (all cores) or inside dask tasks, where :func:`single_thread` makes the
calling worker thread use one numba thread so dask's own threads provide the parallelism.

Data blocks are C-contiguous ``frames`` arrays ``(n_positions, k_y, k_x)`` (or flattened
``(n_positions, k_y * k_x)``) of any numeric dtype; accumulation is always float64, which is
exact for integer data up to 2**53 (e.g. 2**37 uint16 frames).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

_FAST = {"reassoc", "contract", "nsz", "arcp"}  # lets reductions vectorise; keeps NaN/inf semantics
_OPTS: dict[str, Any] = dict(parallel=True, cache=True, nogil=True, fastmath=_FAST)

#: below this many values a kernel runs on the calling thread: waking the other numba threads
#: costs milliseconds on a busy machine, more than the work itself (interactive updates)
SMALL_WORK = 2**24


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run numba kernels called from this thread on one numba thread (thread-local setting)."""
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(old)


_PARALLEL_LOCK = threading.RLock()


@contextlib.contextmanager
def all_threads() -> Iterator[None]:
    """Serialise whole-machine kernel launches from different Python threads (GUI workers)."""
    with _PARALLEL_LOCK:
        yield


# ---- element conversion -----------------------------------------------------------------------
def as_f64(x: Any) -> np.float64:  # pragma: no cover - replaced by the overload inside kernels
    return np.float64(x)


@overload(as_f64)
def _as_f64_overload(x: Any) -> Callable[[Any], np.float64]:
    # small integers go through int32: LLVM vectorises i32 -> f64 but scalarises u16 -> f64
    # (numba matches the implementation's parameters, annotations included, to ``as_f64``'s)
    if isinstance(x, types.Integer) and x.bitwidth <= 16:  # type: ignore[attr-defined]  # not in numba's stubs

        def via_i32(x: Any) -> np.float64:
            return np.float64(np.int32(x))

        return via_i32

    def direct(x: Any) -> np.float64:
        return np.float64(x)

    return direct


# NB: inner loops index slices with range() counters only (no offsets), which lets LLVM drop the
# negative-index wraparound checks and vectorise; ``row[x0 + c]`` is 3-4x slower.


# ---- virtual image --------------------------------------------------------------------------
@njit(**_OPTS)
def vi_dense(frames: np.ndarray, weights: np.ndarray, y0: int, x0: int, out: np.ndarray) -> None:
    """``out[m, p] = sum_{r,c} frames[p, y0 + r, x0 + c] * weights[m, r, c]``.

    ``frames`` (N, ky, kx); ``weights`` (n, h, w) float64, the masks cut to their bounding box at
    (y0, x0); ``out`` (n, N) float64, overwritten.
    """
    n_pos = frames.shape[0]
    n_mask, h, w = weights.shape
    for p in prange(n_pos):
        for m in range(n_mask):
            acc = 0.0
            for r in range(h):
                row = frames[p, y0 + r, x0 : x0 + w]
                wr = weights[m, r]
                for c in range(w):
                    acc += as_f64(row[c]) * wr[c]
            out[m, p] = acc


@njit(**_OPTS)
def vi_dense_float(frames: np.ndarray, weights: np.ndarray, y0: int, x0: int, out: np.ndarray) -> None:
    """:func:`vi_dense` for float frames: a pixel of weight 0 adds 0 whatever it holds (NaN/inf of
    dead pixels in the hole of an annulus never reach the image). A select, so it still vectorises."""
    n_pos = frames.shape[0]
    n_mask, h, w = weights.shape
    for p in prange(n_pos):
        for m in range(n_mask):
            acc = 0.0
            for r in range(h):
                row = frames[p, y0 + r, x0 : x0 + w]
                wr = weights[m, r]
                for c in range(w):
                    v = as_f64(row[c]) * wr[c]
                    acc += v if wr[c] != 0.0 else 0.0
            out[m, p] = acc


@njit(**_OPTS)
def vi_shifted(
    frames: np.ndarray, padded: np.ndarray, y0: int, x0: int, shifts: np.ndarray, out: np.ndarray
) -> None:
    """Virtual image with the mask moved by a per-position shift (bilinear weights).

    ``padded`` (n, h + 2, w + 2) float64: the masks cut to their bounding box at (y0, x0) with a
    one-pixel zero border. For position p with shift (sy, sx) the applied mask is
    ``M'(r, c) = M(r - sy, c - sx)``, ``M`` bilinearly interpolated and zero outside.
    ``shifts`` (N, 2) float64 (finite); ``out`` (n, N) float64, overwritten.
    """
    n_pos, ky, kx = frames.shape
    n_mask = padded.shape[0]
    h = padded.shape[1] - 2
    w = padded.shape[2] - 2
    for p in prange(n_pos):
        sy = shifts[p, 0]
        sx = shifts[p, 1]
        fy0 = np.floor(sy)
        fx0 = np.floor(sx)
        fy = sy - fy0
        fx = sx - fx0
        # clamp: a mask moved off the detector contributes nothing anyway
        iy = int(min(max(fy0, -(h + ky + 2.0)), h + ky + 2.0))
        ix = int(min(max(fx0, -(w + kx + 2.0)), w + kx + 2.0))
        w00 = (1.0 - fy) * (1.0 - fx)
        w01 = (1.0 - fy) * fx
        w10 = fy * (1.0 - fx)
        w11 = fy * fx
        r0 = max(0, y0 + iy)
        r1 = min(ky, y0 + h + iy + 1)
        c0 = max(0, x0 + ix)
        c1 = min(kx, x0 + w + ix + 1)
        nc = c1 - c0
        b0 = c0 - ix - x0 + 1  # padded column of M(c0 - ix); column b0 - 1 is M(c0 - ix - 1)
        for m in range(n_mask):
            acc = 0.0
            for r in range(r0, r1):
                a = r - iy - y0 + 1  # padded row of M(r - iy); row a - 1 is M(r - iy - 1)
                if nc <= 0:
                    break
                pa = padded[m, a, b0 : b0 + nc]
                pa1 = padded[m, a, b0 - 1 : b0 - 1 + nc]
                pb = padded[m, a - 1, b0 : b0 + nc]
                pb1 = padded[m, a - 1, b0 - 1 : b0 - 1 + nc]
                row = frames[p, r, c0:c1]
                for c in range(nc):
                    wgt = w00 * pa[c] + w01 * pa1[c] + w10 * pb[c] + w11 * pb1[c]
                    v = as_f64(row[c]) * wgt
                    acc += v if wgt != 0.0 else 0.0  # weight 0 adds 0, even for NaN/inf pixels
            out[m, p] = acc


# ---- gathered sums ---------------------------------------------------------------------------
@njit(**_OPTS)
def _gather_sum(
    frames: np.ndarray, pos: np.ndarray, lab: np.ndarray, wt: np.ndarray, out: np.ndarray, n_parts: int
) -> None:
    n_t = pos.shape[0]
    n_k = frames.shape[1]
    for part in prange(n_parts):
        k0 = part * n_k // n_parts
        k1 = (part + 1) * n_k // n_parts
        for t in range(n_t):
            f = frames[pos[t], k0:k1]
            o = out[lab[t], k0:k1]
            s = wt[t]
            for k in range(k1 - k0):
                o[k] += s * as_f64(f[k])


@njit(**_OPTS)
def _gather_sum_u32(
    frames: np.ndarray, pos: np.ndarray, lab: np.ndarray, out: np.ndarray, n_parts: int
) -> None:
    """:func:`_gather_sum` with unit weights for unsigned 8/16-bit data, ``lab`` sorted.

    Runs of one label accumulate in uint32 (flushed to the float64 ``out`` every 65536 frames, so
    nothing overflows): integer adds on half-width lanes, exact.
    """
    n_t = pos.shape[0]
    n_k = frames.shape[1]
    for part in prange(n_parts):
        k0 = part * n_k // n_parts
        k1 = (part + 1) * n_k // n_parts
        buf = np.zeros(k1 - k0, dtype=np.uint32)
        t = 0
        while t < n_t:
            cur = lab[t]
            n_in = 0
            while t < n_t and lab[t] == cur and n_in < 65536:
                f = frames[pos[t], k0:k1]
                for k in range(k1 - k0):
                    buf[k] += np.uint32(f[k])
                t += 1
                n_in += 1
            o = out[cur, k0:k1]
            for k in range(k1 - k0):
                o[k] += np.float64(buf[k])
                buf[k] = 0


def gather_sum(frames: np.ndarray, pos: np.ndarray, lab: np.ndarray, wt: np.ndarray, out: np.ndarray) -> None:
    """``out[lab[t], :] += wt[t] * frames[pos[t], :]`` for every t; flat ``frames`` (N, K).

    Positions are visited label by label (so one accumulator row stays in cache) and each
    thread owns a contiguous part of the detector (no per-thread copies of ``out``, no races):
    one read of the listed frames whatever the number of labels.
    """
    order = np.lexsort((pos, lab))
    pos, lab, wt = pos[order], lab[order], wt[order]
    if frames.dtype in (np.uint8, np.uint16) and pos.shape[0] and (wt == 1.0).all():
        n_parts = 1 if pos.shape[0] * frames.shape[1] < SMALL_WORK else numba.get_num_threads()
        if n_parts == 1:
            with single_thread():
                _gather_sum_u32(frames, pos, lab, out, 1)
        else:
            _gather_sum_u32(frames, pos, lab, out, n_parts)
        return
    if pos.shape[0] * frames.shape[1] < SMALL_WORK:
        with single_thread():
            _gather_sum(frames, pos, lab, wt, out, 1)
    else:
        _gather_sum(frames, pos, lab, wt, out, numba.get_num_threads())


@njit(**_OPTS)
def vi_dense_bool(frames: np.ndarray, weights: np.ndarray, y0: int, x0: int, out: np.ndarray) -> None:
    """:func:`vi_dense` for unsigned 8/16-bit data and 0/1 weights (uint32): exact integer sums.

    Rows accumulate in uint32 (≤ 65535 × 65536 per row), totals in uint64.
    """
    n_pos = frames.shape[0]
    n_mask, h, w = weights.shape
    for p in prange(n_pos):
        for m in range(n_mask):
            acc = np.uint64(0)
            for r in range(h):
                row = frames[p, y0 + r, x0 : x0 + w]
                wr = weights[m, r]
                a32 = np.uint32(0)
                for c in range(w):
                    a32 += np.uint32(row[c]) * wr[c]
                acc += a32
            out[m, p] = np.float64(acc)


@njit(**_OPTS)
def _column_update(tframes: np.ndarray, index: np.ndarray, dw: np.ndarray, image: np.ndarray) -> None:
    """Detector-major update: ``image[p] += sum_j dw[j] * tframes[index[j], p]``.

    ``tframes`` (K, N) is the detector-major copy; cost ∝ len(index) * N, contiguous reads.
    """
    n_pos = tframes.shape[1]
    n_blocks = (n_pos + 4095) // 4096
    for b in prange(n_blocks):
        p0 = b * 4096
        p1 = min(n_pos, p0 + 4096)
        img = image[p0:p1]
        for j in range(index.shape[0]):
            col = tframes[index[j], p0:p1]
            d = dw[j]
            for p in range(p1 - p0):
                img[p] += d * as_f64(col[p])


def column_update(tframes: np.ndarray, index: np.ndarray, dw: np.ndarray, image: np.ndarray) -> None:
    """Detector-major update ``image[p] += sum_j dw[j] * tframes[index[j], p]`` (see ``_column_update``)."""
    if index.shape[0] * tframes.shape[1] < SMALL_WORK:
        with single_thread():
            _column_update(tframes, index, dw, image)
    else:
        _column_update(tframes, index, dw, image)


@njit(**_OPTS)
def strided_update(frames: np.ndarray, index: np.ndarray, dw: np.ndarray, image: np.ndarray) -> None:
    """Scan-major fallback of :func:`column_update`: ``image[p] += sum_j dw[j] * frames[p, index[j]]``."""
    n_pos = frames.shape[0]
    for p in prange(n_pos):
        f = frames[p]
        acc = 0.0
        for j in range(index.shape[0]):
            acc += dw[j] * as_f64(f[index[j]])
        image[p] += acc


@njit(**_OPTS)
def transpose_into(frames: np.ndarray, p0: int, tframes: np.ndarray) -> None:
    """Copy flat ``frames`` (n, K) into columns ``p0 : p0 + n`` of ``tframes`` (K, N).

    Threads take 64-frame tiles and sweep the detector in 64-pixel tiles (each frame is read
    sequentially; 64 × 64 tiles were the fastest of the shapes tried).
    """
    n, n_k = frames.shape
    tile = 64
    n_qb = (n + tile - 1) // tile
    for qb in prange(n_qb):
        q0 = qb * tile
        q1 = min(n, q0 + tile)
        for k0 in range(0, n_k, tile):
            k1 = min(n_k, k0 + tile)
            for k in range(k0, k1):
                dst = tframes[k, p0 + q0 : p0 + q1]
                for q in range(q1 - q0):
                    dst[q] = frames[q0 + q, k]


@njit(**_OPTS)
def read_ceiling(frames: np.ndarray) -> float:
    """One pass that reads every byte of flat ``frames`` (N, K) once; returns the sum of all values.

    Unsigned 8/16-bit data accumulate per frame in uint32 lanes (exact for frames of <= 65536 uint16
    pixels) and in float64 otherwise: the fastest honest full read the machine can do.
    """
    n_pos = frames.shape[0]
    total = 0.0
    for p in prange(n_pos):
        total += _frame_total(frames[p])
    return total


def _frame_total(f: np.ndarray) -> float:  # pragma: no cover - replaced by the overload inside kernels
    return float(f.sum())


@overload(_frame_total)
def _frame_total_overload(f: Any) -> Callable[[np.ndarray], Any]:
    integer = isinstance(f.dtype, types.Integer)
    if integer and not f.dtype.signed and f.dtype.bitwidth <= 16:

        def impl(f: Any) -> np.float64:  # parameters annotated as the overload's (see as_f64)
            acc = np.uint64(0)
            for k0 in range(0, f.shape[0], 65536):
                part = f[k0 : k0 + 65536]
                a32 = np.uint32(0)
                for k in range(part.shape[0]):
                    a32 += np.uint32(part[k])
                acc += a32
            return np.float64(acc)

        return impl

    def impl_f(f: Any) -> float:
        acc = 0.0
        for k in range(f.shape[0]):
            acc += np.float64(f[k])
        return acc

    return impl_f


@njit(**_OPTS)
def _gather_sum_shifted(
    frames: np.ndarray, pos: np.ndarray, lab: np.ndarray, shifts: np.ndarray, out: np.ndarray, n_parts: int
) -> None:
    n_t = pos.shape[0]
    ky, kx = frames.shape[1], frames.shape[2]
    for part in prange(n_parts):
        r0 = part * ky // n_parts
        r1 = (part + 1) * ky // n_parts
        for t in range(n_t):
            f = frames[pos[t]]
            o = out[lab[t]]
            fy0 = np.floor(shifts[t, 0])
            fx0 = np.floor(shifts[t, 1])
            fy = shifts[t, 0] - fy0
            fx = shifts[t, 1] - fx0
            iy = int(min(max(fy0, -ky - 2.0), ky + 2.0))
            ix = int(min(max(fx0, -kx - 2.0), kx + 2.0))
            for dy in range(2):
                wy = 1.0 - fy if dy == 0 else fy
                if wy == 0.0:
                    continue
                for dx in range(2):
                    wgt = wy * (1.0 - fx if dx == 0 else fx)
                    if wgt == 0.0:
                        continue
                    ox = ix + dx
                    c0 = max(0, -ox)
                    c1 = min(kx, kx - ox)
                    if c1 <= c0:
                        continue
                    for r in range(r0, r1):
                        src = r + iy + dy
                        if src < 0 or src >= ky:
                            continue
                        orow = o[r, c0:c1]
                        srow = f[src, c0 + ox : c1 + ox]
                        for c in range(c1 - c0):
                            orow[c] += wgt * as_f64(srow[c])


def gather_sum_shifted(
    frames3: np.ndarray, pos: np.ndarray, lab: np.ndarray, shifts: np.ndarray, out3: np.ndarray
) -> None:
    """Aligned sums: ``out3[lab[t]](k) += frames3[pos[t]](k + shifts[t])``, bilinear, zero outside.

    ``frames3`` (N, ky, kx); ``shifts`` (n, 2) float64 detector pixels; ``out3`` (L, ky, kx)
    float64. The inverse of the mask shift of :func:`vi_shifted`: the virtual image of the aligned
    sum with mask M equals the sum of the shifted-mask virtual images.
    """
    order = np.lexsort((pos, lab))
    args = (frames3, pos[order], lab[order], np.ascontiguousarray(shifts[order]), out3)
    if pos.shape[0] * frames3.shape[1] * frames3.shape[2] < SMALL_WORK:
        with single_thread():
            _gather_sum_shifted(*args, 1)
    else:
        _gather_sum_shifted(*args, numba.get_num_threads())
