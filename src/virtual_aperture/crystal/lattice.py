"""Lattice reduction and Bravais-lattice candidates.

* :func:`niggli_reduce_basis` — Niggli-reduced direct basis (gemmi ``GruberVector``) of any basis.
* :func:`bravais_candidates` — every Bravais lattice whose metric the (reduced) lattice fits within a
  tolerance, with its conventional cell, the integer matrix from the reduced basis and the metric
  deviation (a Le Page-style search over short lattice vectors).
* :func:`centring_allowed` — which conventional Miller indices a centring allows.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .geometry import cell_from_basis, direct_basis

#: order of the lattice point group of each Bravais type (used to rank candidates)
SYMMETRY_ORDER = {
    "aP": 2,
    "mP": 4,
    "mC": 4,
    "oP": 8,
    "oC": 8,
    "oI": 8,
    "oF": 8,
    "tP": 16,
    "tI": 16,
    "hR": 12,
    "hP": 24,
    "cP": 48,
    "cI": 48,
    "cF": 48,
}

_CENTRING_POINTS = {
    "P": [],
    "C": [(0.5, 0.5, 0.0)],
    "I": [(0.5, 0.5, 0.5)],
    "F": [(0.0, 0.5, 0.5), (0.5, 0.0, 0.5), (0.5, 0.5, 0.0)],
    "R": [(2 / 3, 1 / 3, 1 / 3), (1 / 3, 2 / 3, 2 / 3)],
    "Rrev": [(1 / 3, 2 / 3, 1 / 3), (2 / 3, 1 / 3, 2 / 3)],
}


def niggli_reduce_basis(basis: np.ndarray, *, centring: str = "P") -> tuple[np.ndarray, np.ndarray]:
    """Niggli-reduce a direct basis (columns a, b, c in any Cartesian frame, Å).

    Returns ``(reduced basis, M)`` with ``reduced = basis @ M`` (M integer for a primitive input;
    for a centred input the basis is first made primitive by gemmi and M is rational).
    """
    import gemmi

    A = np.asarray(basis, dtype=float)
    if A.shape != (3, 3) or abs(np.linalg.det(A)) < 1e-9:
        raise ValueError(f"a lattice basis must be a non-singular 3×3 matrix, got {A.shape}")
    if np.linalg.det(A) < 0:
        A = A @ np.diag([1.0, 1.0, -1.0])
        flip = np.diag([1.0, 1.0, -1.0])
    else:
        flip = np.eye(3)
    cell = cell_from_basis(A)
    gv = gemmi.GruberVector(gemmi.UnitCell(*cell), centring, True)
    gv.niggli_reduce()
    op = gv.change_of_basis
    M = np.array(op.rot, dtype=float) / op.DEN
    R = A @ M
    if np.linalg.det(R) < 0:  # keep right-handed (Niggli cells are defined up to inversion)
        M = -M
        R = -R
    return R, flip @ M


def niggli_cell(cell, *, centring: str = "P") -> tuple[float, float, float, float, float, float]:
    """The Niggli-reduced primitive cell of a (possibly centred) cell, as (a, b, c, α, β, γ)."""
    R, _ = niggli_reduce_basis(direct_basis(cell), centring=centring)
    return cell_from_basis(R)


_GRID = np.array(list(itertools.product(range(-2, 3), repeat=3)), dtype=float)


def _centring_of(N: np.ndarray) -> str | None:
    """Centring letter of the conventional cell ``conv = prim @ N`` (det N = 1, 2, 3 or 4)."""
    det = int(round(abs(np.linalg.det(N))))
    f = (_GRID @ np.linalg.inv(N).T) % 1.0
    f = np.where(np.abs(f - 1) < 1e-6, 0.0, f)
    pts = set(map(tuple, np.round(f, 4)))
    pts.discard((0.0, 0.0, 0.0))
    if len(pts) != det - 1:
        return None
    for letter, ref in _CENTRING_POINTS.items():
        if len(ref) == len(pts) and {tuple(np.round(r, 4)) for r in ref} == pts:
            return letter
    return None


@dataclass(frozen=True)
class BravaisCandidate:
    """A Bravais lattice the data fit: ``lattice`` (e.g. ``'oC'``), its conventional ``cell`` as
    measured (not symmetrised), ``N`` with ``conventional basis = reduced basis @ N``, and the
    metric deviations from the ideal cell: ``angle_dev_deg`` and ``length_dev`` (relative)."""

    lattice: str
    cell: tuple[float, float, float, float, float, float]
    N: np.ndarray
    angle_dev_deg: float
    length_dev: float

    @property
    def centring(self) -> str:
        return self.lattice[1]

    @property
    def score(self) -> float:
        """A single metric misfit in degrees (relative length misfit counted as radians)."""
        return max(self.angle_dev_deg, math.degrees(self.length_dev))

    def to_dict(self) -> dict:
        return {
            "lattice": self.lattice,
            "cell": [round(v, 5) for v in self.cell],
            "angle_dev_deg": round(self.angle_dev_deg, 4),
            "length_dev": round(self.length_dev, 6),
            "score": round(self.score, 4),
        }


def _systems(lens: np.ndarray, angs: np.ndarray):
    """Metric deviations (angle°, relative length) of every triplet for each crystal system."""
    a, b, c = lens.T
    al, be, ga = angs.T
    d90 = np.abs(angs - 90.0)
    rel = lambda u, v: np.abs(u - v) / np.minimum(u, v)  # noqa: E731
    out = {
        "c": (d90.max(1), np.maximum.reduce([rel(a, b), rel(b, c), rel(a, c)])),
        "t": (d90.max(1), rel(a, b)),
        "o": (d90.max(1), np.zeros_like(a)),
        "h": (
            np.maximum.reduce([d90[:, 0], d90[:, 1], np.minimum(np.abs(ga - 120.0), np.abs(ga - 60.0))]),
            rel(a, b),
        ),
        "m": (np.maximum(d90[:, 0], d90[:, 2]), np.zeros_like(a)),
    }
    return out


_ALLOWED = {"c": "PIF", "t": "PI", "o": "PCIF", "h": "PR", "m": "PC"}


def _triplets(R: np.ndarray):
    """All right-sized triplets of short lattice vectors (integer combos −2…2 of the reduced basis).

    Returns ``(N (m, 3, 3) coefficient matrices with vectors as columns, lengths (m, 3),
    angles α β γ (m, 3) in degrees, |det N| (m,))``.
    """
    coeffs = np.array([m for m in itertools.product(range(-2, 3), repeat=3) if m > (0, 0, 0)])
    vecs = coeffs @ R.T
    lens = np.linalg.norm(vecs, axis=1)
    keep = lens <= 2.5 * np.linalg.norm(R, axis=0).max()
    coeffs, vecs, lens = coeffs[keep], vecs[keep], lens[keep]
    n = len(coeffs)
    I, J, K = (g.ravel() for g in np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij"))
    Ns = np.stack([coeffs[I], coeffs[J], coeffs[K]], axis=2)
    det = np.abs(np.round(np.linalg.det(Ns))).astype(int)
    sel = np.isin(det, (1, 2, 3, 4)) & (I != J) & (J != K) & (I != K)
    I, J, K, Ns, det = I[sel], J[sel], K[sel], Ns[sel], det[sel]
    L = np.stack([lens[I], lens[J], lens[K]], axis=1)
    cos = lambda p, q: np.einsum("ij,ij->i", vecs[p], vecs[q]) / (lens[p] * lens[q])  # noqa: E731
    ang = np.degrees(np.arccos(np.clip(np.stack([cos(J, K), cos(I, K), cos(I, J)], axis=1), -1, 1)))
    return Ns, L, ang, det


def match_cell(basis: np.ndarray, cell, *, max_angle_dev: float = 3.0, max_length_dev: float = 0.03):
    """Find the setting of a (primitive) lattice basis that best matches a known cell.

    Returns ``(N, measured cell, angle deviation°, relative length deviation)`` with
    ``matching basis = reduced basis @ N`` and ``reduced = niggli_reduce_basis(basis)[0]``;
    raises ValueError if no setting matches within the tolerances.
    """
    R, _ = niggli_reduce_basis(basis)
    Ns, L, ang, det = _triplets(R)
    target = np.asarray(cell, dtype=float)
    # allow the mirror-image angle choice (negating one vector), then fix handedness
    adev = np.abs(ang - target[3:]).max(1)
    ldev = (np.abs(L - target[:3]) / target[:3]).max(1)
    ok = np.nonzero((adev <= max_angle_dev) & (ldev <= max_length_dev))[0]
    if ok.size == 0:
        raise ValueError(f"the lattice does not match the given cell {tuple(np.round(target, 3))}")
    i = ok[np.argmin(np.maximum(adev[ok], np.degrees(ldev[ok])))]
    N = Ns[i].astype(float)
    if np.linalg.det(N) < 0:
        N = -N  # inversion keeps all angles and lengths
    return N, cell_from_basis(R @ N), float(adev[i]), float(ldev[i])


def bravais_candidates(
    basis: np.ndarray, *, max_angle_dev: float = 3.0, max_length_dev: float = 0.03
) -> list[BravaisCandidate]:
    """All Bravais lattices compatible with a primitive lattice basis, best-fitting per type.

    The basis is Niggli-reduced; conventional bases are searched among integer combinations
    (coefficients −2…2) of the reduced vectors. Candidates are sorted by decreasing symmetry
    (then by misfit); ``aP`` (the reduced cell itself) is always last.
    """
    R, _ = niggli_reduce_basis(basis)
    Ns, L, ang, det = _triplets(R)
    found: dict[str, BravaisCandidate] = {}
    for system, (adev, ldev) in _systems(L, ang).items():
        ok = np.nonzero((adev <= max_angle_dev) & (ldev <= max_length_dev))[0]
        if ok.size == 0:
            continue
        # best fit first; among equal fits the smaller cell
        # among good fits (misfit binned by 0.5°) the smallest cell with the shortest vectors
        order = ok[
            np.lexsort((L[ok].sum(1), det[ok], np.floor(np.maximum(adev[ok], np.degrees(ldev[ok])) / 0.5)))
        ]
        for i in order[:4000]:
            N = Ns[i].astype(float)  # columns = coefficient vectors of a, b, c
            if system == "h" and ang[i, 2] < 90:
                N[:, 1] *= -1  # gamma 60 -> 120
            if np.linalg.det(N) < 0:
                N[:, 2] *= -1  # right-handed
            if system == "m" and cell_from_basis(R @ N)[4] < 90:
                N[:, :2] *= -1  # beta > 90, still right-handed
            letter = "P" if det[i] == 1 else _centring_of(N)
            if letter == "Rrev":
                N[:, :2] *= -1
                letter = "R"
            if letter is None or letter not in _ALLOWED[system]:
                continue
            name = system + letter
            if name in found:
                continue
            cell = cell_from_basis(R @ N)
            found[name] = BravaisCandidate(name, cell, N, float(adev[i]), float(ldev[i]))
    cands = sorted(found.values(), key=lambda c: (-SYMMETRY_ORDER[c.lattice], c.score))
    cands.append(BravaisCandidate("aP", cell_from_basis(R), np.eye(3), 0.0, 0.0))
    return cands


def centring_allowed(hkl: np.ndarray, centring: str) -> np.ndarray:
    """Boolean mask of conventional Miller indices allowed by a lattice centring."""
    h = np.atleast_2d(np.asarray(hkl)).astype(int)
    H, K, L = h[:, 0], h[:, 1], h[:, 2]
    if centring == "P":
        return np.ones(len(h), bool)
    if centring == "C":
        return (H + K) % 2 == 0
    if centring == "A":
        return (K + L) % 2 == 0
    if centring == "B":
        return (H + L) % 2 == 0
    if centring == "I":
        return (H + K + L) % 2 == 0
    if centring == "F":
        return ((H + K) % 2 == 0) & ((K + L) % 2 == 0)
    if centring == "R":
        return (-H + K + L) % 3 == 0
    raise ValueError(f"unknown centring {centring!r}")
