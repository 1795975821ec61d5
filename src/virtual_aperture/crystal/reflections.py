"""A table of reflections (h, k, l, I, σ, batch, tilt) with its cell, space group and wavelength.

The same type carries unmerged observations (one row per observation, from
:func:`~virtual_aperture.crystal.integrate.integrate_reflections`) and merged data (one row per
unique reflection, from :func:`~virtual_aperture.crystal.merge.merge_reflections`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .geometry import reciprocal_basis

__all__ = ["Reflections", "parse_space_group", "check_cell_matches_space_group"]


def parse_space_group(symbol: Any):
    """A :class:`gemmi.SpaceGroup` from a symbol ("Fm-3m", "P 21/c", "P121/c1") or number.

    Raises ``ValueError`` naming the symbol when gemmi does not know it.
    """
    import gemmi

    if isinstance(symbol, gemmi.SpaceGroup):
        return symbol
    if isinstance(symbol, (int, np.integer)) or (isinstance(symbol, str) and symbol.strip().isdigit()):
        sg = gemmi.find_spacegroup_by_number(int(symbol))
    else:
        text = str(symbol).strip()
        sg = gemmi.find_spacegroup_by_name(text) if text else None
        if sg is None and text:
            sg = gemmi.find_spacegroup_by_name(text.replace(" ", ""))
    if sg is None:
        raise ValueError(f"unknown space group {symbol!r}")
    return sg


def check_cell_matches_space_group(cell: Sequence[float], space_group: Any, *, tol: float = 0.02) -> None:
    """Raise ``ValueError`` if the cell's metric does not fit the space group's crystal system.

    ``tol`` is the relative tolerance on lengths and the absolute tolerance (×100, in degrees)
    on angles, e.g. 0.02 → 2 % and 2°.
    """
    sg = parse_space_group(space_group)
    a, b, c, al, be, ga = (float(v) for v in cell)
    system = sg.crystal_system_str()
    atol = 100 * tol

    def eq(x: float, y: float) -> bool:
        return abs(x - y) <= tol * max(x, y)

    def ang(x: float, y: float) -> bool:
        return abs(x - y) <= atol

    ok = True
    if system == "cubic":
        ok = eq(a, b) and eq(b, c) and ang(al, 90) and ang(be, 90) and ang(ga, 90)
    elif system == "tetragonal":
        ok = eq(a, b) and ang(al, 90) and ang(be, 90) and ang(ga, 90)
    elif system == "orthorhombic":
        ok = ang(al, 90) and ang(be, 90) and ang(ga, 90)
    elif system in ("hexagonal", "trigonal"):
        if sg.ext == "R" or (system == "trigonal" and sg.hm.startswith("R") and sg.ext != "H"):
            ok = eq(a, b) and eq(b, c) and ang(al, be) and ang(be, ga)
        else:
            ok = eq(a, b) and ang(al, 90) and ang(be, 90) and ang(ga, 120)
    elif system == "monoclinic":
        axis = sg.monoclinic_unique_axis()
        right = {"a": (be, ga), "b": (al, ga), "c": (al, be)}[axis]
        ok = ang(right[0], 90) and ang(right[1], 90)
    if not ok:
        raise ValueError(
            f"cell {tuple(round(v, 4) for v in cell)} does not "
            f"fit space group {sg.hm} ({system} crystal system)"
        )


@dataclass(frozen=True)
class Reflections:
    """Reflections with intensities.

    Parameters
    ----------
    hkl
        (n, 3) integer Miller indices.
    intensity, sigma
        (n,) intensities and their standard uncertainties (arbitrary counts).
    cell
        (a, b, c, α, β, γ) in Å and degrees.
    space_group
        Hermann–Mauguin symbol (gemmi's ``hm``), ``"P 1"`` when unknown.
    batch
        (n,) integer batch per observation (e.g. tilt index of the recording; 0 for merged data).
    tilt_deg
        (n,) tilt angle at which the reflection crossed the Ewald sphere (NaN when unknown).
    multiplicity
        (n,) number of observations merged into each row (1 for unmerged data).
    wavelength
        Electron wavelength in Å (``None`` when unknown).
    merged
        True when every row is a unique reflection in the asymmetric unit.
    """

    hkl: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    cell: tuple[float, float, float, float, float, float]
    space_group: str = "P 1"
    batch: np.ndarray | None = None
    tilt_deg: np.ndarray | None = None
    multiplicity: np.ndarray | None = None
    wavelength: float | None = None
    merged: bool = False
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        hkl = np.asarray(self.hkl)
        if hkl.ndim != 2 or hkl.shape[1] != 3:
            raise ValueError(f"hkl must have shape (n, 3), got {hkl.shape}")
        if hkl.size and not np.all(np.equal(np.round(hkl), hkl)):
            raise ValueError("hkl must be integers")
        n = hkl.shape[0]
        hkl = hkl.astype(np.int32)
        vals = {}
        for name in ("intensity", "sigma"):
            v = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if v.shape[0] != n:
                raise ValueError(f"{name} has {v.shape[0]} values for {n} reflections")
            vals[name] = v
        if np.any(~np.isfinite(vals["intensity"])) or np.any(~np.isfinite(vals["sigma"])):
            raise ValueError("intensities and sigmas must be finite")
        if np.any(vals["sigma"] < 0):
            raise ValueError("sigma must be non-negative")
        batch = np.zeros(n, np.int32) if self.batch is None else np.asarray(self.batch).astype(np.int32)
        tilt = np.full(n, np.nan) if self.tilt_deg is None else np.asarray(self.tilt_deg, dtype=float)
        mult = (
            np.ones(n, np.int32)
            if self.multiplicity is None
            else np.asarray(self.multiplicity).astype(np.int32)
        )
        for name, arr in (("batch", batch), ("tilt_deg", tilt), ("multiplicity", mult)):
            if arr.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
        cell = tuple(float(v) for v in self.cell)
        if len(cell) != 6:
            raise ValueError(f"cell must be (a, b, c, alpha, beta, gamma), got {self.cell!r}")
        reciprocal_basis(cell)  # validates
        sg = parse_space_group(self.space_group)
        for name, arr in (
            ("hkl", hkl),
            *vals.items(),
            ("batch", batch),
            ("tilt_deg", tilt),
            ("multiplicity", mult),
        ):
            arr = arr.copy()
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "cell", cell)
        object.__setattr__(self, "space_group", sg.hm)
        if self.wavelength is not None and not (math.isfinite(self.wavelength) and self.wavelength > 0):
            raise ValueError(f"wavelength must be positive, got {self.wavelength!r}")

    # ------------------------------------------------------------------ derived
    def __len__(self) -> int:
        return int(self.hkl.shape[0])

    @property
    def d(self) -> np.ndarray:
        """d-spacing of every reflection in Å (inf for 000)."""
        g = np.linalg.norm(self.hkl @ reciprocal_basis(self.cell).T, axis=1)
        with np.errstate(divide="ignore"):
            return 1.0 / g

    @property
    def gemmi_space_group(self):
        """The :class:`gemmi.SpaceGroup`."""
        return parse_space_group(self.space_group)

    @property
    def gemmi_cell(self):
        """The :class:`gemmi.UnitCell`."""
        import gemmi

        return gemmi.UnitCell(*self.cell)

    def replace(self, **changes: Any) -> Reflections:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def select(self, mask: np.ndarray) -> Reflections:
        """Rows where ``mask`` (boolean (n,) or index array) selects."""
        m = np.asarray(mask)
        return dataclasses.replace(
            self,
            hkl=self.hkl[m],
            intensity=self.intensity[m],
            sigma=self.sigma[m],
            batch=self.batch[m],
            tilt_deg=self.tilt_deg[m],
            multiplicity=self.multiplicity[m],
            meta=dict(self.meta),
        )

    def resolution_cut(self, d_min: float) -> Reflections:
        """Only reflections with d ≥ ``d_min`` (Å)."""
        if not d_min > 0:
            raise ValueError(f"d_min must be positive, got {d_min}")
        return self.select(self.d >= d_min)

    def __repr__(self) -> str:
        d = self.d
        res = f", d {d.min():.2f}–{d.max():.2f} Å" if len(self) else ""
        kind = "merged" if self.merged else "unmerged"
        return f"Reflections({len(self)} {kind}, cell={self.cell}, space_group={self.space_group!r}{res})"
