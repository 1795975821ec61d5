"""Exports: SHELX .hkl/.ins, CIF (structure, reflections), CCP4 map, MRC/SMV frames, JSON report.

Every writer is atomic (temporary file + ``os.replace``) and refuses to overwrite an existing
file (``FileExistsError`` naming it) unless ``overwrite=True``.
"""

from ._atomic import atomic_path, write_text
from .cif import structure_to_small, write_reflections_cif, write_structure_cif
from .maps import smv_header, write_ccp4_map, write_mrc_stack, write_smv
from .report import to_jsonable, write_report
from .shelx import read_hkl, read_ins, sfac_coefficients, shelx_symmetry, write_hkl, write_ins
from .solution import SOLUTION_FILES, check_free, write_solution

__all__ = [
    "atomic_path",
    "write_text",
    "structure_to_small",
    "write_reflections_cif",
    "write_structure_cif",
    "smv_header",
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
