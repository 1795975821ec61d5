"""Calibration of a 4D/5D-STEM dataset and the electron-optics formulas it needs.

Conventions (used everywhere in the package):

* Reciprocal lengths are crystallographic, without 2π: ``|g| = 1/d`` in Å⁻¹.
* A detector pixel at radius ``r`` pixels from the centre sits at ``|g| = r * pixel_size``
  (``pixel_size`` in Å⁻¹ per pixel); the scattering angle is ``2θ ≈ λ|g|`` (small angle),
  so ``mrad per pixel = 1000 * λ * pixel_size``.
* Detector coordinates are ``(k_y, k_x)`` in pixels, row first, like numpy.
* ``tilt_axis_deg`` is the direction of the goniometer tilt axis *as seen on the detector*,
  measured from the ``+k_x`` axis towards ``+k_y``, in degrees.
* ``scan_rotation_deg`` rotates scan (real-space) directions onto detector directions.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from scipy import constants as _const

# CODATA values, from scipy (the one place the package takes physical constants from)
_H = _const.h  # Planck constant, J s
_M0 = _const.m_e  # electron rest mass, kg
_E = _const.e  # elementary charge, C
_C = _const.c  # speed of light, m/s


def electron_wavelength(kv: float) -> float:
    """Relativistic electron wavelength in Å for an accelerating voltage in kV.

    λ = h / sqrt(2 m e V (1 + e V / (2 m c²))); 200 kV → 0.02508 Å, 300 kV → 0.01969 Å.

    Parameters
    ----------
    kv
        Accelerating voltage in kV (positive, finite).

    Returns
    -------
    float
        The wavelength in Å.

    Raises
    ------
    ValueError
        ``kv`` is not a positive finite number.
    """
    if not (isinstance(kv, (int, float)) and math.isfinite(kv) and kv > 0):
        raise ValueError(f"beam energy must be a positive number of kV, got {kv!r}")
    v = kv * 1e3
    lam_m = _H / math.sqrt(2 * _M0 * _E * v * (1 + _E * v / (2 * _M0 * _C**2)))
    return lam_m * 1e10


def beam_energy_from_wavelength(wavelength: float) -> float:
    """Accelerating voltage in kV whose relativistic electron wavelength is ``wavelength`` Å.

    The inverse of :func:`electron_wavelength`.

    Parameters
    ----------
    wavelength
        Electron wavelength in Å (positive, finite).

    Returns
    -------
    float
        The accelerating voltage in kV.
    """
    if not (isinstance(wavelength, (int, float)) and math.isfinite(wavelength) and wavelength > 0):
        raise ValueError(f"wavelength must be a positive number of Å, got {wavelength!r}")
    p = _H / (wavelength * 1e-10)  # momentum, kg m / s
    energy = math.sqrt((p * _C) ** 2 + (_M0 * _C**2) ** 2) - _M0 * _C**2  # kinetic energy, J
    return energy / _E / 1e3


def _positive(name: str, value: float | None, *, allow_none: bool = True) -> None:
    if value is None:
        if allow_none:
            return
        raise ValueError(f"calibration {name} is required")
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"calibration {name} must be a positive finite number, got {value!r}")


@dataclass(frozen=True)
class Calibration:
    """Physical calibration of a dataset. Immutable: use :meth:`replace` to change it.

    Parameters
    ----------
    scan_step_nm
        Probe step between neighbouring scan positions, in nm.
    pixel_size
        Detector pixel size in reciprocal space, Å⁻¹ per pixel. ``None`` = unknown.
    beam_energy_kv
        Accelerating voltage in kV (sets the wavelength).
    tilt_angles_deg
        One specimen tilt angle per tilt of a 5D series, in degrees; ``None`` for 4D data.
    tilt_axis_deg
        Direction of the tilt axis on the detector, degrees from +k_x towards +k_y.
    center
        Unscattered-beam position ``(k_y, k_x)`` on the detector in pixels; ``None`` means the
        geometric centre of the detector.
    scan_rotation_deg
        Rotation from scan directions to detector directions, in degrees.
    ellipticity
        Elliptical distortion of the detector as ``(a_over_b, angle_deg)``; ``(1.0, 0.0)`` is none.
    """

    scan_step_nm: float = 1.0
    pixel_size: float | None = None
    beam_energy_kv: float = 300.0
    tilt_angles_deg: tuple[float, ...] | None = None
    tilt_axis_deg: float = 0.0
    center: tuple[float, float] | None = None
    scan_rotation_deg: float = 0.0
    ellipticity: tuple[float, float] = (1.0, 0.0)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        _positive("scan_step_nm", self.scan_step_nm, allow_none=False)
        _positive("pixel_size", self.pixel_size)
        _positive("beam_energy_kv", self.beam_energy_kv, allow_none=False)
        if self.tilt_angles_deg is not None:
            angles = tuple(float(a) for a in self.tilt_angles_deg)
            if not all(math.isfinite(a) for a in angles):
                raise ValueError("calibration tilt_angles_deg must all be finite")
            object.__setattr__(self, "tilt_angles_deg", angles)
        if self.center is not None:
            c = tuple(float(v) for v in self.center)
            if len(c) != 2 or not all(math.isfinite(v) for v in c):
                raise ValueError(f"calibration center must be (k_y, k_x), got {self.center!r}")
            object.__setattr__(self, "center", c)
        e = tuple(float(v) for v in self.ellipticity)
        if len(e) != 2 or not e[0] > 0:
            raise ValueError(
                f"calibration ellipticity must be (a_over_b > 0, angle_deg), got {self.ellipticity!r}"
            )
        object.__setattr__(self, "ellipticity", e)
        for name in ("tilt_axis_deg", "scan_rotation_deg"):
            v = getattr(self, name)
            if not math.isfinite(float(v)):
                raise ValueError(f"calibration {name} must be finite, got {v!r}")
            object.__setattr__(self, name, float(v))

    # ---- derived quantities -------------------------------------------------------------
    @property
    def wavelength(self) -> float:
        """Relativistic electron wavelength in Å."""
        return electron_wavelength(self.beam_energy_kv)

    @property
    def pixel_size_mrad(self) -> float | None:
        """Detector pixel size as a scattering angle in mrad (None when pixel_size is unknown)."""
        if self.pixel_size is None:
            return None
        return 1000.0 * self.wavelength * self.pixel_size

    def detector_center(self, detector_shape: tuple[int, int]) -> tuple[float, float]:
        """The beam centre in pixels, falling back to the geometric centre of the detector."""
        if self.center is not None:
            return self.center
        return ((detector_shape[0] - 1) / 2.0, (detector_shape[1] - 1) / 2.0)

    # ---- copies and serialisation ---------------------------------------------------------
    def replace(self, **changes: Any) -> Calibration:
        """A copy with some fields changed (validated like the constructor)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown calibration field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["tilt_angles_deg"] = list(self.tilt_angles_deg) if self.tilt_angles_deg is not None else None
        d["center"] = list(self.center) if self.center is not None else None
        d["ellipticity"] = list(self.ellipticity)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for k in ("tilt_angles_deg", "center", "ellipticity"):
            if kw.get(k) is not None:
                kw[k] = tuple(kw[k])
        return cls(**kw)
