"""Shipped crystal structures and CIF loading for the built-in sample.

The CIFs in ``structures/`` are real, published structures (sources in each file and in
``structures/SOURCES.md``). :func:`load_structure` accepts one of their names, a path to any
CIF, or a ready :class:`gemmi.SmallStructure`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gemmi

STRUCTURE_DIR = Path(__file__).with_name("structures")

#: name -> one-line description (composition, space group, cell)
_BUILTIN: dict[str, str] = {
    "uio66": "UiO-66, Zr6O4(OH)4(BDC)6 metal-organic framework; "
    "F-43m, a = 20.72 Å (Redfern et al., Chem. Mater. 2020)",
    "gold": "gold, Au; Fm-3m, a = 4.0782 Å; calibration standard (Wyckoff, Crystal Structures 1963)",
    "brookite": "brookite, TiO2; Pbca, a = 9.174, b = 5.449, c = "
    "5.138 Å (Meagher & Lager, Can. Mineral. 1979)",
}


def builtin_structures() -> dict[str, str]:
    """The shipped structures: ``{name: description}`` (names are accepted by :func:`load_structure`).

    Returns
    -------
    dict of str to str
        ``{name: one-line description}`` of every shipped structure.
    """
    return {k: v for k, v in _BUILTIN.items() if (STRUCTURE_DIR / f"{k}.cif").is_file()}


def _read_cif(path: Path) -> gemmi.SmallStructure:
    try:
        st = gemmi.read_small_structure(str(path))
    except Exception as exc:  # gemmi raises RuntimeError/ValueError with a parser message
        raise ValueError(f"cannot read crystal structure from {path}: {exc}") from None
    return st


def load_structure(structure: str | os.PathLike | gemmi.SmallStructure) -> gemmi.SmallStructure:
    """Load a crystal structure as a :class:`gemmi.SmallStructure`.

    Parameters
    ----------
    structure
        A shipped name (see :func:`builtin_structures`, case-insensitive), a path to a CIF
        file, or a :class:`gemmi.SmallStructure` (returned as a copy-free reference).

    Returns
    -------
    gemmi.SmallStructure
        With chemical occupancies (as in the CIF) and its space group set.

    Raises
    ------
    ValueError
        Unknown name, unreadable file, or a structure without atoms, cell or space group.
    """
    if isinstance(structure, gemmi.SmallStructure):
        st = structure
        origin = "the given gemmi.SmallStructure"
    else:
        if not isinstance(structure, (str, os.PathLike)):
            raise ValueError(
                "structure must be a name, a CIF path or a "
                f"gemmi.SmallStructure, got {type(structure).__name__}"
            )
        key = str(structure).strip()
        builtin = STRUCTURE_DIR / f"{key.lower()}.cif"
        if key.lower() in _BUILTIN and builtin.is_file():
            path = builtin
        else:
            path = Path(key).expanduser()
            if not path.is_file():
                names = ", ".join(sorted(builtin_structures()))
                raise ValueError(
                    f"unknown structure {key!r}: not a shipped name ({names}) nor an existing CIF file"
                )
        st = _read_cif(path)
        origin = str(path)
    if len(st.sites) == 0:
        raise ValueError(f"crystal structure from {origin} has no atom sites")
    c = st.cell
    if not (c.a > 0 and c.b > 0 and c.c > 0 and c.volume > 0):
        raise ValueError(f"crystal structure from {origin} has no valid unit cell")
    if st.spacegroup is None:
        if st.spacegroup_hm:
            try:
                st.determine_and_set_spacegroup("h")
            except Exception:
                pass
        if st.spacegroup is None:
            raise ValueError(f"crystal structure from {origin} has no recognisable space group")
    return st


def structure_name(structure: Any, st: gemmi.SmallStructure) -> str:
    """A short name for the structure: the shipped name, the CIF stem or the block name."""
    if isinstance(structure, gemmi.SmallStructure):
        return st.name or "structure"
    key = str(structure).strip()
    if key.lower() in _BUILTIN:
        return key.lower()
    return Path(key).stem


_CITE_RE = re.compile(r"^#\s*Source \(published\):\s*(.*)$")


def structure_source(structure: Any) -> str:
    """The citation of a shipped structure (from its CIF header); '' when unknown."""
    if isinstance(structure, gemmi.SmallStructure):
        return ""
    key = str(structure).strip()
    path = STRUCTURE_DIR / f"{key.lower()}.cif" if key.lower() in _BUILTIN else Path(key).expanduser()
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    out: list[str] = []
    for i, line in enumerate(lines):
        m = _CITE_RE.match(line)
        if m:
            out.append(m.group(1).strip())
            for more in lines[i + 1 :]:
                more = more.strip()
                if not more.startswith("#  ") and not more.startswith("#   "):
                    break
                out.append(more.lstrip("#").strip())
            break
    return " ".join(out)


@dataclass(frozen=True)
class StructureSummary:
    """Plain-Python facts of a structure (picklable, Qt-free)."""

    cell: tuple[float, float, float, float, float, float]
    space_group: str
    atoms: list[dict]


def summarize(st: gemmi.SmallStructure) -> StructureSummary:
    """Cell, H-M symbol and the symmetry-independent atoms (chemical occupancies)."""
    c = st.cell
    atoms = [
        {
            "label": s.label,
            "element": s.element.name,
            "x": float(s.fract.x),
            "y": float(s.fract.y),
            "z": float(s.fract.z),
            "occupancy": float(s.occ),
            "u_iso": float(s.u_iso),
        }
        for s in st.sites
    ]
    return StructureSummary((c.a, c.b, c.c, c.alpha, c.beta, c.gamma), st.spacegroup.hm, atoms)


def crystallographic_copy(st: gemmi.SmallStructure) -> gemmi.SmallStructure:
    """A copy whose special-position occupancies are divided by the site symmetry.

    gemmi's structure-factor calculators apply every symmetry operation to every site, so a
    site on a special position must carry occupancy / (number of operations mapping it onto
    itself); ``change_occupancies_to_crystallographic`` does that in place.
    """
    doc = st.make_cif_block()
    cp = gemmi.make_small_structure_from_block(doc)
    if cp.spacegroup is None:
        cp.determine_and_set_spacegroup("h")
    cp.change_occupancies_to_crystallographic()
    return cp
