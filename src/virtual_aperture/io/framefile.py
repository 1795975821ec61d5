"""Frame-addressable files: detector frames at a fixed byte stride (``.npy`` in C order, Merlin
``.mib``), read through short-lived memory maps.

A :class:`FrameFile` is what ``open_dataset`` hands to dask (``da.from_array``) for these formats,
and :class:`virtual_aperture.compute.source.Source` recognises it in the graph: the compute engine
then reads the file itself, a slab of scan rows or a list of frames at a time, without dask:

* ``.npy`` (native byte order, C order): the frames are used in place (zero copy) from a memory
  map of just that slab, unmapped after use (so resident memory stays bounded);
* ``.mib`` (big-endian pixels behind a header per frame, stored upside down) and EMPAD: the stored
  records are read (``readinto``) into a reused buffer (:meth:`FrameFile.records`) and reduced
  there by ``virtual_aperture.compute.fused``, which skips the headers, swaps the bytes and reads
  rows in reverse while summing; shifted masks/sums decode the frames first (one parallel pass
  dropping the headers, swapping the bytes and flipping rows into a reused native buffer).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numba
import numpy as np

from .errors import fail


class FrameFile:
    """Frames of ``shape[-2:]`` at ``stride`` bytes from each other, the first at ``offset``.

    ``shape`` is the logical shape (4D ``(sy, sx, ky, kx)`` or 5D with a leading tilt axis, frames in
    C order), ``dtype`` the stored dtype (any byte order; reads give the native one), ``flip_y``
    reverses the detector rows. Picklable (holds the path, not a map), so it also works with a
    distributed client. ``[...]`` returns a native, C-contiguous copy of a region (dask's getter).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        shape: tuple[int, ...],
        dtype: Any,
        offset: int,
        stride: int | None = None,
        lead: int | None = None,
        flip_y: bool = False,
    ) -> None:
        self.path = str(path)
        self.shape = tuple(int(s) for s in shape)
        self.ndim = len(self.shape)
        self.file_dtype = np.dtype(dtype)
        self.dtype = self.file_dtype.newbyteorder("=")
        self.offset = int(offset)
        self.frame_shape = self.shape[-2:]
        self.frame_nbytes = math.prod(self.frame_shape) * self.file_dtype.itemsize
        self.stride = self.frame_nbytes if stride is None else int(stride)
        self.flip_y = bool(flip_y)
        self.n_frames = math.prod(self.shape[:-2])
        #: bytes of each frame's record before its pixels (a header); the rest of the gap follows
        self.lead = self.stride - self.frame_nbytes if lead is None else int(lead)
        if not 0 <= self.lead <= self.stride - self.frame_nbytes or self.offset < self.lead:
            raise ValueError(f"inconsistent frame layout: stride {self.stride}, offset {self.offset}")

    @property
    def zero_copy(self) -> bool:
        """Whether frames can be used straight from the map (native, packed, not flipped)."""
        return self.file_dtype.isnative and self.stride == self.frame_nbytes and not self.flip_y

    def _map(self, first: int, count: int) -> np.ndarray:
        """A read-only map of frames ``first .. first + count`` as stored: (count, ky, kx)."""
        try:
            if self.stride == self.frame_nbytes:
                return np.memmap(
                    self.path,
                    dtype=self.file_dtype,
                    mode="r",
                    offset=self.offset + first * self.stride,
                    shape=(count, *self.frame_shape),
                )
            tail = self.stride - self.frame_nbytes - self.lead
            fields: list[tuple[Any, ...]] = [("lead", f"V{self.lead}")] if self.lead else []
            fields += [("d", self.file_dtype, self.frame_shape)] + ([("tail", f"V{tail}")] if tail else [])
            mm = np.memmap(
                self.path,
                dtype=np.dtype(fields),
                mode="r",
                offset=self.offset - self.lead + first * self.stride,
                shape=(count,),
            )
            return mm["d"]
        except (OSError, ValueError) as exc:  # e.g. the file was truncated or replaced after opening
            raise fail(
                self.path,
                f"cannot be read any more ({exc}); was it truncated or replaced after it was opened?",
            ) from exc

    def _raw(self, first: int, count: int) -> np.ndarray:
        """The bytes of the records of frames ``first .. first + count``: (count, stride)."""
        try:
            mm = np.memmap(
                self.path,
                dtype=np.uint8,
                mode="r",
                offset=self.offset - self.lead + first * self.stride,
                shape=(count * self.stride,),
            )
        except (OSError, ValueError) as exc:
            raise fail(
                self.path,
                f"cannot be read any more ({exc}); was it truncated or replaced after it was opened?",
            ) from exc
        return mm.reshape(count, self.stride)

    def _decode(self, first: int, count: int, out: np.ndarray, index: np.ndarray | None = None) -> None:
        """Frames ``first + index`` (default: all ``count`` from ``first``) into native ``out``
        (n, ky, kx): one parallel pass dropping the gaps, swapping bytes and flipping rows."""
        size = self.file_dtype.itemsize
        if (
            size not in (1, 2, 4)
            or self.file_dtype.kind not in "uif"
            or self.lead % size
            or self.stride % size
        ):
            view = self._map(first, count)
            view = view if index is None else view[index]
            np.copyto(out, view[:, ::-1] if self.flip_y else view)
            return
        decode_frames(
            self._raw(first, count).view(f"u{size}"),
            np.arange(count, dtype=np.int64) if index is None else index,
            self.lead // size,
            out.view(f"u{size}"),
            self.flip_y,
            not self.file_dtype.isnative,
        )

    @property
    def fused(self) -> bool:
        """Whether the compute engine can reduce this file's stored records in place (see
        :meth:`records`): pixels unsigned 8/16/32-bit (any byte order) or native, the header and
        tail whole items. Flipped rows are read in reverse (or the summed pattern flipped)."""
        dt, size = self.file_dtype, self.file_dtype.itemsize
        native = dt.isnative and dt.kind in "uif" and size in (1, 2, 4, 8)
        swapped = dt.kind == "u" and size in (1, 2, 4)
        return (native or swapped) and not self.lead % size and not self.stride % size

    @property
    def record_dtype(self) -> np.dtype:
        """The native item type :meth:`records` are viewed as (bytes swapped by the kernels)."""
        if self.file_dtype.isnative or self.file_dtype.itemsize == 1:
            return self.dtype
        return np.dtype(f"u{self.file_dtype.itemsize}")

    def records(self, index: np.ndarray, buf: np.ndarray | None = None) -> np.ndarray:
        """The stored records (header, pixels, tail) of sorted flat frames ``index`` read with
        ``readinto`` into ``buf`` (uint8, at least ``len(index) * stride`` bytes, reused by the
        caller), one read per run of consecutive frames: (n, stride / itemsize) of
        :attr:`record_dtype`, frame ``i``'s pixels at items ``lead / itemsize`` onwards."""
        index = np.asarray(index, dtype=np.int64)
        n, stride = index.size, self.stride
        if buf is None or buf.size < n * stride:
            buf = np.empty(n * stride, np.uint8)
        view = memoryview(buf)  # type: ignore[arg-type]  # a uint8 ndarray exports the buffer protocol
        breaks = np.flatnonzero(np.diff(index) != 1) + 1
        starts = np.concatenate([[0], breaks]).tolist()
        ends = np.concatenate([breaks, [n]]).tolist()
        try:
            with open(self.path, "rb", buffering=0) as f:
                for a, b in zip(starts, ends):
                    f.seek(self.offset - self.lead + int(index[a]) * stride)
                    pos, stop = a * stride, b * stride
                    while pos < stop:
                        got = f.readinto(view[pos:stop])
                        if not got:
                            raise OSError(f"end of file {stop - pos} bytes early")
                        pos += got
        except OSError as exc:
            raise fail(
                self.path,
                f"cannot be read any more ({exc}); was it truncated or replaced after it was opened?",
            ) from exc
        size = self.file_dtype.itemsize
        return buf[: n * stride].view(self.record_dtype).reshape(n, stride // size)

    def frames(self, first: int, count: int, out: np.ndarray | None = None) -> np.ndarray:
        """Frames ``first .. first + count`` as a native C-contiguous (count, ky, kx) array.

        Zero copy (a view of a map of just these frames) when :attr:`zero_copy`; otherwise copied
        into ``out`` (a buffer of at least ``count`` frames, reused by the caller) or a new array.
        """
        view = self._map(first, count)
        if self.zero_copy:
            return view
        buf = np.empty((count, *self.frame_shape), self.dtype) if out is None else out[:count]
        self._decode(first, count, buf)
        return buf

    def take(self, index: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Frames at sorted flat ``index`` (N,) as a native C-contiguous (N, ky, kx) array: only
        these frames are read (runs of consecutive frames one slice each)."""
        index = np.asarray(index, dtype=np.int64)
        buf = np.empty((index.size, *self.frame_shape), self.dtype) if out is None else out[: index.size]
        if index.size == 0:
            return buf
        first = int(index[0])
        self._decode(first, int(index[-1]) + 1 - first, buf, index - first)
        return buf

    def __getitem__(self, key: Any) -> np.ndarray:
        view = self._map(0, self.n_frames).reshape(self.shape)
        if self.flip_y:
            view = view[..., ::-1, :]
        return np.ascontiguousarray(view[key], dtype=self.dtype)

    def __repr__(self) -> str:
        return f"FrameFile({self.path!r}, shape={self.shape}, dtype={self.file_dtype.str})"


@numba.njit(parallel=True, cache=True, nogil=True)
def decode_frames(
    raw: np.ndarray, index: np.ndarray, gap: int, out: np.ndarray, flip: bool, swap: bool
) -> None:
    """Frames ``raw[index]`` of ``raw`` (N, stride / itemsize), in the item type of ``out``, with
    ``gap`` items before each frame's pixels, into ``out`` (n, ky, kx) unsigned 8/16/32-bit:
    bytes swapped when ``swap``, rows reversed when ``flip``. Only rows ``index`` of ``raw`` are
    touched. Whole-lane shifts, so the loops vectorise."""
    n, ky, kx = out.shape
    size = out.itemsize
    for i in numba.prange(n):
        p = index[i]
        for r in range(ky):
            sr = ky - 1 - r if flip else r
            src = raw[p, gap + sr * kx : gap + (sr + 1) * kx]
            dst = out[i, r]
            if size == 1 or not swap:
                for c in range(kx):
                    dst[c] = src[c]
            elif size == 2:
                for c in range(kx):
                    x = src[c]
                    dst[c] = (x >> 8) | (x << 8)
            else:
                for c in range(kx):
                    x = src[c]
                    dst[c] = (x >> 24) | ((x >> 8) & 0x0000FF00) | ((x << 8) & 0x00FF0000) | (x << 24)


def as_dask(ff: FrameFile, chunks: Any, name: str) -> Any:
    """``ff`` as a dask array with ``chunks`` (the compute engine finds ``ff`` in its graph)."""
    import dask.array as da

    return da.from_array(ff, chunks=chunks, asarray=False, fancy=False, name=name)


def _checked(ff: FrameFile, data: Any, chunks: Any, tag: str) -> Any | None:
    """``ff`` as a dask array if its first and last frames equal those of ``data`` (the reader's
    own array, e.g. rosettasciio's), else None."""
    if (
        tuple(ff.shape) != tuple(int(n) for n in data.shape)
        or np.dtype(data.dtype).newbyteorder("=") != ff.dtype
    ):
        return None
    sy, sx = ff.shape[:2]
    for y, x in ((0, 0), (sy - 1, sx - 1)):
        if not np.array_equal(np.asarray(data[y, x]), ff[y, x], equal_nan=ff.dtype.kind == "f"):
            return None
    stat = Path(ff.path).stat()
    return as_dask(ff, chunks, f"{tag}-{Path(ff.path).name}-{stat.st_size}-{stat.st_mtime_ns}")


def mib_frames(path: Path, data: Any, header: dict[str, Any], chunks: Any) -> Any | None:
    """A dask array over :class:`FrameFile` for a Merlin file that rosettasciio read as ``data``
    (4D, frames flipped vertically), or ``None`` when the layout is not the plain one (then
    rosettasciio's array is kept). The first and last frames are checked against rosettasciio's."""
    if getattr(data, "ndim", 0) != 4 or tuple(data.shape[-2:]) != (header["height"], header["width"]):
        return None
    if math.prod(data.shape[:2]) != header["n_frames"]:
        return None
    ff = FrameFile(
        path,
        shape=tuple(int(s) for s in data.shape),
        dtype=np.dtype(header["dtype"]),
        offset=header["header_bytes"],
        stride=header["frame_bytes"],
        flip_y=True,
    )
    return _checked(ff, data, chunks, "mib")


def empad_frames(raw: Path, data: Any, chunks: Any) -> Any | None:
    """A dask array over :class:`FrameFile` for an EMPAD ``.raw`` (little-endian float32 frames of
    128 rows then 2 metadata rows) that rosettasciio read as ``data`` (4D, 128×128 frames), or
    ``None`` if the file does not match that layout (checked on the first and last frames)."""
    if getattr(data, "ndim", 0) != 4 or tuple(data.shape[-2:]) != (128, 128):
        return None
    shape = tuple(int(s) for s in data.shape)
    stride = 130 * 128 * 4
    if Path(raw).stat().st_size < math.prod(shape[:2]) * stride:
        return None
    for flip in (False, True):
        ff = FrameFile(raw, shape=shape, dtype="<f4", offset=0, stride=stride, lead=0, flip_y=flip)
        found = _checked(ff, data, chunks, "empad")
        if found is not None:
            return found
    return None
