"""zarr: virtual-aperture's own store (``save_dataset``) and any zarr array or group.

Layout of our store (a zarr v3 group): array ``data`` chunked over scan positions only (whole
detector frames per chunk), and group attribute ``virtual_aperture`` =
``{"format_version": 1, "dims": [...], "calibration": {...}, "metadata": {...}, "source": ...}``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import zarr

from .._atomic import atomic_path, check_target
from ..model.calibration import Calibration
from ..model.dataset import DEFAULT_CHUNK_BYTES, Dataset, scan_chunks
from .errors import fail
from .formats import Raw, check_declared, store_chunks

STORE_KEY = "virtual_aperture"
STORE_VERSION = 1


def _json_safe(obj: Any, depth: int = 0) -> Any:
    """A JSON-serialisable copy (numpy → Python, big arrays summarised, the rest as strings)."""
    if depth > 20:
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _json_safe(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v, depth + 1) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.size <= 4096 else f"<array shape={obj.shape} dtype={obj.dtype}>"
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, bytes):
        return obj.decode(errors="replace")
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def save_dataset(
    dataset: Dataset,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Any = None,
) -> Path:
    """Write ``dataset`` to a zarr store that :func:`open_dataset` reads back exactly.

    The data streams chunk by chunk from the dask graph into the store (never materialised
    whole). Chunks span scan positions only (whole detector frames), ``chunk_bytes`` each.

    Parameters
    ----------
    dataset
        The 4D or 5D dataset to write.
    path
        Folder to create (conventionally ending in ``.zarr``).
    overwrite
        Replace an existing store at ``path``; otherwise an existing path is an error. The new
        store is written beside it and swapped in when complete, so ``dataset`` may be read
        from ``path`` itself.
    chunk_bytes
        Target bytes per chunk (at least 1).
    progress
        Optional callable ``progress(done, total)`` called after each chunk row is written.

    Returns
    -------
    pathlib.Path
        The store's path.
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"save_dataset needs a Dataset, got {type(dataset).__name__}")
    from .formats import check_chunk_bytes

    target = check_chunk_bytes(chunk_bytes)
    path = check_target(path, overwrite)
    data = dataset.data
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    chunks = scan_chunks(tuple(data.shape), data.dtype.itemsize, target_bytes=target)
    data = data.rechunk(chunks)
    attrs = {
        "format_version": STORE_VERSION,
        "dims": list(dataset.dims),
        "calibration": _json_safe(dataset.calibration.to_dict()),
        "metadata": _json_safe(dataset.metadata),
        "source": dataset.source,
    }
    json.dumps(attrs)  # fail here, before writing, if something is still not serialisable
    # written under a temporary name beside ``path`` and moved into place when complete: an error
    # or Ctrl-C leaves no partial store, and a dataset read from ``path`` itself (overwrite=True)
    # is read whole before its store is replaced
    with atomic_path(path, overwrite=overwrite, directory=True) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        root.attrs[STORE_KEY] = attrs
        arr = root.create_array(
            "data",
            shape=data.shape,
            dtype=data.dtype,
            chunks=chunks,
            dimension_names=list(dataset.dims),
            config={"write_empty_chunks": True},  # type: ignore[arg-type]  # a valid ArrayConfigParams dict
        )
        # stream slabs along the first axis; dask and zarr chunks coincide, so every task writes
        # whole zarr chunks and no lock is needed
        bounds = np.cumsum((0,) + data.chunks[0])
        total = len(bounds) - 1
        per = total if progress is None else max(1, math.ceil(total / 50))
        for i in range(0, total, per):
            lo, hi = int(bounds[i]), int(bounds[min(total, i + per)])
            da.store(data[lo:hi], arr, regions=(slice(lo, hi),), lock=False)  # type: ignore[arg-type]  # zarr target
            if progress is not None:
                progress(min(total, i + per), total)
        count, nbytes = _chunk_files(tmp / "data")
        root.attrs[STORE_KEY] = {
            **attrs,
            "shape": list(data.shape),
            "chunks_written": {"count": count, "bytes": nbytes},
        }
    return path


def _chunk_files(array_dir: Path) -> tuple[int, int]:
    """Number and total size of the chunk files of a zarr array folder (metadata files left out)."""
    count = nbytes = 0
    for dirpath, _dirs, files in os.walk(array_dir):
        for name in files:
            if name in _META_FILES:
                continue
            count += 1
            nbytes += os.stat(os.path.join(dirpath, name)).st_size
    return count, nbytes


_META_FILES = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}


