"""CIF files: the solved structure and the merged reflections, valid against the cif_core dictionary.

``structure.cif`` (one block): cell with volume, Z and formula; the space group by IT number,
H-M (``_space_group_name_H-M_alt``) and Hall symbol and its operators; ``_diffrn_radiation_probe
electron`` and the wavelength; an ``_atom_type`` loop naming the electron scattering factors
(ITC Vol. C Table 4.3.2.2, gemmi ``Element.c4322``); one ``_atom_site`` row per symmetry-unique
atom with ``_atom_site_U_iso_or_equiv`` = B/8π² (the atom's total B) and its occupancy; and the
R1 of exactly this model. Only the cif_core 2.x names are written (never the deprecated
``_symmetry_*`` alternates next to their replacements), so iotbx.cif validation reports no error.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..reflections import Reflections, parse_space_group
from ._atomic import write_text

__all__ = [
    "structure_to_small",
    "write_structure_cif",
    "write_reflections_cif",
    "formula_sum",
    "SCATTERING_SOURCE",
]

#: what the ``_atom_type_scat_source`` of every exported CIF says
SCATTERING_SOURCE = "electron: Intl. Tables Vol. C Table 4.3.2.2 (Peng et al. 1996), gemmi Element.c4322"


def structure_to_small(atoms: Sequence, *, cell: Sequence[float], space_group, name: str = "solved"):
    """A :class:`gemmi.SmallStructure` of symmetry-unique ``atoms`` (label, element, x, y, z, ...)."""
    import gemmi

    sg = parse_space_group(space_group)
    st = gemmi.SmallStructure()
    st.name = name
    st.cell = gemmi.UnitCell(*cell)
    st.spacegroup = sg
    st.spacegroup_hm = sg.xhm()
    st.spacegroup_hall = sg.hall
    st.spacegroup_number = sg.number
    for a in atoms:
        site = gemmi.SmallStructure.Site()
        site.label = a.label
        site.element = gemmi.Element("C" if a.element == "X" else a.element)
        site.type_symbol = a.element if a.element != "X" else "C"
        site.fract = gemmi.Fractional(a.x, a.y, a.z)
        site.occ = float(a.occupancy)
        site.u_iso = max(float(a.b_iso), 0.0) / (8 * math.pi**2)
        st.add_site(site)
    st.setup_cell_images()
    return st


def formula_sum(counts: dict[str, float]) -> str:
    """Hill-order formula (C, H, then alphabetical; alphabetical without C), e.g. ``'O2 Ti'``."""
    els = sorted(counts)
    if "C" in counts:
        els = ["C"] + (["H"] if "H" in counts else []) + [e for e in els if e not in ("C", "H")]
    return " ".join(
        f"{e}{'' if abs(counts[e] - 1) < 1e-6 else f'{counts[e]:g}'}" for e in els if counts[e] > 0
    )


def _q(text: str) -> str:
    return "'" + text.replace("'", "") + "'"


def _symmetry_items(block, cell, space_group) -> None:
    import gemmi

    sg = parse_space_group(space_group)
    for key, v in zip(("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma"), cell):
        block.set_pair(f"_cell_{key}", f"{v:.5f}")
    block.set_pair("_cell_volume", f"{gemmi.UnitCell(*cell).volume:.3f}")
    block.set_pair("_space_group_crystal_system", sg.crystal_system_str())
    block.set_pair("_space_group_IT_number", str(sg.number))
    block.set_pair("_space_group_name_H-M_alt", _q(sg.hm))
    block.set_pair("_space_group_name_Hall", _q(sg.hall.strip()))
    loop = block.init_loop("_space_group_symop_", ["id", "operation_xyz"])
    for i, op in enumerate(sg.operations(), 1):
        loop.add_row([str(i), _q(op.triplet())])


def _radiation(block, wavelength) -> None:
    block.set_pair("_diffrn_radiation_probe", "electron")
    if wavelength:
        block.set_pair("_diffrn_radiation_wavelength", f"{wavelength:.5f}")


def write_structure_cif(
    path: str | os.PathLike,
    atoms: Sequence,
    *,
    cell: Sequence[float],
    space_group,
    wavelength: float | None = None,
    name: str = "solved",
    z: int | None = None,
    formula: dict[str, float] | None = None,
    extra: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the structure as a small-molecule CIF (see the module docstring), atomically.

    ``z`` formula units per cell and ``formula`` (element → count per formula unit; default the
    atoms' cell contents divided by ``z``). ``extra`` items (e.g. ``{"_refine_ls_R_factor_all":
    0.12}``) are added to the block; floats are written with 4 decimals. The file re-reads with
    ``gemmi.read_small_structure`` and builds in cctbx (``iotbx.cif``).
    """
    import gemmi

    z = int(z or 1)
    contents: dict[str, float] = {}
    for a in atoms:
        contents[a.element] = contents.get(a.element, 0.0) + a.occupancy * a.multiplicity
    if formula is None:
        formula = {e: n / z for e, n in contents.items()}
    doc = gemmi.cif.Document()
    block = doc.add_new_block(name)
    block.set_pair("_audit_creation_method", _q("virtual-aperture (charge flipping + least squares)"))
    if formula:
        block.set_pair("_chemical_formula_sum", _q(formula_sum(formula)))
        weight = sum(gemmi.Element(e).weight * n for e, n in formula.items())
        block.set_pair("_chemical_formula_weight", f"{weight:.2f}")
    _symmetry_items(block, cell, space_group)
    block.set_pair("_cell_formula_units_Z", str(z))
    _radiation(block, wavelength)
    for key, value in (extra or {}).items():
        block.set_pair(
            key,
            value
            if isinstance(value, str)
            else str(value)
            if isinstance(value, (int, np.integer))
            else f"{value:.4f}",
        )
    types = sorted({a.element for a in atoms} | set(formula or {}))
    tloop = block.init_loop("_atom_type_", ["symbol", "scat_source"])
    for e in types:
        tloop.add_row([e, _q(SCATTERING_SOURCE)])
    aloop = block.init_loop(
        "_atom_site_",
        [
            "label",
            "type_symbol",
            "fract_x",
            "fract_y",
            "fract_z",
            "U_iso_or_equiv",
            "adp_type",
            "occupancy",
            "symmetry_multiplicity",
        ],
    )
    for a in atoms:
        u = float(a.b_iso) / (8 * math.pi**2)
        aloop.add_row(
            [
                a.label,
                a.element,
                f"{a.x:.6f}",
                f"{a.y:.6f}",
                f"{a.z:.6f}",
                f"{u:.6f}",
                "Uiso",
                f"{a.occupancy:.4f}",
                str(int(a.multiplicity)),
            ]
        )
    return write_text(path, doc.as_string(), overwrite=overwrite)


def write_reflections_cif(
    path: str | os.PathLike, reflections: Reflections, *, name: str = "reflections", overwrite: bool = False
) -> Path:
    """Write reflections as a CIF ``_refln`` loop (index_h/k/l, F_squared_meas/sigma, d_spacing).

    The block carries the cell, space group and radiation, so iotbx ``as_miller_arrays`` gives
    the intensities with their symmetry. Merged data only need these columns (no scale groups).
    """
    import gemmi

    r = reflections
    doc = gemmi.cif.Document()
    block = doc.add_new_block(name)
    _symmetry_items(block, r.cell, r.space_group)
    _radiation(block, r.wavelength)
    block.set_pair("_reflns_number_total", str(len(r)))
    loop = block.init_loop(
        "_refln_", ["index_h", "index_k", "index_l", "F_squared_meas", "F_squared_sigma", "d_spacing"]
    )
    for (h, k, l), i, s, dd in zip(r.hkl.tolist(), r.intensity, r.sigma, r.d):
        loop.add_row(
            [str(h), str(k), str(l), f"{i:.7g}", f"{s:.7g}", f"{dd:.4f}" if np.isfinite(dd) else "?"]
        )
    return write_text(path, doc.as_string(), overwrite=overwrite)
