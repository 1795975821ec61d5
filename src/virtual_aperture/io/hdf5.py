"""HDF5 files: dispatch on content, plus our own lazy h5py readers for py4DSTEM / EMD 1.0,
Dectris Arina master files and any other HDF5 file holding one 4D/5D dataset."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import dask.array as da
import h5py
import numpy as np

from ..model.calibration import beam_energy_from_wavelength
from ..model.dataset import scan_chunks
from .errors import ReadError, fail
from .formats import Raw, check_declared, store_chunks
from .h5source import H5Source
from .units import calibration_from_axes


def _attr(obj: Any, name: str) -> Any:
    v = obj.attrs.get(name)
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.item()
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
    return v


def _chunks(shape: tuple[int, ...], itemsize: int, target_bytes: int) -> tuple[int, ...] | str:
    if len(shape) in (4, 5):
        return scan_chunks(shape, itemsize, target_bytes=target_bytes)
    if len(shape) == 3:
        per = max(1, target_bytes // max(1, shape[1] * shape[2] * itemsize))
        return (min(per, shape[0]), shape[1], shape[2])
    return "auto"


def check_allocated(ds: h5py.Dataset, path: Path, fill_missing: bool) -> None:
    """ReadError when a dataset declares an impossible size, or (unless ``fill_missing``) has chunks
    that were never written — HDF5 reads those as the fill value, which would pass for data."""
    shape = tuple(int(n) for n in ds.shape)
    check_declared(path, shape, ds.dtype.itemsize, ds.chunks or shape, what=f"dataset {ds.name} ")
    if fill_missing or ds.is_virtual or ds.external:
        return
    if ds.chunks:
        total = math.prod(math.ceil(s / c) for s, c in zip(shape, ds.chunks))
        have = ds.id.get_num_chunks()
    else:
        total, have = 1, int(ds.id.get_storage_size() > 0)
    if have < total:
        raise fail(
            path,
            f"dataset {ds.name}: {total - have} of {total} chunks were never written (HDF5 would "
            f"read them as the fill value {ds.fillvalue!r}); pass fill_missing=True "
            "(--fill-missing) to accept that",
        )


def _lazy(ds: h5py.Dataset, target_bytes: int, path: Path, name: str, fill_missing: bool = False) -> da.Array:
    check_allocated(ds, path, fill_missing)
    if ds.ndim >= 3:  # read one frame now so a broken file or a missing filter fails on open
        try:
            ds[(0,) * (ds.ndim - 2)]
        except Exception as exc:  # noqa: BLE001 - h5py raises OSError/ValueError/KeyError
            raise fail(
                path,
                f"dataset {ds.name} cannot be read ({exc}); the file may be truncated "
                "or compressed with a filter that is not installed (Arina/Dectris data "
                "needs the hdf5plugin package)",
            ) from exc
    return da.from_array(
        H5Source.of(ds),
        chunks=store_chunks(tuple(ds.shape), ds.dtype.itemsize, ds.chunks, target_bytes)
        if ds.ndim in (4, 5)
        else _chunks(ds.shape, ds.dtype.itemsize, target_bytes),
        name=f"h5-{name}-{path.stat().st_mtime_ns}-{ds.file.filename}-{ds.name}",
    )


def hdf5_kind(f: h5py.File, path: Path) -> str:
    """Which HDF5 dialect ``f`` is: 'hspy', 'velox', 'de', 'emd1', 'emd0', 'arina', 'nexus', 'generic'."""
    if str(_attr(f, "file_format") or "").lower() == "hyperspy":
        return "hspy"
    if "Version" in f and "Data" in f:
        return "velox"
    if path.suffix.lower() == ".de5":
        return "de"
    major = _attr(f, "version_major")
    if major is not None or str(_attr(f, "emd_group_type") or "") == "root":
        try:
            return "emd1" if major is not None and int(major) >= 1 else "emd0"
        except (TypeError, ValueError):
            return "emd0"
    if any(isinstance(g, h5py.Group) and _attr(g, "version_major") is not None for g in f.values()):
        return "emd0"  # EMD 0.x with the version on a group (e.g. Direct Electron DE5)
    data = f.get("entry/data")
    if isinstance(data, h5py.Group) and any(k.startswith("data_") for k in data.keys()):
        return "arina"
    if _attr(f, "NX_class") is not None or any(
        isinstance(g, h5py.Group) and _attr(g, "NX_class") is not None for g in f.values()
    ):
        return "nexus"
    return "generic"


def load_filters() -> bool:
    """Register the compression filters of ``hdf5plugin`` (bitshuffle-LZ4 of Dectris Arina/Eiger,
    Blosc, Zstd, ...) with h5py; False when it is not installed (``pip install
    napari-virtual-aperture[hdf5]``)."""
    try:
        import hdf5plugin  # noqa: F401 - importing registers the filters
    except ImportError:
        return False
    return True


def arina_master(path: Path) -> Path | None:
    """The ``*_master.h5`` of a Dectris Arina acquisition that ``path`` belongs to (its metadata
    ``NAME.h5`` or a ``NAME_data_NNNNNN.h5`` file), or None."""
    name = path.name
    if name.endswith("_master.h5"):
        return None
    stem = name[:-3] if name.endswith(".h5") else None
    if stem is None:
        return None
    if "_data_" in stem:
        stem = stem.rsplit("_data_", 1)[0]
    master = path.with_name(stem + "_master.h5")
    return master if master.is_file() else None


def read_hdf5(path: Path, *, target_bytes: int, fill_missing: bool = False) -> Raw:
    """Open any supported HDF5 file lazily (dispatching on its content)."""
    load_filters()
    master = arina_master(path)
    if master is not None:  # the metadata or a data file of an Arina scan: read the scan
        path = master
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise fail(path, f"not a readable HDF5 file ({exc}); it may be truncated or not HDF5") from exc
    kind = hdf5_kind(f, path)
    if kind in ("hspy", "velox", "de", "emd0", "nexus"):
        f.close()
        from .readers_rsciio import read_rsciio

        fmt = {"hspy": "hspy", "nexus": "nexus"}.get(kind, "emd")
        raw = read_rsciio(path, fmt)
        raw.metadata["hdf5_kind"] = kind
        return raw
    try:
        if kind == "emd1":
            return _read_emd1(f, path, target_bytes, fill_missing)
        if kind == "arina":
            return _read_arina(f, path, target_bytes, fill_missing)
        return _read_generic(f, path, target_bytes, fill_missing)
    finally:
        f.close()  # the dask graph reads through H5Source, which opens the file itself


def _datasets(f: h5py.File) -> list[h5py.Dataset]:
    found: list[h5py.Dataset] = []
    f.visititems(lambda _n, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
    return found


def _read_generic(f: h5py.File, path: Path, target_bytes: int, fill_missing: bool) -> Raw:
    dsets = [d for d in _datasets(f) if d.dtype.kind in "biuf"]
    if not dsets:
        raise fail(path, "the HDF5 file holds no numeric dataset")
    nd = [d for d in dsets if d.ndim in (4, 5)]
    pick = max(nd or dsets, key=lambda d: math.prod(d.shape))
    if len(nd) > 1:
        pick = max(nd, key=lambda d: math.prod(d.shape))
    data = _lazy(pick, target_bytes, path, "generic", fill_missing)
    meta = {
        "hdf5_kind": "generic",
        "dataset": pick.name,
        "datasets": {d.name: list(d.shape) for d in dsets[:50]},
        "attrs": {k: _jsonable(v) for k, v in pick.attrs.items()},
    }
    return Raw(data, "hdf5", metadata=meta, aligned=pick.ndim in (4, 5))


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size < 1000 else f"<array {v.shape} {v.dtype}>"
    if isinstance(v, np.generic):
        return v.item()
    return v


def _emd_arrays(f: h5py.File) -> list[h5py.Group]:
    groups: list[h5py.Group] = []

    def visit(_name: str, obj: Any) -> None:
        if (
            isinstance(obj, h5py.Group)
            and str(_attr(obj, "emd_group_type")) in ("1", "array")
            and isinstance(obj.get("data"), h5py.Dataset)
        ):
            groups.append(obj)

    f.visititems(visit)
    return groups


def _read_emd1(f: h5py.File, path: Path, target_bytes: int, fill_missing: bool) -> Raw:
    """py4DSTEM / emdfile EMD 1.0: an Array group (``emd_group_type`` 1) with ``data`` and
    ``dim0..dimN`` datasets whose ``name``/``units`` attributes give the calibration."""
    arrays = _emd_arrays(f)
    if not arrays:
        raise fail(path, "EMD file without any array group (emd_group_type 1)")
    cubes = [g for g in arrays if g["data"].ndim in (4, 5)]
    pref = [g for g in cubes if str(_attr(g, "python_class") or "").endswith("DataCube")]
    grp = (pref or cubes or arrays)[0]
    ds = grp["data"]
    axes = []
    first = 0 if "dim0" in grp else 1
    for i in range(ds.ndim):
        dim = grp.get(f"dim{i + first}")
        scale, units, name = 1.0, "", f"dim{i}"
        if isinstance(dim, h5py.Dataset):
            v = np.asarray(dim[()], dtype=float).ravel()
            if v.size >= 2:
                scale = float(v[1] - v[0])
            units = str(_attr(dim, "units") or "")
            name = str(_attr(dim, "name") or name)
        axes.append(
            {
                "index_in_array": i,
                "size": ds.shape[i],
                "scale": scale,
                "units": units,
                "name": name,
                "offset": 0.0,
            }
        )
    found = calibration_from_axes(axes, ds.ndim)
    kv = _find_energy(f)
    if kv is not None:
        found["beam_energy_kv"] = kv
    meta = {
        "hdf5_kind": "emd1",
        "group": grp.name,
        "axes": axes,
        "attrs": {k: _jsonable(v) for k, v in grp.attrs.items()},
    }
    data = _lazy(ds, target_bytes, path, "emd1", fill_missing)
    return Raw(data, "py4dstem", found=found, metadata=meta, aligned=ds.ndim in (4, 5))


def _find_energy(f: h5py.File) -> float | None:
    """Beam energy in kV from a dataset/attribute named like beam energy or accelerating voltage."""
    names = ("beam_energy", "accelerating_voltage", "voltage", "high_tension", "e0")
    hits: list[float] = []

    def look(name: str, obj: Any) -> None:
        leaf = name.rsplit("/", 1)[-1].lower()
        if isinstance(obj, h5py.Dataset) and leaf in names and obj.size == 1:
            hits.append(float(np.asarray(obj[()]).ravel()[0]))
        for k, v in obj.attrs.items():
            if k.lower() in names:
                try:
                    hits.append(float(np.asarray(v).ravel()[0]))
                except (TypeError, ValueError):
                    pass

    f.visititems(look)
    for v in hits:
        if math.isfinite(v) and v > 0:
            return v / 1e3 if v > 5000 else v  # volts → kV
    return None


def _read_arina(f: h5py.File, path: Path, target_bytes: int, fill_missing: bool) -> Raw:
    """Dectris Arina master file: ``entry/data/data_NNNNNN`` (external links to the data files),
    each a stack ``(frames, k_y, k_x)``; they are joined into one 3D stack of frames."""
    grp = f["entry/data"]
    parts = []
    for key in sorted(k for k in grp.keys() if k.startswith("data_")):
        try:
            ds = grp[key]
        except KeyError as exc:
            raise fail(path, f"Arina data file for {key} is missing ({exc})") from exc
        if ds.ndim != 3:
            raise fail(path, f"Arina {key} has shape {ds.shape}; expected (frames, k_y, k_x)")
        parts.append(_lazy(ds, target_bytes, path, f"arina-{key}", fill_missing))
    shapes = {p.shape[1:] for p in parts}
    if len(shapes) != 1:
        raise fail(path, f"Arina data files have different frame shapes: {sorted(shapes)}")
    data = da.concatenate(parts, axis=0)
    found: dict[str, Any] = {"square_scan": True}
    meta: dict[str, Any] = {"hdf5_kind": "arina", "data_files": len(parts)}
    det = f.get("entry/instrument/detector")
    px = _scalar(det, "x_pixel_size")
    dist = _scalar(det, "detector_distance")
    lam = _scalar(f, "entry/instrument/beam/incident_wavelength")
    if lam is None:  # Arina writes the electron energy as the "photon" energy (eV)
        ev = _scalar(det, "detectorSpecific/photon_energy")
        if ev is not None:
            found["beam_energy_kv"] = ev / 1e3
    else:
        found["beam_energy_kv"] = beam_energy_from_wavelength(lam)
    scan = arina_scan_metadata(path)
    meta.update({k: v for k, v in scan.items() if k != "scan_shape"})
    if "scan_shape" in scan and math.prod(scan["scan_shape"]) == data.shape[0]:
        data = data.reshape(tuple(scan["scan_shape"]) + tuple(data.shape[1:]))
    if "scan_step_nm" in scan:
        found["scan_step_nm"] = scan["scan_step_nm"]
    if "beam_energy_kv" not in found and "beam_energy_kv" in scan:
        found["beam_energy_kv"] = scan["beam_energy_kv"]
    if not (dist and dist > 0) and scan.get("camera_length_m"):
        dist = scan["camera_length_m"]
        found["source_notes"] = {"pixel_size": f"detector pixel {px:g} m / camera length {dist:g} m"}
    kv = found.get("beam_energy_kv")
    if px and dist and kv:
        from ..model.calibration import electron_wavelength

        found["pixel_size"] = px / (dist * electron_wavelength(kv))
    meta.update({"x_pixel_size_m": px, "detector_distance_m": dist})
    return Raw(data, "arina", found=found, metadata=meta)


def _scalar(group: Any, name: str) -> float | None:
    """A positive finite number stored at ``group[name]`` (dataset or attribute), or None."""
    if group is None:
        return None
    try:
        v = float(np.asarray(group[name][()]).ravel()[0])
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def arina_scan_metadata(master: Path) -> dict[str, Any]:
    """What the scan metadata file ``NAME.h5`` next to ``NAME_master.h5`` says (group ``STEM
    Metadata``): ``Pixel Size`` (nm, the scan step — as rosettasciio reads it), ``NumPixelsY/X``
    (the scan shape), ``High Tension`` (V) and ``Camera Length`` (m)."""
    side = master.with_name(master.name[: -len("_master.h5")] + ".h5")
    out: dict[str, Any] = {}
    if not side.is_file():
        return out
    try:
        with h5py.File(side, "r") as f:
            g = f.get("STEM Metadata")
            if g is None:
                return out
            attrs = {k: np.asarray(v).ravel() for k, v in g.attrs.items()}
    except OSError:
        return out

    def num(key: str) -> float | None:
        v = attrs.get(key)
        try:
            x = float(v[0]) if v is not None and v.size else None
        except (TypeError, ValueError):
            return None
        return x if x is not None and math.isfinite(x) and x > 0 else None

    out["scan_metadata_file"] = side.name
    if num("Pixel Size") is not None:
        out["scan_step_nm"] = num("Pixel Size")
    ny, nx = num("NumPixelsY"), num("NumPixelsX")
    if ny and nx:
        out["scan_shape"] = (int(ny), int(nx))
    if num("High Tension") is not None:
        out["beam_energy_kv"] = num("High Tension") / 1e3  # type: ignore[operator]
    if num("Camera Length") is not None:
        out["camera_length_m"] = num("Camera Length")
    return out


__all__ = ["read_hdf5", "hdf5_kind", "ReadError"]
