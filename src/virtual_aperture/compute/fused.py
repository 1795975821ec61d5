"""Reductions fused with the decoding of frame-addressable files (Merlin ``.mib``, EMPAD ``.raw``).

A piece of such a file is read as its stored records (header, pixels, tail) into one reused buffer
(:meth:`~virtual_aperture.io.framefile.FrameFile.records`); these kernels reduce the records in
place: they skip each record's header (``gap`` items), swap the bytes of big-endian pixels while
summing, and never build a decoded copy of the frames. Frames stored upside down are handled by
reading their rows in reverse (virtual image) or flipping the summed pattern (aperture sums).

Each kernel runs on the calling thread (``nogil``): the file paths run one per local thread, so
one thread's read overlaps the other's reduction. Plain-numpy references are in the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit, types
from numba.extending import overload

from ..io.framefile import FrameFile
from .kernels import as_f64
from .validate import Masks

_OPTS: dict[str, Any] = dict(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"})


def swapped(x: Any) -> Any:  # pragma: no cover - replaced by the overload inside kernels
    """``x`` (an unsigned 8/16/32-bit item) with its bytes reversed, as uint32."""
    return x


@overload(swapped)
def _swapped_overload(x: Any) -> Callable[[Any], Any]:
    bits = x.bitwidth if isinstance(x, types.Integer) else 0  # type: ignore[attr-defined]  # not in numba's stubs
    if bits == 8:

        def one(x: Any) -> Any:
            return np.uint32(x)

        return one
    if bits == 16:

        def two(x: Any) -> Any:
            v = np.uint32(x)
            return np.uint32((v >> np.uint32(8)) | ((v & np.uint32(0xFF)) << np.uint32(8)))

        return two
    if bits == 32:

        def four(x: Any) -> Any:
            v = np.uint32(x)
            # numba widens integer arithmetic to 64 bits: mask every byte, then narrow
            return np.uint32(
                (v >> np.uint32(24))
                | ((v >> np.uint32(8)) & np.uint32(0xFF00))
                | ((v << np.uint32(8)) & np.uint32(0xFF0000))
                | ((v << np.uint32(24)) & np.uint32(0xFF000000))
            )

        return four

    # native float/64-bit records are never swapped (FrameFile.fused); the kernels' swap branch is
    # still typed for them, so it gets the identity
    def same(x: Any) -> Any:
        return x

    return same


def term(x: Any, w: float) -> float:  # pragma: no cover - replaced by the overload inside kernels
    """``x * w`` as float64; for float ``x`` 0 where ``w`` is 0 (NaN/inf pixels outside a mask)."""
    return float(x) * w


@overload(term)
def _term_overload(x: Any, w: Any) -> Callable[[Any, Any], Any]:
    if isinstance(x, types.Float):

        def guarded(x: Any, w: Any) -> Any:  # the select of kernels.vi_dense_float
            v = as_f64(x) * w
            return v if w != 0.0 else 0.0

        return guarded

    def plain(x: Any, w: Any) -> Any:  # the product of kernels.vi_dense
        return as_f64(x) * w

    return plain


@njit(**_OPTS)
def vi_records_bool(
    rec: np.ndarray,
    gap: int,
    ky: int,
    kx: int,
    flip: bool,
    swap: bool,
    weights: np.ndarray,
    y0: int,
    x0: int,
    out: np.ndarray,
) -> None:
    """``out[m, p] = sum_{r,c} pixel(p, y0 + r, x0 + c) * weights[m, r, c]`` over records ``rec``
    (N, items) of unsigned 8/16-bit pixels at item ``gap + row * kx + col`` (row ``ky - 1 - row``
    when ``flip``: frames stored upside down), bytes swapped when ``swap``; ``weights`` (n, h, w)
    uint32 0/1. Rows accumulate in uint32, totals in uint64; rows are visited in the order the
    in-memory kernels visit them, so the sums are the same to the last bit."""
    n_mask, h, w = weights.shape
    for p in range(rec.shape[0]):
        for m in range(n_mask):
            acc = np.uint64(0)
            for r in range(h):
                s = gap + (ky - 1 - y0 - r if flip else y0 + r) * kx + x0
                row = rec[p, s : s + w]
                wr = weights[m, r]
                a32 = np.uint32(0)
                if swap:
                    for c in range(w):
                        a32 += swapped(row[c]) * wr[c]
                else:
                    for c in range(w):
                        a32 += np.uint32(row[c]) * wr[c]
                acc += a32
            out[m, p] = np.float64(acc)


@njit(**_OPTS)
def vi_records(
    rec: np.ndarray,
    gap: int,
    ky: int,
    kx: int,
    flip: bool,
    swap: bool,
    weights: np.ndarray,
    y0: int,
    x0: int,
    out: np.ndarray,
) -> None:
    """:func:`vi_records_bool` for any weights (float64) and pixel type: a pixel of weight 0 adds
    0 whatever it holds (NaN/inf of dead pixels outside the mask never reach the image)."""
    n_mask, h, w = weights.shape
    for p in range(rec.shape[0]):
        for m in range(n_mask):
            acc = 0.0
            for r in range(h):
                s = gap + (ky - 1 - y0 - r if flip else y0 + r) * kx + x0
                row = rec[p, s : s + w]
                wr = weights[m, r]
                if swap:
                    for c in range(w):
                        acc += term(swapped(row[c]), wr[c])
                else:
                    for c in range(w):
                        acc += term(row[c], wr[c])
            out[m, p] = acc


@njit(**_OPTS)
def sum_records_u32(
    rec: np.ndarray, gap: int, n_k: int, swap: bool, pos: np.ndarray, lab: np.ndarray, out: np.ndarray
) -> None:
    """``out[lab[t]] += pixels of record pos[t]`` (``lab`` sorted) for unsigned 8/16-bit pixels:
    runs of one label accumulate in uint32, flushed to the float64 ``out`` (L, n_k) every 65536
    frames (nothing overflows)."""
    n_t = pos.shape[0]
    buf = np.zeros(n_k, dtype=np.uint32)
    t = 0
    while t < n_t:
        cur = lab[t]
        n_in = 0
        while t < n_t and lab[t] == cur and n_in < 65536:
            f = rec[pos[t], gap : gap + n_k]
            if swap:
                for k in range(n_k):
                    buf[k] += swapped(f[k])
            else:
                for k in range(n_k):
                    buf[k] += np.uint32(f[k])
            t += 1
            n_in += 1
        o = out[cur]
        for k in range(n_k):
            o[k] += np.float64(buf[k])
            buf[k] = 0


@njit(**_OPTS)
def sum_records(
    rec: np.ndarray, gap: int, n_k: int, swap: bool, pos: np.ndarray, lab: np.ndarray, out: np.ndarray
) -> None:
    """:func:`sum_records_u32` in float64 (32-bit, signed and float pixels)."""
    for t in range(pos.shape[0]):
        f = rec[pos[t], gap : gap + n_k]
        o = out[lab[t]]
        if swap:
            for k in range(n_k):
                o[k] += as_f64(swapped(f[k]))
        else:
            for k in range(n_k):
                o[k] += as_f64(f[k])


def _layout(ff: FrameFile) -> tuple[int, bool]:
    """(items before each record's pixels, whether the kernels swap bytes)."""
    size = ff.file_dtype.itemsize
    return ff.lead // size, size > 1 and not ff.file_dtype.isnative


def _small(dtype: np.dtype) -> bool:
    return dtype.kind == "u" and dtype.itemsize <= 2


def virtual_records(ff: FrameFile, rec: np.ndarray, masks: Masks) -> np.ndarray:
    """Virtual-image values (n, N) of the N records ``rec`` of ``ff`` (from ``ff.records``).

    Parameters
    ----------
    ff
        The file the records come from (layout, byte order, flipped rows).
    rec
        (N, stride / itemsize) records as :meth:`FrameFile.records` returns them.
    masks
        The prepared masks (in the orientation ``open_dataset`` shows the frames).

    Returns
    -------
    numpy.ndarray
        float64 (n_masks, N).
    """
    gap, swap = _layout(ff)
    ky, kx = ff.frame_shape
    args = (rec, gap, ky, kx, ff.flip_y, swap)
    out = np.empty((masks.n, rec.shape[0]))
    if masks.binary is not None and _small(ff.dtype):
        vi_records_bool(*args, masks.binary, masks.y0, masks.x0, out)
    else:
        vi_records(*args, masks.weights, masks.y0, masks.x0, out)
    return out


def sum_into(ff: FrameFile, rec: np.ndarray, pos: np.ndarray, lab: np.ndarray, out: np.ndarray) -> None:
    """Add record ``rec[pos[t]]`` of ``ff`` to row ``lab[t]`` of ``out`` for every t.

    Parameters
    ----------
    ff
        The file the records come from.
    rec
        (N, stride / itemsize) records as :meth:`FrameFile.records` returns them.
    pos, lab
        int64 (m,): record and row of ``out`` of each frame to add.
    out
        float64 (L, ky * kx) sums in the orientation ``open_dataset`` shows the frames; added to.
    """
    gap, swap = _layout(ff)
    ky, kx = ff.frame_shape
    order = np.lexsort((pos, lab))
    pos, lab = np.ascontiguousarray(pos[order]), np.ascontiguousarray(lab[order])
    part = np.zeros_like(out) if ff.flip_y else out
    kernel = sum_records_u32 if _small(ff.dtype) else sum_records
    kernel(rec, gap, ky * kx, swap, pos, lab, part)
    if ff.flip_y:
        out += part.reshape(-1, ky, kx)[:, ::-1].reshape(out.shape)
