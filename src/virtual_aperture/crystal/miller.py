"""Helpers of :func:`crystal.indexing.index_tilt_series`: Miller-index assignment, excitation-error
weights, and reading a known cell (numbers or CIF)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from . import geometry
from .lattice import centring_allowed
from .peaks import PeakList
from .refine import predict_positions, tilt_rotations
from .zoneaxis import IndexingError


def assign_hkl(UB, peaks, tilts, centers, cal, axis, tol_px, G, allowed=None, s_max=None):
    """Miller indices per peak: nearest lattice points around the 3D estimate, best |s| among those
    whose predicted position is within ``tol_px`` (and |s| ≤ ``s_max`` if given).
    Returns (hkl, indexed mask, residual px)."""
    H0 = np.rint(G @ np.linalg.inv(UB).T).astype(int)
    steps = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij")).reshape(3, -1).T
    best_h = H0.copy()
    best_key = np.full(len(G), np.inf)
    best_res = np.full(len(G), np.inf)
    for st in steps:
        h = H0 + st
        ok_c = centring_allowed(h, allowed) if allowed else np.ones(len(h), bool)
        pred, s = predict_positions(
            UB,
            h,
            tilts,
            tilt_axis_deg=axis,
            pixel_size=cal.pixel_size,
            centers=centers,
            ellipticity=cal.ellipticity,
            wavelength=cal.wavelength,
        )
        res = np.linalg.norm(pred - peaks.positions, axis=1)
        ok_s = np.abs(s) <= s_max if s_max is not None else True
        key = np.where((res <= tol_px) & ok_c & ok_s & (np.abs(h).sum(1) > 0), np.abs(s) + 1e-4 * res, np.inf)
        better = key < best_key
        best_h[better], best_key[better], best_res[better] = h[better], key[better], res[better]
    ok = np.isfinite(best_key)
    best_h[~ok] = 0
    return best_h, ok, best_res


def excitation_weights(peaks: PeakList) -> np.ndarray:
    """Weights of the excitation-error restraint: strong spots lie closer to the Ewald sphere
    (sinc² rocking curve), so they count more (√(I / median I), clipped to 0.3…3; 1 without I)."""
    inten = np.asarray(peaks.intensity, dtype=float)
    if not np.isfinite(inten).any():
        return np.ones(len(peaks))
    med = np.nanmedian(inten[inten > 0]) if (inten > 0).any() else 1.0
    return np.clip(np.sqrt(np.nan_to_num(np.clip(inten, 0, None) / med, nan=1.0)), 0.3, 3.0)


def excitation_spread(UB, hkl, tilts, axis, cal) -> float:
    """Robust spread (Å⁻¹) of the excitation errors of indexed spots."""
    g = np.einsum("nij,nj->ni", tilt_rotations(np.asarray(tilts), axis), hkl @ UB.T)
    s = geometry.excitation_error(g, cal.wavelength)
    return max(float(np.sqrt(np.mean(s**2))), 1e-4)


def family_of(cell) -> str:
    a, b, c, al, be, ga = cell
    eq = lambda u, v: abs(u - v) <= 1e-3 * max(u, v)  # noqa: E731
    r = lambda x, y: abs(x - y) < 1e-3  # noqa: E731
    if r(al, 90) and r(be, 90) and r(ga, 90):
        return "c" if eq(a, b) and eq(b, c) else "t" if eq(a, b) else "o"
    if r(al, 90) and r(be, 90) and r(ga, 120) and eq(a, b):
        return "h"
    if r(al, 90) and r(ga, 90):
        return "m"
    return "a"


def read_known_cell(known, centring: str):
    """(cell tuple, centring letter) from numbers or a CIF (gemmi)."""
    if isinstance(known, str):
        import gemmi

        try:
            st = gemmi.read_small_structure(known)
        except Exception as exc:
            raise IndexingError(f"cannot index: cannot read cell from {known}: {exc}") from None
        c = st.cell
        sg = st.spacegroup
        if sg is None and st.spacegroup_hm:
            sg = gemmi.find_spacegroup_by_name(st.spacegroup_hm)
        letter = sg.hm[0] if sg is not None else centring
        return (c.a, c.b, c.c, c.alpha, c.beta, c.gamma), letter
    cell = tuple(float(v) for v in known)
    if len(cell) != 6:
        raise IndexingError(f"cannot index: known_cell must be (a, b, c, α, β, γ), got {known!r}")
    if centring not in ("P", "A", "B", "C", "I", "F", "R"):
        raise IndexingError(f"cannot index: unknown centring {centring!r}")
    return cell, centring


def _as_peaklist(peaks_per_tilt) -> tuple[PeakList, dict]:
    """One PeakList with a tilt column, and the beam centre each per-tilt PeakList carried."""
    if isinstance(peaks_per_tilt, PeakList):
        return peaks_per_tilt, {}
    lists, centers = [], {}
    for t, p in enumerate(peaks_per_tilt):
        if isinstance(p, PeakList):
            lists.append(replace(p, tilt=np.full(len(p), t, dtype=int)))
            if all(math.isfinite(v) for v in p.center):
                centers[t] = tuple(p.center)
        else:
            lists.append(PeakList.from_positions(np.asarray(p, dtype=float).reshape(-1, 2), tilt=t))
    return PeakList.concatenate(lists), centers


def peaks_to_reciprocal_space(peaks: PeakList, calibration, centers: np.ndarray) -> np.ndarray:
    """(n, 3) reciprocal vectors (Å⁻¹) of the peaks in the specimen frame at zero tilt."""
    G = np.zeros((len(peaks), 3))
    for t in np.unique(peaks.tilt):
        m = peaks.tilt == t
        G[m] = geometry.detector_to_crystal_frame(
            peaks.positions[m],
            tilt_deg=calibration.tilt_angles_deg[t],
            tilt_axis_deg=calibration.tilt_axis_deg,
            wavelength=calibration.wavelength,
            pixel_size=calibration.pixel_size,
            center=centers[m][0],
            ellipticity=calibration.ellipticity,
        )
    return G
