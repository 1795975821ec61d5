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
from .h5source import picklable
from .headers import check_blockfile, check_mrc
from .units import beam_energy_from_metadata, calibration_from_axes

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


def _pick_signal(path: Path, signals: list[dict[str, Any]]) -> dict[str, Any]:
    if not signals:
        raise fail(path, "the file holds no data")
    for want in (4, 5):
        for s in signals:
            if getattr(s.get("data"), "ndim", 0) == want:
                return s
    return max(signals, key=lambda s: int(np.prod(getattr(s.get("data"), "shape", (0,)))))


def _mib_options(path: Path, scan_shape: tuple[int, int] | None, target_bytes: int) -> dict[str, Any]:
    info = parse_mib_header(path)
    n = info["n_frames"]
    frame = (info["height"], info["width"])
    itemsize = np.dtype(info["dtype"]).itemsize
    if scan_shape is not None:
        need = scan_shape[0] * scan_shape[1]
        if need != n:
            raise fail(path, f"scan_shape {scan_shape} needs {need} frames but the file holds {n} "
                             f"{info['height']}×{info['width']} frames")
        return {"navigation_shape": (scan_shape[1], scan_shape[0]),
                "chunks": scan_chunks(tuple(scan_shape) + frame, itemsize, target_bytes=target_bytes)}
    hdr = mib_hdr_frames(path)
    if hdr is not None:
        per_trigger, total = hdr
        if total > n:
            raise fail(path, f"truncated: the .hdr file says {total} frames but the file holds {n} "
                             f"(to read the frames that are there, pass scan_shape=(ny, nx) with ny·nx = {n})")
        if total < n:
            raise fail(path, f"inconsistent header: the .hdr file says {total} frames but the file holds {n}")
        if per_trigger > 1 and total % per_trigger:
            raise fail(path, f"inconsistent header: {total} frames is not a whole number of "
                             f"{per_trigger}-frame scan lines")
        if per_trigger > 1:  # rosettasciio reads the scan as (frames / per_trigger, per_trigger)
            shape = (total // per_trigger, per_trigger) + frame
            return {"chunks": scan_chunks(shape, itemsize, target_bytes=target_bytes)}
    return {}


def read_rsciio(path: Path, fmt: str, *, scan_shape: tuple[int, int] | None = None,
                module: str | None = None, target_bytes: int = DEFAULT_CHUNK_BYTES, **options: Any) -> Raw:
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

        hint = " — it may be truncated or damaged" if isinstance(exc, (struct.error, EOFError)) or \
            "buffer" in str(exc) or "mmap length" in str(exc) else ""
        raise fail(path, f"cannot be read as {fmt}{hint} ({type(exc).__name__}: {exc})") from exc
    finally:
        log.setLevel(old_level)
    sig = _pick_signal(path, signals)
    data = sig["data"]
    if not isinstance(data, da.Array):
        lazy = lazy and isinstance(data, np.memmap)
        data = da.from_array(data, chunks="auto", asarray=False)
    if fmt in ("hspy", "nexus", "emd"):
        data = picklable(data)
    md = _apply_mapping(sig.get("metadata") or {}, sig.get("original_metadata") or {}, sig.get("mapping") or {})
    found = calibration_from_axes(list(sig.get("axes") or []), data.ndim)
    if fmt in ("tvips", "mrc"):  # these store no scan step: their 1 nm scan axes are placeholders
        found.pop("scan_step_nm", None)
        found.pop("scan_step_nm_yx", None)
    kv = beam_energy_from_metadata(md)
    if kv is not None:
        found["beam_energy_kv"] = kv
    meta = {"metadata": md, "original_metadata": sig.get("original_metadata") or {},
            "axes": [dict(a) for a in sig.get("axes") or []], "reader": modname}
    if fmt == "mib":
        meta["note"] = "rosettasciio flips Merlin frames vertically (row 0 = last row stored in the file)"
    return Raw(data, fmt, found=found, metadata=meta, lazy=lazy)


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
