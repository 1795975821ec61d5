"""From a potential map to atoms: peak search, symmetry-unique sites, element assignment, R1.

Electron scattering factors are gemmi's ``Element.c4322`` (International Tables Vol. C,
Table 4.3.2.2): ``f_e(s) = Σ_i a_i exp(−b_i s²/4)`` with ``s = 1/d`` (Å⁻¹) and f in Å.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .geometry import direct_basis, reciprocal_basis
from .reflections import parse_space_group

__all__ = [
    "Atom",
    "parse_formula",
    "scattering_weight",
    "find_atoms",
    "structure_factors",
    "r_factor",
    "all_ops",
    "refine_elements",
]


@dataclass(frozen=True)
class Atom:
    """One symmetry-unique atom: fractional coordinates, element, map height, site multiplicity."""

    label: str
    element: str
    x: float
    y: float
    z: float
    height: float
    multiplicity: int = 1
    occupancy: float = 1.0
    b_iso: float = 1.0

    @property
    def xyz(self) -> np.ndarray:
        return np.array([self.x, self.y, self.z])

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "element": self.element,
            "x": float(self.x),
            "y": float(self.y),
            "z": float(self.z),
            "height": float(self.height),
            "multiplicity": int(self.multiplicity),
            "occupancy": float(self.occupancy),
            "b_iso": float(self.b_iso),
        }


_FORMULA_TOKEN = re.compile(r"([A-Z][a-z]?)\s*(\d*\.?\d*)")


def parse_formula(formula: str) -> dict[str, float]:
    """Element counts of a formula such as ``"Zr6 O32 C48 H28"`` or ``"TiO2"``.

    Raises ``ValueError`` naming the formula for unknown elements or stray characters.
    """
    import gemmi

    text = str(formula).strip()
    if not text:
        raise ValueError("composition is empty")
    counts: dict[str, float] = {}
    pos = 0
    for m in _FORMULA_TOKEN.finditer(text):
        if text[pos : m.start()].strip():
            raise ValueError(f"cannot parse composition {formula!r} near {text[pos : m.start()]!r}")
        pos = m.end()
        el, num = m.group(1), m.group(2)
        if gemmi.Element(el).atomic_number == 0:
            raise ValueError(f"unknown element {el!r} in composition {formula!r}")
        counts[el] = counts.get(el, 0.0) + (float(num) if num else 1.0)
    if text[pos:].strip():
        raise ValueError(f"cannot parse composition {formula!r} near {text[pos:]!r}")
    if not counts or any(v <= 0 for v in counts.values()):
        raise ValueError(f"composition {formula!r} has no positive element counts")
    return counts


def _fe(element: str, s2: np.ndarray) -> np.ndarray:
    """Electron scattering factor (Å) of ``element`` at s² = 1/d² (Å⁻²)."""
    import gemmi

    c = gemmi.Element(element if element != "X" else "C").c4322
    a, b = np.asarray(c.a), np.asarray(c.b)
    return (a[None, :] * np.exp(-np.outer(s2 / 4.0, b))).sum(axis=1)


def scattering_weight(element: str, d_min: float) -> float:
    """Expected peak height of an atom in a map at resolution d_min: ∫ f_e(s) d³s for s ≤ 1/d_min."""
    s = np.linspace(0, 1.0 / d_min, 200)
    return float(np.trapezoid(_fe(element, s * s) * 4 * np.pi * s * s, s))


def all_ops(space_group) -> tuple[np.ndarray, np.ndarray]:
    """Rotation matrices (n, 3, 3) and translations (n, 3) of all operations incl. centring."""
    sg = parse_space_group(space_group)
    ops = list(sg.operations())
    rot = np.array([np.array(op.rot) / op.DEN for op in ops])
    tran = np.array([np.array(op.tran) / op.DEN for op in ops])
    return rot, tran


def _wrap(d: np.ndarray) -> np.ndarray:
    return d - np.round(d)


def _site_images(xyz: np.ndarray, rot: np.ndarray, tran: np.ndarray) -> np.ndarray:
    return np.einsum("nij,j->ni", rot, xyz) + tran


def _unique_images(xyz: np.ndarray, rot, tran, orth: np.ndarray, tol: float = 0.1) -> np.ndarray:
    imgs = _site_images(xyz, rot, tran) % 1.0
    keep: list[np.ndarray] = []
    for p in imgs:
        if all(np.linalg.norm(orth @ _wrap(p - q)) > tol for q in keep):
            keep.append(p)
    return np.array(keep)


def _snap_special(xyz: np.ndarray, rot, tran, orth: np.ndarray, tol: float = 0.45) -> np.ndarray:
    """Move a site that nearly coincides with its own images onto the special position."""
    imgs = _site_images(xyz, rot, tran)
    d = _wrap(imgs - xyz)
    close = np.linalg.norm(d @ orth.T, axis=1) < tol
    return (xyz + d[close].mean(axis=0)) % 1.0


def _subgrid_peaks(rho: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Fractional positions of grid maxima refined by a 3-point parabola along each axis."""
    shape = np.array(rho.shape)
    out = idx.astype(float)
    for ax in range(3):
        plus, minus = idx.copy(), idx.copy()
        plus[:, ax] = (plus[:, ax] + 1) % shape[ax]
        minus[:, ax] = (minus[:, ax] - 1) % shape[ax]
        f0 = rho[tuple(idx.T)]
        fp, fm = rho[tuple(plus.T)], rho[tuple(minus.T)]
        den = fp - 2 * f0 + fm
        off = np.where(den < 0, 0.5 * (fm - fp) / np.where(den < 0, den, -1), 0.0)
        out[:, ax] += np.clip(off, -0.5, 0.5)
    return (out / shape) % 1.0


