"""What :func:`~virtual_aperture.crystal.indexing.index_tilt_series` returns: cell, orientation,
Miller indices per peak, residuals, validation, and the spots it predicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import geometry
from .lattice import centring_allowed
from .peaks import PeakList

__all__ = ["IndexingResult"]


@dataclass
class IndexingResult:
    """A unit cell and orientation that explain the peaks of a tilt series.

    ``cell`` (Å, °) is the conventional cell of ``lattice`` (e.g. ``'oP'``); ``UB = U @ B`` maps its
    Miller indices to lab-frame reciprocal vectors at zero tilt (crystal.geometry convention);
    ``hkl`` has one row per peak of ``peaks`` (``indexed`` says which are valid; the others are 0);
    ``rmsd_px``/``rmsd_inv_A`` are the positional residuals of indexed peaks; ``tilt_axis_deg`` is
    the refined tilt-axis direction; ``excitation_tolerance`` (Å⁻¹) the 90th percentile of |s| of
    the indexed peaks, used by :meth:`predict`; ``cell_esd`` the standard uncertainties of the six
    cell parameters (0 for those fixed by the lattice).
    """

    cell: tuple[float, float, float, float, float, float]
    UB: np.ndarray
    U: np.ndarray
    B: np.ndarray
    lattice: str
    bravais_candidates: list
    tilt_axis_deg: float
    indexed_fraction: float
    hkl: np.ndarray
    indexed: np.ndarray
    rmsd_px: float
    rmsd_inv_A: float
    peaks: PeakList
    calibration: Any
    excitation_tolerance: float
    cell_esd: tuple = ()
    reduced_cell: tuple = ()
    info: dict = field(default_factory=dict)
    confidence: float = float("nan")  # 0–1, from the checks of crystal.validation (info["validation"])
    #: every lattice found in the peaks (crystal.multi_lattice.Lattice: cell, UB, owned peak indices,
    #: confidence), ordered by peaks owned; ``lattices[0]`` is this (the chosen, integrated) one
    lattices: list = field(default_factory=list)

    @property
    def centring(self) -> str:
        return self.lattice[1]

    def tilt_angle(self, tilt: int) -> float:
        return float(self.calibration.tilt_angles_deg[tilt])

    def predict(
        self,
        tilt: int | None = None,
        *,
        angle: float | None = None,
        d_min: float = 1.0,
        s_max: float | None = None,
        detector_shape: tuple[int, int] | None = None,
        space_group: str | None = None,
    ) -> dict:
        """Predicted spots at one tilt (by index into the series, or any ``angle`` in degrees).

        Returns a dict of arrays ``hkl (n, 3)``, ``positions (n, 2)`` (k_y, k_x px), ``s (n,)`` Å⁻¹,
        keeping reflections with d ≥ ``d_min`` Å, allowed by the centring, with
        |s| ≤ ``s_max`` (default: the excitation tolerance) and on the detector if its shape is given.
        With ``space_group`` (H-M symbol, in the setting of :attr:`cell`) systematic absences of
        screw axes and glide planes are removed too (gemmi).
        """
        if (tilt is None) == (angle is None):
            raise ValueError("give either a tilt index or an angle")
        if angle is None:
            n = len(self.calibration.tilt_angles_deg)
            if not -n <= int(tilt) < n:
                raise ValueError(f"tilt {tilt} out of range for {n} tilts")
            angle = self.tilt_angle(int(tilt))
            center = self.info.get("centers", {}).get(int(tilt) % n)
        else:
            center = None
        cal = self.calibration
        if center is None:
            center = cal.center if cal.center is not None else self.peaks.center
        hkl = geometry.miller_indices_within(self.cell, d_min)
        hkl = hkl[centring_allowed(hkl, self.centring)]
        if space_group is not None:
            import gemmi

            try:
                ops = gemmi.SpaceGroup(space_group).operations()
            except (ValueError, RuntimeError) as exc:
                raise ValueError(f"unknown space group {space_group!r}: {exc}") from None
            hkl = hkl[[not ops.is_systematically_absent([int(v) for v in h]) for h in hkl]]
        pos, s, _ = geometry.predict_reflections(
            self.UB,
            hkl,
            tilt_deg=angle,
            tilt_axis_deg=self.tilt_axis_deg,
            wavelength=cal.wavelength,
            pixel_size=cal.pixel_size,
            center=center,
            ellipticity=cal.ellipticity,
        )
        keep = np.abs(s) <= (self.excitation_tolerance if s_max is None else s_max)
        if detector_shape is not None:
            keep &= (
                (pos[:, 0] >= 0)
                & (pos[:, 1] >= 0)
                & (pos[:, 0] <= detector_shape[0] - 1)
                & (pos[:, 1] <= detector_shape[1] - 1)
            )
        return {"hkl": hkl[keep], "positions": pos[keep], "s": s[keep]}

    def to_dict(self) -> dict:
        """JSON-ready summary (no per-peak arrays except hkl)."""
        return {
            "cell": [round(v, 5) for v in self.cell],
            "cell_esd": [float(v) for v in self.cell_esd],
            "reduced_cell": [round(v, 5) for v in self.reduced_cell],
            "lattice": self.lattice,
            "bravais_candidates": [c.to_dict() for c in self.bravais_candidates],
            "UB": np.asarray(self.UB).tolist(),
            "U": np.asarray(self.U).tolist(),
            "B": np.asarray(self.B).tolist(),
            "tilt_axis_deg": self.tilt_axis_deg,
            "indexed_fraction": self.indexed_fraction,
            "n_peaks": int(len(self.peaks)),
            "n_indexed": int(self.indexed.sum()),
            "rmsd_px": self.rmsd_px,
            "rmsd_inv_A": self.rmsd_inv_A,
            "excitation_tolerance": self.excitation_tolerance,
            "gemmi_lattice_rotations": self.info.get("gemmi_lattice_rotations"),
            "confidence": self.confidence,
            "validation": self.info.get("validation"),
            "lattices": [lat.to_dict() for lat in self.lattices],
            "overlapped_peaks": self.info.get("overlapped_peaks", []),
            "calibration": self.calibration.to_dict(),
        }

    def summary(self) -> str:
        a, b, c, al, be, ga = self.cell
        text = (
            f"{self.lattice}  a={a:.4f} b={b:.4f} c={c:.4f} Å  α={al:.3f} β={be:.3f} γ={ga:.3f}°  "
            f"indexed {100 * self.indexed_fraction:.1f}% of {len(self.peaks)} peaks, "
            f"rmsd {self.rmsd_px:.3f} px, tilt axis {self.tilt_axis_deg:.3f}°"
        )
        for lat in self.lattices[1:]:  # max_lattices > 1: the other lattices of the aperture
            text += (
                f"\nlattice {lat.order + 1} (not integrated): {lat.lattice}  "
                f"{' '.join(f'{v:.3f}' for v in lat.cell)}  owns {len(lat.peaks)} peaks"
            )
        return text
