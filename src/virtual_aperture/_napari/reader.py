"""napari reader: open a 4D/5D-STEM file as a real-space navigator image.

The navigator is the total-intensity virtual image (the sum over the whole detector at every scan
position) computed on the compute engine; for a 5D tilt series it has a leading tilt axis. The
:class:`~virtual_aperture.Dataset` rides along in ``layer.metadata["virtual_aperture"]`` so the
workspace widgets can find it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

META_KEY = "virtual_aperture"


def _as_path(path: Any) -> str | list[str] | None:
    """A path, or a list of paths (one 4D scan per tilt); None for anything else."""
    if isinstance(path, (list, tuple)):
        if not path or not all(isinstance(p, (str, os.PathLike)) for p in path):
            return None
        return os.fspath(path[0]) if len(path) == 1 else [os.fspath(p) for p in path]
    if not isinstance(path, (str, os.PathLike)):
        return None
    return os.fspath(path)


def get_reader(path: Any) -> Callable[[Any], list] | None:
    """napari ``get_reader`` hook: a reader function for supported files, else None.

    A list of several files is opened as a tilt series (one 4D scan per tilt). The file is
    opened lazily here, so unreadable files are rejected (None) before napari commits to us.
    """
    p = _as_path(path)
    if p is None:
        return None
    try:
        from virtual_aperture import io

        if not io.can_read(p):
            return None
        ds = with_source(io.open_dataset(p), p)
    except Exception:  # noqa: BLE001 - napari asks every plugin; failing to open = not ours
        return None

    def _read(_path: Any) -> list:
        return navigator_layers(ds)

    return _read


def with_source(ds: Any, path: Any) -> Any:
    """``ds`` with ``source`` = the file just opened (a re-opened store remembers where its data came
    from: that goes to ``metadata["original_source"]``), so names and the autosave follow the file."""
    from virtual_aperture.model import Dataset

    if not isinstance(path, str) or ds.source == path:
        return ds
    meta = dict(ds.metadata)
    if ds.source:
        meta.setdefault("original_source", ds.source)
    return Dataset(ds.data, ds.calibration, source=path, metadata=meta)


def total_intensity(ds: Any) -> np.ndarray:
    """Sum over the detector at every scan position: ``(sy, sx)`` or ``(tilt, sy, sx)``."""
    from virtual_aperture.compute import virtual_image

    mask = np.ones(ds.detector_shape, dtype=bool)
    image = np.asarray(virtual_image(ds, mask), dtype=np.float32)
    shape = (ds.n_tilts, *ds.scan_shape) if ds.is_tilt_series else tuple(ds.scan_shape)
    return image.reshape(shape)


def navigator_layers(ds: Any, *, name: str | None = None) -> list[tuple[Any, dict, str]]:
    """LayerData tuples for a dataset: one navigator image carrying the dataset in its metadata."""
    image = total_intensity(ds)
    step = float(ds.calibration.scan_step_nm)
    scale = (step, step) if image.ndim == 2 else (1.0, step, step)
    axis_labels = ("scan_y", "scan_x") if image.ndim == 2 else ("tilt", "scan_y", "scan_x")
    units = ("nm", "nm") if image.ndim == 2 else ("pixel", "nm", "nm")
    base = name or (os.path.basename(ds.source.rstrip("/\\")) if ds.source else "dataset")
    meta = {
        "name": f"{base} · total intensity",
        "colormap": "gray",
        "scale": scale,
        "axis_labels": axis_labels,
        "units": units,
        "metadata": {META_KEY: {"dataset": ds, "role": "navigator"}},
    }
    return [(image, meta, "image")]


def find_dataset_layer(viewer: Any) -> Any:
    """The newest layer whose metadata carries a virtual-aperture dataset (navigator role)."""
    for layer in reversed(list(viewer.layers)):
        info = layer.metadata.get(META_KEY) if isinstance(layer.metadata, dict) else None
        if info and info.get("role") == "navigator" and info.get("dataset") is not None:
            return layer
    return None
