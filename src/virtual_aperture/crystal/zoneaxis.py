"""Indexing of a single (zone-axis) diffraction pattern.

The 2D reciprocal lattice of the pattern is found from repeated difference vectors of its peaks
and Lagrange-Gauss reduced. With a known cell every zone axis [uvw] up to ``max_index`` is tried:
its zero-order Laue-zone lattice (centring absences removed) is compared with the observed 2D
basis, and the best matches are oriented (Kabsch) and scored by the fraction of peaks they index.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from . import geometry
from .lattice import centring_allowed


class IndexingError(ValueError):
    """Raised when peaks cannot be indexed; the message starts with ``cannot index:``."""


@dataclass
class ZoneAxisResult:
    """2D lattice of one pattern and, with a known cell, its zone axis and orientation.

    ``basis`` rows are the reduced 2D reciprocal basis vectors as ``(g_y, g_x)`` Å⁻¹ (or pixels when
    the pixel size is unknown); ``hkl2d`` the integer coordinates of each peak in it;
    ``zone_axis`` [uvw], ``U``/``UB`` (crystal.geometry convention), ``in_plane_rotation_deg`` (the
    direction of the first in-plane reciprocal vector from +k_x towards +k_y), ``hkl`` per peak and
    ``fit_score`` (fraction indexed × exp(−rms/tolerance)) when a cell was given.
    """

    basis: np.ndarray
    lengths: tuple[float, float]
    angle_deg: float
    hkl2d: np.ndarray
    indexed: np.ndarray
    indexed_fraction: float
    units: str
    zone_axis: tuple[int, int, int] | None = None
    U: np.ndarray | None = None
    UB: np.ndarray | None = None
    in_plane_rotation_deg: float | None = None
    hkl: np.ndarray | None = None
    fit_score: float | None = None
    candidates: list = field(default_factory=list)
    cell: tuple | None = None
    centring: str = "P"

    def predict(self, *, calibration, d_min: float = 1.0, s_max: float = 0.02, center=None) -> dict:
        """Predicted spots of the oriented crystal at zero tilt (needs a known cell)."""
        if self.UB is None:
            raise ValueError("no orientation: index with a known cell first")
        hkl = geometry.miller_indices_within(self.cell, d_min)
        hkl = hkl[centring_allowed(hkl, self.centring)]
        c = center if center is not None else calibration.center
        pos, s, _ = geometry.predict_reflections(
            self.UB,
            hkl,
            tilt_deg=0.0,
            tilt_axis_deg=0.0,
            wavelength=calibration.wavelength,
            pixel_size=calibration.pixel_size,
            center=c,
            ellipticity=calibration.ellipticity,
        )
        keep = np.abs(s) <= s_max
        return {"hkl": hkl[keep], "positions": pos[keep], "s": s[keep]}

    def to_dict(self) -> dict:
        return {
            "basis": self.basis.tolist(),
            "lengths": list(self.lengths),
            "angle_deg": self.angle_deg,
            "units": self.units,
            "indexed_fraction": self.indexed_fraction,
            "zone_axis": list(self.zone_axis) if self.zone_axis else None,
            "in_plane_rotation_deg": self.in_plane_rotation_deg,
            "fit_score": self.fit_score,
            "UB": None if self.UB is None else self.UB.tolist(),
            "candidates": self.candidates,
        }


def reduce_2d(b1: np.ndarray, b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lagrange–Gauss reduction of a 2D basis: |b1| ≤ |b2| and |b1·b2| ≤ |b1|²/2, angle ≥ 90°."""
    b1, b2 = np.asarray(b1, float), np.asarray(b2, float)
    for _ in range(100):
        if b2 @ b2 < b1 @ b1:
            b1, b2 = b2, b1
        m = round(float(b1 @ b2) / float(b1 @ b1))
        if m == 0:
            break
        b2 = b2 - m * b1
    if b1 @ b2 > 0:
        b2 = -b2
    return b1, b2


