"""Readers through rosettasciio (``lazy=True``): Merlin, blockfile, DigitalMicrograph, EMPAD, MRC,
TVIPS, HyperSpy ``.hspy``/``.zspy``, NeXus and Berkeley/Velox/DE EMD."""

from __future__ import annotations

import importlib
import logging
import warnings
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from ..model.dataset import DEFAULT_CHUNK_BYTES, scan_chunks
from .binary import check_empad, mib_hdr_frames, parse_mib_header
from .errors import ReadError, fail
from .formats import Raw
from .framefile import empad_frames, mib_frames
from .h5source import picklable
from .headers import check_blockfile, check_mrc
from .units import (
    angle_to_mrad,
    beam_energy_from_metadata,
    calibration_from_axes,
    length_to_nm,
    reciprocal_to_inv_angstrom,
)

#: our format name → rosettasciio plugin module
RSCIIO_MODULES = {
    "mib": "rsciio.quantumdetector",
    "blockfile": "rsciio.blockfile",
    "dm": "rsciio.digitalmicrograph",
    "empad": "rsciio.empad",
    "mrc": "rsciio.mrc",
    "tvips": "rsciio.tvips",
    "hspy": "rsciio.hspy",
    "zspy": "rsciio.zspy",
    "nexus": "rsciio.nexus",
    "emd": "rsciio.emd",
}


def _axis_kind(axis: dict[str, Any]) -> str:
    """'length', 'reciprocal', 'angle', 'tilt' or '' (no units / pixels) for a HyperSpy-style axis."""
    units = axis.get("units")
    if units is None or str(units).strip() in ("", "1", "px", "pixel", "pixels", "<undefined>"):
        return ""
    if reciprocal_to_inv_angstrom(1.0, units) is not None:
        return "reciprocal"
    if angle_to_mrad(1.0, units) is not None:
        return "angle"
    if str(units).strip().lower() in ("deg", "°", "degree", "degrees"):
        return "tilt"
    if length_to_nm(1.0, units) is not None:
        return "length"
    return "other"


def _not_diffraction(sig: dict[str, Any]) -> str | None:
    """Why a 4D/5D signal is not a 4D-STEM scan (its detector axes are real-space lengths), or None."""
    axes = sorted(sig.get("axes") or [], key=lambda a: int(a.get("index_in_array") or 0))
    if len(axes) != getattr(sig.get("data"), "ndim", -1):
        return None
    det = [_axis_kind(a) for a in axes[-2:]]
    scan = [_axis_kind(a) for a in axes[-4:-2]]
    if any(k in ("length", "other") for k in det):
        return f"its last two axes ({_axes_text(axes[-2:])}) are real-space, not diffraction patterns"
    if any(k in ("reciprocal", "angle", "other") for k in scan):
        return f"its scan axes ({_axes_text(axes[-4:-2])}) are not positions"
    return None


def _axes_text(axes: list[dict[str, Any]]) -> str:
    return ", ".join(f"{a.get('name') or '?'} [{a.get('units') or '-'}]" for a in axes)


def _title(sig: dict[str, Any]) -> str:
    return str(((sig.get("metadata") or {}).get("General") or {}).get("title") or "?")


def _pick_signal(path: Path, signals: list[dict[str, Any]], *, check_axes: bool = False) -> dict[str, Any]:
    """The 4D (else 5D, else largest) signal; with ``check_axes`` (EMD files, which hold DPC,
    virtual-detector and potential arrays next to the scan) only one whose axes' units say
    scan × diffraction pattern."""
    if not signals:
        raise fail(path, "the file holds no data")
    rejected = []
    for want in (4, 5):
        for s in signals:
            if getattr(s.get("data"), "ndim", 0) == want:
                why = _not_diffraction(s) if check_axes else None
                if why is None:
                    return s
                rejected.append(f"{_title(s)} {tuple(s['data'].shape)}: {why}")
    if rejected:
        raise fail(path, "no 4D-STEM scan in the file — " + "; ".join(rejected))
    return max(signals, key=lambda s: int(np.prod(getattr(s.get("data"), "shape", (0,)))))


