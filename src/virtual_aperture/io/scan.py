"""One scan file or zarr folder → a lazy :class:`Dataset` (readers dispatched, calibration resolved)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..model.calibration import Calibration, electron_wavelength
from ..model.dataset import DEFAULT_CHUNK_BYTES, Dataset, scan_chunks
from .binary import empad_xml_for_raw, read_npy
from .errors import ReadError, fail
from .formats import (
    Raw,
    check_chunk_bytes,
    check_content,
    check_declared,
    check_numeric,
    check_regular,
    format_for,
)
from .units import tilt_from_metadata

#: calibration keywords shared by open_dataset and open_tilt_series
CALIBRATION_KEYS = ("scan_step_nm", "pixel_size", "beam_energy_kv", "tilt_axis_deg", "center")


def _as_scan_shape(path: Any, scan_shape: Any) -> tuple[int, int] | None:
    if scan_shape is None:
        return None
    try:
        sy, sx = (int(v) for v in scan_shape)
    except (TypeError, ValueError) as exc:
        raise fail(path, f"scan_shape must be (ny, nx), got {scan_shape!r}") from exc
    if sy <= 0 or sx <= 0:
        raise fail(path, f"scan_shape must be positive, got {scan_shape!r}")
    return sy, sx


def read_raw(
    path: Path,
    *,
    format: str | None = None,
    scan_shape: tuple[int, int] | None = None,
    target_bytes: int = DEFAULT_CHUNK_BYTES,
    fill_missing: bool = False,
) -> Raw:
    """Dispatch one file or zarr folder to its reader (no calibration resolution)."""
    check_regular(path)  # before anything opens it: a FIFO or device would block or never end
    if path.is_file() and path.stat().st_size == 0:
        raise fail(path, "the file is empty (0 bytes)")
    fmt = format_for(path, format)
    if fmt == "empad" and path.suffix.lower() == ".raw":
        path = empad_xml_for_raw(path)
    if path.is_file():
        check_content(path, fmt)
    try:
        if fmt == "npy":
            return read_npy(path, target_bytes)
        if fmt == "zarr":
            from .store import read_zarr

            return read_zarr(path, target_bytes=target_bytes, fill_missing=fill_missing)
        if fmt == "hdf5":
            from .hdf5 import read_hdf5

            return read_hdf5(path, target_bytes=target_bytes, fill_missing=fill_missing)
        from .readers_rsciio import read_rsciio

        return read_rsciio(path, fmt, scan_shape=scan_shape, target_bytes=target_bytes)
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any library error becomes one ReadError naming the file
        raise fail(path, f"cannot be read as {fmt} ({type(exc).__name__}: {exc})") from exc


def _shape_to_4d(path: Path, raw: Raw, scan_shape: tuple[int, int] | None) -> Any:
    data = raw.data
    if scan_shape is not None and data.ndim in (3, 4):
        n = data.shape[0] if data.ndim == 3 else data.shape[0] * data.shape[1]
        if n != scan_shape[0] * scan_shape[1]:
            raise fail(
                path,
                f"scan_shape {scan_shape} needs {scan_shape[0] * scan_shape[1]} frames "
                f"but the file holds {n} (data shape {tuple(data.shape)})",
            )
        return data.reshape(scan_shape + tuple(data.shape[-2:]))
    if data.ndim == 3 and raw.found.get("square_scan"):
        side = math.isqrt(data.shape[0])
        if side * side == data.shape[0]:
            raw.metadata["scan_shape_assumed_square"] = True
            return data.reshape((side, side) + tuple(data.shape[-2:]))
    if data.ndim not in (4, 5):
        hint = (
            f"; if these are {data.shape[0]} frames of a scan, pass scan_shape=(ny, nx)"
            if data.ndim == 3
            else ""
        )
        raise fail(
            path,
            f"{data.ndim}D data of shape {tuple(data.shape)}: a 4D (scan_y, scan_x, k_y, k_x) "
            f"or 5D (tilt, scan_y, scan_x, k_y, k_x) dataset is needed{hint}",
        )
    return data


def open_scan(
    path: str | os.PathLike,
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
    """Open one file or zarr folder lazily (what :func:`~virtual_aperture.open_dataset` does for a
    single file; folders and lists of files go through :func:`~virtual_aperture.open_tilt_series`).

    Parameters
    ----------
    path
        One detector file or zarr folder.
    format, scan_step_nm, pixel_size, beam_energy_kv, tilt_angles_deg
        As for :func:`~virtual_aperture.open_dataset`.
    tilt_axis_deg, center, scan_shape, chunk_bytes, fill_missing
        As for :func:`~virtual_aperture.open_dataset`.

    Returns
    -------
    Dataset
        Lazy 4D or 5D dataset.
    """
    overrides: dict[str, Any] = {
        "scan_step_nm": scan_step_nm,
        "pixel_size": pixel_size,
        "beam_energy_kv": beam_energy_kv,
        "tilt_axis_deg": tilt_axis_deg,
        "center": center,
    }
    p = Path(os.fspath(path))
    target = check_chunk_bytes(chunk_bytes)
    shape2 = _as_scan_shape(p, scan_shape)
    raw = read_raw(p, format=format, scan_shape=shape2, target_bytes=target, fill_missing=bool(fill_missing))
    data = _shape_to_4d(p, raw, shape2)
    check_numeric(p, data.dtype)
    check_declared(p, tuple(data.shape), data.dtype.itemsize, None)
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    data, converted = _kernel_dtype(p, data)
    if not (raw.aligned and _whole_frames(data)):
        data = data.rechunk(scan_chunks(tuple(data.shape), data.dtype.itemsize, target_bytes=target))
    cal, sources = _resolve_calibration(p, raw, overrides, tilt_angles_deg, data.shape)
    meta: dict[str, Any] = {
        "format": raw.format,
        "lazy": raw.lazy,
        **raw.metadata,
        "calibration_source": sources,
    }
    if converted:
        meta["dtype_converted"] = converted
    if "format" in raw.metadata and raw.format == "virtual-aperture":
        meta["format"] = "virtual-aperture"
        meta["original_format"] = raw.metadata["format"]
    stage = tilt_from_metadata(raw.metadata.get("metadata"))
    if stage is None and "tilt_angle_deg" in cal.extra:
        stage = float(cal.extra["tilt_angle_deg"])
    if stage is not None:
        meta["stage_tilt_deg"] = stage
    source = raw.found.get("source") if raw.format == "virtual-aperture" else None
    try:
        return Dataset(data, cal, source=str(source or p), metadata=meta)
    except ValueError as exc:
        raise fail(p, str(exc)) from exc


#: dtypes converted on read to one the compute kernels take (exactly: every value is kept)
_CONVERT = {"float16": "float32", "bool": "uint8"}


def _kernel_dtype(p: Path, data: Any) -> tuple[Any, str | None]:
    """``data`` in a dtype the compute kernels take: integers and float32/64 as they are, float16 →
    float32 and bool → uint8 (lossless) on read; complex and other kinds refused with one line."""
    dt = data.dtype
    if dt.name in _CONVERT:
        return data.astype(_CONVERT[dt.name]), f"{dt.name} → {_CONVERT[dt.name]}"
    if dt.kind in "iu" or dt.name in ("float32", "float64"):
        return data, None
    what = {
        "c": "complex",
        "f": "extended-precision float",
        "M": "date-time",
        "S": "byte-string",
        "U": "text",
        "V": "structured",
        "O": "object",
    }.get(dt.kind, dt.kind)
    raise fail(
        p, f"holds {dt} ({what}) values; detector counts must be integers or real floats (float16/32/64)"
    )


def _resolve_calibration(
    p: Path, raw: Raw, overrides: dict[str, Any], tilt_angles: Any, shape: tuple[int, ...]
) -> tuple[Calibration, dict[str, str]]:
    found = raw.found
    base: Calibration = found.get("calibration") or Calibration()
    sources = {
        k: ("file" if "calibration" in found else "default")
        for k in (
            "scan_step_nm",
            "pixel_size",
            "beam_energy_kv",
            "tilt_angles_deg",
            "tilt_axis_deg",
            "center",
        )
    }
    changes: dict[str, Any] = {}
    for key in ("scan_step_nm", "pixel_size", "beam_energy_kv", "tilt_angles_deg"):
        if found.get(key) is not None:
            changes[key] = found[key]
            sources[key] = "file"
    for key, note in (found.get("source_notes") or {}).items():
        if sources.get(key) == "file":
            sources[key] = f"file: {note}"
    extra = dict(base.extra)
    if "scan_step_nm_yx" in found:
        extra["scan_step_nm_yx"] = list(found["scan_step_nm_yx"])
    for key, value in overrides.items():
        if value is not None:
            changes[key] = value
            sources[key] = "user"
    if tilt_angles is not None:
        changes["tilt_angles_deg"] = tuple(float(a) for a in tilt_angles)
        sources["tilt_angles_deg"] = "user"
    if len(shape) == 4:
        if tilt_angles is not None:
            raise fail(
                p, f"tilt_angles_deg given for 4D data of shape {tuple(shape)} (one scan, no tilt axis)"
            )
        changes["tilt_angles_deg"] = None
    elif changes.get("tilt_angles_deg", base.tilt_angles_deg) is None:
        raise fail(p, f"5D data with {shape[0]} tilts needs tilt angles: pass tilt_angles_deg=[...]")
    try:
        cal = base.replace(**changes, extra=extra)
        if cal.pixel_size is None and found.get("pixel_size_mrad") is not None:
            lam = electron_wavelength(cal.beam_energy_kv)
            cal = cal.replace(pixel_size=float(found["pixel_size_mrad"]) / (1000.0 * lam))
            sources["pixel_size"] = f"file (mrad via λ at {cal.beam_energy_kv:g} kV)"
    except ValueError as exc:
        raise fail(p, str(exc)) from exc
    if cal.center is not None:
        (cy, cx), (ky, kx) = cal.center, shape[-2:]
        if not (-0.5 <= cy <= ky - 0.5 and -0.5 <= cx <= kx - 0.5):
            raise fail(
                p,
                f"center ({cy:g}, {cx:g}) px (k_y, k_x) [{sources['center']}] is off the "
                f"{ky}×{kx} detector (0 … {ky - 1}, 0 … {kx - 1})",
            )
    if cal.tilt_angles_deg is not None and len(cal.tilt_angles_deg) != shape[0]:
        raise fail(p, f"{len(cal.tilt_angles_deg)} tilt angles given for {shape[0]} tilts")
    return cal, sources


__all__ = ["CALIBRATION_KEYS", "open_scan", "read_raw"]


def _whole_frames(data: Any) -> bool:
    """Every chunk of 4D/5D ``data`` holds whole detector frames of one tilt."""
    return (
        data.ndim in (4, 5)
        and len(data.chunks[-1]) == 1
        and len(data.chunks[-2]) == 1
        and (data.ndim == 4 or max(data.chunks[0]) == 1)
    )
