"""The files of one structure solution: CCP4 map, SHELX .ins/.res, CIF and the JSON report."""

from __future__ import annotations

import os
from pathlib import Path

from ..atoms import parse_formula
from .cif import write_structure_cif
from .maps import write_ccp4_map
from .report import write_report
from .shelx import write_ins

#: what :func:`write_solution` writes into its directory
SOLUTION_FILES = ("structure.cif", "potential.ccp4", "report.json", "structure.ins", "structure.res")


def check_free(out: str | os.PathLike, names, *, overwrite: bool) -> Path:
    """Create ``out`` and refuse (FileExistsError naming the file) if one of ``names`` is in it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not overwrite:
        for n in names:
            if (out / n).exists():
                raise FileExistsError(f"{out / n} already exists (use --overwrite / overwrite=True)")
    return out


def write_solution(out: str | os.PathLike, solution, *, wavelength: float | None, report: dict,
                   composition: str | None = None, cell_esd=None, overwrite: bool = False) -> list[Path]:
    """Write ``solution`` (a :class:`~virtual_aperture.crystal.solve.Solution`) into ``out``.

    ``structure.ins`` carries no atoms unless the solution converged (a SHELXT-like starting
    point); ``structure.res`` always carries the atoms found. ``cell_esd`` (six values) fills ZERR.
    Unassigned peaks (element ``X``)
    are written as carbon, the usual placeholder. Returns the paths written.
    """
    sol = solution
    out = check_free(out, SOLUTION_FILES, overwrite=overwrite)
    paths = [write_ccp4_map(out / "potential.ccp4", sol.potential, cell=sol.cell, space_group=sol.space_group,
                            overwrite=overwrite)]
    atoms = [a if a.element != "X" else type(a)(a.label, "C", a.x, a.y, a.z, a.height, a.multiplicity)
             for a in sol.atoms]
    unit: dict[str, float] = {}
    for a in atoms:
        unit[a.element] = unit.get(a.element, 0) + a.multiplicity
    if not unit:
        unit = dict(parse_formula(composition)) if composition else {"C": 1}
    r1 = "n/a" if sol.r1 is None else f"{sol.r1:.3f}"
    for name in ("structure.ins", "structure.res"):
        paths.append(write_ins(out / name, cell=sol.cell, space_group=sol.space_group, wavelength=wavelength,
                               unit=unit, z=int(sol.z or 1), zerr=tuple(cell_esd) if cell_esd else None,
                               atoms=atoms if name.endswith(".res") or sol.converged else [],
                               title=f"virtual-aperture charge flipping, R1 {r1}", overwrite=overwrite))
    paths.append(write_structure_cif(out / "structure.cif", atoms, cell=sol.cell, space_group=sol.space_group,
                                     wavelength=wavelength,
                                     extra={} if sol.r1 is None else {"_refine_ls_R_factor_gt": sol.r1},
                                     overwrite=overwrite))
    paths.append(write_report(out / "report.json", report, overwrite=overwrite))
    return paths