def find_atoms(
    potential: np.ndarray,
    *,
    cell: Sequence[float],
    space_group,
    d_min: float,
    composition: str | dict | None = None,
    min_distance: float = 0.8,
    max_atoms: int = 200,
) -> tuple[list[Atom], dict]:
    """Symmetry-unique atoms from a symmetrised potential map on the unit cell.

    Parameters
    ----------
    potential
        (nx, ny, nz) map over the whole cell, origin at grid point 0, fractional x along axis 0.
    cell, space_group
        Unit cell (Å, degrees) and space group of the map.
    d_min
        Resolution of the map (Å); sets the expected relative peak heights of elements.
    composition
        Cell contents or formula unit (``"Zr6O32C48"``). Elements are assigned to peaks in order
        of height (heaviest element to the highest peaks, by their electron scattering weight);
        the number of formula units Z in the cell comes from the number of peaks of the
        heaviest element when it is clearly the heaviest (weight > 1.5× the next), otherwise from
        the number of significant peaks. Hydrogen is ignored. Without a composition,
        peaks above 30 % of the highest are returned as element ``"X"`` (unknown).
    min_distance
        Peaks closer than this (Å) to an accepted atom (or its symmetry images) are ripples.

    Returns
    -------
    atoms, info
        The atoms sorted by height (highest first) and a dict with ``z`` (formula units),
        ``n_peaks`` and ``map_sigma``.
    """
    rho = np.asarray(potential, dtype=np.float64)
    if rho.ndim != 3:
        raise ValueError(f"potential map must be 3-D, got shape {rho.shape}")
    rot, tran = all_ops(space_group)
    orth = direct_basis(cell)
    sigma = float(rho.std()) or 1.0
    mx = ndimage.maximum_filter(rho, size=3, mode="wrap")
    cand = np.argwhere((rho == mx) & (rho > rho.mean() + 1.0 * sigma))
    heights = rho[tuple(cand.T)]
    order = np.argsort(heights)[::-1][: 40 * max_atoms]
    cand, heights = cand[order], heights[order]
    frac = _subgrid_peaks(rho, cand)

    accepted: list[tuple[np.ndarray, float, int]] = []
    images = np.zeros((0, 3))
    for p, h in zip(frac, heights):
        if len(accepted) >= 4 * max_atoms:
            break
        if images.shape[0]:
            dist = np.linalg.norm(_wrap(images - p) @ orth.T, axis=1).min()
            if dist < min_distance:
                continue
        p = _snap_special(p, rot, tran, orth)
        imgs = _unique_images(p, rot, tran, orth)
        accepted.append((p, float(h), len(imgs)))
        images = np.vstack([images, imgs])
    info: dict = {"map_sigma": sigma, "n_peaks": len(accepted), "z": None}
    if not accepted:
        return [], info
    hmax = accepted[0][1]
    if composition is None:
        chosen = [(p, h, m, "X") for p, h, m in accepted if h >= 0.3 * hmax][:max_atoms]
    else:
        counts = parse_formula(composition) if isinstance(composition, str) else dict(composition)
        counts = {e: n for e, n in counts.items() if e not in ("H", "D")}
        if not counts:
            raise ValueError("composition has no non-hydrogen elements")
        weights = {e: scattering_weight(e, d_min) for e in counts}
        elems = sorted(counts, key=lambda e: -weights[e])
        wmax = weights[elems[0]]
        thresh = 0.5 * weights[elems[-1]] / wmax * hmax
        per_unit = sum(counts.values())
        if len(elems) > 1 and weights[elems[0]] > 1.5 * weights[elems[1]]:
            # a clearly heaviest element: count its peaks (above the midpoint to the next element)
            cut = 0.5 * (1 + weights[elems[1]] / wmax) * hmax
            n_heavy = sum(m for _, h, m in accepted if h >= cut)
            z = max(1, int(round(n_heavy / counts[elems[0]])))
        else:
            n_sig = sum(m for _, h, m in accepted if h >= thresh)
            z = max(1, int(round(n_sig / per_unit)))
        info["z"] = z
        remaining = {e: counts[e] * z for e in elems}
        chosen = []
        for p, h, m in accepted:
            el = next((e for e in elems if remaining[e] >= m - 0.5), None)
            if el is None or len(chosen) >= max_atoms:
                # a peak needing more sites than any element has left ends the assignment
                if all(remaining[e] < 0.5 for e in elems):
                    break
                continue
            if h < 0.5 * weights[el] / wmax * hmax:
                break  # far too weak for the element it would get
            remaining[el] -= m
            chosen.append((p, h, m, el))
    atoms = []
    n_by_el: dict[str, int] = {}
    for p, h, m, el in chosen:
        n_by_el[el] = n_by_el.get(el, 0) + 1
        atoms.append(Atom(f"{el if el != 'X' else 'Q'}{n_by_el[el]}", el, *map(float, p), h / sigma, m))
    return atoms, info


