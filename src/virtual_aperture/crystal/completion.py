"""Model completion after the heavy atoms: difference-map peaks, site symmetry, chemistry, R1.

Charge flipping of a structure such as UiO-66 (Zr₆O₄(OH)₄ clusters and terephthalate linkers)
gives the heavy cluster first; the light atoms of the linkers are too weak next to Zr for a peak
search of that map. :func:`complete_model` builds them in, as a crystallographer would:

1. structure factors of the current model (per-atom image sums cached), scale k and overall B
   fitted; a difference map (|F_obs| − k e^{−Bs²/4}|F_c|) e^{iφ_c} on the P1 reflections;
2. its highest positive peaks, each moved onto its special position when it nearly coincides
   with its own images; its multiplicity is the number of distinct images in the cell;
3. for each peak, every element of the composition that still has at least that many atoms left
   in the cell and that is *chemically possible* there: a bond to some model atom of
   0.75–1.15 × the sum of the covalent radii (gemmi) and no contact shorter than 0.75 ×;
4. the (peak, element) that lowers R1 most is added; several well-separated peaks per map;
   cycles until the composition is used up or nothing lowers R1 by ``min_gain``;
5. finally atoms whose removal lowers R1 are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from ..compute.executor import check_cancel
from .atoms import Atom, _fe, _snap_special, _subgrid_peaks, _unique_images, _wrap, all_ops, r_factor
from .geometry import direct_basis, reciprocal_basis

__all__ = ["complete_model"]

BOND_LO, BOND_HI = 0.75, 1.15  # bond window in units of the summed covalent radii


def _radius(el: str) -> float:
    import gemmi

    return float(gemmi.Element(el).covalent_r)


class _Model:
    """Atoms with cached image sums on the data reflections and on the P1 map reflections."""

    def __init__(self, hkl_u, hkl_p1, cell, sg):
        self.hkl_u = np.asarray(hkl_u, float)
        self.hkl_p1 = np.asarray(hkl_p1, float)
        self.rot, self.tran = all_ops(sg)
        self.orth = direct_basis(cell)
        B = reciprocal_basis(cell)
        self.s2_u = np.sum((self.hkl_u @ B.T) ** 2, axis=1)
        self.s2_p1 = np.sum((self.hkl_p1 @ B.T) ** 2, axis=1)
        self.fe: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.atoms: list[Atom] = []
        self.geo_u: list[np.ndarray] = []
        self.geo_p1: list[np.ndarray] = []
        self.images: list[np.ndarray] = []

    def f(self, el: str) -> tuple[np.ndarray, np.ndarray]:
        if el not in self.fe:
            self.fe[el] = (_fe(el, self.s2_u), _fe(el, self.s2_p1))
        return self.fe[el]

    def site(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        imgs = _unique_images(xyz, self.rot, self.tran, self.orth, tol=0.05)
        return (
            imgs,
            np.exp(2j * np.pi * (self.hkl_u @ imgs.T)).sum(1),
            np.exp(2j * np.pi * (self.hkl_p1 @ imgs.T)).sum(1),
        )

    def add(self, atom: Atom, cached=None) -> None:
        imgs, gu, gp = cached if cached is not None else self.site(atom.xyz)
        self.atoms.append(atom)
        self.images.append(imgs)
        self.geo_u.append(atom.occupancy * gu)
        self.geo_p1.append(atom.occupancy * gp)

    def remove(self, i: int) -> None:
        for lst in (self.atoms, self.images, self.geo_u, self.geo_p1):
            lst.pop(i)

    def fc_u(self, skip: int | None = None) -> np.ndarray:
        out = np.zeros(len(self.hkl_u), complex)
        for i, (a, g) in enumerate(zip(self.atoms, self.geo_u)):
            if i != skip:
                out += self.f(a.element)[0] * np.exp(-a.b_iso * self.s2_u / 4) * g
        return out

    def fc_p1(self) -> np.ndarray:
        out = np.zeros(len(self.hkl_p1), complex)
        for a, g in zip(self.atoms, self.geo_p1):
            out += self.f(a.element)[1] * np.exp(-a.b_iso * self.s2_p1 / 4) * g
        return out

    def nearest(self, xyz: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Distances (Å) from ``xyz`` to the nearest image of every model atom."""
        if not self.atoms:
            return np.zeros(0), []
        d = [np.linalg.norm(_wrap(im - xyz) @ self.orth.T, axis=1).min() for im in self.images]
        return np.array(d), [a.element for a in self.atoms]