def _lattice_2d(v: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Reduced 2D basis (rows) indexing the most of the vectors ``v`` (n, 2)."""
    i, j = np.triu_indices(len(v), 1)
    D = np.concatenate([v[j] - v[i], v])
    D[(D[:, 0] < 0) | ((D[:, 0] == 0) & (D[:, 1] < 0))] *= -1
    tree = cKDTree(D)
    counts = tree.query_ball_point(D, tol, return_length=True)
    order = np.argsort(-counts, kind="stable")
    taken = np.zeros(len(D), bool)
    cents = []
    for k in order:
        if counts[k] < 3 or len(cents) >= 20:
            break
        if taken[k]:
            continue
        c = D[tree.query_ball_point(D[k], tol)].mean(0)
        taken[tree.query_ball_point(c, 2 * tol)] = True
        cents.append(c)
    if len(cents) < 2:
        raise IndexingError("cannot index: no repeated spacing among the peaks (too few peaks or noise)")
    cents = np.array(cents)
    short = cents[np.argsort(np.linalg.norm(cents, axis=1))[:10]]
    best = None
    for a, b in itertools.combinations(short, 2):
        area = abs(a[0] * b[1] - a[1] * b[0])
        if area < 0.1 * np.linalg.norm(a) * np.linalg.norm(b) or area < 4 * tol * tol:
            continue
        M = np.stack([a, b])
        H = np.rint(v @ np.linalg.inv(M))
        ok = np.linalg.norm(v - H @ M, axis=1) <= tol
        key = (round(float(ok.mean()), 2), area)
        if best is None or key > best[0]:
            best = (key, M)
    if best is None:
        raise IndexingError("cannot index: the peak spacings do not form a 2D lattice")
    M = best[1]
    for _ in range(3):  # least-squares refinement through the origin
        H = np.rint(v @ np.linalg.inv(M))
        ok = np.linalg.norm(v - H @ M, axis=1) <= tol
        if ok.sum() >= 3 and np.linalg.matrix_rank(H[ok]) == 2:
            M, *_ = np.linalg.lstsq(H[ok], v[ok], rcond=None)
    b1, b2 = reduce_2d(M[0], M[1])
    M = np.stack([b1, b2])
    H = np.rint(v @ np.linalg.inv(M))
    return M, H.astype(int)


def _zone_plane_basis(B: np.ndarray, uvw: np.ndarray, centring: str, hmax: int = 6):
    """Reduced basis (two hkl rows and their Cartesian vectors) of the reciprocal plane ⊥ [uvw]."""
    r = np.arange(-hmax, hmax + 1)
    hkl = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    hkl = hkl[(hkl @ uvw == 0) & (np.abs(hkl).sum(1) > 0)]
    hkl = hkl[centring_allowed(hkl, centring)]
    if len(hkl) < 2:
        return None
    g = hkl @ B.T
    n = np.linalg.norm(g, axis=1)
    o = np.argsort(n)
    h1 = hkl[o[0]]
    best = None
    for k in o[1:]:
        cr = np.linalg.norm(np.cross(g[o[0]], g[k]))
        if cr > 1e-6 * n[o[0]] * n[k] and (best is None or cr < best[0] - 1e-9):
            best = (cr, hkl[k])
    if best is None:
        return None
    # Gauss-reduce in index space through the Cartesian metric
    a, b = h1.astype(float), best[1].astype(float)
    for _ in range(50):
        ga, gb = B @ a, B @ b
        if gb @ gb < ga @ ga:
            a, b = b, a
            ga, gb = gb, ga
        m = round(float(ga @ gb) / float(ga @ ga))
        if m == 0:
            break
        b = b - m * a
    if (B @ a) @ (B @ b) > 0:
        b = -b
    return a.astype(int), b.astype(int)


def _kabsch(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Rotation R minimising |R P_i − Q_i| (rows)."""
    H = P.T @ Q
    u, _, vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def index_zone_axis(
    peaks,
    *,
    calibration=None,
    cell=None,
    centring: str = "P",
    max_index: int = 3,
    tolerance: float | None = None,
    length_tolerance: float = 0.04,
    angle_tolerance: float = 4.0,
) -> ZoneAxisResult:
    """Index one diffraction pattern: its 2D lattice, and with a known ``cell`` its zone axis.

    Parameters
    ----------
    peaks
        A :class:`PeakList` of one pattern (``g_y, g_x`` used when filled, else pixels).
    calibration
        Gives the pixel size and centre (needed with ``cell``).
    cell
        ``(a, b, c, α, β, γ)`` in Å/°, with lattice ``centring``; zone axes up to ``max_index``.
    tolerance
        Positional tolerance in Å⁻¹ (pixels without pixel size); default 3 px.

    Returns
    -------
    ZoneAxisResult
        The 2D lattice of the pattern and, with ``cell``, its zone axis and orientation.
    """
    n = len(peaks)
    if n < 4:
        raise IndexingError(f"cannot index: too few peaks ({n}; need at least 4)")
    ps = calibration.pixel_size if calibration is not None else None
    if ps is not None and np.isfinite(peaks.g_x).all():
        v = np.stack([peaks.g_y, peaks.g_x], axis=1)
    elif ps is not None:
        c = calibration.center if calibration.center is not None else peaks.center
        g = geometry.detector_to_lab(
            peaks.positions,
            wavelength=calibration.wavelength,
            pixel_size=ps,
            center=c,
            ellipticity=calibration.ellipticity,
        )
        v = g[:, [1, 0]]
    else:
        if cell is not None:
            raise IndexingError("cannot index: a known cell needs a calibrated pixel size")
        c = np.asarray(peaks.center)
        if not np.isfinite(c).all():
            raise IndexingError("cannot index: no beam centre")
        v = peaks.positions - c
    units = "1/A" if ps is not None else "px"
    tol = tolerance if tolerance is not None else 3.0 * (ps if ps is not None else 1.0)
    M, H = _lattice_2d(v, tol)
    ok = np.linalg.norm(v - H @ M, axis=1) <= tol
    l1, l2 = (float(np.linalg.norm(m)) for m in M)
    ang = float(np.degrees(np.arccos(np.clip(M[0] @ M[1] / (l1 * l2), -1, 1))))
    res = ZoneAxisResult(M, (l1, l2), ang, H, ok, float(ok.mean()), units)
    if cell is None:
        return res
    B = geometry.reciprocal_basis(cell)
    cands = []
    r = range(-max_index, max_index + 1)
    for uvw in itertools.product(r, r, r):
        uvw = np.array(uvw)
        if not uvw.any() or math.gcd(*map(int, np.abs(uvw))) != 1 or tuple(-uvw) > tuple(uvw):
            continue
        pb = _zone_plane_basis(B, uvw, centring)
        if pb is None:
            continue
        p1, p2 = (B @ h for h in pb)
        L1, L2 = np.linalg.norm(p1), np.linalg.norm(p2)
        A = math.degrees(math.acos(np.clip(p1 @ p2 / (L1 * L2), -1, 1)))
        dl = max(abs(L1 - l1) / l1, abs(L2 - l2) / l2)
        if dl <= length_tolerance and abs(A - ang) <= angle_tolerance:
            cands.append((dl + math.radians(abs(A - ang)), uvw, pb))
    if not cands:
        raise IndexingError(
            f"cannot index: no zone axis up to index {max_index} of cell {tuple(cell)} "
            f"matches the observed 2D lattice ({l1:.4f}, {l2:.4f} Å⁻¹, {ang:.2f}°)"
        )
    cands.sort(key=lambda c: c[0])
    obs3 = [np.array([m[1], m[0], 0.0]) for m in M]  # lab (x, y, z)
    best = None
    scored = []
    for _, uvw, (h1, h2) in cands[:12]:
        for s1, s2, swap in itertools.product((1, -1), (1, -1), (False, True)):
            ha, hb = (h2, h1) if swap else (h1, h2)
            ha, hb = s1 * ha, s2 * hb
            P = np.stack([B @ ha, B @ hb, np.cross(B @ ha, B @ hb)])
            Q = np.stack([obs3[0], obs3[1], np.cross(obs3[0], obs3[1])])
            U = _kabsch(P, Q)
            UB = U @ B
            # index all peaks with the oriented lattice (ZOLZ, in-plane components)
            Hx = np.rint(np.column_stack([v[:, 1], v[:, 0], np.zeros(n)]) @ np.linalg.inv(UB).T).astype(int)
            gp = Hx @ UB.T
            resid = np.hypot(gp[:, 0] - v[:, 1], gp[:, 1] - v[:, 0])
            okk = (resid <= tol) & centring_allowed(Hx, centring)
            rms = float(np.sqrt(np.mean(resid[okk] ** 2))) if okk.any() else np.inf
            score = float(okk.mean() * math.exp(-rms / tol))
            scored.append((score, tuple(int(x) for x in uvw)))
            if best is None or score > best[0]:
                best = (score, uvw, U, UB, Hx, okk, ha)
    score, uvw, U, UB, Hx, okk, ha = best
    g1 = UB @ ha
    res.zone_axis = tuple(int(x) for x in uvw)
    res.U, res.UB, res.hkl, res.fit_score = U, UB, Hx, score
    res.in_plane_rotation_deg = float(np.degrees(np.arctan2(g1[1], g1[0])))
    res.indexed, res.indexed_fraction = okk, float(okk.mean())
    res.cell, res.centring = tuple(float(x) for x in cell), centring
    seen: dict = {}
    for sc, z in sorted(scored, reverse=True):
        seen.setdefault(z, sc)
    res.candidates = [{"zone_axis": list(z), "score": round(sc, 4)} for z, sc in list(seen.items())[:5]]
    return res
