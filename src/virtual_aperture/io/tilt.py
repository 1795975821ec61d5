"""Tilt series: several 4D scans (one per specimen tilt) → one 5D dataset."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask.array as da

from ..model.dataset import Dataset
from .errors import fail
from .formats import SUPPORTED_EXTENSIONS, is_zarr_dir
from .scan import open_scan

#: file-name patterns tried in order; each has a group named ``angle``
DEFAULT_PATTERNS = (
    # scan_-30.0deg.mib, tilt 12.5 degrees.h5, a_+5°.npy
    r"(?P<angle>[+-]?\d+(?:\.\d+)?)\s*_?(?:deg(?:rees?)?|°)",
    # tilt_+12.5.h5, t-30_scan.mib, angle=5, alpha_-10
    r"(?:^|[_\-\s.])(?:tilt|angle|alpha|t)[_=]?(?P<angle>[+-]?\d+(?:\.\d+)?)(?![\d.]*\d)",
)


def angle_from_name(path: str | os.PathLike, pattern: str | re.Pattern | None = None) -> float | None:
    """The tilt angle (degrees) written in a file name, or None.

    ``pattern`` is a regular expression searched in the file name without its extension; the
    angle is its group named ``angle`` (or its first group). By default ``scan_-30.0deg.mib``,
    ``tilt_+12.5.h5`` and ``t-30_…`` style names are recognised.
    """
    name = Path(os.fspath(path)).name
    stem = name
    for ext in sorted(SUPPORTED_EXTENSIONS, key=len, reverse=True):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    patterns = [pattern] if pattern is not None else list(DEFAULT_PATTERNS)
    for pat in patterns:
        rx = re.compile(pat, re.IGNORECASE) if isinstance(pat, str) else pat
        m = rx.search(stem)
        if m:
            text = m.groupdict().get("angle") or (m.group(1) if rx.groups else m.group(0))
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                return value
    return None


def dataset_files(folder: Path) -> list[Path]:
    """The dataset files in a folder (companion files such as ``.hdr``, EMPAD ``.raw`` next to
    their ``.xml`` and Arina ``_data_`` files next to their master are left out), sorted by name."""
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    files = [
        p
        for p in entries
        if (p.is_dir() and is_zarr_dir(p)) or (p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS)
    ]
    if any(p.suffix.lower() == ".xml" for p in files):
        files = [p for p in files if p.suffix.lower() != ".raw"]
    masters = {p.name[: -len("_master.h5")] for p in files if p.name.endswith("_master.h5")}
    if masters:  # an Arina scan: NAME_master.h5 + NAME_data_NNNNNN.h5 + the metadata file NAME.h5
        files = [p for p in files if "_data_" not in p.name and p.name[:-3] not in masters]
    return files


def open_tilt_series(
    paths_or_folder: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    tilt_angles_deg: Sequence[float] | None = None,
    pattern: str | re.Pattern | None = None,
    format: str | None = None,
    **calibration: Any,
) -> Dataset:
    """Open several 4D scans (one per tilt) as one lazy 5D ``(tilt, scan_y, scan_x, k_y, k_x)`` dataset.

    Parameters
    ----------
    paths_or_folder
        A list of files, or a folder whose supported files are the scans.
    tilt_angles_deg
        One angle (degrees) per file, in the order given (a folder's files are in name order).
        Without it, angles come from the file names (``pattern``), else from each file's
        metadata (stage tilt).
    pattern
        Regular expression for the angle in a file name (group ``angle`` or the first group).
    format
        Force a reader for all files.
    **calibration
        ``scan_step_nm``, ``pixel_size``, ``beam_energy_kv``, ``tilt_axis_deg``, ``center``,
        ``scan_shape``, ``chunk_bytes``, ``fill_missing`` as in :func:`open_dataset` (applied to every scan).

    Returns
    -------
    Dataset
        5D, sorted by increasing tilt angle. ``metadata["files"]`` lists the files in that order
        and ``metadata["angle_source"]`` says where the angles came from.

    Raises
    ------
    ReadError
        No files; a scan that cannot be read; scans of different shapes or dtypes; missing or
        duplicate angles.
    """
    allowed = {
        "scan_step_nm",
        "pixel_size",
        "beam_energy_kv",
        "tilt_axis_deg",
        "center",
        "scan_shape",
        "chunk_bytes",
        "fill_missing",
    }
    unknown = set(calibration) - allowed
    if unknown:
        raise TypeError(f"open_tilt_series got unexpected keyword(s): {', '.join(sorted(unknown))}")
    if isinstance(paths_or_folder, (str, os.PathLike)):
        where: Any = Path(os.fspath(paths_or_folder))
        if not where.exists():
            raise fail(where, "no such file or folder")
        files = dataset_files(where) if where.is_dir() else [where]
        if not files:
            raise fail(where, "the folder holds no supported files")
    else:
        files = [Path(os.fspath(p)) for p in paths_or_folder]
        where = files
        if not files:
            raise ValueError("open_tilt_series needs at least one file")
    if tilt_angles_deg is not None and len(tilt_angles_deg) != len(files):
        raise fail(where, f"{len(tilt_angles_deg)} tilt angles given for {len(files)} files")
    scans = [open_scan(f, format=format, **calibration) for f in files]
    for f, s in zip(files, scans):
        if s.is_tilt_series:
            raise fail(f, f"is already 5D {s.shape}; a tilt series is built from 4D scans")
    if tilt_angles_deg is not None:
        angles, source = [float(a) for a in tilt_angles_deg], "user"
    else:
        named = [angle_from_name(f, pattern) for f in files]
        if all(a is not None for a in named):
            angles, source = [a for a in named if a is not None], "file names"
        else:
            stage = [s.metadata.get("stage_tilt_deg") for s in scans]
            if all(a is not None for a in stage):
                angles, source = [float(a) for a in stage if a is not None], "metadata"
            else:
                missing = [f.name for f, a in zip(files, named) if a is None][:5]
                raise fail(
                    where,
                    "no tilt angle for "
                    + ", ".join(missing)
                    + " (not in the file name nor the metadata): pass tilt_angles_deg=[...] or pattern=",
                )
    if len(set(angles)) != len(angles):
        dup = sorted({a for a in angles if angles.count(a) > 1})
        raise fail(where, f"duplicate tilt angle(s) {dup}")
    order = sorted(range(len(files)), key=lambda i: angles[i])
    files = [files[i] for i in order]
    scans = [scans[i] for i in order]
    angles = [angles[i] for i in order]
    first = scans[0]
    for f, s in zip(files[1:], scans[1:]):
        if s.shape != first.shape or s.dtype != first.dtype:
            raise fail(
                f,
                f"shape {s.shape} {s.dtype} differs from {files[0].name} {first.shape} {first.dtype}; "
                "all scans of a tilt series must have the same shape and dtype",
            )
    data = da.stack([s.data for s in scans], axis=0)
    cal = first.calibration.replace(tilt_angles_deg=tuple(angles))
    steps = {s.calibration.scan_step_nm for s in scans}
    meta = {
        "format": first.metadata.get("format"),
        "files": [str(f) for f in files],
        "angle_source": source,
        "calibration_source": first.metadata.get("calibration_source", {}),
        "per_file": [s.metadata for s in scans],
    }
    meta["calibration_source"] = {**meta["calibration_source"], "tilt_angles_deg": source}
    if len(steps) > 1:
        meta["scan_steps_nm_differ"] = sorted(steps)
    source_path = str(where) if isinstance(where, Path) else str(files[0].parent)
    return Dataset(data, cal, source=source_path, metadata=meta)