def structure_factors(
    atoms: Sequence[Atom], hkl: np.ndarray, *, cell: Sequence[float], space_group, b_iso: float | None = None
) -> np.ndarray:
    """Complex electron structure factors (Å) of ``atoms`` for reflections ``hkl`` (n, 3).

    ``F(h) = Σ_sites occ · f_e(s) · exp(−B s²/4) · exp(2πi h·x)`` over all symmetry images in the
    cell (special positions counted once). ``b_iso`` overrides every atom's B (Å²).
    """
    hkl = np.asarray(hkl, dtype=float)
    rot, tran = all_ops(space_group)
    orth = direct_basis(cell)
    s2 = np.sum((hkl @ reciprocal_basis(cell).T) ** 2, axis=1)
    out = np.zeros(len(hkl), complex)
    fcache: dict[str, np.ndarray] = {}
    for at in atoms:
        if at.element not in fcache:
            fcache[at.element] = _fe(at.element, s2)
        imgs = _unique_images(at.xyz, rot, tran, orth, tol=0.05)
        b = at.b_iso if b_iso is None else b_iso
        phase = np.exp(2j * np.pi * (hkl @ imgs.T)).sum(axis=1)
        out += at.occupancy * fcache[at.element] * np.exp(-b * s2 / 4) * phase
    return out


