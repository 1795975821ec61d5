"""Maps and frames: CCP4/MRC potential map (gemmi), MRC frame stacks (mrcfile), SMV images.

SMV (``.img``): a 512-byte-multiple ASCII header in braces followed by unsigned 16-bit pixels
(little endian), read by DIALS and XDS. The camera length is derived from the reciprocal pixel
size: a detector pixel of physical size p (mm) at camera length L (mm) subtends p/L radians,
i.e. λ·Δg = p/L, so ``DISTANCE = p / (λ · pixel_size)`` with ``pixel_size`` in Å⁻¹/pixel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._atomic import atomic_path, write_with

__all__ = ["write_ccp4_map", "write_mrc_stack", "write_smv", "smv_header"]


def write_ccp4_map(path: str | os.PathLike, potential: np.ndarray, *, cell: Sequence[float], space_group="P 1",
                   overwrite: bool = False) -> Path:
    """Write a map over the whole unit cell (axes along a, b, c) as CCP4 (mode 2), via gemmi."""
    import gemmi

    from ..reflections import parse_space_group

    arr = np.ascontiguousarray(potential, dtype=np.float32)
    if arr.ndim != 3:
        raise ValueError(f"map must be 3-D, got shape {arr.shape}")
    m = gemmi.Ccp4Map()
    m.grid = gemmi.FloatGrid(arr, gemmi.UnitCell(*cell), parse_space_group(space_group))
    m.update_ccp4_header(2)
    return write_with(path, m.write_ccp4_map, overwrite=overwrite)


def write_mrc_stack(path: str | os.PathLike, frames: np.ndarray, *, pixel_size: float | None = None,
                    tilt_angles_deg: Sequence[float] | None = None, overwrite: bool = False) -> Path:
    """Write per-tilt summed patterns (n_tilt, ky, kx) as an MRC image stack (float32, mrcfile).

    ``pixel_size`` (Å⁻¹/px) goes into the header's voxel size (as 1/Å⁻¹ is not an MRC unit it is
    stored as given, documented in the labels); the tilt angles are written to the labels.
    """
    import mrcfile

    arr = np.asarray(frames, dtype=np.float32)
    if arr.ndim != 3:
        raise ValueError(f"frames must have shape (n_tilt, ky, kx), got {arr.shape}")
    with atomic_path(path, overwrite=overwrite) as tmp:
        with mrcfile.new(str(tmp), overwrite=True) as mrc:
            mrc.set_data(arr)
            mrc.header.ispg = 0  # image stack
            if pixel_size:
                mrc.voxel_size = (float(pixel_size), float(pixel_size), 1.0)
            labels = [f"virtual-aperture per-tilt summed patterns; pixel {pixel_size} 1/A"]
            if tilt_angles_deg is not None:
                t = list(tilt_angles_deg)
                if len(t) != arr.shape[0]:
                    raise ValueError(f"{len(t)} tilt angles for {arr.shape[0]} frames")
                labels.append(f"tilts {t[0]:.3f} to {t[-1]:.3f} deg, step {(t[-1] - t[0]) / max(len(t) - 1, 1):.4f}")
            for i, lab in enumerate(labels[:10]):
                mrc.header.label[i] = lab[:80].encode("ascii", "replace")
            mrc.header.nlabl = len(labels[:10])
    return Path(path)


def smv_header(shape: tuple[int, int], *, wavelength: float, pixel_size: float, center: tuple[float, float],
               osc_start: float, osc_range: float, physical_pixel_mm: float = 0.055,
               exposure_s: float = 1.0) -> str:
    """The SMV header text (without padding) for a (ky, kx) frame.

    ``DISTANCE`` (mm) = physical_pixel_mm / (λ·pixel_size); BEAM_CENTER_X/Y in mm
    (ADSC convention: X = k_x·p, Y = k_y·p).
    """
    if not (wavelength > 0 and pixel_size > 0 and physical_pixel_mm > 0):
        raise ValueError("wavelength, pixel_size and physical_pixel_mm must be positive")
    distance = physical_pixel_mm / (wavelength * pixel_size)
    ky, kx = center
    fields = {
        "HEADER_BYTES": "512",
        "DIM": "2",
        "BYTE_ORDER": "little_endian",
        "TYPE": "unsigned_short",
        "SIZE1": str(shape[1]),
        "SIZE2": str(shape[0]),
        "PIXEL_SIZE": f"{physical_pixel_mm:.6f}",
        "WAVELENGTH": f"{wavelength:.6f}",
        "DISTANCE": f"{distance:.3f}",
        "PHI": f"{osc_start:.4f}",
        "OSC_START": f"{osc_start:.4f}",
        "OSC_RANGE": f"{osc_range:.4f}",
        "TWOTHETA": "0.00",
        "AXIS": "phi",
        "BEAM_CENTER_X": f"{kx * physical_pixel_mm:.4f}",
        "BEAM_CENTER_Y": f"{ky * physical_pixel_mm:.4f}",
        "DENZO_X_BEAM": f"{ky * physical_pixel_mm:.4f}",
        "DENZO_Y_BEAM": f"{kx * physical_pixel_mm:.4f}",
        "TIME": f"{exposure_s:.3f}",
        "DETECTOR_SN": "unknown",
    }
    return "{\n" + "".join(f"{k}={v};\n" for k, v in fields.items())


def write_smv(directory: str | os.PathLike, frames: np.ndarray, *, tilt_angles_deg: Sequence[float],
              wavelength: float, pixel_size: float, center: tuple[float, float], prefix: str = "frame",
              physical_pixel_mm: float = 0.055, overwrite: bool = False) -> list[Path]:
    """Write one SMV ``.img`` per tilt (``prefix_00001.img`` …) for DIALS/XDS.

    Counts are rounded and clipped to uint16 (values above 65535 raise ``ValueError``: rescale
    first). ``OSC_RANGE`` is the tilt step; ``OSC_START`` each frame's tilt minus half a step.
    """
    arr = np.asarray(frames, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"frames must have shape (n_tilt, ky, kx), got {arr.shape}")
    t = np.asarray(tilt_angles_deg, dtype=float)
    if t.shape != (arr.shape[0],):
        raise ValueError(f"{t.size} tilt angles for {arr.shape[0]} frames")
    if arr.max(initial=0) > 65535:
        raise ValueError(f"frame counts up to {arr.max():.0f} exceed the SMV uint16 range; rescale first")
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"directory {d} does not exist")
    step = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    out = []
    for i, (frame, tilt) in enumerate(zip(arr, t), 1):
        head = smv_header(frame.shape, wavelength=wavelength, pixel_size=pixel_size, center=center,
                          osc_start=tilt - step / 2, osc_range=step, physical_pixel_mm=physical_pixel_mm)
        nbytes = 512 * ((len(head) + 2 + 511) // 512)
        head = head.replace("HEADER_BYTES=512;", f"HEADER_BYTES={nbytes:d};".ljust(len("HEADER_BYTES=512;")))
        raw = (head + "}\n").encode("ascii").ljust(nbytes, b" ")
        data = np.clip(np.rint(frame), 0, 65535).astype("<u2").tobytes()
        target = d / f"{prefix}_{i:05d}.img"
        with atomic_path(target, overwrite=overwrite) as tmp:
            tmp.write_bytes(raw + data)
        out.append(target)
    return out
