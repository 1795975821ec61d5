"""Merged reflections → charge flipping → atoms → R1, and kinematic test data from a structure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..compute.executor import check_cancel
from .atoms import Atom, find_atoms, parse_formula, r_factor, refine_elements, structure_factors
from .completion import complete_model
from .geometry import random_rotation, reciprocal_basis
from .phasing import PhasingResult, charge_flip
from .refinement import refine_structure
from .reflections import Reflections, check_cell_matches_space_group, parse_space_group

__all__ = ["solve_structure", "Solution", "simulate_reflections"]

R1_LIMIT = 0.40  # an atom model with a larger R1 is not reported as a solution
RECYCLE_2FO_FC = True  # recycling maps use 2|Fo| − k|Fc| (model completion) instead of |Fo|


@dataclass
class Solution:
    """A solved (or honestly unsolved) structure.

    ``atoms`` is empty when ``converged`` is False; ``message`` then says why. The atoms are the
    refined model (:func:`~virtual_aperture.crystal.refinement.refine_structure`): each
    ``b_iso`` is the atom's total B (``b_overall`` is 0), and ``r1``/``scale`` are those of
    exactly these atoms against ``reflections`` — the model the exports write.
    """

    converged: bool
    cell: tuple
    space_group: str
    atoms: list[Atom]
    r1: float | None
    phasing: PhasingResult
    reflections: Reflections
    composition: str | None = None
    scale: float = float("nan")
    b_overall: float = float("nan")
    n_reflections: int = 0
    z: int | None = None
    message: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def potential(self) -> np.ndarray:
        return self.phasing.potential

    def report(self) -> dict:
        """Every figure of merit, the cell, the space group and the atoms, JSON-able."""
        return {
            "cell": [float(v) for v in self.cell],
            "space_group": self.space_group,
            "converged": bool(self.converged),
            "message": self.message,
            "r1": None if self.r1 is None else float(self.r1),
            "scale": float(self.scale),
            "b_overall": float(self.b_overall),
            "n_reflections": int(self.n_reflections),
            "composition": self.composition,
            "z": self.z,
            "atoms": [a.as_dict() for a in self.atoms],
            "phasing": self.phasing.figures_of_merit(),
            **self.extra,
        }


def solve_structure(
    reflections: Reflections,
    *,
    composition: str | None = None,
    d_min: float | None = None,
    starts: int = 4,
    delta_factor: float = 1.2,
    seed: int | None = None,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Any = None,
    recycle: int = 3,
    **flip_options: Any,
) -> Solution:
    """Solve a structure ab initio from merged reflections.

    Charge flipping (:func:`~virtual_aperture.crystal.phasing.charge_flip`) → potential map →
    peak search and element assignment (:func:`~virtual_aperture.crystal.atoms.find_atoms`) →
    kinematic electron structure factors of the atoms → R1 with a fitted scale and overall B.
    A result with no converged start, a map that does not fit the space group, or R1 above
    0.40 is reported as ``converged=False`` with a message and no atoms.

    Parameters
    ----------
    reflections
        Merged reflections (cell and space group set).
    composition
        Cell contents or formula unit, e.g. ``"Zr6O32C48"``; elements go to peaks by height.
    d_min
        Resolution cut (Å); data must reach at least 1.6 Å for atoms to be resolved.
    starts, delta_factor, seed, client, progress, cancel
        Passed to :func:`charge_flip`, as are further keyword options.
    recycle
        Cycles of Fourier recycling (map from |F_obs| and the phases of the current atoms →
        new peak search), kept while R1 improves; completes models dominated by heavy atoms.

    Returns
    -------
    Solution
        Atoms, R1, the potential map and the phasing result; ``converged=False`` with a message when
        the structure was not solved.
    """
    if not isinstance(reflections, Reflections):
        raise ValueError(f"reflections must be a Reflections table, got {type(reflections).__name__}")
    check_cell_matches_space_group(reflections.cell, reflections.space_group)
    refl = reflections if d_min is None else reflections.resolution_cut(d_min)
    ph = charge_flip(
        refl,
        starts=starts,
        delta_factor=delta_factor,
        seed=seed,
        client=client,
        progress=progress,
        cancel=cancel,
        **flip_options,
    )
    sg = parse_space_group(refl.space_group)
    keep = ~sg.operations().systematic_absences(refl.hkl.astype(np.int32))
    data = refl.select(keep)
    base: dict = dict(
        cell=refl.cell,
        space_group=sg.hm,
        phasing=ph,
        reflections=data,
        composition=composition,
        n_reflections=len(data),
    )
    if ph.d_min > 1.6:
        return Solution(
            False,
            atoms=[],
            r1=None,
            message=(f"resolution {ph.d_min:.2f} Å is too low to resolve atoms (need d_min ≤ 1.6 Å)"),
            **base,
        )
    if not ph.converged:
        return Solution(False, atoms=[], r1=None, message=ph.message, **base)
    atoms, info = find_atoms(
        ph.potential, cell=refl.cell, space_group=sg, d_min=ph.d_min, composition=composition
    )
    if not atoms:
        return Solution(False, atoms=[], r1=None, message="no peaks found in the potential map", **base)
    fo = np.sqrt(np.clip(data.intensity, 0, None))
    s2 = np.sum((data.hkl @ reciprocal_basis(refl.cell).T) ** 2, axis=1)

    def score(model: list[Atom]) -> tuple[float, float, float]:
        fc = np.abs(structure_factors(model, data.hkl, cell=refl.cell, space_group=sg))
        return r_factor(fo, fc, s2)

    r1, k, b = score(atoms)
    history = [r1]
    potential = ph.potential
    for _ in range(recycle):
        # Fourier recycling: |F_obs| with the phases of the current atoms completes the model
        check_cancel(cancel)
        fc = structure_factors(atoms, ph.hkl, cell=refl.cell, space_group=sg)
        grid = np.zeros((ph.grid[0], ph.grid[1], ph.grid[2] // 2 + 1), complex)
        afc = np.abs(fc)
        kk = float(ph.amplitudes @ afc) / max(float(afc @ afc), 1e-30)
        amp = np.clip(2 * ph.amplitudes - kk * afc, 0, None) if RECYCLE_2FO_FC else ph.amplitudes
        grid[ph.hkl[:, 0] % ph.grid[0], ph.hkl[:, 1] % ph.grid[1], ph.hkl[:, 2]] = amp * np.exp(
            -1j * np.angle(fc)
        )
        m = np.fft.irfftn(grid, s=ph.grid, axes=(0, 1, 2))
        m = (m - m.mean()) / max(float(m.std()), 1e-30)
        new_atoms, new_info = find_atoms(
            m, cell=refl.cell, space_group=sg, d_min=ph.d_min, composition=composition
        )
        if not new_atoms:
            break
        r_new, k_new, b_new = score(new_atoms)
        history.append(r_new)
        if r_new >= r1 - 1e-4:
            break
        atoms, info, r1, k, b, potential = new_atoms, new_info, r_new, k_new, b_new, m.astype(np.float32)
    ph.potential = potential
    completion: dict = {}
    if composition is not None and info.get("z"):  # light atoms from difference maps, R1-gated
        contents = {e: n * info["z"] for e, n in parse_formula(composition).items()}
        atoms, completion = complete_model(
            atoms,
            data.hkl,
            fo,
            ph.hkl,
            ph.amplitudes,
            cell=refl.cell,
            space_group=sg,
            grid=ph.grid,
            cell_contents=contents,
            cancel=cancel,
        )
        r1, k, b = score(atoms)
    swaps: list = []
    if composition is not None:  # elements of similar scattering power (C/N/O): whichever fits the data
        b_atoms = float(np.mean([a.b_iso for a in atoms])) + b
        swapped, swaps = refine_elements(atoms, data.hkl, fo, cell=refl.cell, space_group=sg, b_iso=b_atoms)
        # keep only the elements: displacement parameters are refined with the final model
        atoms = [
            Atom(n.label, n.element, a.x, a.y, a.z, a.height, a.multiplicity, a.occupancy, a.b_iso)
            for a, n in zip(atoms, swapped)
        ]
        if swaps:
            r1, k, b = score(atoms)
    # the exported model is the scored model: scale, per-atom total B and positions refined
    ref = refine_structure([replace(a, b_iso=max(a.b_iso + b, 0.0)) for a in atoms], data)
    atoms, r1, k, b = ref.atoms, ref.r1, ref.scale, 0.0
    base["extra"] = {
        "r1_recycling": history,
        "element_swaps": [list(m) for m in swaps],
        "r1_completion": [float(v) for v in completion.get("r1", [])],
        "refinement": ref.as_dict(),
    }
    if r1 > R1_LIMIT:
        return Solution(
            False,
            atoms=[],
            r1=r1,
            scale=k,
            b_overall=b,
            z=info["z"],
            message=(f"the best atom model has R1 = {r1:.3f} > {R1_LIMIT}: no solution claimed"),
            **base,
        )
    return Solution(
        True,
        atoms=atoms,
        r1=r1,
        scale=k,
        b_overall=b,
        z=info["z"],
        message=f"solved: {len(atoms)} atoms, R1 = {r1:.3f}",
        **base,
    )


def simulate_reflections(
    structure,
    *,
    d_min: float = 0.8,
    tilt_range_deg: float = 40.0,
    orientation: np.ndarray | None = None,
    noise: float = 0.05,
    seed: int | None = 0,
) -> Reflections:
    """Kinematic merged electron reflections of a ``gemmi.SmallStructure`` with a missing wedge.

    Intensities are |F_e|² from gemmi's ``StructureFactorCalculatorE`` (on a copy whose
    special-position occupancies are made crystallographic) for the unique
    reflections with d ≥ ``d_min``. A reflection is kept when some symmetry equivalent can be
    brought into the plane perpendicular to the beam by a tilt within ±``tilt_range_deg`` about
    the lab x axis (crystal orientation ``orientation`` or random): the rest is the missing
    wedge. Gaussian noise of ``noise``·I (+ a 2 % of the mean floor) is added; σ is set to match.

    Parameters
    ----------
    structure
        A ``gemmi.SmallStructure``.
    d_min
        Resolution limit (Å).
    tilt_range_deg
        Tilt range ± (degrees) that decides the missing wedge.
    orientation
        Crystal orientation matrix ``U`` (random when ``None``).
    noise
        Relative Gaussian noise on the intensities.
    seed
        Seed of the orientation and the noise.

    Returns
    -------
    Reflections
        Merged reflections (cell and space group of ``structure``) with intensities and σ.
    """
    import gemmi

    if not d_min > 0:
        raise ValueError(f"d_min must be positive, got {d_min}")
    rng = np.random.default_rng(seed)
    sg = structure.spacegroup or parse_space_group(structure.spacegroup_hm or "P 1")
    wavelength = float(structure.wavelength) if getattr(structure, "wavelength", 0) else None
    structure = gemmi.make_small_structure_from_block(structure.make_cif_block())  # a copy
    structure.spacegroup = sg
    # gemmi applies every operation to every site: a site on a special position must carry
    # occupancy / (operations mapping it onto itself), or its atoms are counted several times
    structure.change_occupancies_to_crystallographic()
    cell = tuple(structure.cell.parameters)
    from .geometry import miller_indices_within

    hkl = miller_indices_within(cell, d_min)
    ops = sg.operations()
    asu = gemmi.ReciprocalAsu(sg)
    hkl = hkl[np.array([asu.is_in([int(v) for v in h]) for h in hkl])]
    hkl = hkl[~ops.systematic_absences(hkl.astype(np.int32))]
    structure.setup_cell_images()
    calc = gemmi.StructureFactorCalculatorE(structure.cell)
    f = np.array([abs(calc.calculate_sf_from_small_structure(structure, [int(v) for v in h])) for h in hkl])
    U = random_rotation(rng) if orientation is None else np.asarray(orientation, float)
    B = reciprocal_basis(cell)
    reach = np.zeros(len(hkl), bool)
    t = np.radians(tilt_range_deg)
    for R in {tuple(map(tuple, np.array(op.rot) // op.DEN)) for op in ops.sym_ops}:
        g = (np.asarray(hkl) @ np.array(R)) @ (U @ B).T
        elev = np.arctan2(np.abs(g[:, 2]), np.abs(g[:, 1]))
        reach |= elev <= t
    hkl, f = hkl[reach], f[reach]
    intensity = f * f
    sig = noise * intensity + 0.02 * intensity.mean()
    obs = intensity + rng.normal(size=intensity.shape) * sig
    return Reflections(
        hkl,
        obs,
        sig,
        cell=cell,
        space_group=sg.hm,
        merged=True,
        wavelength=wavelength,
        meta={"completeness": float(reach.mean()), "tilt_range_deg": tilt_range_deg},
    )
