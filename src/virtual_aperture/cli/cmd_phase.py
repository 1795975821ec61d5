"""``virtual-aperture phase``: ab initio structure solution from merged reflections.

    virtual-aperture phase DATA.hkl --cell A B C AL BE GA --space-group SG [--composition F] --out DIR
    virtual-aperture phase NAME.ins [--out DIR]      (reads NAME.hkl beside it, SHELXT-style)

Writes DIR/structure.cif, DIR/potential.ccp4, DIR/structure.ins, DIR/structure.res,
DIR/reflections.cif (the merged data R1 is computed against) and DIR/report.json (cell,
space_group, converged, r1, atoms and every figure of merit). The atoms are the refined model
(scale, per-atom B, positions) that the reported R1 belongs to.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "phase",
        help="solve a structure ab initio (charge flipping) from merged reflections",
        description="Charge flipping → potential map → atoms → R1; "
        "writes CIF, CCP4 map, SHELX .ins/.res and a "
        "JSON report. Give a SHELX HKLF 4 file with --cell and "
        "--space-group, or a .ins file (its .hkl beside it).",
    )
    p.add_argument("reflections", help="HKLF 4 .hkl file, or a SHELX .ins file with NAME.hkl beside it")
    p.add_argument(
        "--cell",
        nargs=6,
        type=float,
        metavar=("A", "B", "C", "ALPHA", "BETA", "GAMMA"),
        help="unit cell in Å and degrees (required with a .hkl file)",
    )
    p.add_argument(
        "--cell-esd",
        nargs=6,
        type=float,
        metavar=("SA", "SB", "SC", "SAL", "SBE", "SGA"),
        help="standard uncertainties of the cell (for ZERR; default: the .ins ZERR, else unknown = 0)",
    )
    p.add_argument("--space-group", help="space-group symbol or number, e.g. 'P 21 21 21' or Fm-3m")
    p.add_argument("--composition", help="cell contents or formula unit, e.g. 'Zr6 O32 C48'")
    p.add_argument("--wavelength", type=float, default=None, help="electron wavelength in Å (for the .ins)")
    p.add_argument("--d-min", type=float, default=None, help="resolution cut in Å")
    p.add_argument("--starts", type=int, default=4, help="random starts of charge flipping (default 4)")
    p.add_argument("--delta", type=float, default=1.2, help="δ = k·σ(ρ): the factor k (default 1.2)")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--scheduler", default=None, help="dask.distributed scheduler address (default: threads)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--out", default=None, help="output directory (default: beside the input, NAME_phase)")
    p.set_defaults(func=run)


def _load(args):
    from virtual_aperture.crystal.export import read_hkl, read_ins

    path = Path(args.reflections)
    if not path.is_file():
        raise ValueError(f"reflections file {path} does not exist")
    composition = args.composition
    wavelength = args.wavelength
    cell_esd = tuple(args.cell_esd) if args.cell_esd else None
    if path.suffix.lower() in (".ins", ".res"):
        info = read_ins(path)
        hkl_path = path.with_suffix(".hkl")
        if not hkl_path.is_file():
            raise ValueError(f"{path} needs its reflections in {hkl_path}, which does not exist")
        cell = tuple(args.cell) if args.cell else info["cell"]
        sg = args.space_group or info["space_group"]
        if composition is None and info["unit"]:
            # UNIT is the cell contents; with ZERR's Z it gives the formula unit
            composition = " ".join(f"{e}{n / info['z']:g}" for e, n in info["unit"].items())
        wavelength = wavelength or info["wavelength"]
        if cell_esd is None and not args.cell:
            cell_esd = info["zerr"]
        refl = read_hkl(hkl_path, cell=cell, space_group=sg, wavelength=wavelength)
    else:
        if not args.cell or not args.space_group:
            raise ValueError("--cell and --space-group are required with a .hkl file")
        refl = read_hkl(path, cell=tuple(args.cell), space_group=args.space_group, wavelength=wavelength)
    return path, refl, composition, cell_esd


def _check_data(refl) -> None:
    import numpy as np

    from virtual_aperture.crystal.reflections import check_cell_matches_space_group

    check_cell_matches_space_group(refl.cell, refl.space_group)
    ops = refl.gemmi_space_group.operations()
    absent = ops.systematic_absences(refl.hkl.astype(np.int32))
    # lattice centring: reflections that violate it must be absent in real data
    cen = [np.array(t) / 24.0 for t in ops.cen_ops if any(t)]
    if cen:
        bad = np.zeros(len(refl), bool)
        for t in cen:
            bad |= np.abs(np.round(refl.hkl @ t) - refl.hkl @ t) > 1e-6
        strong = refl.intensity > 3 * np.maximum(refl.sigma, 1e-12)
        frac = (bad & strong).sum() / max(strong.sum(), 1)
        if frac > 0.05:
            raise ValueError(
                f"{100 * frac:.0f} % of the strong reflections violate the {refl.space_group} "
                "lattice centring: the space group does not fit the data"
            )
    if (~absent).sum() < 50:
        raise ValueError(f"too few reflections ({int((~absent).sum())}) to solve a structure (need ≥ 50)")


def run(args: argparse.Namespace) -> int:
    from virtual_aperture.cli._runtime import close_client, open_client, tqdm_progress
    from virtual_aperture.crystal.atoms import parse_formula
    from virtual_aperture.crystal.export import SOLUTION_FILES, check_free, write_solution
    from virtual_aperture.crystal.merge import merge_reflections
    from virtual_aperture.crystal.solve import solve_structure

    path, refl, composition, cell_esd = _load(args)
    _check_data(refl)
    refl, merge_stats = merge_reflections(refl)
    if composition is not None:
        parse_formula(composition)  # clear error before the long run
    out = check_free(args.out or path.parent / f"{path.stem}_phase", SOLUTION_FILES, overwrite=args.overwrite)
    client = open_client(args.scheduler)
    try:
        with tqdm_progress("charge flipping") as progress:
            sol = solve_structure(
                refl,
                composition=composition,
                d_min=args.d_min,
                starts=args.starts,
                delta_factor=args.delta,
                seed=args.seed,
                client=client,
                progress=progress,
            )
    finally:
        close_client(client)
    report = sol.report()
    report["input"] = str(path)
    report["merging"] = merge_stats.as_dict()
    write_solution(
        out,
        sol,
        wavelength=refl.wavelength,
        report=report,
        composition=composition,
        cell_esd=cell_esd,
        overwrite=args.overwrite,
    )
    status = sol.message if sol.converged else f"no solution: {sol.message}"
    print(f"{status}; wrote {out}")
    return 0 if sol.converged else 3
