"""napari writer: a grains Labels layer to TIFF or zarr, keeping the grain names."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .reader import META_KEY


def grain_names_from_meta(meta: dict) -> dict[int, str]:
    info = (meta.get("metadata") or {}).get(META_KEY) or {}
    return {int(k): str(v) for k, v in (info.get("grain_names") or {}).items()}


def write_grains(path: str, data: Any, meta: dict) -> list[str]:
    """Write a grain label image to ``.tif``/``.tiff`` (names in the JSON description) or ``.zarr``.

    Returns the list of paths written (napari writer contract).
    """
    labels = np.asarray(data)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"grain labels must be integers, got {labels.dtype}")
    names = grain_names_from_meta(meta)
    present = {int(v) for v in np.unique(labels) if v}
    names = {k: names.get(k, f"grain {k}") for k in sorted(present | set(names))}
    info = {
        "grain_names": {str(k): v for k, v in names.items()},
        "axes": "ZYX" if labels.ndim == 3 else "YX",
        "scale": [float(s) for s in meta.get("scale", [1.0] * labels.ndim)],
    }
    ext = os.path.splitext(path.rstrip("/\\"))[1].lower()
    if ext in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, labels, description=json.dumps(info), metadata=None)
    elif ext == ".zarr":
        import zarr

        root = zarr.open_group(path, mode="w")
        root.create_array("labels", data=labels)
        root.attrs.update(info)
    else:
        raise ValueError(f"cannot write grains to {path}: use .tif, .tiff or .zarr")
    return [path]


def read_grain_names(path: str) -> dict[int, str]:
    """The grain names stored by :func:`write_grains` in a TIFF or zarr file."""
    if path.rstrip("/\\").lower().endswith(".zarr"):
        import zarr

        attrs = dict(zarr.open_group(path, mode="r").attrs)
    else:
        import tifffile

        with tifffile.TiffFile(path) as tf:
            attrs = json.loads(tf.pages[0].description)
    return {int(k): v for k, v in attrs.get("grain_names", {}).items()}
