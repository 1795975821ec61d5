"""One view of the input data for every compute function: 4D/5D, numpy blocks or a dask array.

Everything is handled internally as 5D ``(tilt, scan_y, scan_x, k_y, k_x)`` (one tilt for 4D).
In-memory data (numpy arrays, memory maps, and dask arrays whose graph only holds numpy chunks)
is reached as numpy blocks without dask so kernels run at memory bandwidth. Files whose frames sit
at a fixed byte stride (``.npy``, Merlin ``.mib``, opened by ``open_dataset`` as a
:class:`~virtual_aperture.io.framefile.FrameFile` under dask) are read the same way, a slab of scan
rows (or a list of frames) at a time: in place from a short-lived memory map for ``.npy``; for
``.mib``/EMPAD the stored records are read into a reused buffer and reduced there by the fused
kernels of :mod:`.fused` (a decoding copy only for shifted masks/sums). Chunked stores (zarr, HDF5)
are read whole storage chunks at a time on local threads; anything else (lazy graphs, a cluster)
is streamed chunk by chunk through :mod:`.executor`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from ..io.formats import store_chunks
from ..io.framefile import FrameFile
from ..model.dataset import scan_chunks
from .executor import local_workers

#: rows of scan per in-memory slab are chosen so a slab holds about this many bytes
SLAB_BYTES = 64 * 2**20
#: frames decoded at a time from a file that needs decoding (.mib): the buffer stays in cache
DECODE_BYTES = 4 * 2**20


@dataclass
class Block:
    """An in-memory numpy chunk ``array`` (ct, cy, cx, ky, kx) at offset (t0, y0, x0)."""

    t0: int
    y0: int
    x0: int
    array: np.ndarray


class Source:
    """Normalised input data. ``data``: ``Dataset``, dask array or numpy array, 4D or 5D."""

    def __init__(self, data: Any) -> None:
        arr = getattr(data, "data", data) if not isinstance(data, (np.ndarray, da.Array)) else data
        if not isinstance(arr, (np.ndarray, da.Array)):
            if (
                hasattr(arr, "shape")
                and hasattr(arr, "dtype")
                and hasattr(arr, "__getitem__")
                and len(arr.shape) in (4, 5)
            ):
                # zarr / h5py arrays: stream them lazily instead of loading everything
                shape = tuple(int(s) for s in arr.shape)
                arr = da.from_array(
                    arr,
                    chunks=scan_chunks(
                        shape if len(shape) == 5 else (1, *shape), np.dtype(arr.dtype).itemsize
                    )[5 - len(shape) :],
                )
            elif hasattr(arr, "shape") and hasattr(arr, "dtype") and hasattr(arr, "__array__"):
                arr = np.asarray(arr)
            else:
                raise ValueError(
                    f"data must be a Dataset, dask array or numpy array, got {type(data).__name__}"
                )
        if arr.ndim not in (4, 5):
            raise ValueError(
                f"data must be 4D (scan_y, scan_x, k_y, k_x) or 5D (tilt, ...), got shape {arr.shape}"
            )
        if any(int(s) == 0 for s in arr.shape):
            raise ValueError(f"data has an empty axis: shape {tuple(arr.shape)}")
        if (
            not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating))
            or arr.dtype == bool
        ):
            raise ValueError(f"data must be integer or float, got dtype {arr.dtype}")
        self.is5d = arr.ndim == 5
        self.array5 = arr if self.is5d else arr[None]
        self.shape5 = tuple(int(s) for s in self.array5.shape)
        self.n_tilt, self.sy, self.sx, self.ky, self.kx = self.shape5
        self.dtype = np.dtype(arr.dtype)
        self.blocks: list[Block] | None = _numpy_blocks(arr)
        #: the frame-addressable file behind a dask array that only reads it, or None
        plain = _plain_source(arr) if self.blocks is None else None
        self.file: FrameFile | None = plain if isinstance(plain, FrameFile) else None
        #: a chunked store (zarr, HDF5) a dask array reads whole, unchanged, and its storage
        #: chunks along (scan_y, scan_x); aperture sums read only the storage chunks they need
        self.store: Any = None
        self.store_chunks: tuple[int, int] | None = None
        chunks = getattr(plain, "chunks", None)
        if self.file is None and isinstance(chunks, tuple) and len(chunks) == arr.ndim:
            self.store, self.store_chunks = plain, (int(chunks[-4]), int(chunks[-3]))
        self._local = threading.local()  # per-thread decoding buffers for self.file

    # ---- shapes ------------------------------------------------------------------------------
    @property
    def scan_shape(self) -> tuple[int, int]:
        return (self.sy, self.sx)

    @property
    def det_shape(self) -> tuple[int, int]:
        return (self.ky, self.kx)

    @property
    def in_memory(self) -> bool:
        """Whether :meth:`slabs` and :meth:`frames_groups` reach the data without dask (numpy
        blocks, or a frame-addressable file read directly)."""
        return self.blocks is not None or self.file is not None

    @property
    def frame_bytes(self) -> int:
        return self.ky * self.kx * self.dtype.itemsize

    def check_tilt(self, tilt: int) -> int:
        if not isinstance(tilt, (int, np.integer)) or isinstance(tilt, bool):
            raise ValueError(f"tilt must be an integer, got {tilt!r}")
        if not -self.n_tilt <= tilt < self.n_tilt:
            raise ValueError(f"tilt {tilt} out of range for data with {self.n_tilt} tilt(s)")
        return int(tilt) % self.n_tilt

    # ---- dask view ---------------------------------------------------------------------------
    def dask5(self, max_chunk_bytes: int | None = None) -> da.Array:
        """The data as a 5D dask array chunked over scan positions (one tilt per chunk)."""
        arr = self.array5
        if isinstance(arr, np.ndarray):
            target = min(max_chunk_bytes or 2**62, 128 * 2**20)
            arr = da.from_array(
                arr, chunks=scan_chunks(self.shape5, self.dtype.itemsize, target_bytes=target)
            )
        whole = len(arr.chunks[3]) == 1 and len(arr.chunks[4]) == 1 and max(arr.chunks[0]) == 1
        too_big = max_chunk_bytes is not None and _max_chunk_bytes(arr) > max_chunk_bytes
        if (not whole or too_big) and self.store is not None:
            # read the store afresh in smaller chunks of whole storage chunks (re-chunking the
            # dask array would split storage chunks, decode them twice and hold both copies)
            target = max_chunk_bytes or 128 * 2**20
            full = tuple(int(c) for c in self.store.chunks)
            chunks = store_chunks(tuple(self.store.shape), self.dtype.itemsize, full, target)
            fresh = da.from_array(self.store, chunks=chunks, asarray=False, fancy=False)
            arr = fresh if self.is5d else fresh[None]
        elif not whole or too_big:
            target = max_chunk_bytes or 128 * 2**20
            arr = arr.rechunk(_scan_chunks_at_most(self.shape5, self.dtype.itemsize, target))
        return arr

    # ---- in-memory access --------------------------------------------------------------------
    def slabs(self) -> Iterator[tuple[int, int, int, np.ndarray]]:
        """In-memory pieces ``(t, y0, x0, array (ny, nx, ky, kx))``, each at most ~64 MB.

        For a file each piece is valid only until the next one is asked for (its map is dropped,
        or its buffer reused).
        """
        if self.file is not None:
            yield from self._file_slabs()
            return
        assert self.blocks is not None
        for b in self.blocks:
            ct, cy, cx = b.array.shape[:3]
            row_bytes = cx * self.frame_bytes
            rows = max(1, SLAB_BYTES // max(row_bytes, 1))
            for t in range(ct):
                for r0 in range(0, cy, rows):
                    yield b.t0 + t, b.y0 + r0, b.x0, b.array[t, r0 : r0 + rows]

    def frames_groups(
        self, t: int, ys: np.ndarray, xs: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Group scan positions (ys, xs) of tilt ``t`` by the block holding them.

        Yields ``(flat_frames (N, K), local_index (m,), selector (m,))``: row ``local_index[i]`` of
        ``flat_frames`` is the frame of position ``selector[i]`` of the input. For data not in
        memory the frames are read through dask (cost ∝ the chunks touched).
        """
        ys = np.asarray(ys, dtype=np.int64)
        xs = np.asarray(xs, dtype=np.int64)
        if ys.size == 0:
            return
        if self.file is not None:
            yield from self._file_groups(t, ys, xs)
            return
        if self.blocks is None:
            arr = self.array5[t]
            for s0 in range(0, ys.size, 512):
                sel = np.arange(s0, min(ys.size, s0 + 512))
                frames = np.asarray(arr.vindex[ys[sel], xs[sel]].compute())
                yield frames.reshape(sel.size, -1), np.arange(sel.size, dtype=np.int64), sel
            return
        for b in self.blocks:
            ct, cy, cx = b.array.shape[:3]
            if not b.t0 <= t < b.t0 + ct:
                continue
            inside = (ys >= b.y0) & (ys < b.y0 + cy) & (xs >= b.x0) & (xs < b.x0 + cx)
            sel = np.flatnonzero(inside)
            if sel.size == 0:
                continue
            flat = _flat(b.array[t - b.t0])
            yield flat, ((ys[sel] - b.y0) * cx + (xs[sel] - b.x0)).astype(np.int64), sel

    # ---- frame-addressable files -------------------------------------------------------------
    def n_slabs(self) -> int:
        """How many pieces :meth:`slabs` yields."""
        if self.file is not None:
            return len(self.file_pieces())
        assert self.blocks is not None
        n = 0
        for b in self.blocks:
            ct, cy, cx = b.array.shape[:3]
            rows = max(1, SLAB_BYTES // max(cx * self.frame_bytes, 1))
            n += ct * math.ceil(cy / rows)
        return n

    def _piece_frames(self, budget: int | None = None) -> int:
        """Frames per piece: SLAB_BYTES in place, DECODE_BYTES decoded, and at most a share of
        ``budget`` (bytes) for each of the pieces a pool of local threads holds at once."""
        assert self.file is not None
        size = SLAB_BYTES if self.file.zero_copy else DECODE_BYTES
        if budget is not None:
            size = min(size, budget // (local_workers() + 1))
        return max(1, size // max(self.frame_bytes, 1))

    def file_pieces(self, budget: int | None = None) -> list[tuple[int, int, int, int, int]]:
        """Pieces ``(t, y0, ny, x0, nx)`` of a file: whole scan rows up to the piece size
        (see :meth:`_piece_frames`), else parts of one row."""
        frames = self._piece_frames(budget)
        plan = []
        for t in range(self.n_tilt):
            if frames >= self.sx:
                rows = frames // self.sx
                plan += [(t, y, min(rows, self.sy - y), 0, self.sx) for y in range(0, self.sy, rows)]
            else:
                for y in range(self.sy):
                    plan += [(t, y, 1, x, min(frames, self.sx - x)) for x in range(0, self.sx, frames)]
        return plan

    def _buf(self, n_frames: int) -> np.ndarray | None:
        """This thread's reused decoding buffer of at least ``n_frames`` frames (None in place)."""
        assert self.file is not None
        if self.file.zero_copy:
            return None
        buf = getattr(self._local, "buf", None)
        if buf is None or buf.shape[0] < n_frames:
            buf = self._local.buf = np.empty((n_frames, self.ky, self.kx), self.dtype)
        return buf

    @property
    def fused(self) -> bool:
        """Whether this is a file whose stored records the fused kernels reduce in place
        (:mod:`.fused`; not ``.npy``, whose frames are used in place anyway)."""
        return self.file is not None and not self.file.zero_copy and self.file.fused

    def piece_index(self, piece: tuple[int, int, int, int, int]) -> np.ndarray:
        """Flat frame indices of a piece from :meth:`file_pieces`."""
        t, y0, ny, x0, nx = piece
        first = (t * self.sy + y0) * self.sx + x0
        if nx == self.sx or ny == 1:
            return np.arange(first, first + ny * nx, dtype=np.int64)
        rows = first + np.arange(ny, dtype=np.int64)[:, None] * self.sx
        return (rows + np.arange(nx, dtype=np.int64)).reshape(-1)

    def read_records(self, idx: np.ndarray) -> np.ndarray:
        """The stored records of sorted flat frames ``idx`` in this thread's reused byte buffer
        (see :meth:`FrameFile.records`), valid until this thread reads the next ones."""
        ff = self.file
        assert ff is not None
        need = int(idx.size) * ff.stride
        buf = getattr(self._local, "raw", None)
        if buf is None or buf.size < need:
            buf = self._local.raw = np.empty(need, np.uint8)
        return ff.records(idx, buf)

    def read_piece(self, piece: tuple[int, int, int, int, int]) -> np.ndarray:
        """The frames of a piece from :meth:`file_pieces` as (ny, nx, ky, kx), valid until this
        thread reads the next piece (in place: a view of a map of just this piece)."""
        ff = self.file
        assert ff is not None
        t, y0, ny, x0, nx = piece
        frames = ff.frames((t * self.sy + y0) * self.sx + x0, ny * nx, self._buf(ny * nx))
        return frames.reshape(ny, nx, self.ky, self.kx)

    # ---- chunked stores (zarr, HDF5) ----------------------------------------------------------
    @property
    def store_direct(self) -> bool:
        """Whether :meth:`store_pieces` can read the store: 4D, or 5D stored one tilt per chunk."""
        return self.store is not None and (not self.is5d or int(self.store.chunks[0]) == 1)

    def store_pieces(self, target: int) -> list[tuple[int, int, int, int, int]]:
        """Pieces ``(t, y0, ny, x0, nx)`` of the store: whole storage chunks (never split, so none
        is decoded twice) merged up to ``target`` bytes, at least one each."""
        full = tuple(int(c) for c in self.store.chunks)
        shape = tuple(int(n) for n in self.store.shape)
        cy, cx = store_chunks(shape, self.dtype.itemsize, full, target)[-4:-2]
        return [
            (t, y, min(cy, self.sy - y), x, min(cx, self.sx - x))
            for t in range(self.n_tilt)
            for y in range(0, self.sy, cy)
            for x in range(0, self.sx, cx)
        ]

    def read_store_piece(self, piece: tuple[int, int, int, int, int]) -> np.ndarray:
        """The frames of a piece from :meth:`store_pieces` as a C-contiguous (ny, nx, ky, kx) array."""
        t, y0, ny, x0, nx = piece
        key = (slice(y0, y0 + ny), slice(x0, x0 + nx))
        block = self.store[(t, *key) if self.is5d else key]
        return np.ascontiguousarray(block, dtype=self.dtype)

    def _file_slabs(self) -> Iterator[tuple[int, int, int, np.ndarray]]:
        for piece in self.file_pieces():
            yield piece[0], piece[1], piece[3], self.read_piece(piece)

    def file_groups(
        self, t: int, ys: np.ndarray, xs: np.ndarray, budget: int | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Positions (ys, xs) of tilt ``t`` split into groups ``(selector, flat frame index)`` of at
        most one piece of frames each, in file order (for :meth:`read_group`)."""
        flat = (t * self.sy + np.asarray(ys, np.int64)) * self.sx + np.asarray(xs, np.int64)
        order = np.argsort(flat, kind="stable")
        per = self._piece_frames(budget)
        return [(order[s0 : s0 + per], flat[order[s0 : s0 + per]]) for s0 in range(0, order.size, per)]

    def read_group(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(flat_frames (N, K), local (n,))`` with frame ``idx[i]`` at row ``local[i]``: only
        these frames are read (in place: a map of their span, touched only at them)."""
        ff = self.file
        assert ff is not None
        if ff.zero_copy:
            lo = int(idx[0])
            view = ff.frames(lo, int(idx[-1]) + 1 - lo)
            return view.reshape(view.shape[0], -1), (idx - lo).astype(np.int64)
        frames = ff.take(idx, self._buf(idx.size))
        return frames.reshape(idx.size, -1), np.arange(idx.size, dtype=np.int64)

    def _file_groups(
        self, t: int, ys: np.ndarray, xs: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for sel, idx in self.file_groups(t, ys, xs):
            flat, local = self.read_group(idx)
            yield flat, local, sel


def _plain_source(arr: Any) -> Any:
    """The array-like a dask array reads whole, unchanged (``da.from_array(obj)``), or None."""
    if not isinstance(arr, da.Array):
        return None
    hlg = arr.__dask_graph__()
    if len(getattr(hlg, "layers", {})) != 2:
        return None
    graph = dict(hlg)
    keys = set(_iter_keys(arr.__dask_keys__()))
    if len(graph) != len(keys) + 1:
        return None
    others = [v for k, v in graph.items() if k not in keys]
    if len(others) != 1 or isinstance(others[0], np.ndarray):
        return None
    obj = others[0]
    shape = getattr(obj, "shape", None)
    if shape is None or tuple(int(n) for n in shape) != tuple(int(n) for n in arr.shape):
        return None
    if np.dtype(getattr(obj, "dtype", None)) != arr.dtype or not hasattr(obj, "__getitem__"):
        return None
    return obj


def _flat(block4: np.ndarray) -> np.ndarray:
    """(cy, cx, ky, kx) → (cy*cx, ky*kx) without copying when the block is contiguous."""
    cy, cx, ky, kx = block4.shape
    if not block4.flags.c_contiguous:
        block4 = np.ascontiguousarray(block4)
    return block4.reshape(cy * cx, ky * kx)


def _max_chunk_bytes(arr: da.Array) -> int:
    return int(math.prod(max(c) for c in arr.chunks) * arr.dtype.itemsize)


def _scan_chunks_at_most(shape5: tuple[int, ...], itemsize: int, target: int) -> tuple[int, ...]:
    _, sy, sx, ky, kx = shape5
    frame = ky * kx * itemsize
    frames = max(1, target // max(frame, 1))
    if frames >= sx:
        return (1, max(1, min(sy, frames // sx)), sx, ky, kx)
    return (1, 1, max(1, frames), ky, kx)


def _numpy_blocks(arr: Any) -> list[Block] | None:
    """Numpy blocks (as 5D) of an in-memory 4D/5D array, or None when the data must be streamed."""
    lead = arr.ndim == 4
    if isinstance(arr, np.ndarray):
        return [Block(0, 0, 0, arr[None] if lead else arr)]
    hlg = arr.__dask_graph__()
    graph = dict(hlg)
    keys = list(_iter_keys(arr.__dask_keys__()))
    if len(arr.chunks[-1]) != 1 or len(arr.chunks[-2]) != 1:
        return None
    if len(graph) == len(keys) and all(isinstance(graph.get(k), np.ndarray) for k in keys):
        # one layer of plain numpy chunks (da.from_array / da.asarray of an in-memory array)
        bounds = [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in arr.chunks]
        blocks = []
        for key in keys:
            idx = key[1:]
            chunk = graph[key]
            if lead:
                blocks.append(Block(0, int(bounds[0][idx[0]]), int(bounds[1][idx[1]]), chunk[None]))
            else:
                blocks.append(
                    Block(int(bounds[0][idx[0]]), int(bounds[1][idx[1]]), int(bounds[2][idx[2]]), chunk)
                )
        return blocks
    layers = getattr(hlg, "layers", {})
    if len(layers) == 2 and len(graph) == len(keys) + 1:
        # da.from_array(memmap or ndarray) with getter tasks over one "original-array"
        originals = [v for k, v in graph.items() if k not in set(keys) and isinstance(v, np.ndarray)]
        if len(originals) == 1 and originals[0].shape == arr.shape and originals[0].dtype == arr.dtype:
            orig = originals[0]
            return [Block(0, 0, 0, orig[None] if lead else orig)]
    return None


def _iter_keys(keys: Any) -> Iterator[Any]:
    if isinstance(keys, tuple):
        yield keys
        return
    for k in keys:
        yield from _iter_keys(k)
