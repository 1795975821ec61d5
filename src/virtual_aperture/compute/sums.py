"""Aperture sums: for every label of a scan-space labels image, the summed diffraction pattern."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
from .validate import prepare_labels, prepare_shifts
from .virtual import block_plan

#: frames gathered per kernel call on in-memory data (progress/cancel granularity)
_BATCH_BYTES = 128 * 2**20


@dataclass
class ApertureSumResult:
    """The summed pattern of one labelled aperture.

    Attributes
    ----------
    label
        The label value in the labels image.
    sum
        float64 ``(k_y, k_x)`` (4D data) or ``(n_tilt, k_y, k_x)`` (5D): sum of the patterns of
        every scan position with this label, in detector counts (exact for integer data).
    count
        Number of scan positions summed: an ``int`` (4D) or an int array ``(n_tilt,)`` (5D).
    """

    label: int
    sum: np.ndarray
    count: int | np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """``sum / count``; NaN for a tilt where the label covers no position."""
        c = np.asarray(self.count, dtype=np.float64)
        c = c.reshape(c.shape + (1, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 0, self.sum / np.where(c > 0, c, 1), np.nan)


def aperture_sums(
    data: Any,
    labels: Any,
    *,
    shifts: Any = None,
    client: Any = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    memory_budget: int | str | None = None,
) -> dict[int, ApertureSumResult]:
    """Sum the diffraction patterns of every labelled region, all labels in ONE pass.

    Parameters
    ----------
    data
        ``Dataset``, dask or numpy array, 4D ``(sy, sx, ky, kx)`` or 5D ``(n_tilt, sy, sx, ky, kx)``.
    labels
        Integer labels over the scan ``(sy, sx)`` (the same for every tilt) or, for 5D data,
        ``(n_tilt, sy, sx)``. 0 = not in any aperture. Negative or float labels are rejected.
    shifts
        Optional per-position origin shift ``(sy, sx, 2)`` (or ``(n_tilt, sy, sx, 2)``) in detector
        pixels: each pattern is resampled bilinearly at ``k + shift`` before summing (descan
        compensation, aligning every central beam; zero where the shifted pattern leaves the
        detector). Same convention as :func:`virtual_image`, so the virtual image of an aligned
        sum with mask ``M`` equals the sum of ``virtual_image(data, M, shifts=shifts)``.
    client, progress, cancel, memory_budget
        As in :func:`virtual_image`.

    Returns
    -------
    dict[int, ApertureSumResult]
        One entry per label present, in increasing label order. Only the data under non-zero
        labels is read: exactly those frames from ``.npy``/``.mib`` files opened by
        ``open_dataset``, the storage chunks holding a label from zarr/HDF5, the dask chunks
        holding one otherwise.
    """
    src = Source(data)
    lab = prepare_labels(labels, src.n_tilt, src.scan_shape, src.is5d)
    sh = prepare_shifts(shifts, src.n_tilt, src.scan_shape, src.is5d)
    client = check_client(client)
    budget = parse_memory_budget(memory_budget)
    ids = np.unique(lab[lab > 0])
    if ids.size == 0:
        if progress is not None:
            progress(0, 0)
        return {}
    dense = np.where(lab > 0, np.searchsorted(ids, lab), -1)  # (T, sy, sx) label index or -1
    acc = np.zeros((src.n_tilt, ids.size, src.ky * src.kx))
    if client is None and src.file is not None:
        _from_file(src, dense, sh, acc, budget, progress, cancel)
    elif client is None and src.in_memory:
        _in_memory(src, dense, sh, acc, progress, cancel)
    else:
        _streamed(src, dense, sh, acc, client, budget, progress, cancel)
    counts = np.stack([np.bincount(dense[t][dense[t] >= 0], minlength=ids.size) for t in range(src.n_tilt)])
    out = {}
    for i, label in enumerate(ids.tolist()):
        s = acc[:, i].reshape(src.n_tilt, src.ky, src.kx)
        c = counts[:, i]
        out[int(label)] = ApertureSumResult(
            int(label), s if src.is5d else s[0], c.copy() if src.is5d else int(c[0])
        )
    return out


def _in_memory(
    src: Source,
    dense: np.ndarray,
    sh: np.ndarray | None,
    acc: np.ndarray,
    progress: ProgressFn | None,
    cancel: Any,
) -> None:
    per_batch = max(1, _BATCH_BYTES // src.frame_bytes)
    work = []
    for t in range(src.n_tilt):
        ys, xs = np.nonzero(dense[t] >= 0)
        for s0 in range(0, ys.size, per_batch):
            work.append((t, ys[s0 : s0 + per_batch], xs[s0 : s0 + per_batch]))
    if progress is not None:
        progress(0, len(work))
    for i, (t, ys, xs) in enumerate(work):
        check_cancel(cancel)
        lab_t = dense[t, ys, xs]
        for flat, local, sel in src.frames_groups(t, ys, xs):
            with kernels.all_threads():
                _accumulate(
                    flat, local, lab_t[sel], None if sh is None else sh[t, ys[sel], xs[sel]], acc[t], src
                )
        if progress is not None:
            progress(i + 1, len(work))


def _from_file(
    src: Source,
    dense: np.ndarray,
    sh: np.ndarray | None,
    acc: np.ndarray,
    budget: int,
    progress: ProgressFn | None,
    cancel: Any,
) -> None:
    """A frame-addressable file: only the labelled frames are read, a group at a time per local
    thread, each summed by a one-thread kernel into partial sums of the labels it holds."""
    work = []
    for t in range(src.n_tilt):
        ys, xs = np.nonzero(dense[t] >= 0)
        for sel, idx in src.file_groups(t, ys, xs, budget):
            work.append((t, ys[sel], xs[sel], idx))

    def one(item: tuple[int, np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        t, ys, xs, idx = item
        present, lab = np.unique(dense[t, ys, xs], return_inverse=True)
        part = np.zeros((present.size, src.ky * src.kx))
        if sh is None and src.fused:  # reduce the stored records in place (.mib): no decoded copy
            assert src.file is not None
            rec = src.read_records(idx)
            fused.sum_into(
                src.file, rec, np.arange(idx.size, dtype=np.int64), lab.reshape(-1).astype(np.int64), part
            )
            return present, part
        flat, local = src.read_group(idx)
        with kernels.single_thread():
            _accumulate(
                flat,
                local,
                lab.reshape(-1).astype(np.int64),
                None if sh is None else sh[t, ys, xs],
                part,
                src,
            )
        return present, part

    def accumulate(i: int, res: tuple[np.ndarray, np.ndarray]) -> None:
        present, part = res
        acc[work[i][0], present] += part

    run_local(work, one, accumulate, progress=progress, cancel=cancel)


def _accumulate(
    flat: np.ndarray, local: np.ndarray, lab: np.ndarray, shifts2: np.ndarray | None, acc_t: Any, src: Source
) -> None:
    """Add frames ``flat[local]`` to rows ``lab`` of ``acc_t`` (L, K), resampled by ``shifts2`` if given."""
    if shifts2 is None:
        kernels.gather_sum(flat, local, lab, np.ones(local.size), acc_t)
    else:
        kernels.gather_sum_shifted(
            flat.reshape(-1, src.ky, src.kx),
            local,
            lab,
            np.ascontiguousarray(shifts2),
            acc_t.reshape(-1, src.ky, src.kx),
        )


def _sum_task(
    block5: np.ndarray, dense_block: np.ndarray, shifts3: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One dask task: partial sums of a (1, cy, cx, ky, kx) chunk for the labels it holds."""
    _, cy, cx, ky, kx = block5.shape
    flat = np.ascontiguousarray(block5[0]).reshape(cy * cx, ky * kx)
    lab = dense_block.reshape(-1)
    pos = np.flatnonzero(lab >= 0).astype(np.int64)
    present, local = np.unique(lab[pos], return_inverse=True)
    part = np.zeros((present.size, ky * kx))
    local = local.astype(np.int64).reshape(-1)
    with kernels.single_thread():
        if shifts3 is None:
            kernels.gather_sum(flat, pos, local, np.ones(pos.size), part)
        else:
            kernels.gather_sum_shifted(
                flat.reshape(-1, ky, kx), pos, local, shifts3.reshape(-1, 2)[pos], part.reshape(-1, ky, kx)
            )
    return present, part


