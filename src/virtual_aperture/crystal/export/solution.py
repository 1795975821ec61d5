"""The files of one structure solution: CCP4 map, SHELX .ins/.res, CIF, merged reflections, JSON report.

The atoms written are exactly the model the solution scored (``Solution.atoms`` with their total
B and occupancy, ``Solution.scale``, ``Solution.r1``), and ``reflections.cif`` holds exactly the
merged reflections it was scored against, so another program recomputing R1 from
``structure.res`` or ``structure.cif`` with ``reflections.cif`` gets the reported R1.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..atoms import parse_formula
from .cif import write_reflections_cif, write_structure_cif
from .maps import write_ccp4_map
from .report import write_report
from .shelx import write_ins

#: what :func:`write_solution` writes into its directory
SOLUTION_FILES = (
    "structure.cif",
    "potential.ccp4",
    "report.json",
    "structure.ins",
    "structure.res",
    "reflections.cif",
)


def check_free(out: str | os.PathLike, names, *, overwrite: bool) -> Path:
    """Create ``out`` and refuse (FileExistsError naming the file) if one of ``names`` is in it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not overwrite:
        for n in names:
            if (out / n).exists():
                raise FileExistsError(f"{out / n} already exists (use --overwrite / overwrite=True)")
    return out


def cell_contents(
    atoms, composition: str | None, z: int | None
) -> tuple[dict[str, float], dict[str, float] | None]:
    """(UNIT: cell contents, formula per unit) from the composition and the atoms found.

    The composition (``Z`` units per cell) decides, hydrogen included; elements of atoms that
    it does not name are added with their count in the cell. Without a composition both come
    from the atoms.
    """
    z = int(z or 1)
    found: dict[str, float] = {}
    for a in atoms:
        found[a.element] = found.get(a.element, 0.0) + a.occupancy * a.multiplicity
    if not composition:
        return (found or {"C": 1.0}), ({e: n / z for e, n in found.items()} if found else None)
    formula = dict(parse_formula(composition))
    unit = {e: n * z for e, n in formula.items()}
    for e, n in found.items():
        if e not in unit:
            unit[e] = n
            formula[e] = n / z
    return unit, formula


def write_solution(
    out: str | os.PathLike,
    solution,
    *,
    wavelength: float | None,
    report: dict,
    composition: str | None = None,
    cell_esd=None,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``solution`` (a :class:`~virtual_aperture.crystal.solve.Solution`) into ``out``.

    ``structure.ins`` carries no atoms unless the solution converged (a SHELXT-like starting
    point); ``structure.res`` always carries the atoms found. ``cell_esd`` (six values, the
    input's standard uncertainties) fills ZERR; without them ZERR holds zeros ("unknown"), never
    invented values. Unassigned peaks (element ``X``) are written as carbon, the usual
    placeholder. ``reflections.cif`` holds the merged reflections the R1 was computed against.
    Returns the paths written.
    """
    sol = solution
    out = check_free(out, SOLUTION_FILES, overwrite=overwrite)
    paths = [
        write_ccp4_map(
            out / "potential.ccp4",
            sol.potential,
            cell=sol.cell,
            space_group=sol.space_group,
            overwrite=overwrite,
        )
    ]
    atoms = [
        a
        if a.element != "X"
        else type(a)(a.label, "C", a.x, a.y, a.z, a.height, a.multiplicity, a.occupancy, a.b_iso)
        for a in sol.atoms
    ]
    unit, formula = cell_contents(atoms, composition or sol.composition, sol.z)
    r1 = "n/a" if sol.r1 is None else f"{sol.r1:.4f}"
    zerr = tuple(cell_esd) if cell_esd is not None and len(cell_esd) else (0.0,) * 6
    for name in ("structure.ins", "structure.res"):
        paths.append(
            write_ins(
                out / name,
                cell=sol.cell,
                space_group=sol.space_group,
                wavelength=wavelength,
                unit=unit,
                z=int(sol.z or 1),
                zerr=zerr,
                atoms=atoms if name.endswith(".res") or sol.converged else [],
                title=f"virtual-aperture charge flipping, R1 {r1}",
                overwrite=overwrite,
            )
        )
    extra: dict = {}
    if sol.r1 is not None and atoms:
        ref = sol.extra.get("refinement", {})
        extra = {
            "_refine_ls_structure_factor_coef": "Fsqd",
            "_refine_ls_R_factor_all": float(sol.r1),
            "_refine_ls_number_reflns": int(sol.n_reflections),
        }
        if ref.get("wr2") is not None:
            extra["_refine_ls_wR_factor_ref"] = float(ref["wr2"])
        if ref.get("n_parameters"):
            extra["_refine_ls_number_parameters"] = int(ref["n_parameters"])
    paths.append(
        write_structure_cif(
            out / "structure.cif",
            atoms,
            cell=sol.cell,
            space_group=sol.space_group,
            wavelength=wavelength,
            z=sol.z,
            formula=formula,
            extra=extra,
            overwrite=overwrite,
        )
    )
    paths.append(write_reflections_cif(out / "reflections.cif", sol.reflections, overwrite=overwrite))
    paths.append(write_report(out / "report.json", report, overwrite=overwrite))
    return paths
