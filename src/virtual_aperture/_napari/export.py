"""Write summed diffraction patterns as TIFF or MRC stacks with their calibration (no Qt)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _calibration_info(calibration: Any, tilt_angles: Sequence[float], name: str, counts: Any) -> dict:
    cal = None if calibration is None else calibration.to_dict()
    if cal is not None:
        cal.pop("extra", None)
    return {
        "grain": name,
        "tilt_angles_deg": [float(a) for a in tilt_angles],
        "positions_summed": [int(c) for c in np.atleast_1d(counts)],
        "calibration": cal,
        "units": "counts (sum over the virtual aperture)",
    }


def save_pattern_stack(
    path: str | os.PathLike,
    patterns: np.ndarray,
    *,
    calibration: Any = None,
    tilt_angles: Sequence[float] = (0.0,),
    counts: Any = (),
    name: str = "grain",
) -> Path:
    """Save ``(n_tilts, k_y, k_x)`` summed patterns as one stack (``.tif``/``.tiff`` or ``.mrc``).

    TIFF: float32 pages, the calibration (pixel size Å⁻¹/px, beam energy, centre, tilt axis) and the
    tilt angles as JSON in the ImageDescription. MRC: float32 (mode 2), voxel size = detector
    pixel size in Å⁻¹ (also written into the header labels), tilt angles in the labels.
    """
    path = Path(path)
    stack = np.asarray(patterns, dtype=np.float32)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3:
        raise ValueError(f"patterns must be (n_tilts, k_y, k_x), got shape {np.shape(patterns)}")
    if len(tilt_angles) != stack.shape[0]:
        raise ValueError(f"{len(tilt_angles)} tilt angles for {stack.shape[0]} patterns")
    info = _calibration_info(calibration, tilt_angles, name, counts)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, stack, description=json.dumps(info), metadata=None)
    elif suffix == ".mrc":
        import mrcfile

        px = None if calibration is None else calibration.pixel_size
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(stack)
            if px:
                mrc.voxel_size = (px, px, 1.0)
            labels = [
                f"virtual-aperture grain {name}"[:80],
                f"pixel_size {px} 1/A per px; {calibration.beam_energy_kv if calibration else '?'} kV"[:80],
                ("tilts_deg " + " ".join(f"{a:.2f}" for a in tilt_angles))[:80],
            ]
            mrc.header.nlabl = len(labels)
            for i, text in enumerate(labels):
                mrc.header.label[i] = text.encode("ascii", "replace")
    else:
        raise ValueError(f"cannot save patterns to {path}: use .tif, .tiff or .mrc")
    return path


def safe_name(name: str) -> str:
    """A file-name-safe version of a grain name."""
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name.strip())
    return keep or "grain"
