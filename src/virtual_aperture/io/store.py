"""zarr: virtual-aperture's own store (``save_dataset``) and any zarr array or group.

Layout of our store (a zarr v3 group): array ``data`` chunked over scan positions only (whole
detector frames per chunk), and group attribute ``virtual_aperture`` =
``{"format_version": 1, "dims": [...], "calibration": {...}, "metadata": {...}, "source": ...}``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import zarr

from ..model.calibration import Calibration
from ..model.dataset import DEFAULT_CHUNK_BYTES, Dataset, scan_chunks
from .errors import fail
from .formats import Raw

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


def save_dataset(dataset: Dataset, path: str | os.PathLike, *, overwrite: bool = False,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES, progress: Any = None) -> Path:
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
        Replace an existing store at ``path``; otherwise an existing path is an error.
    chunk_bytes
        Target bytes per chunk.
    progress
        Optional callable ``progress(done, total)`` called after each chunk row is written.

    Returns
    -------
    pathlib.Path
        The store's path.
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"save_dataset needs a Dataset, got {type(dataset).__name__}")
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path}: already exists (pass overwrite=True to replace it)")
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    data = dataset.data
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    chunks = scan_chunks(tuple(data.shape), data.dtype.itemsize, target_bytes=int(chunk_bytes))
    data = data.rechunk(chunks)
    attrs = {
        "format_version": STORE_VERSION,
        "dims": list(dataset.dims),
        "calibration": _json_safe(dataset.calibration.to_dict()),
        "metadata": _json_safe(dataset.metadata),
        "source": dataset.source,
    }
    json.dumps(attrs)  # fail here, before writing, if something is still not serialisable
    root = zarr.open_group(str(path), mode="w")
    root.attrs[STORE_KEY] = attrs
    arr = root.create_array("data", shape=data.shape, dtype=data.dtype, chunks=chunks,
                            dimension_names=list(dataset.dims))
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
    return path


def read_zarr(path: Path, *, target_bytes: int) -> Raw:
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
            return _read_own(node, own, path)
        arrays = [(n, a) for n, a in _walk(node) if a.ndim in (4, 5)]
        if not arrays:
            found = [f"{n} {a.shape}" for n, a in _walk(node)][:10]
            if found:
                raise fail(path, f"no 4D or 5D array in the zarr group (found: {', '.join(found)}); "
                                 "4D (scan_y, scan_x, k_y, k_x) or 5D data is needed")
            raise fail(path, "the zarr group holds no arrays")
        name, arr = max(arrays, key=lambda t: math.prod(t[1].shape))
    data = da.from_zarr(arr, chunks=scan_chunks(arr.shape, arr.dtype.itemsize, target_bytes=target_bytes)
                        if arr.ndim in (4, 5) else None)
    return Raw(data, "zarr", metadata={"array": name, "attrs": _json_safe(dict(arr.attrs)),
                                        "group_attrs": _json_safe(attrs)})


def _walk(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name, member in group.members():
        if isinstance(member, zarr.Array):
            out.append((prefix + name, member))
        else:
            out.extend(_walk(member, prefix + name + "/"))
    return out


def _read_own(group: Any, attrs: dict[str, Any], path: Path) -> Raw:
    if int(attrs.get("format_version", 0)) > STORE_VERSION:
        raise fail(path, f"written by a newer virtual-aperture (store version {attrs['format_version']})")
    if "data" not in group:
        raise fail(path, "virtual-aperture store without its 'data' array")
    arr = group["data"]
    data = da.from_zarr(arr)  # the store's chunks are already scan chunks
    try:
        cal = Calibration.from_dict(attrs.get("calibration") or {})
    except (TypeError, ValueError) as exc:
        raise fail(path, f"inconsistent calibration in the store ({exc})") from exc
    raw = Raw(data, "virtual-aperture", metadata=dict(attrs.get("metadata") or {}))
    raw.found = {"calibration": cal, "source": attrs.get("source")}
    return raw
