"""Phases and orientations across the scan: grains grouped by unit cell, phase and orientation maps.

* :func:`group_by_cell` — grains with the same lattice (Niggli-reduced primitive cells equal within a
  tolerance) form one phase; a phase seen in one grain only is flagged as *rare*.
* :func:`orientation_colours` — the crystal direction along the beam of each grain as an inverse
  pole figure (IPF) colour.
* :func:`phase_map` / :func:`orientation_map` — those per-grain values painted over the scan through
  the grain labels; positions that belong to no grain stay 0 / black.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Phase", "group_by_cell", "orientation_colours", "phase_map", "orientation_map", "beam_direction"]


@dataclass(frozen=True)
class Phase:
    """Grains that share a lattice: ``number`` (1-based), the Niggli-reduced primitive ``reduced_cell``
    (Å, °; the first grain's), ``grains`` (their labels) and ``rare`` (seen in a single grain)."""

    number: int
    reduced_cell: tuple[float, float, float, float, float, float]
    grains: tuple[int, ...]

    @property
    def rare(self) -> bool:
        return len(self.grains) == 1

    def as_dict(self) -> dict:
        return {
            "phase": self.number,
            "reduced_cell": [round(float(v), 4) for v in self.reduced_cell],
            "grains": [int(g) for g in self.grains],
            "rare": self.rare,
        }


def _reduced(cell: Sequence[float], centring: str) -> np.ndarray:
    from ..crystal.lattice import niggli_cell

    return np.array(niggli_cell(tuple(float(v) for v in cell), centring=centring), dtype=float)


def same_lattice(
    p: np.ndarray, q: np.ndarray, *, length_tol: float = 0.02, angle_tol_deg: float = 2.0
) -> bool:
    """Two Niggli-reduced cells describe the same lattice within ``length_tol`` (relative) and
    ``angle_tol_deg`` (an angle and its supplement are the same: the sign of a Niggli cell's
    obtuse/acute type flips within the measurement error near 90°)."""
    if not np.allclose(p[:3], q[:3], rtol=length_tol, atol=0):
        return False
    da = np.abs(p[3:] - q[3:])
    db = np.abs(p[3:] - (180.0 - q[3:]))
    return bool(np.all(np.minimum(da, db) <= angle_tol_deg))


def group_by_cell(
    cells: dict[int, Sequence[float]],
    *,
    centrings: dict[int, str] | None = None,
    length_tol: float = 0.02,
    angle_tol_deg: float = 2.0,
) -> list[Phase]:
    """Group grains into phases by their unit cells.

    Parameters
    ----------
    cells
        ``{grain: (a, b, c, α, β, γ)}`` (Å, °), e.g. the indexed cell of every grain.
    centrings
        ``{grain: 'P'|'A'|'B'|'C'|'I'|'F'|'R'}`` of those cells (default primitive): cells are
        compared after reduction to the Niggli primitive cell, so any setting or centring of the
        same lattice matches.
    length_tol, angle_tol_deg
        Tolerances of the comparison (relative lengths, degrees).

    Returns
    -------
    list of Phase
        Ordered by decreasing number of grains (then by first grain); every grain is in exactly one.
    """
    if length_tol <= 0 or angle_tol_deg <= 0:
        raise ValueError(
            f"tolerances must be positive, got length_tol={length_tol}, angle_tol_deg={angle_tol_deg}"
        )
    centrings = centrings or {}
    reduced = {int(g): _reduced(c, centrings.get(g, "P")) for g, c in cells.items()}
    groups: list[list[int]] = []
    for g in sorted(reduced):
        for grp in groups:
            if same_lattice(reduced[grp[0]], reduced[g], length_tol=length_tol, angle_tol_deg=angle_tol_deg):
                grp.append(g)
                break
        else:
            groups.append([g])
    groups.sort(key=lambda grp: (-len(grp), grp[0]))
    return [
        Phase(i + 1, tuple(float(v) for v in reduced[grp[0]]), tuple(grp)) for i, grp in enumerate(groups)
    ]


def beam_direction(U: np.ndarray, cell: Sequence[float]) -> np.ndarray:
    """The direct-lattice direction [u v w] (unit length in Å) of a crystal of orientation ``U``
    (crystal Cartesian → lab, :mod:`crystal.geometry`) that lies along the beam (+z) at zero tilt."""
    from ..crystal.geometry import direct_basis

    d_cart = np.asarray(U, dtype=float).T @ np.array([0.0, 0.0, 1.0])
    uvw = np.linalg.solve(direct_basis(cell), d_cart)
    return uvw / np.linalg.norm(uvw)


def _ipf_cubic(d: np.ndarray) -> np.ndarray:
    """m-3m standard-triangle IPF colour of a Cartesian direction: [001] red, [101] green, [111] blue."""
    x, y, z = np.sort(np.abs(d))  # into the standard triangle: 0 ≤ x ≤ y ≤ z
    rgb = np.array([z - y, (y - x) * np.sqrt(2.0), x * np.sqrt(3.0)])
    return rgb / rgb.max()


def orientation_colours(
    orientations: dict[int, np.ndarray], *, lattices: dict[int, str] | None = None
) -> dict[int, tuple[float, float, float]]:
    """IPF colour (r, g, b in 0–1) of the beam direction of every grain.

    Cubic lattices (``lattices[g]`` starting with ``'c'``) use the m-3m standard triangle
    ([001] red, [101] green, [111] blue). Others use the beam direction in crystal Cartesian axes
    folded by the mmm point group (|x|, |y|, |z| as red, green, blue): grains with the same colour
    look down the same crystal direction; the colour key is then a sphere octant, not a triangle.
    """
    lattices = lattices or {}
    out = {}
    for g, U in orientations.items():
        d = np.asarray(U, dtype=float).T @ np.array([0.0, 0.0, 1.0])
        if str(lattices.get(g, "")).startswith("c"):
            rgb = _ipf_cubic(d)
        else:
            rgb = np.abs(d) / np.abs(d).max()
        out[int(g)] = tuple(float(v) for v in rgb)
    return out


def _check_labels(labels: np.ndarray) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim not in (2, 3) or lab.dtype.kind not in "iu":
        raise ValueError(
            f"labels must be an integer image (sy, sx) or (n_tilt, sy, sx), got {lab.dtype} {lab.shape}"
        )
    return lab


def phase_map(labels: np.ndarray, phases: Sequence[Phase]) -> np.ndarray:
    """Phase number of every scan position (0 = no grain, or a grain that was not solved/indexed)."""
    lab = _check_labels(labels)
    lut = np.zeros(int(lab.max(initial=0)) + 1, dtype=np.int32)
    for ph in phases:
        for g in ph.grains:
            if 0 < g < lut.size:
                lut[g] = ph.number
    return lut[np.clip(lab, 0, None)]


def orientation_map(labels: np.ndarray, colours: dict[int, tuple[float, float, float]]) -> np.ndarray:
    """RGB (float32, 0–1) of every scan position from its grain's IPF colour; black where no grain."""
    lab = _check_labels(labels)
    lut = np.zeros((int(lab.max(initial=0)) + 1, 3), dtype=np.float32)
    for g, rgb in colours.items():
        if 0 < g < len(lut):
            lut[g] = rgb
    return lut[np.clip(lab, 0, None)]
