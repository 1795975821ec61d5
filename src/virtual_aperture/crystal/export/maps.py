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

__all__ = [
    "write_ccp4_map",
    "write_mrc_stack",
    "write_smv",
    "smv_header",
    "rotate_to_fast_axis",
    "electron_voltage",
]


def write_ccp4_map(
    path: str | os.PathLike,
    potential: np.ndarray,
    *,
    cell: Sequence[float],
    space_group="P 1",
    overwrite: bool = False,
) -> Path:
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


def write_mrc_stack(
    path: str | os.PathLike,
    frames: np.ndarray,
    *,
    pixel_size: float | None = None,
    tilt_angles_deg: Sequence[float] | None = None,
    wavelength: float | None = None,
    tilt_axis_deg: float | None = None,
    exposure_s: float = 0.0,
    overwrite: bool = False,
) -> Path:
    """Write per-tilt summed patterns (n_tilt, ky, kx) as an MRC image stack (float32, mrcfile).

    Diffraction patterns have no real-space sampling, so the header's voxel size (Å/px) is left
    0 ("not a real-space image"). The calibration and the tilts go where 3D ED readers look
    (dxtbx ``FormatMRC``, following Thermo Fisher's FEI2 extended header, one record per frame):
    ``Alpha tilt`` (°) per frame, ``Start/End tilt angle`` and ``Tilt per image`` (°),
    ``Pixel size X/Y`` = reciprocal pixel
    size in m⁻¹ (``pixel_size`` Å⁻¹/px × 10¹⁰), ``HT`` (V, from ``wavelength``), ``Integration
    time`` (s) and ``Tilt axis angle`` (°; dxtbx's axis is (0, −1, 0) rotated by it about the
    beam, i.e. 90° − ``tilt_axis_deg`` in this project's detector frame). The labels repeat it
    as text.
    """
    import mrcfile

    arr = np.asarray(frames, dtype=np.float32)
    if arr.ndim != 3:
        raise ValueError(f"frames must have shape (n_tilt, ky, kx), got {arr.shape}")
    t = None if tilt_angles_deg is None else np.asarray(tilt_angles_deg, dtype=float)
    if t is not None and t.shape != (arr.shape[0],):
        raise ValueError(f"{t.size} tilt angles for {arr.shape[0]} frames")
    step = float(np.median(np.diff(t))) if t is not None and t.size > 1 else 0.0
    with atomic_path(path, overwrite=overwrite) as tmp:
        with mrcfile.new(str(tmp), overwrite=True) as mrc:
            mrc.set_data(arr)
            mrc.header.ispg = 0  # image stack
            xh = np.zeros(arr.shape[0], dtype=mrcfile.dtypes.get_ext_header_dtype(b"FEI2"))
            xh["Metadata size"] = xh.dtype.itemsize
            xh["Metadata version"] = 2
            xh["Application"] = "virtual-aperture"
            if t is not None:
                xh["Alpha tilt"] = t
                xh["Alpha tilt min"] = t.min()
                xh["Alpha tilt max"] = t.max()
                xh["Start tilt angle"] = t[0]
                xh["End tilt angle"] = t[-1]
                xh["Tilt per image"] = step
            if pixel_size:
                xh["Pixel size X"] = xh["Pixel size Y"] = float(pixel_size) * 1e10
            if wavelength:
                xh["HT"] = electron_voltage(wavelength)
            if tilt_axis_deg is not None:
                xh["Tilt axis angle"] = 90.0 - float(tilt_axis_deg)
            xh["Integration time"] = exposure_s
            xh["Camera name"] = "virtual-aperture sum"
            mrc.set_extended_header(xh)
            mrc.header.exttyp = b"FEI2"
            labels = [f"virtual-aperture per-tilt summed patterns; pixel {pixel_size} 1/A (ext. header FEI2)"]
            if t is not None:
                labels.append(f"tilts {t[0]:.3f} to {t[-1]:.3f} deg, step {step:.4f}")
            if tilt_axis_deg is not None:
                labels.append(f"tilt axis {float(tilt_axis_deg):.3f} deg from +x (columns) towards +y (rows)")
            for i, lab in enumerate(labels[:10]):
                mrc.header.label[i] = lab[:80].encode("ascii", "replace")
            mrc.header.nlabl = len(labels[:10])
    return Path(path)


def electron_voltage(wavelength: float) -> float:
    """Accelerating voltage (V) of electrons of ``wavelength`` (Å), relativistic."""
    h, m, e, c = 6.62607015e-34, 9.1093837015e-31, 1.602176634e-19, 299792458.0
    p = h / (wavelength * 1e-10)  # momentum
    # p² = 2 m e V (1 + e V / (2 m c²))  →  solve the quadratic for V
    a, b = e * e / (c * c), 2 * m * e
    return float((-b + np.sqrt(b * b + 4 * a * p * p)) / (2 * a))


