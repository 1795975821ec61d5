"""Ground truth of the built-in sample (Qt-free, picklable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..crystal.geometry import reciprocal_basis
from ..model.calibration import Calibration
from .scattering import depletion, rocking_intensity


@dataclass
class Truth:
    """What :func:`simulate_agglomerate` put into the data.

    Grain ``i`` (0-based, the index into ``footprints``, ``thickness`` and ``orientations``)
    carries label ``i + 1`` in ``labels``; 0 means no crystal.

    Attributes
    ----------
    labels
        int32 ``(sy, sx)`` (4D) or ``(n_tilts, sy, sx)`` (5D): the grain seen at each scan
        position; where grains overlap, the thicker one.
    footprints
        bool ``(n_grains, sy, sx)`` or ``(n_grains, n_tilts, sy, sx)``; overlaps visible.
    thickness
        float32 projected thickness in nm, same shape as ``footprints``.
    orientations
        ``(n_grains, 3, 3)`` orientation matrices U (crystal Cartesian → lab) at zero tilt;
        ``UB = U @ B`` with ``B = crystal.geometry.reciprocal_basis(cell)``.
    cell, space_group, atoms, structure_name, source
        The structure simulated: (a, b, c, α, β, γ) in Å/degrees, H-M symbol, the
        symmetry-independent atoms (dicts with label, element, x, y, z, occupancy, u_iso),
        its name and published source.
    descan_shift
        ``(sy, sx, 2)`` shift ``(dy, dx)`` of the whole pattern in detector pixels.
    drift
        ``(n_tilts, 2)`` stage drift ``(dy, dx)`` in scan pixels (zeros for 4D).
    calibration
        The :class:`~virtual_aperture.Calibration` of the dataset.
    """

    labels: np.ndarray
    footprints: np.ndarray
    thickness: np.ndarray
    orientations: np.ndarray
    cell: tuple[float, float, float, float, float, float]
    space_group: str
    atoms: list[dict]
    structure_name: str
    source: str
    descan_shift: np.ndarray
    drift: np.ndarray
    calibration: Calibration
    parameters: dict[str, Any] = field(default_factory=dict)
    clipped: bool = False
    # per (grain, tilt) reflection tables: dicts of hkl, f_abs, kappa, s, positions
    reflection_tables: dict[tuple[int, int], dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        scan = tuple(int(v) for v in self.labels.shape[-2:])
        return (
            f"Truth(structure={self.structure_name!r}, "
            f"space_group={self.space_group!r}, n_grains={self.n_grains}, "
            f"n_tilts={self.n_tilts}, scan={scan}, "
            f"overlapping_positions={int((self.footprints.sum(axis=0) > 1).sum())})"
        )

    # ---- derived ---------------------------------------------------------------------------
    @property
    def n_grains(self) -> int:
        return int(self.orientations.shape[0])

    @property
    def is_tilt_series(self) -> bool:
        return self.labels.ndim == 3

    @property
    def n_tilts(self) -> int:
        return int(self.labels.shape[0]) if self.is_tilt_series else 1

    @property
    def tilt_angles_deg(self) -> tuple[float, ...]:
        return tuple(self.calibration.tilt_angles_deg or (0.0,))

    @property
    def UB(self) -> np.ndarray:
        """(n_grains, 3, 3) ``U @ B`` matrices (Å⁻¹) at zero tilt."""
        return self.orientations @ reciprocal_basis(self.cell)

    def grain_thickness(self, grain: int, tilt: int = 0) -> np.ndarray:
        """Projected thickness map (nm) of one grain at one tilt."""
        self._check(grain, tilt)
        return self.thickness[grain, tilt] if self.is_tilt_series else self.thickness[grain]

    def exclusive_footprint(self, grain: int, tilt: int = 0) -> np.ndarray:
        """Bool ``(sy, sx)`` mask of the positions that see this grain and no other one."""
        self._check(grain, tilt)
        fp = self.footprints[:, tilt] if self.is_tilt_series else self.footprints
        return fp[grain] & (fp.sum(axis=0) == 1)

    def exclusive_labels(self) -> np.ndarray:
        """int32 grain labels (grain i → label i + 1) where only that grain is seen — the
        apertures a careful user would paint; ``(sy, sx)`` or ``(n_tilts, sy, sx)``."""
        fp = self.footprints
        only = fp & (fp.sum(axis=0) == 1)[None]
        ids = np.arange(1, fp.shape[0] + 1, dtype=np.int32).reshape((-1,) + (1,) * (fp.ndim - 1))
        return (only * ids).sum(axis=0).astype(np.int32)

    def _check(self, grain: int, tilt: int) -> None:
        if not 0 <= grain < self.n_grains:
            raise ValueError(
                f"grain {grain} out of range: the sample has {self.n_grains} grains (0..{self.n_grains - 1})"
            )
        if not 0 <= tilt < self.n_tilts:
            raise ValueError(f"tilt {tilt} out of range: the sample has {self.n_tilts} tilt(s)")

    def grain_reflections(
        self,
        grain: int,
        tilt: int = 0,
        *,
        thickness_nm: float | None = None,
        min_intensity: float = 1e-5,
        on_detector: bool = True,
        scan_position: tuple[int, int] | None = None,
    ) -> dict[str, np.ndarray]:
        """The reflections of one grain excited at one tilt, strongest first.

        Parameters
        ----------
        grain, tilt
            0-based grain index and tilt index.
        thickness_nm
            Crystal thickness for the intensities; default the grain's largest projected
            thickness at this tilt.
        min_intensity
            Keep reflections whose intensity (fraction of the incident beam) is at least this.
        on_detector
            Keep only reflections whose disk centre falls on the detector.
        scan_position
            ``(y, x)``: the reflections as recorded there: positions moved by that position's
            descan shift, the grain's local thickness (unless ``thickness_nm`` is given) and the
            beam depletion shared with every other grain seen at that position.

        Returns
        -------
        dict
            ``hkl`` (n, 3) int; ``positions`` (n, 2) detector ``(k_y, k_x)`` pixels about the
            nominal centre (add ``descan_shift[y, x]`` for a given scan position);
            ``s`` (n,) excitation error (Å⁻¹); ``intensity`` (n,) fraction of the incident
            beam in the data (two-beam rocking curve at the thickness, times the beam-depletion
            and support factors of ``scattering.depletion``); ``kinematic`` (n,) the rocking-curve
            intensity alone; ``f_squared`` (n,) |F|² (Å²) from gemmi.
        """
        self._check(grain, tilt)
        tab = self.reflection_tables[(grain, tilt)]
        tmap = self.grain_thickness(grain, tilt)
        p = tab["positions"]
        if scan_position is not None:
            y, x = (int(v) for v in scan_position)
            if not (0 <= y < tmap.shape[0] and 0 <= x < tmap.shape[1]):
                raise ValueError(f"scan position {scan_position} outside the scan {tmap.shape}")
            p = p + self.descan_shift[y, x]
            t_nm = float(tmap[y, x]) if thickness_nm is None else float(thickness_nm)
        else:
            t_nm = float(tmap.max()) if thickness_nm is None else float(thickness_nm)
        kin = rocking_intensity(tab["kappa"], tab["s"], t_nm * 10.0)
        total = kin.sum()
        if scan_position is not None:  # other grains at this position share the depletion
            for other in range(self.n_grains):
                t_o = float(self.grain_thickness(other, tilt)[y, x])
                if other != grain and t_o > 0:
                    o = self.reflection_tables[(other, tilt)]
                    total += rocking_intensity(o["kappa"], o["s"], t_o * 10.0).sum()
        scale, _ = depletion(np.array([total]), float(self.parameters.get("background", 0.0)))
        inten = kin * float(scale[0])
        keep = inten >= min_intensity
        if on_detector:
            ky, kx = self.calibration.extra.get("detector_shape", (np.inf, np.inf))
            keep &= (p[:, 0] >= -0.5) & (p[:, 0] <= ky - 0.5) & (p[:, 1] >= -0.5) & (p[:, 1] <= kx - 0.5)
        order = np.argsort(-inten[keep], kind="stable")
        return {
            "hkl": tab["hkl"][keep][order],
            "positions": p[keep][order],
            "s": tab["s"][keep][order],
            "intensity": inten[keep][order],
            "kinematic": kin[keep][order],
            "f_squared": (tab["f_abs"][keep][order]) ** 2,
        }