def _chemically_possible(el: str, dist: np.ndarray, els: list[str]) -> bool:
    if not len(dist):
        return True
    ref = np.array([_radius(el) + _radius(e) for e in els])
    ratio = dist / ref
    return bool(np.all(ratio >= BOND_LO) and np.any(ratio <= BOND_HI))


def _difference_peaks(
    model: _Model, fo_p1, k, b, grid, n_peaks: int, min_sep: float
) -> list[tuple[np.ndarray, float]]:
    fc = model.fc_p1()
    amp = fo_p1 - k * np.exp(-b * model.s2_p1 / 4) * np.abs(fc)
    h = model.hkl_p1.astype(np.int64)
    coef = np.zeros((grid[0], grid[1], grid[2] // 2 + 1), complex)
    coef[h[:, 0] % grid[0], h[:, 1] % grid[1], h[:, 2]] = amp * np.exp(-1j * np.angle(fc))
    m = np.fft.irfftn(coef, s=grid, axes=(0, 1, 2))
    m = (m - m.mean()) / max(float(m.std()), 1e-30)
    mx = ndimage.maximum_filter(m, size=3, mode="wrap")
    cand = np.argwhere((m == mx) & (m > 3.0))
    heights = m[tuple(cand.T)]
    order = np.argsort(heights)[::-1]
    frac = _subgrid_peaks(m, cand[order[: 20 * n_peaks]])
    out: list[tuple[np.ndarray, float]] = []
    taken = np.zeros((0, 3))
    for p, hgt in zip(frac, heights[order]):
        p = _snap_special(p, model.rot, model.tran, model.orth)
        if taken.shape[0] and np.linalg.norm(_wrap(taken - p) @ model.orth.T, axis=1).min() < min_sep:
            continue
        out.append((p, float(hgt)))
        taken = np.vstack([taken, _unique_images(p, model.rot, model.tran, model.orth)])
        if len(out) >= n_peaks:
            break
    return out


def _build(
    model,
    fo,
    fo_p1,
    grid,
    remaining,
    n_by_el,
    history,
    added,
    r,
    k,
    b,
    *,
    max_cycles,
    min_gain,
    per_map,
    cancel,
):
    """Add difference-map peaks as atoms while R1 drops (composition and chemistry permitting)."""
    for _ in range(max_cycles):
        check_cancel(cancel)
        if all(v < 0.5 for v in remaining.values()):
            break
        peaks = _difference_peaks(model, fo_p1, k, b, grid, 3 * per_map, min_sep=0.9)
        fc = model.fc_u()
        gained = 0
        trials = []
        for p, hgt in peaks:
            dist, els = model.nearest(p)
            if len(dist) and dist.min() < 0.9:
                continue
            imgs, gu, gp = model.site(p)
            mult = len(imgs)
            for el in remaining:
                if remaining[el] < mult - 0.5 or not _chemically_possible(el, dist, els):
                    continue
                trial = fc + model.f(el)[0] * gu
                r_new, k_new, b_new = r_factor(fo, np.abs(trial), model.s2_u)
                trials.append((r_new, el, p, hgt, (imgs, gu, gp)))
        trials.sort(key=lambda t: t[0])
        for _r_new, el, p, hgt, cached in trials:
            if gained >= per_map:
                break
            if remaining[el] < len(cached[0]) - 0.5:
                continue
            dist, _ = model.nearest(p)
            if len(dist) and dist.min() < 0.9:
                continue  # close to an atom added in this cycle
            trial = model.fc_u() + model.f(el)[0] * cached[1]
            r_chk, k_chk, b_chk = r_factor(fo, np.abs(trial), model.s2_u)
            if r_chk > r - min_gain:
                continue
            n_by_el[el] = n_by_el.get(el, 0) + 1
            atom = Atom(f"{el}{n_by_el[el]}", el, *map(float, p), hgt, len(cached[0]))
            model.add(atom, cached)
            remaining[el] -= len(cached[0])
            r, k, b = r_chk, k_chk, b_chk
            added.append(atom.label)
            gained += 1
        history.append(r)
        if not gained:
            break
    return r, k, b


def _prune(model, fo, remaining, removed, r, k, b):
    """Drop atoms whose removal lowers R1 (the heaviest element is kept); their budget returns."""
    heavy = max((a.element for a in model.atoms), key=lambda e: _fe(e, np.zeros(1))[0], default=None)
    i = len(model.atoms) - 1
    while i >= 0:
        if model.atoms[i].element != heavy:
            r_wo, k_wo, b_wo = r_factor(fo, np.abs(model.fc_u(skip=i)), model.s2_u)
            if r_wo < r - 1e-4:
                removed.append(model.atoms[i].label)
                if model.atoms[i].element in remaining:
                    remaining[model.atoms[i].element] += model.atoms[i].multiplicity
                model.remove(i)
                r, k, b = r_wo, k_wo, b_wo
        i -= 1
    return r, k, b


def _recentre(model, fo, fo_p1, grid, r, k, b, radius: float = 0.5):
    """Move each atom to the nearest maximum of the 2|Fo| − k|Fc| map (within ``radius`` Å),
    kept when R1 drops (a real-space position refinement)."""
    fc = model.fc_p1()
    amp = np.clip(2 * fo_p1 - k * np.exp(-b * model.s2_p1 / 4) * np.abs(fc), 0, None)
    h = model.hkl_p1.astype(np.int64)
    coef = np.zeros((grid[0], grid[1], grid[2] // 2 + 1), complex)
    coef[h[:, 0] % grid[0], h[:, 1] % grid[1], h[:, 2]] = amp * np.exp(-1j * np.angle(fc))
    m = np.fft.irfftn(coef, s=grid, axes=(0, 1, 2))
    mx = ndimage.maximum_filter(m, size=3, mode="wrap")
    cand = np.argwhere(m == mx)
    frac = _subgrid_peaks(m, cand)
    for i, a in enumerate(list(model.atoms)):
        d = np.linalg.norm(_wrap(frac - a.xyz) @ model.orth.T, axis=1)
        j = int(np.argmin(d))
        if d[j] > radius or d[j] < 0.01:
            continue
        p = _snap_special(frac[j], model.rot, model.tran, model.orth)
        cached = model.site(p)
        if len(cached[0]) != a.multiplicity:
            continue
        old = (model.atoms[i], model.images[i], model.geo_u[i], model.geo_p1[i])
        moved = Atom(a.label, a.element, *map(float, p), a.height, a.multiplicity, a.occupancy, a.b_iso)
        model.atoms[i], model.images[i] = moved, cached[0]
        model.geo_u[i], model.geo_p1[i] = a.occupancy * cached[1], a.occupancy * cached[2]
        r_new, k_new, b_new = r_factor(fo, np.abs(model.fc_u()), model.s2_u)
        if r_new < r:
            r, k, b = r_new, k_new, b_new
        else:
            model.atoms[i], model.images[i], model.geo_u[i], model.geo_p1[i] = old
    return r, k, b


def complete_model(
    atoms: Sequence[Atom],
    hkl: np.ndarray,
    f_obs: np.ndarray,
    hkl_p1: np.ndarray,
    f_obs_p1: np.ndarray,
    *,
    cell: Sequence[float],
    space_group,
    grid: Sequence[int],
    cell_contents: dict[str, float],
    max_cycles: int = 40,
    min_gain: float = 0.002,
    per_map: int = 4,
    rounds: int = 4,
    cancel: Any = None,
) -> tuple[list[Atom], dict]:
    """Complete ``atoms`` from difference maps (see the module docstring).

    ``hkl``/``f_obs``: the unique merged data (R1 is computed there); ``hkl_p1``/``f_obs_p1``:
    their P1 expansion (half set, l ≥ 0) for the maps on ``grid``. ``cell_contents``: atoms of
    each element in the unit cell (hydrogen ignored). Returns the atoms and an info dict
    (``r1`` per cycle, ``added``, ``removed``).
    """
    model = _Model(hkl, hkl_p1, cell, space_group)
    fo = np.asarray(f_obs, float)
    fo_p1 = np.asarray(f_obs_p1, float)
    for a in atoms:
        model.add(a)
    remaining = {e: float(n) for e, n in cell_contents.items() if e not in ("H", "D")}
    for a in atoms:
        if a.element in remaining:
            remaining[a.element] -= a.multiplicity
    r, k, b = r_factor(fo, np.abs(model.fc_u()), model.s2_u)
    history, added, removed = [r], [], []
    n_by_el: dict[str, int] = {}
    for a in atoms:
        n_by_el[a.element] = n_by_el.get(a.element, 0) + 1
    for _round in range(rounds):
        n_before = (len(added), len(removed))
        r, k, b = _build(
            model,
            fo,
            fo_p1,
            grid,
            remaining,
            n_by_el,
            history,
            added,
            r,
            k,
            b,
            max_cycles=max_cycles,
            min_gain=min_gain,
            per_map=per_map,
            cancel=cancel,
        )
        r, k, b = _recentre(model, fo, fo_p1, grid, r, k, b)
        r, k, b = _prune(model, fo, remaining, removed, r, k, b)
        history.append(r)
        if (len(added), len(removed)) == n_before:
            break
    return list(model.atoms), {"r1": history, "added": added, "removed": removed, "scale": k, "b_overall": b}