def smv_header(
    shape: tuple[int, int],
    *,
    wavelength: float,
    pixel_size: float,
    center: tuple[float, float],
    osc_start: float,
    osc_range: float,
    physical_pixel_mm: float = 0.055,
    exposure_s: float = 1.0,
    pedestal: int = 1,
    rotated_deg: float = 0.0,
) -> str:
    """The SMV header text (without padding) for a (ky, kx) frame, as dxtbx ``FormatSMVADSC`` reads it.

    ``center`` = (k_y, k_x) beam centre in array indices (pixel centres at integers). dxtbx
    (``FormatSMVADSC._detector``) builds the detector with beam centre (fast, slow) =
    (BEAM_CENTER_Y, BEAM_CENTER_X) in mm from the corner of the first pixel, fast = columns: so
    ``BEAM_CENTER_Y = (k_x + ½)·p`` and ``BEAM_CENTER_X = (k_y + ½)·p``. ``DISTANCE`` (mm) =
    physical_pixel_mm / (λ·pixel_size). ``IMAGE_PEDESTAL`` is the offset added to every valid pixel
    (so that 0 marks pixels without data, outside the ADSC trusted range (1, 65534));
    ``ROTATED_BY_DEG`` says how the patterns were turned to put the tilt axis along +fast.
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
        "BEAM_CENTER_X": f"{(ky + 0.5) * physical_pixel_mm:.5f}",
        "BEAM_CENTER_Y": f"{(kx + 0.5) * physical_pixel_mm:.5f}",
        "IMAGE_PEDESTAL": str(int(pedestal)),
        "ROTATED_BY_DEG": f"{rotated_deg:.4f}",
        "TIME": f"{exposure_s:.3f}",
        "DETECTOR_SN": "unknown",
    }
    return "{\n" + "".join(f"{k}={v};\n" for k, v in fields.items())


def rotate_to_fast_axis(
    frames: np.ndarray, center: tuple[float, float], tilt_axis_deg: float
) -> tuple[np.ndarray, tuple[float, float]]:
    """Turn (n, ky, kx) patterns so the tilt axis lies along +k_x (fast); return (frames, new centre).

    The tilt axis is at ``tilt_axis_deg`` from +x (columns) towards +y (rows); a proper rotation by
    −``tilt_axis_deg`` brings it to +x, keeping the rotation sense. Multiples of 90° are exact
    pixel permutations about the pixel nearest the beam centre; other angles interpolate linearly
    about the beam centre. Pixels with no source become NaN.
    """
    from scipy import ndimage

    arr = np.asarray(frames, dtype=np.float64)
    ctr = np.asarray(center, float)
    phi = float(tilt_axis_deg) % 360.0
    if min(phi, 360.0 - phi) < 1e-6:
        return arr, (float(ctr[0]), float(ctr[1]))
    c, s = np.cos(np.radians(phi)), np.sin(np.radians(phi))
    A = np.array([[c, s], [-s, c]])  # input (row, col) = pivot + A · (output (row, col) − pivot)
    quarter = abs(phi / 90.0 - round(phi / 90.0)) < 1e-6
    pivot = np.round(ctr) if quarter else ctr
    if quarter:
        A = np.round(A)
    out = np.empty_like(arr)
    for i, f in enumerate(arr):
        out[i] = ndimage.affine_transform(
            f, A, offset=pivot - A @ pivot, order=0 if quarter else 1, mode="constant", cval=np.nan
        )
    new = pivot + A.T @ (ctr - pivot)
    return out, (float(new[0]), float(new[1]))


def write_smv(
    directory: str | os.PathLike,
    frames: np.ndarray,
    *,
    tilt_angles_deg: Sequence[float],
    wavelength: float,
    pixel_size: float,
    center: tuple[float, float],
    prefix: str = "frame",
    physical_pixel_mm: float = 0.055,
    tilt_axis_deg: float = 0.0,
    overwrite: bool = False,
) -> list[Path]:
    """Write one SMV ``.img`` per tilt (``prefix_00001.img`` …) for DIALS/XDS (dxtbx ``FormatSMVADSC``).

    The ADSC reader puts the rotation axis along +fast (``goniometer_factory.single_axis()``), so
    the patterns are first turned about the beam centre by −``tilt_axis_deg``
    (:func:`rotate_to_fast_axis`, recorded as ``ROTATED_BY_DEG``). Pixels without data (NaN,
    e.g. under a beam stop, or outside the turned frame) are written as 0, outside the ADSC
    trusted range (1, 65534); every valid pixel is its rounded count + ``IMAGE_PEDESTAL`` (1).
    Counts above 65533 raise ``ValueError`` (rescale first). ``OSC_RANGE`` is the tilt step (a
    negative step makes dxtbx reverse the axis); ``OSC_START`` each frame's tilt minus half a step.
    """
    arr = np.asarray(frames, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"frames must have shape (n_tilt, ky, kx), got {arr.shape}")
    t = np.asarray(tilt_angles_deg, dtype=float)
    if t.shape != (arr.shape[0],):
        raise ValueError(f"{t.size} tilt angles for {arr.shape[0]} frames")
    if np.nanmax(arr, initial=0) > 65533:
        raise ValueError(
            f"frame counts up to {np.nanmax(arr):.0f} exceed the SMV uint16 range; rescale first"
        )
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"directory {d} does not exist")
    arr, center = rotate_to_fast_axis(arr, center, tilt_axis_deg)
    step = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    out = []
    for i, (frame, tilt) in enumerate(zip(arr, t), 1):
        head = smv_header(
            frame.shape,
            wavelength=wavelength,
            pixel_size=pixel_size,
            center=center,
            osc_start=tilt - step / 2,
            osc_range=step,
            physical_pixel_mm=physical_pixel_mm,
            rotated_deg=-float(tilt_axis_deg),
        )
        nbytes = 512 * ((len(head) + 2 + 511) // 512)
        head = head.replace("HEADER_BYTES=512;", f"HEADER_BYTES={nbytes:d};".ljust(len("HEADER_BYTES=512;")))
        raw = (head + "}\n").encode("ascii").ljust(nbytes, b" ")
        valid = np.isfinite(frame)
        counts = np.where(valid, np.clip(np.rint(np.nan_to_num(frame)), 0, 65533) + 1, 0)
        data = counts.astype("<u2").tobytes()
        target = d / f"{prefix}_{i:05d}.img"
        with atomic_path(target, overwrite=overwrite) as tmp:
            tmp.write_bytes(raw + data)
        out.append(target)
    return out
