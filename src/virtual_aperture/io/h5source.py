"""Picklable lazy access to one HDF5 dataset (shared by the h5py readers and the rosettasciio
readers; a leaf module so neither imports the other)."""

from __future__ import annotations

from typing import Any

import dask.array as da
import h5py
import numpy as np

from .errors import fail


class H5Source:
    """Picklable array-like for one HDF5 dataset (file path + dataset name), so dask graphs built
    on it also run on a ``dask.distributed`` cluster (h5py objects cannot be pickled)."""

    def __init__(
        self,
        filename: str,
        name: str,
        shape: tuple[int, ...],
        dtype: np.dtype,
        chunks: tuple[int, ...] | None = None,
    ):
        self.filename, self.name, self.shape, self.dtype = str(filename), name, tuple(shape), np.dtype(dtype)
        self.ndim = len(self.shape)
        if chunks:  # the storage chunks (the compute engine reads whole ones only)
            self.chunks = tuple(int(c) for c in chunks)

    def __getitem__(self, key: Any) -> np.ndarray:
        # open per read (open + one-frame read + close measured at 2.8 ms on a loaded 2-core
        # machine, against chunks of ~100 MB): no handle outlives the
        # read, so the file can be rewritten or deleted while datasets built on it exist
        try:
            with h5py.File(self.filename, "r") as f:
                return f[self.name][key]
        except Exception as exc:  # noqa: BLE001 - h5py raises OSError/KeyError/RuntimeError
            raise fail(
                self.filename,
                f"dataset {self.name} cannot be read at {_region(key)} "
                f"({type(exc).__name__}: {exc}); the file may be damaged",
            ) from exc

    @classmethod
    def of(cls, ds: h5py.Dataset) -> H5Source:
        return cls(ds.file.filename, ds.name, ds.shape, ds.dtype, ds.chunks)


def _region(key: Any) -> str:
    keys = key if isinstance(key, tuple) else (key,)
    return "[" + ", ".join(f"{k.start or 0}:{k.stop}" if isinstance(k, slice) else str(k) for k in keys) + "]"


def picklable(data: da.Array) -> da.Array:
    """Rebuild a dask array that reads one h5py dataset (maybe transposed, as rosettasciio does
    for Berkeley EMD) on an :class:`H5Source`; other arrays are returned unchanged."""
    found = [v for v in data.__dask_graph__().values() if isinstance(v, h5py.Dataset)]
    if len({(d.file.filename, d.name) for d in found}) != 1:
        return data
    ds = found[0]
    src = da.from_array(
        H5Source.of(ds), chunks=ds.chunks or "auto", name=f"h5src-{ds.file.filename}-{ds.name}"
    )
    if tuple(ds.shape) == tuple(data.shape):
        return src
    if tuple(ds.shape[::-1]) == tuple(data.shape):
        return src.T
    return data