def _streamed(
    src: Source,
    dense: np.ndarray,
    sh: np.ndarray | None,
    acc: np.ndarray,
    client: Any,
    budget: int,
    progress: ProgressFn | None,
    cancel: Any,
) -> None:

    if client is None and src.store_direct:
        _from_store(src, dense, sh, acc, progress, cancel)
        return
    if src.store is not None:
        tasks, where = _store_tasks(src, dense, sh, client, budget)
    else:
        tasks, where = _chunk_tasks(src, dense, sh, client, budget)

    def accumulate(k: int, res: Any) -> None:
        present, part = res
        acc[where[k], present] += part

    check_cancel(cancel)
    stream(tasks, accumulate, client=client, progress=progress, cancel=cancel)


def _from_store(
    src: Source,
    dense: np.ndarray,
    sh: np.ndarray | None,
    acc: np.ndarray,
    progress: ProgressFn | None,
    cancel: Any,
) -> None:
    """A chunked store on local threads without dask: each storage chunk holding a label is read,
    decoded and summed at once by one thread (the others are never read)."""
    pieces = [
        (t, y0, ny, x0, nx)
        for t, y0, ny, x0, nx in src.store_pieces(0)  # one storage chunk each
        if (dense[t, y0 : y0 + ny, x0 : x0 + nx] >= 0).any()
    ]

    def one(piece: tuple[int, int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        t, y0, ny, x0, nx = piece
        d = np.ascontiguousarray(dense[t, y0 : y0 + ny, x0 : x0 + nx])
        s3 = None if sh is None else sh[t, y0 : y0 + ny, x0 : x0 + nx]
        return _sum_task(src.read_store_piece(piece)[None], d, s3)

    def accumulate(i: int, res: tuple[np.ndarray, np.ndarray]) -> None:
        present, part = res
        acc[pieces[i][0], present] += part

    run_local(pieces, one, accumulate, progress=progress, cancel=cancel)


def _read_tile(store: Any, key: tuple[slice, ...], is5d: bool) -> np.ndarray:
    """One region of a chunked store as a 5D (1, ny, nx, ky, kx) block."""
    block = np.asarray(store[key if is5d else key[1:]])
    return block if is5d else block[None]


def _store_tasks(
    src: Source, dense: np.ndarray, sh: np.ndarray | None, client: Any, budget: int
) -> tuple[list[Any], list[int]]:
    """Tasks over a chunked store that read only the storage chunks holding a label: per band of
    storage-chunk rows, each run of consecutive labelled storage chunks (up to the chunk size the
    budget allows) is one read."""
    from dask import delayed

    assert src.store_chunks is not None
    cy, cx = (min(c, n) for c, n in zip(src.store_chunks, src.scan_shape))
    workers = local_workers() if client is None else max(1, sum(client.nthreads().values()))
    max_frames = max(cy * cx, budget // (2 * (workers + 1)) // src.frame_bytes)
    per_run = max(1, max_frames // (cy * cx))  # storage chunks per read
    store = delayed(src.store, pure=True)
    tasks, where = [], []
    for t in range(src.n_tilt):
        for y0 in range(0, src.sy, cy):
            y1 = min(src.sy, y0 + cy)
            band = dense[t, y0:y1]
            cols = np.asarray((band >= 0).any(axis=0))
            has = [bool(cols[j : j + cx].any()) for j in range(0, src.sx, cx)]
            j = 0
            while j < len(has):
                if not has[j]:
                    j += 1
                    continue
                j1 = j
                while j1 < len(has) and has[j1] and j1 - j < per_run:
                    j1 += 1
                x0, x1 = j * cx, min(src.sx, j1 * cx)
                key = (slice(t, t + 1), slice(y0, y1), slice(x0, x1), slice(None), slice(None))
                d = np.ascontiguousarray(dense[t, y0:y1, x0:x1])
                s3 = None if sh is None else sh[t, y0:y1, x0:x1]
                block = delayed(_read_tile, pure=True)(store, key, src.is5d)
                tasks.append(delayed(_sum_task, pure=True)(block, d, s3))
                where.append(t)
                j = j1
    return tasks, where


def _chunk_tasks(
    src: Source, dense: np.ndarray, sh: np.ndarray | None, client: Any, budget: int
) -> tuple[list[Any], list[int]]:
    """Tasks over the dask chunks that hold a label (chunks without any are never read)."""
    from dask import delayed

    arr, (tb, yb, xb), _ = block_plan(src, client, budget)
    blocks = arr.to_delayed()
    tasks, where = [], []
    for t in range(len(tb) - 1):
        for i in range(len(yb) - 1):
            for j in range(len(xb) - 1):
                d = dense[tb[t], yb[i] : yb[i + 1], xb[j] : xb[j + 1]]
                if (d >= 0).any():  # chunks without any label are never read
                    s3 = None if sh is None else sh[tb[t], yb[i] : yb[i + 1], xb[j] : xb[j + 1]]
                    tasks.append(
                        delayed(_sum_task, pure=True)(blocks[t, i, j, 0, 0], np.ascontiguousarray(d), s3)
                    )
                    where.append(tb[t])
    return tasks, where