def r_factor(f_obs: np.ndarray, f_calc_abs: np.ndarray, s2: np.ndarray) -> tuple[float, float, float]:
    """R1 = Σ||Fo| − k e^{−B s²/4}|Fc|| / Σ|Fo| with scale k and overall B fitted (least squares).

    Returns ``(r1, k, B)``; B is searched on a 0.05 Å² grid in [−2, 6] Å².
    """
    fo = np.asarray(f_obs, float)
    fc = np.asarray(f_calc_abs, float)
    best = (math.inf, 1.0, 0.0)
    for b in np.arange(-2.0, 6.0001, 0.05):
        m = fc * np.exp(-b * s2 / 4)
        den = float(m @ m)
        if den <= 0:
            continue
        k = float(fo @ m) / den
        r = float(np.abs(fo - k * m).sum() / max(fo.sum(), 1e-30))
        if r < best[0]:
            best = (r, k, float(b))
    return best


def refine_elements(
    atoms: Sequence[Atom],
    hkl: np.ndarray,
    f_obs: np.ndarray,
    *,
    cell: Sequence[float],
    space_group,
    b_iso: float = 0.0,
    max_ratio: float = 1.5,
    max_moves: int = 50,
) -> tuple[list[Atom], list[tuple[str, str, str, str]]]:
    """Swap the elements of pairs of atoms while that lowers R1 (composition kept).

    Peak heights separate elements whose electron scattering powers differ by ~10 % (C, N, O)
    poorly; their scattering factors also differ in shape with s, which the data see. Only atoms
    of equal multiplicity whose elements' scattering weights differ by less than ``max_ratio``
    are swapped; each move takes the single swap that lowers R1 = Σ||Fo| − k|Fc|| / Σ|Fo| (k
    fitted, overall B ``b_iso``) most. Returns the atoms and the swaps made (label, old, new, …).
    """
    atoms = list(atoms)
    if len(atoms) < 2:
        return atoms, []
    hkl = np.asarray(hkl, float)
    fo = np.asarray(f_obs, float)
    rot, tran = all_ops(space_group)
    orth = direct_basis(cell)
    s2 = np.sum((hkl @ reciprocal_basis(cell).T) ** 2, axis=1)
    geo = np.array(
        [
            at.occupancy * np.exp(2j * np.pi * (hkl @ _unique_images(at.xyz, rot, tran, orth, 0.05).T)).sum(1)
            for at in atoms
        ]
    )
    els = sorted({a.element for a in atoms})
    ftab = {e: _fe(e, s2) * np.exp(-b_iso * s2 / 4) for e in els}
    wts = {e: scattering_weight(e, 1.0) for e in els}
    cur = [a.element for a in atoms]
    fc = sum(ftab[e] * g for e, g in zip(cur, geo))

    def r1(f: np.ndarray) -> float:
        a = np.abs(f)
        k = float(fo @ a) / max(float(a @ a), 1e-30)
        return float(np.abs(fo - k * a).sum() / max(fo.sum(), 1e-30))

    pairs = [
        (i, j)
        for i in range(len(atoms))
        for j in range(i + 1, len(atoms))
        if atoms[i].multiplicity == atoms[j].multiplicity
    ]
    best_r, moves = r1(fc), []
    for _ in range(max_moves):
        trial = None
        for i, j in pairs:
            ei, ej = cur[i], cur[j]
            if ei == ej or max(wts[ei], wts[ej]) > max_ratio * min(wts[ei], wts[ej]):
                continue
            d = (ftab[ej] - ftab[ei]) * (geo[i] - geo[j])
            r = r1(fc + d)
            if r < best_r - 1e-5 and (trial is None or r < trial[0]):
                trial = (r, i, j, d)
        if trial is None:
            break
        best_r, i, j, d = trial
        fc = fc + d
        moves.append((atoms[i].label, cur[i], cur[j], atoms[j].label))
        cur[i], cur[j] = cur[j], cur[i]
    out, n_by_el = [], {}
    for a, e in zip(atoms, cur):
        n_by_el[e] = n_by_el.get(e, 0) + 1
        out.append(Atom(f"{e}{n_by_el[e]}", e, a.x, a.y, a.z, a.height, a.multiplicity, a.occupancy, a.b_iso))
    return out, moves
