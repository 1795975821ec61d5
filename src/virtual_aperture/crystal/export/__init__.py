"""Exports: SHELX .hkl/.ins, CIF (structure, reflections), CCP4 map, MRC/SMV frames, JSON report.

Every writer is atomic (temporary file + ``os.replace``) and refuses to overwrite an existing
file (``FileExistsError`` naming it) unless ``overwrite=True``.
"""

from ._atomic import atomic_path, write_text
from .cif import (
    formula_sum,
    structure_to_small,
    write_reflections_cif,
    write_structure_cif,
)
from .maps import (
    electron_voltage,
    rotate_to_fast_axis,
    smv_header,
    write_ccp4_map,
    write_mrc_stack,
    write_smv,
)
from .report import to_jsonable, write_report
from .shelx import (
    read_hkl,
    read_ins,
    sfac_coefficients,
    shelx_symmetry,
    write_hkl,
    write_ins,
)
from .solution import SOLUTION_FILES, cell_contents, check_free, write_solution

__all__ = [
    "SOLUTION_FILES",
    "atomic_path",
    "cell_contents",
    "check_free",
    "electron_voltage",
    "formula_sum",
    "read_hkl",
    "read_ins",
    "rotate_to_fast_axis",
    "sfac_coefficients",
    "shelx_symmetry",
    "smv_header",
    "structure_to_small",
    "to_jsonable",
    "write_ccp4_map",
    "write_hkl",
    "write_ins",
    "write_mrc_stack",
    "write_reflections_cif",
    "write_report",
    "write_smv",
    "write_solution",
    "write_structure_cif",
    "write_text",
]