def _drop_depth_axis(sig: dict[str, Any]) -> dict[str, Any] | None:
    """A 5D simulation output whose leading axis is a depth (length units, e.g. prismatic's
    ``CBED_array_depth`` in Å) is one 4D scan per exit depth, not a tilt series: keep the last
    (the full specimen thickness). Returns the note for the metadata, or None."""
    axes = sorted(sig.get("axes") or [], key=lambda a: int(a.get("index_in_array") or 0))
    if getattr(sig.get("data"), "ndim", 0) != 5 or len(axes) != 5 or _axis_kind(axes[0]) != "length":
        return None
    a0 = axes[0]
    n = int(sig["data"].shape[0])
    depth = float(a0.get("offset") or 0.0) + (n - 1) * float(a0.get("scale") or 1.0)
    sig["data"] = sig["data"][-1]
    sig["axes"] = [dict(a, index_in_array=i) for i, a in enumerate(axes[1:])]
    return {"axis": a0.get("name"), "slices": n, "kept": n - 1, "depth": depth, "units": a0.get("units")}


def _mib_options(path: Path, scan_shape: tuple[int, int] | None, target_bytes: int) -> dict[str, Any]:
    info = parse_mib_header(path)
    n = info["n_frames"]
    frame = (info["height"], info["width"])
    itemsize = np.dtype(info["dtype"]).itemsize
    if scan_shape is not None:
        need = scan_shape[0] * scan_shape[1]
        if need != n:
            raise fail(
                path,
                f"scan_shape {scan_shape} needs {need} frames but the file holds {n} "
                f"{info['height']}×{info['width']} frames",
            )
        return {
            "navigation_shape": (scan_shape[1], scan_shape[0]),
            "chunks": scan_chunks(tuple(scan_shape) + frame, itemsize, target_bytes=target_bytes),
        }
    hdr = mib_hdr_frames(path)
    if hdr is not None:
        per_trigger, total = hdr
        if total > n:
            raise fail(
                path,
                f"truncated: the .hdr file says {total} frames but the file holds {n} "
                f"(to read the frames that are there, pass scan_shape=(ny, nx) with ny·nx = {n})",
            )
        if total < n:
            raise fail(path, f"inconsistent header: the .hdr file says {total} frames but the file holds {n}")
        if per_trigger > 1 and total % per_trigger:
            raise fail(
                path,
                f"inconsistent header: {total} frames is not a whole number of "
                f"{per_trigger}-frame scan lines",
            )
        if per_trigger > 1:  # rosettasciio reads the scan as (frames / per_trigger, per_trigger)
            shape = (total // per_trigger, per_trigger) + frame
            return {"chunks": scan_chunks(shape, itemsize, target_bytes=target_bytes)}
    return {}


def read_rsciio(
    path: Path,
    fmt: str,
    *,
    scan_shape: tuple[int, int] | None = None,
    module: str | None = None,
    target_bytes: int = DEFAULT_CHUNK_BYTES,
    **options: Any,
) -> Raw:
    """Read ``path`` with the rosettasciio plugin for ``fmt`` (lazily when the plugin can)."""
    kwargs: dict[str, Any] = dict(options)
    if fmt == "mib":
        kwargs.update(_mib_options(path, scan_shape, target_bytes))
    elif fmt == "empad":
        check_empad(path)
    elif fmt == "mrc":
        check_mrc(path)
    elif fmt == "blockfile":
        check_blockfile(path)
    elif fmt == "tvips" and scan_shape is not None:
        kwargs["scan_shape"] = tuple(scan_shape)
    modname = module or RSCIIO_MODULES[fmt]
    reader = importlib.import_module(modname).file_reader
    lazy = True
    log = logging.getLogger("rsciio")
    old_level = log.level
    log.setLevel(logging.ERROR)  # rosettasciio logs warnings we turn into our own messages
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                signals = reader(str(path), lazy=True, **kwargs)
            except NotImplementedError:
                lazy = False
                signals = reader(str(path), lazy=False, **kwargs)
    except ReadError:
        raise
    except Exception as exc:  # rosettasciio raises anything; wrap it with the file name
        import struct

        hint = (
            " — it may be truncated or damaged"
            if isinstance(exc, (struct.error, EOFError)) or "buffer" in str(exc) or "mmap length" in str(exc)
            else ""
        )
        raise fail(path, f"cannot be read as {fmt}{hint} ({type(exc).__name__}: {exc})") from exc
    finally:
        log.setLevel(old_level)
    sig = _pick_signal(path, signals, check_axes=fmt == "emd")
    depth = _drop_depth_axis(sig)
    data = sig["data"]
    if not isinstance(data, da.Array):
        lazy = lazy and isinstance(data, np.memmap)
        data = da.from_array(data, chunks="auto", asarray=False)
    if fmt in ("hspy", "nexus", "emd"):
        data = picklable(data)
    if fmt == "mib":  # the compute engine reads the frames itself (see .framefile)
        info = parse_mib_header(path)
        chunks = scan_chunks(tuple(data.shape), data.dtype.itemsize, target_bytes=target_bytes)
        frames = mib_frames(path, data, info, chunks)
        data = data if frames is None else frames
    if fmt == "empad" and data.ndim == 4:
        chunks = scan_chunks(tuple(data.shape), data.dtype.itemsize, target_bytes=target_bytes)
        frames = empad_frames(check_empad(path), data, chunks)
        data = data if frames is None else frames
    md = _apply_mapping(
        sig.get("metadata") or {}, sig.get("original_metadata") or {}, sig.get("mapping") or {}
    )
    found = calibration_from_axes(list(sig.get("axes") or []), data.ndim)
    if fmt in ("tvips", "mrc"):  # these store no scan step: their 1 nm scan axes are placeholders
        found.pop("scan_step_nm", None)
        found.pop("scan_step_nm_yx", None)
    if fmt == "mrc":  # rosettasciio's MRC/DE detector scales are placeholders (it resets them to 1)
        found.pop("pixel_size", None)
        found.pop("pixel_size_mrad", None)
    kv = beam_energy_from_metadata(md)
    if kv is not None:
        found["beam_energy_kv"] = kv
    prismatic = _prismatic_parameters(path) if fmt == "emd" else None
    if prismatic is not None:
        data, found = _prismatic_fix(data, sig, found, prismatic)
    om = sig.get("original_metadata") or {}
    if fmt == "mrc" and isinstance(om.get("de_metadata"), dict):
        found.update(de_calibration(om["de_metadata"]))
    if fmt == "empad":
        kv = empad_beam_energy(path)
        if kv is not None:
            found["beam_energy_kv"] = kv
    meta = {
        "metadata": md,
        "original_metadata": sig.get("original_metadata") or {},
        "axes": [dict(a) for a in sig.get("axes") or []],
        "reader": modname,
    }
    if depth is not None:
        meta["depth_slice"] = depth
        meta["note"] = (
            f"5D {depth['axis']} stack of {depth['slices']} exit depths: the last "
            f"({depth['depth']:g} {depth['units']}) is read as the 4D scan"
        )
    if fmt == "mib":
        meta["note"] = "rosettasciio flips Merlin frames vertically (row 0 = last row stored in the file)"
    return Raw(data, fmt, found=found, metadata=meta, lazy=lazy)


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v > 0 else None  # DE writes -1 for "not calibrated"


def de_calibration(info: dict[str, Any]) -> dict[str, Any]:
    """Calibration in a Direct Electron ``*_info.txt`` (parsed by rosettasciio as ``de_metadata``).

    ``Specimen Pixel Size X/Y (nanometers)`` → scan step, ``Diffraction Pixel Size X/Y`` (no unit
    written; nm⁻¹, as rosettasciio labels it) → detector pixel size, ``Instrument Accelerating
    Voltage (V)`` → kV. DE writes -1 for values it does not know; those are left out.
    """
    found: dict[str, Any] = {}
    sy, sx = (_num(info.get(f"Specimen Pixel Size {a} (nanometers)")) for a in "YX")
    if sy is not None and sx is not None:
        found["scan_step_nm"] = sy
        if not np.isclose(sy, sx, rtol=1e-6):
            found["scan_step_nm_yx"] = (sy, sx)
    px = _num(info.get("Diffraction Pixel Size X"))
    if px is not None:
        found["pixel_size"] = reciprocal_to_inv_angstrom(px, "1/nm")
        found["source_notes"] = {"pixel_size": "_info.txt Diffraction Pixel Size, read as nm⁻¹"}
    volts = _num(info.get("Instrument Accelerating Voltage (V)"))
    if volts is not None:
        found["beam_energy_kv"] = volts / 1e3
    return found


def empad_beam_energy(xml_path: Path) -> float | None:
    """Beam energy (kV) in an EMPAD ``.xml``: ``iom_measurements/source.get_voltage`` (software
    0.51) or ``iom_measurements/high_voltage`` (1.2), in volts."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError):
        return None
    for tag in ("source.get_voltage", "high_voltage"):
        el = root.find(f".//iom_measurements/{tag}")
        v = _num(el.text if el is not None else None)
        if v is not None:
            return v / 1e3 if v > 5000 else v
    return None


def _prismatic_parameters(path: Path) -> dict[str, Any] | None:
    """The ``simulation_parameters`` attributes of a prismatic EMD output file, or None."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            g = f.get("4DSTEM_simulation/metadata/metadata_0/original/simulation_parameters")
            return None if g is None else {k: np.asarray(v).tolist() for k, v in g.attrs.items()}
    except (OSError, KeyError, TypeError):
        return None


def _prismatic_fix(
    data: da.Array, sig: dict[str, Any], found: dict[str, Any], params: dict[str, Any]
) -> tuple[da.Array, dict[str, Any]]:
    """prismatic stores ``CBED_array`` as ``(R_x, R_y, Q_x, Q_y)`` with values in Å and Å⁻¹ under an
    ``[n_m]`` / ``[n_m^-1]`` label (its probe step ``rx`` is in Å: 0.5 Å steps over a 5.43 Å Si cell
    give 11 positions, and the detector step is 1/5.43 Å⁻¹). Reorder to (scan_y, scan_x, k_y, k_x)
    and read the values as Å; the beam energy is ``E`` (kV)."""
    names = [
        str(a.get("name")) for a in sorted(sig.get("axes") or [], key=lambda a: int(a["index_in_array"]))
    ]
    out = dict(found)
    if data.ndim == 4 and names[:2] == ["R_x", "R_y"] and names[2:] == ["Q_x", "Q_y"]:
        data = data.transpose(1, 0, 3, 2)
    if "scan_step_nm" in out:
        out["scan_step_nm"] = out["scan_step_nm"] / 10.0  # the "nm" values are Å
    out.pop("scan_step_nm_yx", None)
    if "pixel_size" in out:
        out["pixel_size"] = out["pixel_size"] * 10.0  # the "nm⁻¹" values are Å⁻¹
    try:
        out["beam_energy_kv"] = float(params["E"])
    except (KeyError, TypeError, ValueError):
        pass
    out["source_notes"] = {
        "scan_step_nm": "prismatic (Å values labelled [n_m])",
        "pixel_size": "prismatic (Å⁻¹ values labelled [n_m^-1])",
    }
    return data, out


def _apply_mapping(md: dict[str, Any], om: dict[str, Any], mapping: dict[str, Any]) -> dict[str, Any]:
    """Apply a rosettasciio ``mapping`` (original-metadata path → (metadata path, function)), which
    HyperSpy would otherwise apply when it builds a signal (e.g. DM's Microscope Info.Voltage →
    Acquisition_instrument.TEM.beam_energy in kV)."""
    import copy

    out = copy.deepcopy(md)
    for src, target in mapping.items():
        node: Any = om
        try:
            for key in src.split("."):
                node = node[key]
        except (KeyError, TypeError, IndexError):
            continue
        try:
            dest, func = target
            value = func(node) if func is not None else node
        except Exception:  # noqa: BLE001 - a mapping function may not apply to this file
            continue
        where = out
        *parents, leaf = dest.split(".")
        for key in parents:
            where = where.setdefault(key, {})
            if not isinstance(where, dict):
                break
        else:
            where.setdefault(leaf, value)
    return out
