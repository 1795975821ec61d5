"""SHELX files: HKLF 4 reflection files and .ins/.res instruction files.

``.hkl``: one reflection per line, ``FORMAT(3I4,2F8.2)`` (h k l Fo² σ(Fo²); the optional batch
column of ``FORMAT(3I4,2F8.2,I4)`` only on request), ended by a zero record ``0 0 0 0.00 0.00``.
Intensities are scaled so the largest is 99999 (the top of ``F8.2``). ``.ins``: TITL, CELL λ a b c
α β γ, ZERR Z and the input's cell esds (zeros when unknown), LATT, SYMM, SFAC (long form with
the electron scattering factors of ITC Vol. C Table 4.3.2.2 — gemmi ``Element.c4322``), UNIT
(cell contents, hydrogen included), atom lines (label, SFAC number, x y z, sof = 10 + site
occupancy, Uiso = B/8π² of the atom's total B), HKLF 4, END.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..reflections import Reflections, parse_space_group
from ._atomic import write_text

__all__ = ["write_hkl", "read_hkl", "write_ins", "read_ins", "shelx_symmetry", "sfac_coefficients"]

_LATT = {"P": 1, "I": 2, "R": 3, "F": 4, "A": 5, "B": 6, "C": 7}
_LATT_INV = {v: k for k, v in _LATT.items()}


def write_hkl(
    path: str | os.PathLike,
    reflections: Reflections,
    *,
    overwrite: bool = False,
    scale: float | None = None,
    batch: bool = False,
) -> float:
    """Write an HKLF 4 file; return the scale applied to I and σ.

    The default scale brings the largest I or σ to 99999.00 (or the most negative I to −9999.00
    if that binds first), so the F8.2 fields keep as many significant digits as the format allows.
    σ is written as at least 0.01 (a zero σ would give an infinite SHELXL weight). No batch column
    by default: SHELXL reads a missing batch as batch 1 — one scale, no BASF. ``batch=True``
    writes ``Reflections.batch`` in the fourth integer column (SHELXL then needs a BASF per batch
    beyond the first).
    """
    r = reflections
    if len(r) == 0:
        raise ValueError("no reflections to write")
    if np.abs(r.hkl).max() > 999:
        raise ValueError("Miller indices beyond ±999 do not fit FORMAT(3I4)")
    big = float(max(r.intensity.max(), r.sigma.max(), 1e-30))
    neg = float(max(-r.intensity.min(), 0.0))  # F8.2 holds -9999.99 at the most negative
    if scale is None:
        scale = min(99999.0 / big, 9999.0 / neg if neg > 0 else np.inf)
    if big * scale > 99999.99 or neg * scale > 9999.99:
        raise ValueError(f"scale {scale} makes intensities overflow F8.2")
    inten = (r.intensity * scale).tolist()
    sig = np.maximum(r.sigma * scale, 0.01).tolist()
    if batch:
        b = np.clip(np.asarray(r.batch), -999, 9999).tolist()
        lines = [
            f"{h:4d}{k:4d}{l:4d}{i:8.2f}{s:8.2f}{bb:4d}"
            for (h, k, l), i, s, bb in zip(r.hkl.tolist(), inten, sig, b)
        ]
    else:
        lines = [f"{h:4d}{k:4d}{l:4d}{i:8.2f}{s:8.2f}" for (h, k, l), i, s in zip(r.hkl.tolist(), inten, sig)]
    lines.append(f"{0:4d}{0:4d}{0:4d}{0.0:8.2f}{0.0:8.2f}")
    write_text(path, "\n".join(lines) + "\n", overwrite=overwrite)
    return float(scale)


def read_hkl(
    path: str | os.PathLike,
    *,
    cell: Sequence[float],
    space_group: str = "P 1",
    wavelength: float | None = None,
) -> Reflections:
    """Read an HKLF 4 file (fixed columns 3I4,2F8.2,I4) up to the zero record.

    Raises ``ValueError`` naming the file and line for malformed records.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="ascii", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read reflections file {p}: {exc}") from None
    hkl, inten, sig, batch = [], [], [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            h, k, l = int(line[0:4]), int(line[4:8]), int(line[8:12])
            i, s = float(line[12:20]), float(line[20:28])
            b = int(line[28:32]) if line[28:32].strip() else 0
        except ValueError:
            raise ValueError(f"{p}, line {n}: not an HKLF 4 record: {line.rstrip()!r}") from None
        if h == 0 and k == 0 and l == 0:
            break
        hkl.append((h, k, l))
        inten.append(i)
        sig.append(s)
        batch.append(b)
    if not hkl:
        raise ValueError(f"{p}: no reflections before the zero record")
    return Reflections(
        np.array(hkl),
        np.array(inten),
        np.array(sig),
        cell=tuple(cell),
        space_group=space_group,
        batch=np.array(batch),
        wavelength=wavelength,
    )


def shelx_symmetry(space_group) -> tuple[int, list[str]]:
    """(LATT number, SYMM cards) for a space group, as SHELX writes them.

    LATT is positive for centrosymmetric groups and negative otherwise; SYMM lists the
    operators other than the identity, the centring translations and (for centrosymmetric
    groups) the inversion-related half.
    """
    sg = parse_space_group(space_group)
    ops = sg.operations()
    centring = sg.centring_type()
    if centring not in _LATT:
        raise ValueError(f"space group {sg.hm} has centring {centring!r} that SHELX LATT cannot express")
    # SHELX's positive LATT implies an inversion centre at the origin
    centro = any(
        np.array_equal(np.array(op.rot) // op.DEN, -np.eye(3, dtype=int)) and not any(op.tran)
        for op in ops.sym_ops
    )
    latt = _LATT[centring] * (1 if centro else -1)
    cards = []
    seen = []
    for op in ops.sym_ops:
        rot = np.array(op.rot)
        if centro and any(np.array_equal(-rot, r) for r in seen):
            continue
        seen.append(rot)
        if np.array_equal(rot // op.DEN, np.eye(3, dtype=int)) and not any(op.tran):
            continue
        cards.append("SYMM " + op.triplet().upper().replace(",", ", "))
    return latt, cards


def sfac_coefficients(el: str) -> tuple[np.ndarray, np.ndarray, float, float]:
    """SHELX long-form coefficients (a1..a4, b1..b4, c) for the electron scattering factor of ``el``.

    gemmi's ``Element.c4322`` has five Gaussians, f(x) = Σ a_i exp(−b_i x) with x = (sinθ/λ)²;
    SHELX has four plus a constant, so the four-Gaussian + c form is least-squares fitted to the
    five-Gaussian curve for sinθ/λ ≤ 1 Å⁻¹ (d ≥ 0.5 Å). Returns ``(a, b, c, max_rel_error)``.
    """
    import gemmi
    from scipy.optimize import least_squares

    co = gemmi.Element(el).c4322
    a5, b5 = np.array(co.a, float), np.array(co.b, float)
    x = np.linspace(0, 1.0, 200) ** 2
    target = (a5[None] * np.exp(-np.outer(x, b5))).sum(1)

    def model(p: np.ndarray) -> np.ndarray:
        return (p[:4][None] * np.exp(-np.outer(x, np.abs(p[4:8])))).sum(1) + p[8]

    # start: merge the two widest-in-s (smallest b) terms
    order = np.argsort(b5)
    a0 = np.r_[a5[order[0]] + a5[order[1]], a5[order[2:]]]
    b0 = np.r_[0.5 * (b5[order[0]] + b5[order[1]]), b5[order[2:]]]
    fit = least_squares(lambda p: model(p) - target, np.r_[a0, b0, 0.0])
    err = float(np.max(np.abs(model(fit.x) - target)) / target[0])
    return fit.x[:4], np.abs(fit.x[4:8]), float(fit.x[8]), err


def _sfac_line(el: str) -> str:
    import gemmi

    a, b, c, _ = sfac_coefficients(el)
    e = gemmi.Element(el)
    coeff = " ".join(f"{ai:.5f} {bi:.5f}" for ai, bi in zip(a, b))
    # SFAC label a1 b1 a2 b2 a3 b3 a4 b4 c f' f" mu r wt  (electrons: f' = f" = mu = 0)
    return f"SFAC {el} {coeff} {c:.5f} =\n    0 0 0 {e.covalent_r:.2f} {e.weight:.2f}"


def write_ins(
    path: str | os.PathLike,
    *,
    cell: Sequence[float],
    space_group,
    wavelength: float | None,
    unit: dict[str, float],
    atoms: Sequence = (),
    title: str = "virtual-aperture",
    zerr: Sequence[float] | None = None,
    z: int = 1,
    overwrite: bool = False,
    extra: Sequence[str] = (),
) -> Path:
    """Write a SHELX .ins/.res file (see the module docstring for the card order)."""
    if not unit:
        raise ValueError("unit (cell contents) must name at least one element")
    latt, symm = shelx_symmetry(space_group)
    lam = 0.0251 if wavelength is None else float(wavelength)
    els = list(unit)
    errs = tuple(zerr) if zerr is not None else (0.0,) * 6  # unknown esds are zeros, never invented
    if len(errs) != 6:
        raise ValueError(f"zerr needs six standard uncertainties (a b c α β γ), got {len(errs)}")
    lines = [
        f"TITL {title}"[:76],
        "CELL " + " ".join(f"{v:.5f}" for v in (lam, *cell)),
        f"ZERR {z} " + " ".join(f"{v:.5f}" for v in errs),
        f"LATT {latt}",
        *symm,
        *(_sfac_line(e) for e in els),
        "UNIT " + " ".join(f"{unit[e]:g}" for e in els),
        *extra,
    ]
    for a in atoms:
        if a.element not in els:
            raise ValueError(f"atom {a.label} has element {a.element} missing from UNIT/SFAC")
        if a.b_iso < 0:
            raise ValueError(
                f"atom {a.label} has a negative B ({a.b_iso:g}); SHELX reads a negative U as riding"
            )
        u = a.b_iso / (8 * math.pi**2)
        sof = 10.0 + a.occupancy * a.multiplicity / _general_multiplicity(space_group)
        lines.append(
            f"{a.label:<5s} {els.index(a.element) + 1:d} {a.x:10.6f} {a.y:10.6f} {a.z:10.6f} "
            f"{sof:10.6f} {u:9.6f}"
        )
    lines += ["HKLF 4", "END"]
    return write_text(path, "\n".join(lines) + "\n", overwrite=overwrite)


def _general_multiplicity(space_group) -> int:
    return len(list(parse_space_group(space_group).operations()))


def read_ins(path: str | os.PathLike) -> dict:
    """Parse CELL, LATT, SYMM, SFAC and UNIT from a .ins/.res file.

    Returns ``{"cell", "wavelength", "space_group" (gemmi hm), "elements", "unit", "title", "zerr", "z"}``
    (``zerr``: the six cell esds of the ZERR card, None when absent or all zero; ``z`` its Z, 1
    when absent).
    The space group is found from the operators (gemmi ``find_spacegroup_by_ops``).
    """
    import gemmi

    p = Path(path)
    try:
        text = p.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise ValueError(f"cannot read {p}: {exc}") from None
    cell = wavelength = zerr = None
    z = 1
    latt, symm, elements, unit, title = 1, [], [], [], ""
    for raw in text.splitlines():
        tok = raw.split()
        if not tok:
            continue
        card = tok[0].upper()
        try:
            if card == "TITL":
                title = raw[4:].strip()
            elif card == "CELL":
                wavelength, *cell = (float(v) for v in tok[1:8])
            elif card == "ZERR":
                z = max(1, round(float(tok[1])))
                zerr = tuple(float(v) for v in tok[2:8]) if len(tok) >= 8 else None
            elif card == "LATT":
                latt = int(tok[1])
            elif card == "SYMM":
                symm.append(raw.split(None, 1)[1].replace(" ", "").lower())
            elif card == "SFAC":
                # short form lists element symbols; long form has one symbol then numbers
                if len(tok) > 2 and _is_number(tok[2]):
                    elements.append(tok[1].capitalize())
                else:
                    elements.extend(t.capitalize() for t in tok[1:])
            elif card == "UNIT":
                unit = [float(v) for v in tok[1:]]
            elif card in ("HKLF", "END"):
                break
        except (ValueError, IndexError):
            raise ValueError(f"{p}: malformed {card} card: {raw.strip()!r}") from None
    if cell is None or len(cell) != 6:
        raise ValueError(f"{p}: no CELL card with λ a b c α β γ")
    if abs(latt) not in _LATT_INV:
        raise ValueError(f"{p}: LATT {latt} is not a SHELX lattice type")
    try:
        ops = gemmi.GroupOps([gemmi.Op("x,y,z")] + [gemmi.Op(s) for s in symm])
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{p}: bad SYMM card: {exc}") from None
    ops = _expand(ops, latt)
    sg = gemmi.find_spacegroup_by_ops(ops)
    if sg is None:
        raise ValueError(f"{p}: LATT {latt} with {len(symm)} SYMM cards is no known space group")
    if elements and unit and len(unit) != len(elements):
        raise ValueError(f"{p}: UNIT has {len(unit)} numbers for {len(elements)} SFAC elements")
    return {
        "cell": tuple(cell),
        "wavelength": wavelength,
        "space_group": sg.hm,
        "elements": elements,
        "unit": dict(zip(elements, unit)),
        "title": title,
        "zerr": zerr if zerr and any(zerr) else None,
        "z": z,
    }


def _is_number(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def _expand(ops, latt: int):
    import gemmi

    cen = {
        "P": [],
        "I": ["x+1/2,y+1/2,z+1/2"],
        "F": ["x,y+1/2,z+1/2", "x+1/2,y,z+1/2", "x+1/2,y+1/2,z"],
        "R": ["x+2/3,y+1/3,z+1/3", "x+1/3,y+2/3,z+2/3"],
        "A": ["x,y+1/2,z+1/2"],
        "B": ["x+1/2,y,z+1/2"],
        "C": ["x+1/2,y+1/2,z"],
    }[_LATT_INV[abs(latt)]]
    gens = [op for op in ops.sym_ops] + [gemmi.Op(c) for c in cen]
    if latt > 0:
        gens.append(gemmi.Op("-x,-y,-z"))
    return _close(gens)


def _close(gens):
    import gemmi

    g = gemmi.GroupOps(gens)
    g.add_missing_elements()
    return g
