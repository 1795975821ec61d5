"""Save and reload a virtual-aperture session (grains, detectors, calibration) — no GUI.

A session is one HDF5 file (``.h5``/``.hdf5``/``.vas``) or one zarr group (``.zarr``) holding

* ``grains``: the integer grain-label image, ``(scan_y, scan_x)`` or ``(tilt, scan_y, scan_x)``;
  label 0 = no grain, every other label is one virtual aperture;
* ``detectors/<i>``: one boolean detector mask ``(k_y, k_x)`` per named detector;
* JSON attributes: format version, dataset source, grain names, detector names, calibration and
  free-form ``extra``.

The round trip is exact: arrays keep dtype and values, names and calibration compare equal.
HDF5 files are written atomically (temporary file + rename), so an autosave interrupted by a crash
never leaves a half-written session behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_path
from .model.calibration import Calibration

__all__ = ["Session", "save_session", "load_session", "SESSION_FORMAT"]

SESSION_FORMAT = "virtual-aperture-session/1"
_HDF5_SUFFIXES = {".h5", ".hdf5", ".vas"}


@dataclass
class Session:
    """The content of a saved session (see :func:`save_session`)."""

    dataset_source: str | None
    grains: np.ndarray
    grain_names: dict[int, str]
    detectors: dict[str, np.ndarray]
    calibration: Calibration | None
    extra: dict[str, Any] = field(default_factory=dict)


def _kind(path: Path) -> str:
    if path.suffix.lower() == ".zarr":
        return "zarr"
    if path.suffix.lower() in _HDF5_SUFFIXES:
        return "hdf5"
    raise ValueError(f"session file {path} must end in .h5, .hdf5, .vas (HDF5) or .zarr")


def _validate(grains: Any, grain_names: Mapping, detectors: Mapping) -> tuple[np.ndarray, dict, dict]:
    g = np.asarray(grains)
    if g.ndim not in (2, 3) or not np.issubdtype(g.dtype, np.integer):
        raise ValueError(f"session grains must be a 2D or 3D integer label image, got {g.dtype} {g.shape}")
    names = {}
    for k, v in grain_names.items():
        if int(k) <= 0:
            raise ValueError(f"grain label {k!r} in grain_names must be a positive integer")
        names[int(k)] = str(v)
    dets = {}
    for name, mask in detectors.items():
        m = np.asarray(mask)
        if m.ndim != 2 or m.dtype != bool:
            raise ValueError(f"detector {name!r} must be a 2D boolean mask, got {m.dtype} {m.shape}")
        dets[str(name)] = m
    return g, names, dets


def save_session(
    path: str | os.PathLike,
    *,
    dataset_source: str | None,
    grains: np.ndarray,
    grain_names: Mapping[int, str],
    detectors: Mapping[str, np.ndarray] | None = None,
    calibration: Calibration | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a session to ``path`` (HDF5 by suffix ``.h5/.hdf5/.vas``, zarr for ``.zarr``).

    Parameters
    ----------
    path
        Output file (HDF5) or directory (zarr). An existing session there is replaced.
    dataset_source
        Path of the dataset the grains were drawn on (or None for in-memory data).
    grains
        Integer label image, ``(scan_y, scan_x)`` or ``(tilt, scan_y, scan_x)``.
    grain_names
        Name of each grain label.
    detectors
        Detector name -> boolean mask ``(k_y, k_x)``.
    calibration
        The dataset calibration in use.
    extra
        JSON-serialisable extra state (display settings, selected grain, ...).

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    kind = _kind(path)
    g, names, dets = _validate(grains, grain_names, detectors or {})
    try:
        meta = json.dumps(
            {
                "format": SESSION_FORMAT,
                "dataset_source": dataset_source,
                "grain_names": {str(k): v for k, v in names.items()},
                "detector_names": list(dets),
                "calibration": None if calibration is None else calibration.to_dict(),
                "extra": dict(extra or {}),
            }
        )
    except TypeError as exc:
        raise ValueError(f"session extra/calibration is not JSON-serialisable: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "hdf5":
        _write_hdf5(path, g, dets, meta)
    else:
        _write_zarr(path, g, dets, meta)
    return path


def _write_hdf5(path: Path, grains: np.ndarray, dets: dict[str, np.ndarray], meta: str) -> None:
    import h5py

    with atomic_path(path, overwrite=True) as tmp, h5py.File(tmp, "w") as f:  # closed before the rename
        f.attrs["session"] = meta
        f.create_dataset("grains", data=grains, compression="gzip", compression_opts=1)
        grp = f.create_group("detectors")
        for i, m in enumerate(dets.values()):
            grp.create_dataset(str(i), data=m)


def _write_zarr(path: Path, grains: np.ndarray, dets: dict[str, np.ndarray], meta: str) -> None:
    import zarr

    with atomic_path(path, overwrite=True, directory=True) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        root.attrs["session"] = meta
        root.create_array("grains", data=grains)
        grp = root.create_group("detectors")
        for i, m in enumerate(dets.values()):
            grp.create_array(str(i), data=m)


def load_session(path: str | os.PathLike) -> Session:
    """Read a session written by :func:`save_session`.

    Parameters
    ----------
    path
        A session file written by :func:`save_session`.

    Returns
    -------
    Session
        Grains, grain names, detectors, calibration and the dataset's source.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When ``path`` is not a virtual-aperture session.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"session file {path} does not exist")
    kind = _kind(path)
    try:
        if kind == "hdf5":
            import h5py

            with h5py.File(path, "r") as f:
                meta = json.loads(f.attrs["session"])
                grains = np.asarray(f["grains"][()])
                masks = [np.asarray(f["detectors"][str(i)][()]) for i in range(len(meta["detector_names"]))]
        else:
            import zarr

            root = zarr.open_group(str(path), mode="r")
            meta = json.loads(root.attrs["session"])
            grains = np.asarray(root["grains"][...])
            masks = [np.asarray(root["detectors"][str(i)][...]) for i in range(len(meta["detector_names"]))]
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a virtual-aperture session ({exc})") from None
    if meta.get("format") != SESSION_FORMAT:
        raise ValueError(f"{path}: unknown session format {meta.get('format')!r}")
    cal = meta.get("calibration")
    return Session(
        dataset_source=meta.get("dataset_source"),
        grains=grains,
        grain_names={int(k): v for k, v in meta.get("grain_names", {}).items()},
        detectors=dict(zip(meta["detector_names"], masks)),
        calibration=None if cal is None else Calibration.from_dict(cal),
        extra=meta.get("extra", {}),
    )
