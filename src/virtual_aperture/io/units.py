"""Axis units → the package's calibration units (scan step in nm, detector pixel in Å⁻¹).

Readers report axes the HyperSpy way: a list of dicts with ``scale`` and ``units`` per array
axis. Scan (navigation) axes in length units become ``scan_step_nm``; detector (signal) axes in
reciprocal-length units become ``pixel_size`` in Å⁻¹ (crystallographic, no 2π); detector axes in
angle units (mrad, rad) are kept as ``pixel_size_mrad`` and converted with the wavelength once the
beam energy is known (``pixel_size = mrad / (1000 λ)``).
"""

from __future__ import annotations

import math
from typing import Any

# length unit → nm
_LENGTH_NM = {
    "m": 1e9,
    "cm": 1e7,
    "mm": 1e6,
    "um": 1e3,
    "µm": 1e3,
    "micron": 1e3,
    "nm": 1.0,
    "a": 0.1,
    "å": 0.1,
    "angstrom": 0.1,
    "ang": 0.1,
    "pm": 1e-3,
}
# reciprocal length unit (without the 1/ or ^-1) → factor to Å⁻¹
_RECIP_INV_A = {
    "m": 1e-10,
    "cm": 1e-8,
    "mm": 1e-7,
    "um": 1e-4,
    "µm": 1e-4,
    "nm": 0.1,
    "a": 1.0,
    "å": 1.0,
    "angstrom": 1.0,
    "ang": 1.0,
    "pm": 100.0,
}
# angle unit → mrad
_ANGLE_MRAD = {"rad": 1e3, "mrad": 1.0, "urad": 1e-3, "µrad": 1e-3}


def _norm(units: Any) -> str:
    if units is None:
        return ""
    u = str(units).strip().lower().replace(" ", "").replace("μ", "µ").replace("⁻¹", "^-1")
    u = u.replace("**", "^")
    return u


def length_to_nm(scale: float, units: Any) -> float | None:
    """Scale of a length axis in nm, or None when the units are not a length."""
    u = _norm(units)
    f = _LENGTH_NM.get(u)
    return None if f is None else float(scale) * f


def reciprocal_to_inv_angstrom(scale: float, units: Any) -> float | None:
    """Scale of a reciprocal-length axis (1/nm, nm^-1, Å^-1, ...) in Å⁻¹, or None."""
    u = _norm(units)
    base = None
    if u.startswith("1/"):
        base = u[2:]
    elif u.endswith("^-1"):
        base = u[:-3]
    elif u.endswith("-1"):
        base = u[:-2]
    if base is None:
        return None
    f = _RECIP_INV_A.get(base.strip("()"))
    return None if f is None else float(scale) * f


def angle_to_mrad(scale: float, units: Any) -> float | None:
    """Scale of an angle axis in mrad, or None."""
    f = _ANGLE_MRAD.get(_norm(units))
    return None if f is None else float(scale) * f


def _good(v: Any) -> bool:
    try:
        return math.isfinite(float(v)) and float(v) > 0
    except (TypeError, ValueError):
        return False


def calibration_from_axes(axes: list[dict[str, Any]], ndim: int) -> dict[str, Any]:
    """Calibration values found in HyperSpy-style axes of a 4D/5D (or 3D stack) array.

    Returns a dict with some of ``scan_step_nm``, ``pixel_size`` (Å⁻¹), ``pixel_size_mrad``,
    ``tilt_angles_deg`` (a 5D leading axis in degrees), and ``scan_step_nm_yx`` when the two scan
    axes differ.
    """
    found: dict[str, Any] = {}
    if not axes:
        return found
    by_index = sorted(axes, key=lambda a: a.get("index_in_array", 0))
    if len(by_index) != ndim:
        return found
    det = by_index[-2:]
    scan = by_index[-4:-2] if ndim >= 4 else []
    lengths = [length_to_nm(a.get("scale", 1.0), a.get("units")) for a in scan]
    steps = [s for s in lengths if s is not None and _good(s)]
    if steps:
        found["scan_step_nm"] = steps[0]
        if len(steps) == 2 and not math.isclose(steps[0], steps[1], rel_tol=1e-6):
            found["scan_step_nm_yx"] = tuple(steps)
    px = [reciprocal_to_inv_angstrom(a.get("scale", 1.0), a.get("units")) for a in det]
    px = [p for p in px if p is not None and _good(p)]
    if px:
        found["pixel_size"] = px[0]
    else:
        mr = [angle_to_mrad(a.get("scale", 1.0), a.get("units")) for a in det]
        mr = [m for m in mr if m is not None and _good(m)]
        if mr:
            found["pixel_size_mrad"] = mr[0]
    if ndim == 5:
        t = by_index[0]
        if _norm(t.get("units")) in ("deg", "°", "degree", "degrees"):
            n = int(t.get("size", 0))
            off, sc = float(t.get("offset", 0.0)), float(t.get("scale", 1.0))
            found["tilt_angles_deg"] = tuple(off + i * sc for i in range(n))
    return found


def beam_energy_from_metadata(md: dict[str, Any] | None) -> float | None:
    """Beam energy in kV from HyperSpy-style metadata (``Acquisition_instrument.TEM.beam_energy``)."""
    try:
        v = md["Acquisition_instrument"]["TEM"]["beam_energy"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    return float(v) if _good(v) else None


def tilt_from_metadata(md: dict[str, Any] | None) -> float | None:
    """Stage tilt (alpha) in degrees from HyperSpy-style metadata, if recorded."""
    try:
        v = md["Acquisition_instrument"]["TEM"]["Stage"]["tilt_alpha"]  # type: ignore[index]
        v = float(v)
    except (KeyError, TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
