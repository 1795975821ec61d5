"""Virtual images: any detector mask (or a stack of masks) applied to every scan position."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import fused, kernels
from .executor import (
    CancelToken,
    ProgressFn,
    check_cancel,
    check_client,
    local_workers,
    parse_memory_budget,
    run_local,
    stream,
)
from .source import Source
from .validate import Masks, prepare_masks, prepare_shifts

if TYPE_CHECKING:
    import dask.array as da


def virtual_image(
    data: Any,
    mask: Any,
    *,
    shifts: Any = None,
    client: Any = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    memory_budget: int | str | None = None,
) -> np.ndarray:
    """Virtual detector image: ``image[y, x] = sum_k data[y, x, k] * mask[k]``.

    Parameters
    ----------
    data
        ``Dataset``, dask or numpy array, 4D ``(sy, sx, ky, kx)`` or 5D ``(n_tilt, sy, sx, ky, kx)``.
    mask
        Detector mask ``(ky, kx)``: bool (pixel in/out) or real weights (e.g. from
        :mod:`virtual_aperture.detectors`), or a stack ``(n, ky, kx)`` computed in the same pass.
        NaN/inf weights and all-zero masks are rejected.
    shifts
        Optional per-position origin shift ``(sy, sx, 2)`` (or ``(n_tilt, sy, sx, 2)``) in detector
        pixels ``(dk_y, dk_x)``: at each position the mask is applied as if moved by the shift,
        ``mask'(k) = mask(k - shift)`` (descan compensation: pass the measured beam position minus
        the reference). Fractional shifts use bilinear weights; parts moved off the detector count 0.
    client
        ``None`` (local threads) or a ``dask.distributed`` client / scheduler address.
    progress
        ``progress(done, total)`` called after every chunk.
    cancel
        A :class:`CancelToken`; :class:`Cancelled` is raised soon after it is cancelled.
    memory_budget
        Bytes (or ``"2GB"``) of data read but not yet reduced at once, for streamed (file-backed)
        data; default 1 GiB. In-memory data needs no extra memory.

    Returns
    -------
    numpy.ndarray, float64
        4D data: ``(sy, sx)``, or ``(n, sy, sx)`` for a mask stack.
        5D data: ``(n_tilt, sy, sx)``, or ``(n, n_tilt, sy, sx)`` for a mask stack.
        Values are in the data's units (counts) times the weights; float64 accumulation is exact
        for integer data with bool/integer masks.
    """
    src = Source(data)
    masks = prepare_masks(mask, src.det_shape)
    sh = prepare_shifts(shifts, src.n_tilt, src.scan_shape, src.is5d)
    client = check_client(client)
    budget = parse_memory_budget(memory_budget)
    out = np.zeros((masks.n, src.n_tilt, src.sy, src.sx))
    if client is None and src.file is not None:
        _from_file(src, masks, sh, out, budget, progress, cancel)
    elif client is None and src.in_memory:
        _in_memory(src, masks, sh, out, progress, cancel)
    elif client is None and src.store_direct:
        _from_store(src, masks, sh, out, budget, progress, cancel)
    else:
        _streamed(src, masks, sh, out, client, budget, progress, cancel)
    if not src.is5d:
        out = out[:, 0]
    return out if masks.stacked else out[0]


def apply_kernel(
    frames3: np.ndarray, masks: Masks, shifts2: np.ndarray | None, padded: np.ndarray | None
) -> np.ndarray:
    """Virtual-image values (n, N) of frames (N, ky, kx) (the kernel's caller threads apply)."""
    res = np.empty((masks.n, frames3.shape[0]))
    if shifts2 is None and masks.binary is not None and frames3.dtype in (np.uint8, np.uint16):
        kernels.vi_dense_bool(frames3, masks.binary, masks.y0, masks.x0, res)
    elif shifts2 is None and frames3.dtype.kind == "f":
        kernels.vi_dense_float(frames3, masks.weights, masks.y0, masks.x0, res)
    elif shifts2 is None:
        kernels.vi_dense(frames3, masks.weights, masks.y0, masks.x0, res)
    else:
        kernels.vi_shifted(frames3, padded, masks.y0, masks.x0, shifts2, res)
    return res


def _frames3(block4: np.ndarray) -> np.ndarray:
    ny, nx, ky, kx = block4.shape
    return np.ascontiguousarray(block4).reshape(ny * nx, ky, kx)


def _in_memory(
    src: Source,
    masks: Masks,
    sh: np.ndarray | None,
    out: np.ndarray,
    progress: ProgressFn | None,
    cancel: Any,
) -> None:
    n_slabs = src.n_slabs()
    padded = masks.padded() if sh is not None else None
    if progress is not None:
        progress(0, n_slabs)
    for i, (t, y0, x0, slab) in enumerate(src.slabs()):  # file slabs are valid until the next
        check_cancel(cancel)
        ny, nx = slab.shape[:2]
        s2 = None if sh is None else np.ascontiguousarray(sh[t, y0 : y0 + ny, x0 : x0 + nx].reshape(-1, 2))
        with kernels.all_threads():
            res = apply_kernel(_frames3(slab), masks, s2, padded)
        out[:, t, y0 : y0 + ny, x0 : x0 + nx] = res.reshape(masks.n, ny, nx)
        if progress is not None:
            progress(i + 1, n_slabs)


def _from_file(
    src: Source,
    masks: Masks,
    sh: np.ndarray | None,
    out: np.ndarray,
    budget: int,
    progress: ProgressFn | None,
    cancel: Any,
) -> None:
    """A frame-addressable file: every local thread reads (maps or decodes) a piece and reduces
    it with a one-thread kernel while it is in cache; no dask, no barrier between threads."""
    padded = masks.padded() if sh is not None else None
    pieces = src.file_pieces(budget)

    fuse = sh is None and src.fused

    def one(piece: tuple[int, int, int, int, int]) -> np.ndarray:
        if fuse:  # reduce the stored records in place (.mib): no decoded copy
            assert src.file is not None
            return fused.virtual_records(src.file, src.read_records(src.piece_index(piece)), masks)
        t, y0, ny, x0, nx = piece
        s2 = None if sh is None else np.ascontiguousarray(sh[t, y0 : y0 + ny, x0 : x0 + nx].reshape(-1, 2))
        with kernels.single_thread():
            return apply_kernel(_frames3(src.read_piece(piece)), masks, s2, padded)

    def accumulate(i: int, res: np.ndarray) -> None:
        t, y0, ny, x0, nx = pieces[i]
        out[:, t, y0 : y0 + ny, x0 : x0 + nx] = res.reshape(masks.n, ny, nx)

    run_local(pieces, one, accumulate, progress=progress, cancel=cancel)


#: bytes of whole storage chunks read and reduced at a time from a store (cache sized)
STORE_PIECE_BYTES = 16 * 2**20


def _from_store(
    src: Source,
    masks: Masks,
    sh: np.ndarray | None,
    out: np.ndarray,
    budget: int,
    progress: ProgressFn | None,
    cancel: Any,
) -> None:
    """A chunked store (zarr, HDF5) on local threads without dask: each thread reads and decodes
    whole storage chunks (a few MiB) and reduces them at once, while they are in cache."""
    padded = masks.padded() if sh is not None else None
    pieces = src.store_pieces(min(STORE_PIECE_BYTES, budget // (2 * (local_workers() + 1))))

    def one(piece: tuple[int, int, int, int, int]) -> np.ndarray:
        t, y0, ny, x0, nx = piece
        s2 = None if sh is None else np.ascontiguousarray(sh[t, y0 : y0 + ny, x0 : x0 + nx].reshape(-1, 2))
        block = src.read_store_piece(piece)
        with kernels.single_thread():
            return apply_kernel(_frames3(block), masks, s2, padded)

    def accumulate(i: int, res: np.ndarray) -> None:
        t, y0, ny, x0, nx = pieces[i]
        out[:, t, y0 : y0 + ny, x0 : x0 + nx] = res.reshape(masks.n, ny, nx)

    run_local(pieces, one, accumulate, progress=progress, cancel=cancel)


def _vi_task(
    block5: np.ndarray,
    weights: np.ndarray,
    binary: np.ndarray | None,
    y0: int,
    x0: int,
    shifts4: np.ndarray | None,
) -> np.ndarray:
    """One dask task: (1, cy, cx, ky, kx) block → (n, cy, cx) on one numba thread."""
    masks = Masks(weights, y0, x0, True)
    masks.binary = binary
    _, cy, cx = block5.shape[:3]
    s2 = None if shifts4 is None else np.ascontiguousarray(shifts4.reshape(-1, 2))
    with kernels.single_thread():
        res = apply_kernel(_frames3(block5[0]), masks, s2, masks.padded() if s2 is not None else None)
    return res.reshape(masks.n, cy, cx)


def block_plan(src: Source, client: Any, budget: int) -> tuple[da.Array, list[np.ndarray], int]:
    """The 5D dask array (chunks sized to the budget) and its chunk offsets."""
    workers = local_workers() if client is None else max(1, sum(client.nthreads().values()))
    # each task holds its chunk plus a decompression buffer of about the same size
    max_chunk = max(src.frame_bytes, budget // (2 * (workers + 1)))
    arr = src.dask5(max_chunk)
    bounds = [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in arr.chunks[:3]]
    return arr, bounds, workers


def _streamed(
    src: Source,
    masks: Masks,
    sh: np.ndarray | None,
    out: np.ndarray,
    client: Any,
    budget: int,
    progress: ProgressFn | None,
    cancel: Any,
) -> None:
    from dask import delayed

    arr, (tb, yb, xb), _ = block_plan(src, client, budget)
    blocks = arr.to_delayed()
    weights = delayed(masks.weights, pure=True)  # one graph key shared by every task
    binary = None if masks.binary is None else delayed(masks.binary, pure=True)
    tasks, where = [], []
    for t in range(len(tb) - 1):
        for i in range(len(yb) - 1):
            for j in range(len(xb) - 1):
                ys, xs = slice(yb[i], yb[i + 1]), slice(xb[j], xb[j + 1])
                s4 = None if sh is None else sh[tb[t], ys, xs]
                tasks.append(
                    delayed(_vi_task, pure=True)(
                        blocks[t, i, j, 0, 0], weights, binary, masks.y0, masks.x0, s4
                    )
                )
                where.append((tb[t], ys, xs))

    def accumulate(k: int, res: np.ndarray) -> None:
        t, ys, xs = where[k]
        out[:, t, ys, xs] = res

    stream(tasks, accumulate, client=client, progress=progress, cancel=cancel)