class ZarrSource:
    """Array-like over one array of a zarr store that turns a chunk that does not decode into a
    :class:`ReadError` naming the store and the chunk. Picklable (holds the path)."""

    def __init__(self, store: str, name: str, shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...]):
        self.store, self.name, self.shape, self.dtype = str(store), name, tuple(shape), np.dtype(dtype)
        self.chunks, self.ndim = tuple(chunks), len(shape)
        self._arr: Any = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arr": None}

    def _array(self) -> Any:
        if self._arr is None:
            node = zarr.open(self.store, mode="r")
            self._arr = node[self.name] if self.name else node  # type: ignore[index]  # a Group when named
        return self._arr

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self._array()[key])
        except Exception as exc:  # noqa: BLE001 - codecs raise RuntimeError, ValueError, ...
            where = f"array '{self.name}' " if self.name else ""
            raise fail(
                self.store,
                f"{where}chunk {self._bad_chunk(key)} cannot be decoded "
                f"({type(exc).__name__}: {exc}); the chunk file is damaged or "
                "truncated",
            ) from exc

    def _bad_chunk(self, key: Any) -> str:
        """The index of the first storage chunk in region ``key`` that does not decode (error path only)."""
        import itertools

        keys = key if isinstance(key, tuple) else (key,)
        ranges = []
        for k, c, n in zip(keys, self.chunks, self.shape):
            if isinstance(k, slice):
                lo, hi = k.start or 0, n if k.stop is None else k.stop
            else:
                lo, hi = int(k), int(k) + 1
            ranges.append(range(lo // c, (max(lo, hi - 1)) // c + 1))
        for idx in itertools.product(*ranges):
            sl = tuple(slice(i * c, min(n, (i + 1) * c)) for i, c, n in zip(idx, self.chunks, self.shape))
            try:
                self._array()[sl]
            except Exception:  # noqa: BLE001
                return ".".join(map(str, idx))
        return f"in region {key}"


def _check_chunks(path: Path, arr: Any, name: str, fill_missing: bool) -> None:
    """Declared size sane, and (unless ``fill_missing``) every chunk present."""
    where = f"array '{name}' " if name else ""
    check_declared(path, tuple(arr.shape), arr.dtype.itemsize, tuple(arr.chunks), what=where)
    if fill_missing:
        return
    total, have = int(arr.nchunks), int(arr.nchunks_initialized)
    if have < total:
        raise fail(
            path,
            f"{where}{total - have} of {total} chunks are missing (zarr would read them as the "
            f"fill value {arr.fill_value!r}); if the writer left out empty chunks on purpose, "
            "pass fill_missing=True (--fill-missing)",
        )


def _from_zarr(path: Path, arr: Any, name: str, chunks: Any) -> da.Array:
    src = ZarrSource(str(path), name, arr.shape, arr.dtype, arr.chunks)
    stamp = os.stat(path).st_mtime_ns
    return da.from_array(
        src, chunks=chunks or arr.chunks, asarray=False, fancy=False, name=f"zarr-{path}-{name}-{stamp}"
    )


def read_zarr(path: Path, *, target_bytes: int, fill_missing: bool = False) -> Raw:
    """A zarr array or group: our own store (exact round trip) or any 4D/5D array in it."""
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # noqa: BLE001 - zarr raises many kinds
        raise fail(path, f"not a readable zarr store ({type(exc).__name__}: {exc})") from exc
    if isinstance(node, zarr.Array):
        arr, attrs, name = node, {}, ""
    else:
        attrs = dict(node.attrs)
        own = attrs.get(STORE_KEY)
        if isinstance(own, dict):
            return _read_own(node, own, path, fill_missing)
        arrays = [(n, a) for n, a in _walk(node) if a.ndim in (4, 5)]
        if not arrays:
            found = [f"{n} {a.shape}" for n, a in _walk(node)][:10]
            if found:
                raise fail(
                    path,
                    f"no 4D or 5D array in the zarr group (found: {', '.join(found)}); "
                    "4D (scan_y, scan_x, k_y, k_x) or 5D data is needed",
                )
            raise fail(path, "the zarr group holds no arrays")
        name, arr = max(arrays, key=lambda t: math.prod(t[1].shape))
    _check_chunks(path, arr, name, fill_missing)
    data = _from_zarr(
        path,
        arr,
        name,
        # whole store chunks per dask chunk: none is decoded twice
        store_chunks(tuple(arr.shape), arr.dtype.itemsize, tuple(arr.chunks), target_bytes)
        if arr.ndim in (4, 5)
        else None,
    )
    return Raw(
        data,
        "zarr",
        metadata={"array": name, "attrs": _json_safe(dict(arr.attrs)), "group_attrs": _json_safe(attrs)},
        aligned=True,
    )


def _walk(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name, member in group.members():
        if isinstance(member, zarr.Array):
            out.append((prefix + name, member))
        else:
            out.extend(_walk(member, prefix + name + "/"))
    return out


def _read_own(group: Any, attrs: dict[str, Any], path: Path, fill_missing: bool = False) -> Raw:
    if int(attrs.get("format_version", 0)) > STORE_VERSION:
        raise fail(path, f"written by a newer virtual-aperture (store version {attrs['format_version']})")
    if "data" not in group:
        raise fail(path, "virtual-aperture store without its 'data' array")
    arr = group["data"]
    check_declared(path, tuple(arr.shape), arr.dtype.itemsize, tuple(arr.chunks))
    if "shape" in attrs and list(attrs["shape"]) != list(arr.shape):
        raise fail(
            path,
            f"the data array has shape {tuple(arr.shape)} but the store was written with "
            f"{tuple(attrs['shape'])}: its metadata was edited or damaged",
        )
    written = attrs.get("chunks_written")
    if isinstance(written, dict) and not fill_missing:
        count, nbytes = _chunk_files(path / "data")
        if count != written.get("count"):
            raise fail(
                path,
                f"{written.get('count')} chunk files were written but {count} are there: "
                "the store is incomplete (copied partly, or chunks deleted)",
            )
        if nbytes != written.get("bytes"):
            raise fail(
                path,
                f"the chunk files hold {nbytes} bytes but {written.get('bytes')} were written: "
                "a chunk is truncated or was changed",
            )
    elif not fill_missing:
        _check_chunks(path, arr, "data", False)  # stores written before the record existed
    data = _from_zarr(path, arr, "data", None)  # the store's chunks are already scan chunks
    try:
        cal = Calibration.from_dict(attrs.get("calibration") or {})
    except (TypeError, ValueError) as exc:
        raise fail(path, f"inconsistent calibration in the store ({exc})") from exc
    raw = Raw(data, "virtual-aperture", metadata=dict(attrs.get("metadata") or {}))
    raw.found = {"calibration": cal, "source": attrs.get("source")}
    return raw
