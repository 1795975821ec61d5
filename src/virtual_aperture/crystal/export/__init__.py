"""Exports: SHELX .hkl/.ins, CIF (structure, reflections), CCP4 map, MRC/SMV frames, JSON report.

Every writer is atomic (temporary file + ``os.replace``) and refuses to overwrite an existing
file (``FileExistsError`` naming it) unless ``overwrite=True``.
"""

from ._atomic import atomic_path, write_text
from .cif import formula_sum, structure_to_small, write_reflections_cif, write_structure_cif
from .maps import electron_voltage, rotate_to_fast_axis, smv_header, write_ccp4_map, write_mrc_stack, write_smv
from .report import to_jsonable, write_report
from .solution import SOLUTION_FILES, cell_contents, check_free, write_solution
from .shelx import read_hkl, read_ins, sfac_coefficients, shelx_symmetry, write_hkl, write_ins

__all__ = [
    "atomic_path",
    "write_text",
    "structure_to_small",
    "write_reflections_cif",
    "write_structure_cif",
    "smv_header",
    "rotate_to_fast_axis",
    "electron_voltage",
    "formula_sum",
    "cell_contents",
    "write_ccp4_map",
    "write_mrc_stack",
    "write_smv",
    "to_jsonable",
    "write_report",
    "read_hkl",
    "read_ins",
    "sfac_coefficients",
    "shelx_symmetry",
    "write_hkl",
    "write_ins",
    "SOLUTION_FILES",
    "check_free",
    "write_solution",
]
