"""``open_dataset``: any supported file, folder or list of files → a lazy :class:`Dataset`.

One file goes to :func:`.scan.open_scan`; a folder of scans or a list of files to
:func:`.tilt.open_tilt_series` (which opens each file with ``open_scan``), so the modules import
one way: ``scan`` ← ``tilt`` ← ``dispatch``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from ..model.dataset import Dataset
from .errors import fail
from .formats import is_zarr_dir, supported_list
from .scan import open_scan
from .tilt import dataset_files, open_tilt_series


def open_dataset(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    format: str | None = None,
    scan_step_nm: float | None = None,
    pixel_size: float | None = None,
    beam_energy_kv: float | None = None,
    tilt_angles_deg: Sequence[float] | None = None,
    tilt_axis_deg: float | None = None,
    center: tuple[float, float] | None = None,
    scan_shape: tuple[int, int] | None = None,
    chunk_bytes: int | None = None,
    fill_missing: bool = False,
) -> Dataset:
    """Open a 4D-STEM scan or a 5D tilt series lazily.

    Parameters
    ----------
    path
        A file, a zarr folder, a folder of 4D scans (→ 5D tilt series) or a list of files
        (→ 5D tilt series, see :func:`open_tilt_series`).
    format
        Force a reader (``"mib"``, ``"hspy"``, ``"hdf5"``, ``"zarr"``, ``"npy"``, ...) instead of
        choosing it from the extension.
    scan_step_nm, pixel_size, beam_energy_kv, tilt_angles_deg, tilt_axis_deg, center
        Calibration overrides (nm; Å⁻¹ per detector pixel; kV; degrees; degrees; ``(k_y, k_x)``
        pixels). Values given here win over those read from the file.
    scan_shape
        ``(ny, nx)`` for files that store a flat stack of frames (Merlin without ``.hdr``, MRC,
        TVIPS, Arina, 3D arrays).
    chunk_bytes
        Target bytes per dask chunk (whole detector frames per chunk; default 128 MiB).
    fill_missing
        For zarr stores and HDF5 files not written by virtual-aperture: accept chunks that were
        never written and read them as the array's fill value (usually 0). By default a missing
        chunk is a ``ReadError`` (a deleted chunk file would otherwise read as zeros, silently).

    Returns
    -------
    Dataset
        Lazy: ``data`` is a dask array; nothing is read until computed. ``metadata["format"]``
        names the reader; ``metadata["calibration_source"]`` says where each value came from.

    Raises
    ------
    ReadError
        The file is missing, empty, truncated, not a regular file (FIFO, device), of an unknown
        format, not 4D/5D, not numeric, inconsistent with its header or missing chunks; the
        message names the file and the problem. Damage that only reading can reveal (a chunk
        that does not decode) raises ``ReadError`` when the data are computed.
    """
    overrides: dict[str, Any] = {
        "scan_step_nm": scan_step_nm,
        "pixel_size": pixel_size,
        "beam_energy_kv": beam_energy_kv,
        "tilt_axis_deg": tilt_axis_deg,
        "center": center,
    }
    if isinstance(path, (list, tuple)) or (
        not isinstance(path, (str, os.PathLike)) and hasattr(path, "__iter__")
    ):
        paths = list(path)
        if len(paths) == 1:  # napari hands over lists; one file is one scan
            return open_dataset(
                paths[0],
                format=format,
                tilt_angles_deg=tilt_angles_deg,
                scan_shape=scan_shape,
                chunk_bytes=chunk_bytes,
                fill_missing=fill_missing,
                **overrides,
            )
        return open_tilt_series(
            paths,
            tilt_angles_deg=tilt_angles_deg,
            format=format,
            scan_shape=scan_shape,
            chunk_bytes=chunk_bytes,
            fill_missing=fill_missing,
            **overrides,
        )
    p = Path(os.fspath(cast("str | os.PathLike", path)))
    if p.is_dir() and not is_zarr_dir(p):
        files = dataset_files(p)
        if not files:
            raise fail(p, f"the folder holds no supported files (supported: {supported_list()})")
        if len(files) > 1:
            return open_tilt_series(
                p,
                tilt_angles_deg=tilt_angles_deg,
                format=format,
                scan_shape=scan_shape,
                chunk_bytes=chunk_bytes,
                fill_missing=fill_missing,
                **overrides,
            )
        p = files[0]
    return open_scan(
        p,
        format=format,
        tilt_angles_deg=tilt_angles_deg,
        scan_shape=scan_shape,
        chunk_bytes=chunk_bytes,
        fill_missing=fill_missing,
        **overrides,
    )


__all__ = ["open_dataset"]
