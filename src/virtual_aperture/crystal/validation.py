"""No false lattices: checks every indexing solution must pass before it is reported.

Sparse or coarse data admit supercells and lattices with one very long axis that "explain" many
peaks by chance. :func:`validate_lattice` measures, for a refined orientation ``UB``:

``chance``
    the fraction of the peaks the same lattice indexes (same tolerances) after random rotations
    of ``UB`` (decoys). A dense (false) lattice indexes random peaks too; the indexed fraction must
    exceed the decoy fraction clearly (``excess = (f − f_decoy) / max(1 − f_decoy, 0.05) ≥ 0.5``)
    and a lattice indexing more than 40 % of random peaks is refused outright.
``low_order``
    of the low-order reflections the lattice predicts on the patterns (|g| up to the median |g|
    of the indexed peaks, |s| within the excitation tolerance, on the detector outside the beam
    stop), the fraction that is observed (≥ 0.2).
``long_axis``
    the longest axis L of the reduced cell must be supported by the spot spacing: 1/L at least a
    quarter of the closest spacing of the peaks within one pattern (5th percentile).
``precision``
    the rmsd of the predicted positions is at most 0.2 × the closest spot spacing.
``stability``
    the orientation and cell refined on the peaks of one half of the tilts (lower or upper
    angles) must predict the other half: it indexes ≥ 70 % of what the whole solution indexes
    there (a lattice fitted to chance coincidences does not transfer), and the cells of the halves
    differ from the whole's by ≤ 10 % in the axes and ≤ 6° in the angles.

``evidence``
    at least 2 indexed spots per pattern of the series on average (fewer: isolated spots, which a
    chance cell fits as well as the true one).

``confidence`` (0–1) is ``excess × min(1, low_order / 0.5) × min(1, transfer) ×
(1 − rmsd / (0.2 × spacing))^¼``. A supercell of a
smaller lattice is removed before validation by :func:`reduce_supercell`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from . import geometry
from .lattice import centring_allowed

__all__ = ["LatticeValidation", "reduce_supercell", "validate_lattice"]

MIN_EXCESS = 0.5
MIN_LOW_ORDER = 0.2
MIN_TRANSFER = 0.7
MAX_DECOY = 0.4
MAX_RMSD_SPACING = 0.2
#: the cells refined on either half of the tilts may differ from the whole's by at most this
#: (measured, benchmarks/bench_indexing.py: right cells ≤ 2.1 %, 1.3° on kinematic data, ≤ 5.7 %,
#: 4.2° on abTEM series, inaccurate ones ≤ 8.7 %, 4.9°; a chance lattice of two equal crystals:
#: 17.4 %, 5.2°)
MAX_CELL_CHANGE = 0.10
MAX_ANGLE_CHANGE = 6.0
#: indexed spots per pattern of the series, on average: below this a lattice rests on isolated
#: spots whose positions a chance (sub)cell fits as well (benchmark, abTEM mC at low dose: four
#: false cells with 0.7–1.75 spots per pattern; every right cell had ≥ 2)
MIN_SPOTS_PER_PATTERN = 2.0


@dataclass(frozen=True)
class LatticeValidation:
    """Outcome of :func:`validate_lattice`: ``accepted``, ``confidence`` (0–1), the measured value of
    every check in ``checks`` (name → dict with ``value``, ``passed``, ``detail``) and, when
    refused, ``reason`` (the first failed check, as a sentence)."""

    accepted: bool
    confidence: float
    checks: dict = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "confidence": self.confidence,
            "reason": self.reason,
            "checks": self.checks,
        }


def _rotation(rng: np.random.Generator, min_deg: float = 8.0) -> np.ndarray:
    while True:
        R = geometry.random_rotation(rng)
        if math.degrees(math.acos(np.clip((np.trace(R) - 1) / 2, -1, 1))) >= min_deg:
            return R


def _nn_spacing(peaks, centers, pixel_size: float) -> float:
    """5th percentile of the nearest-neighbour distance (Å⁻¹) of peaks within one pattern."""
    d = []
    for t in np.unique(peaks.tilt):
        m = peaks.tilt == t
        if m.sum() < 2:
            continue
        p = peaks.positions[m]
        dist, _ = cKDTree(p).query(p, k=2)
        d.extend(dist[:, 1])
    return float(np.percentile(d, 5)) * pixel_size if d else math.nan


def _cell_from_fit(G: np.ndarray, H: np.ndarray):
    if len(G) < 8 or np.linalg.matrix_rank(H.astype(float)) < 3:
        return None
    Bt, *_ = np.linalg.lstsq(H.astype(float), G, rcond=None)
    try:
        return geometry.cell_from_basis(np.linalg.inv(Bt.T).T)
    except np.linalg.LinAlgError:
        return None


def validate_lattice(
    UB,
    hkl,
    indexed,
    peaks,
    *,
    G,
    tilts,
    centers,
    calibration,
    tilt_axis_deg,
    tolerance_px,
    s_max,
    centring: str = "P",
    assign,
    refit=None,
    seed: int = 0,
    n_decoys: int = 6,
) -> LatticeValidation:
    """Run the checks of the module docstring on one indexing solution.

    ``assign(UB)`` must return ``(hkl, indexed mask, residual)`` with the tolerances of the
    solution (it is called on the decoys); ``refit(mask)`` the UB refined on the indexed peaks
    selected by ``mask`` (default: a linear fit of ``G``, the peaks' 3D reciprocal vectors).
    """
    cal = calibration
    f = float(np.mean(indexed)) if len(indexed) else 0.0
    checks: dict = {}
    rng = np.random.default_rng(seed)
    decoys = [float(np.mean(assign(_rotation(rng) @ UB)[1])) for _ in range(n_decoys)]
    f0 = min(float(np.mean(decoys)) + float(np.std(decoys)), 1.0)
    excess = float(np.clip((f - f0) / max(1.0 - f0, 0.05), 0.0, 1.0))
    checks["chance"] = {
        "value": round(excess, 3),
        "passed": excess >= MIN_EXCESS and f0 <= MAX_DECOY,
        "detail": f"indexed {100 * f:.0f}% of the peaks; randomly rotated, the same lattice "
        f"indexes {100 * f0:.0f}%",
    }
    # low-order reflections predicted on the patterns must be observed
    g_obs = np.linalg.norm(G[indexed], axis=1) if indexed.any() else np.zeros(0)
    r_obs = np.hypot(*(peaks.positions - centers).T)
    low = observed = 0
    if len(g_obs):
        g_hi = float(np.median(g_obs))
        r_lo = 0.9 * float(np.min(r_obs))
        r_hi = float(np.max(r_obs))
        cell = geometry.cell_from_basis(np.linalg.inv(UB).T)
        H = geometry.miller_indices_within(cell, 1.0 / g_hi)
        H = H[centring_allowed(H, centring)]
        seen = {(int(t), *map(int, h)) for t, h in zip(peaks.tilt[indexed], hkl[indexed])}
        for t in np.unique(peaks.tilt) if len(H) else []:
            c = centers[peaks.tilt == t][0]
            pos, s, _ = geometry.predict_reflections(
                UB,
                H,
                tilt_deg=float(tilts[peaks.tilt == t][0]),
                tilt_axis_deg=tilt_axis_deg,
                wavelength=cal.wavelength,
                pixel_size=cal.pixel_size,
                center=tuple(c),
                ellipticity=cal.ellipticity,
            )
            r = np.hypot(*(pos - c).T)
            exc = (np.abs(s) <= s_max) & (r >= r_lo) & (r <= r_hi)
            low += int(exc.sum())
            observed += sum((int(t), *map(int, h)) in seen for h in H[exc])
    low_frac = observed / low if low else 0.0
    checks["low_order"] = {
        "value": round(low_frac, 3),
        "passed": low_frac >= MIN_LOW_ORDER,
        "detail": f"{observed} of {low} predicted low-order spots observed",
    }
    # the longest axis must be supported by the spot spacing
    direct = np.linalg.inv(UB).T
    reduced = geometry.cell_from_basis(niggli(direct))
    L = max(reduced[:3])
    nn = _nn_spacing(peaks, centers, cal.pixel_size)
    ok_axis = not math.isfinite(nn) or 1.0 / L >= 0.25 * nn
    # the positions must be predicted far better than the spots are spaced
    res = assign(UB)[2]
    rmsd = float(np.sqrt(np.mean(res[indexed] ** 2))) if indexed.any() else math.inf
    nn_own = _nn_spacing(peaks.select(np.flatnonzero(indexed)), centers, cal.pixel_size)  # its own spots
    nn_px = nn_own / cal.pixel_size if math.isfinite(nn_own) else math.inf
    checks["precision"] = {
        "value": round(rmsd, 3),
        "passed": bool(rmsd <= MAX_RMSD_SPACING * nn_px),
        "detail": f"rmsd {rmsd:.2f} px for spots as close as {nn_px:.1f} px",
    }
    checks["long_axis"] = {
        "value": round(L, 3),
        "passed": bool(ok_axis),
        "detail": f"longest reduced axis {L:.2f} Å (1/L = {1 / L:.4f} Å⁻¹); closest spot "
        f"spacing within a pattern {nn:.4f} Å⁻¹",
    }
    # stability over subsets of the tilts: the lattice refined on one half predicts the other half
    order = np.argsort(tilts)
    half = np.zeros(len(tilts), bool)
    half[order[: len(order) // 2]] = True
    worst_len = worst_ang = 0.0
    transfer = []
    full = geometry.cell_from_basis(direct)
    for part in (half, ~half):
        m = part & indexed
        if refit is not None and m.sum() >= 8 and np.linalg.matrix_rank(hkl[m].astype(float)) == 3:
            UB_part = refit(m)
            other = ~part
            f_other = float(np.mean(indexed[other])) if other.any() else 1.0
            if f_other > 0:
                transfer.append(float(np.mean(assign(UB_part)[1][other])) / f_other)
            cp = geometry.cell_from_basis(np.linalg.inv(UB_part).T)
        else:
            cp = _cell_from_fit(G[m], hkl[m])
        if cp is None:
            continue
        worst_len = max(worst_len, max(abs(cp[i] / full[i] - 1) for i in range(3)))
        worst_ang = max(worst_ang, max(abs(cp[i] - full[i]) for i in range(3, 6)))
    t_min = min(transfer) if transfer else 1.0
    stable = t_min >= MIN_TRANSFER and worst_len <= MAX_CELL_CHANGE and worst_ang <= MAX_ANGLE_CHANGE
    checks["stability"] = {
        "value": round(t_min, 3),
        "passed": bool(stable),
        "cell_change": round(worst_len, 4),
        "angle_change_deg": round(worst_ang, 3),
        "detail": f"refined on one half of the tilts, the lattice indexes {100 * t_min:.0f}% of "
        f"what the whole indexes in the other half (cells differ by ≤ "
        f"{100 * worst_len:.1f}%, {worst_ang:.1f}°)",
    }
    stab_score = min(1.0, t_min)
    conf = excess * min(1.0, low_frac / 0.5) * (stab_score if stable else 0.0) * (1.0 if ok_axis else 0.0)
    conf *= (
        float(np.clip(1.0 - rmsd / (MAX_RMSD_SPACING * nn_px), 0.0, 1.0)) ** 0.25 if nn_px < math.inf else 1.0
    )
    n_patterns = len(cal.tilt_angles_deg) if cal.tilt_angles_deg else len(np.unique(peaks.tilt))
    per_pattern = float(np.sum(indexed)) / max(n_patterns, 1)
    checks["evidence"] = {
        "value": round(per_pattern, 3),
        "passed": bool(per_pattern >= MIN_SPOTS_PER_PATTERN),
        "detail": f"{int(np.sum(indexed))} indexed spots on {n_patterns} patterns "
        f"({per_pattern:.1f} per pattern; at least {MIN_SPOTS_PER_PATTERN:g} needed)",
    }
    failed = [k for k, v in checks.items() if not v["passed"]]
    reason = ""
    if failed:
        k = failed[0]
        reason = {
            "chance": "the lattice indexes random peaks nearly as well (a dense, false lattice?): ",
            "low_order": "the low-order reflections it predicts are not observed: ",
            "long_axis": "an axis far longer than the spot spacing supports: ",
            "stability": "the cell is not stable over subsets of the tilts: ",
            "precision": "the positions are not predicted precisely: ",
            "evidence": "too few indexed spots per pattern to tell the lattice from a chance fit: ",
        }[k] + checks[k]["detail"]
    return LatticeValidation(
        accepted=not failed, confidence=round(float(conf), 3), checks=checks, reason=reason
    )


def niggli(direct: np.ndarray) -> np.ndarray:
    from .lattice import niggli_reduce_basis

    return niggli_reduce_basis(direct)[0]


def reduce_supercell(G: np.ndarray, B: np.ndarray, tolerance: float, *, min_share: float = 0.97):
    """If (nearly) all points indexed by the reciprocal basis ``B`` lie on a sublattice of index 2
    or 3 (h·v ≡ 0 mod n), the real cell is a supercell of a smaller one that explains as much:
    return the sublattice's basis (the smaller cell), else ``B``. Applied until nothing changes."""
    for _ in range(4):
        H = np.rint(G @ np.linalg.inv(B).T).astype(int)
        ok = np.linalg.norm(G - H @ B.T, axis=1) <= tolerance
        if ok.sum() < 20:  # too few points to tell a sublattice from chance
            return B
        M = sublattice_of(H[ok], min_share=min_share)
        if M is None:
            return B
        B = B @ M
    return B


def sublattice_of(H: np.ndarray, *, min_share: float = 0.95):
    """Integer matrix M (det 2 or 3) when ≥ ``min_share`` of the Miller indices ``H`` (n, 3) lie
    on one sublattice h·v ≡ 0 (mod n) — the observed points are then explained as well by the
    reciprocal basis ``B @ M``, i.e. a real cell n times smaller — else None (needs ≥ 20 rows)."""
    if len(H) < 20:
        return None
    best = None
    for n in (2, 3):
        for v in itertools.product(range(n), repeat=3):
            if not any(v):
                continue
            share = float(np.mean((H @ np.array(v)) % n == 0))
            if share >= min_share and (best is None or share > best[0]):
                best = (share, np.array(v), n)
        if best is not None:
            return _sublattice_basis(best[1], best[2])
    return None


def sublattice_matrices() -> list[np.ndarray]:
    """The 7 index-2 and 13 index-3 sublattices of a lattice, as integer basis matrices M: the
    reciprocal basis ``B @ M`` describes a real cell 2 or 3 times smaller."""
    out = []
    for n in (2, 3):
        seen = set()
        for v in itertools.product(range(n), repeat=3):
            if not any(v):
                continue
            key = tuple(sorted({tuple((k * np.array(v)) % n) for k in range(1, n)}))
            if key in seen:
                continue
            seen.add(key)
            out.append(_sublattice_basis(np.array(v), n))
    return out


def _sublattice_basis(v: np.ndarray, n: int) -> np.ndarray:
    """Integer 3×3 matrix (columns) of determinant ±n spanning {h : h·v ≡ 0 mod n}."""
    cand = [
        np.array(h)
        for h in itertools.product(range(-n, n + 1), repeat=3)
        if any(h) and (np.dot(h, v) % n == 0)
    ]
    cand.sort(key=lambda h: (np.abs(h).sum(), tuple(-h)))
    for a, b, c in itertools.combinations(cand, 3):
        M = np.stack([a, b, c], axis=1)
        if round(abs(np.linalg.det(M))) == n:
            return M
    raise ValueError(f"no sublattice basis for v={v}, n={n}")
