"""CIF files: the solved structure (gemmi SmallStructure) and the reflections (``_refln`` loop)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..reflections import Reflections, parse_space_group
from ._atomic import write_text

__all__ = ["structure_to_small", "write_structure_cif", "write_reflections_cif"]


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


def write_structure_cif(path: str | os.PathLike, atoms: Sequence, *, cell: Sequence[float], space_group,
                        wavelength: float | None = None, name: str = "solved", extra: dict | None = None,
                        overwrite: bool = False) -> Path:
    """Write the structure as a small-molecule CIF (gemmi ``make_cif_block``), atomically.

    ``extra`` items (e.g. ``{"_refine_ls_R_factor_gt": 0.12}``) are added to the block. The file
    re-reads with ``gemmi.read_small_structure``.
    """
    st = structure_to_small(atoms, cell=cell, space_group=space_group, name=name)
    block = st.make_cif_block()
    sg = parse_space_group(space_group)
    block.set_pair("_space_group_IT_number", str(sg.number))
    block.set_pair("_space_group_name_H-M_alt", f"'{sg.hm}'")
    block.set_pair("_diffrn_radiation_type", "electron")
    if wavelength:
        block.set_pair("_diffrn_radiation_wavelength", f"{wavelength:.5f}")
    loop = block.init_loop("_space_group_symop_", ["id", "operation_xyz"])
    for i, op in enumerate(sg.operations(), 1):
        loop.add_row([str(i), f"'{op.triplet()}'"])
    for key, value in (extra or {}).items():
        block.set_pair(key, value if isinstance(value, str) else f"{value:.4f}")
    return write_text(path, block.as_string(), overwrite=overwrite)


def write_reflections_cif(path: str | os.PathLike, reflections: Reflections, *, name: str = "reflections",
                          overwrite: bool = False) -> Path:
    """Write reflections as a CIF ``_refln`` loop (index_h/k/l, F_squared_meas/sigma, d_spacing)."""
    import gemmi

    r = reflections
    doc = gemmi.cif.Document()
    block = doc.add_new_block(name)
    for key, v in zip(("a", "b", "c", "alpha", "beta", "gamma"), r.cell):
        block.set_pair(f"_cell_{'length' if len(key) == 1 else 'angle'}_{key}", f"{v:.5f}")
    sg = parse_space_group(r.space_group)
    block.set_pair("_space_group_name_H-M_alt", f"'{sg.hm}'")
    block.set_pair("_space_group_IT_number", str(sg.number))
    if r.wavelength:
        block.set_pair("_diffrn_radiation_wavelength", f"{r.wavelength:.5f}")
    block.set_pair("_diffrn_radiation_type", "electron")
    loop = block.init_loop("_refln_", ["index_h", "index_k", "index_l", "F_squared_meas", "F_squared_sigma",
                                       "d_spacing", "scale_group_code"])
    d = r.d
    for (h, k, l), i, s, dd, b in zip(r.hkl.tolist(), r.intensity, r.sigma, d, r.batch.tolist()):
        loop.add_row([str(h), str(k), str(l), f"{i:.4f}", f"{s:.4f}",
                      f"{dd:.4f}" if np.isfinite(dd) else "?", str(b)])
    return write_text(path, doc.as_string(), overwrite=overwrite)
