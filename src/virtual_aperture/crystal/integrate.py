"""Integration of reflections over a tilt series of a grain's summed diffraction patterns.

For every tilt, reflections are predicted with :func:`~virtual_aperture.crystal.geometry.predict_reflections`
and those with |s| ≤ ``excitation_width`` on the detector are integrated by summation in a disk
of ``radius_px`` around the predicted position, minus the mean background of an annulus
(``background_annulus``) times the disk area. σ² = (raw disk sum) + n_disk²·v_bg/n_bg with
v_bg = max(background mean, background variance) (Poisson counting plus background).

Partials: a reflection is excited on several consecutive tilts while it crosses the Ewald
sphere; those observations are summed into one if the run contains the crossing (s changes
sign, or |s| at its smallest is within half a tilt step of 0). Runs cut by the ends of the
series, runs with a rejected observation (overlap: another excited prediction closer than
2·radius_px; saturation: a disk pixel ≥ ``saturation``) and reflections too close to the tilt
axis are rejected.

Lorentz-type correction for the rotation geometry: with e the tilt axis and ẑ the beam, the
excitation error changes at ds/dφ = −ẑ·(e × g) = −g·(ẑ × e) per radian, so the summed
intensity of a reflection swept through the sphere in steps Δφ is I_kin/(Δφ·|ds/dφ|). We
report ``I = Σ I_tilt · |g·(ẑ × e)| · Δφ`` (Δφ in radians), i.e. L⁻¹ = |g·(ẑ × e)|·Δφ, and reject
reflections with |g·(ẑ × e)| < 0.05·|g|.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..compute.executor import check_cancel
from .geometry import (
    cell_from_basis,
    miller_indices_within,
    predict_reflections,
    tilt_axis_vector,
    tilt_rotation,
)
from .reflections import Reflections

__all__ = ["integrate_reflections"]


def _disk_sum(
    img: np.ndarray,
    pos: np.ndarray,
    r: float,
    r_in: float,
    r_out: float,
    saturation,
    others: np.ndarray | None = None,
    beam: tuple[np.ndarray, float] | None = None,
):
    """(I, var, saturated, ok) for a spot at sub-pixel ``pos`` (k_y, k_x).

    Annulus pixels within ``r + 1`` of ``others`` (neighbouring predicted spots) and within
    ``beam = (centre, radius)`` of the unscattered beam are left out of the background.
    """
    ny, nx = img.shape
    cy, cx = int(round(pos[0])), int(round(pos[1]))
    R = int(math.ceil(r_out)) + 1
    y0, y1, x0, x1 = cy - R, cy + R + 1, cx - R, cx + R + 1
    if y0 < 0 or x0 < 0 or y1 > ny or x1 > nx:
        return 0.0, 0.0, False, False
    box = img[y0:y1, x0:x1]
    yy, xx = np.mgrid[y0:y1, x0:x1]
    d = np.hypot(yy - pos[0], xx - pos[1])
    disk = d <= r
    ann = (d >= r_in) & (d <= r_out)
    if others is not None:
        for oy, ox in others:
            ann &= np.hypot(yy - oy, xx - ox) > r + 1
    if beam is not None:
        ann &= np.hypot(yy - beam[0][0], xx - beam[0][1]) > beam[1]
    raw = box[disk]
    bg = box[ann]
    if bg.size < 4 or raw.size == 0:
        return 0.0, 0.0, False, False
    sat = saturation is not None and bool(np.any(raw >= saturation))
    m = float(bg.mean())
    v_bg = max(m, float(bg.var()))
    n = raw.size
    intensity = float(raw.sum()) - n * m
    var = max(float(raw.sum()), 0.0) + n * n * v_bg / bg.size
    return intensity, var, sat, True


def _centring_forbidden(hkl: np.ndarray, centring: str) -> np.ndarray:
    """Which of ``hkl`` the lattice centring forbids."""
    import gemmi

    c = str(centring).upper()
    if c not in ("P", "A", "B", "C", "I", "F", "R"):
        raise ValueError(f"centring must be one of P, A, B, C, I, F, R, got {centring!r}")
    return np.asarray(gemmi.symops_from_hall(f"{c} 1").systematic_absences(hkl.astype(np.int32)), bool)


def integrate_reflections(
    patterns: np.ndarray,
    *,
    UB: np.ndarray,
    tilt_angles_deg: Sequence[float],
    tilt_axis_deg: float,
    wavelength: float,
    pixel_size: float,
    center: tuple[float, float] | np.ndarray,
    ellipticity: tuple[float, float] = (1.0, 0.0),
    d_min: float,
    oscillation_deg: float | None = None,
    radius_px: float = 3.0,
    background_annulus: tuple[float, float] = (5.0, 8.0),
    excitation_width: float = 0.01,
    centring: str = "P",
    beam_radius_px: float = 0.0,
    saturation: float | None = None,
    space_group: str = "P 1",
    progress: Callable[[int, int], None] | None = None,
    cancel: Any = None,
) -> Reflections:
    """Integrate Bragg reflections over the tilt series (see the module docstring for the method).

    Parameters
    ----------
    patterns
        (n_tilt, k_y, k_x) summed diffraction patterns of one grain, one per tilt (counts).
    UB
        3×3 orientation matrix at zero tilt (columns a*, b*, c* in the lab frame, Å⁻¹).
    tilt_angles_deg, tilt_axis_deg
        Tilt of each pattern and the tilt axis direction on the detector (degrees).
    wavelength, pixel_size, center, ellipticity
        λ (Å), Å⁻¹ per pixel, beam centre (k_y, k_x) px — one for all patterns or one per
        pattern ``(n_tilt, 2)`` (the centre of a summed pattern moves with the descan under the
        aperture) — and the elliptical distortion (ratio, angle°).
    d_min
        Resolution limit (Å).
    oscillation_deg
        Angular step Δφ represented by one pattern; default: the median tilt step.
    radius_px, background_annulus
        Integration disk radius and (inner, outer) background radii, in pixels.
    excitation_width
        |s| (Å⁻¹) below which a reflection counts as excited on a pattern.
    centring
        Lattice centring of the cell of ``UB`` (P, A, B, C, I, F, R). The reflections it forbids
        are integrated too (the absence tests need them) but, predicted empty, they neither make
        an allowed neighbour "overlapped" nor are masked out of its background: a face-centred
        cell predicts four times as many spots as it has.
    beam_radius_px
        The unscattered beam and its tails: pixels within this distance of the beam centre are
        left out of every background annulus, and a reflection whose integration disk reaches
        within half of it is not integrated. 0 = no such mask (the low-order reflections of a
        large cell lie a few pixels from the beam, and an annulus over the beam's flank turns
        their background into the beam).
    saturation
        Counts at or above which a disk pixel is saturated (observation rejected).

    Returns
    -------
    Reflections
        Unmerged, one row per fully recorded reflection, Lorentz-corrected; ``batch`` is the
        tilt index of the crossing, ``tilt_deg`` the interpolated crossing tilt; ``meta`` holds
        the counts of rejected overlaps, saturated spots, incomplete partials and near-axis
        reflections.
    """
    pats = np.asarray(patterns)
    if pats.ndim != 3:
        raise ValueError(f"patterns must have shape (n_tilt, k_y, k_x), got {pats.shape}")
    tilts = np.asarray(tilt_angles_deg, dtype=float)
    if tilts.shape != (pats.shape[0],):
        raise ValueError(f"{tilts.size} tilt angles for {pats.shape[0]} patterns")
    if tilts.size > 1 and np.any(np.diff(tilts) <= 0):
        raise ValueError("tilt angles must increase strictly")
    UB = np.asarray(UB, dtype=float)
    if UB.shape != (3, 3) or abs(np.linalg.det(UB)) < 1e-12:
        raise ValueError(f"UB must be an invertible 3×3 matrix, got shape {UB.shape}")
    r_in, r_out = (float(v) for v in background_annulus)
    if not (0 < radius_px < r_in < r_out):
        raise ValueError(f"need 0 < radius_px < annulus inner < outer, got {radius_px}, {background_annulus}")
    if not (wavelength > 0 and pixel_size > 0 and d_min > 0 and excitation_width > 0):
        raise ValueError("wavelength, pixel_size, d_min and excitation_width must be positive")
    c_arr = np.asarray(center, dtype=float)
    if c_arr.shape not in ((2,), (pats.shape[0], 2)):
        raise ValueError(
            f"center must be (k_y, k_x) or one per pattern ({pats.shape[0]}, 2), got shape {c_arr.shape}"
        )
    centers = np.broadcast_to(c_arr, (pats.shape[0], 2))
    step = (
        float(oscillation_deg)
        if oscillation_deg
        else (float(np.median(np.diff(tilts))) if tilts.size > 1 else 1.0)
    )
    cell = cell_from_basis(np.linalg.inv(UB).T)
    hkl = miller_indices_within(cell, d_min)
    forbidden = _centring_forbidden(hkl, centring)
    n_t, n_h = len(tilts), len(hkl)
    inten = np.full((n_t, n_h), np.nan)
    var = np.zeros((n_t, n_h))
    bad = np.zeros((n_t, n_h), bool)
    svals = np.zeros((n_t, n_h))
    excited = np.zeros((n_t, n_h), bool)
    n_overlap = n_sat = 0
    axis = tilt_axis_vector(tilt_axis_deg)
    perp = np.cross([0.0, 0.0, 1.0], axis)  # ẑ × e
    for t_i, tilt in enumerate(tilts):
        check_cancel(cancel)
        pos, s, _ = predict_reflections(
            UB,
            hkl,
            tilt_deg=float(tilt),
            tilt_axis_deg=tilt_axis_deg,
            wavelength=wavelength,
            pixel_size=pixel_size,
            center=tuple(centers[t_i]),
            ellipticity=ellipticity,
        )
        svals[t_i] = s
        exc = np.flatnonzero(np.abs(s) <= excitation_width)
        img = np.asarray(pats[t_i], dtype=np.float64)
        if exc.size:
            p = pos[exc]
            dd = np.hypot(p[:, None, 0] - p[None, :, 0], p[:, None, 1] - p[None, :, 1])
            np.fill_diagonal(dd, np.inf)
            dd[:, forbidden[exc]] = np.inf  # a forbidden neighbour holds no intensity
            overlapped = dd.min(axis=1) < 2 * radius_px
            c_t = centers[t_i]
            for j, hidx in enumerate(exc):
                if beam_radius_px and np.hypot(*(p[j] - c_t)) - radius_px < 0.5 * beam_radius_px:
                    continue  # the disk reaches into the beam
                near = p[dd[j] < r_out + radius_px + 1]
                beam = (c_t, beam_radius_px) if beam_radius_px else None
                I, v, sat, ok = _disk_sum(img, p[j], radius_px, r_in, r_out, saturation, near, beam)
                if not ok:
                    continue
                excited[t_i, hidx] = True
                inten[t_i, hidx], var[t_i, hidx] = I, v
                if overlapped[j]:
                    bad[t_i, hidx] = True
                    n_overlap += 1
                elif sat:
                    bad[t_i, hidx] = True
                    n_sat += 1
        if progress is not None:
            progress(t_i + 1, n_t)
    out_h, out_i, out_s, out_b, out_t = [], [], [], [], []
    n_incomplete = n_axis = n_rejected = 0
    dphi = math.radians(step)
    B_lab = UB
    for hidx in np.flatnonzero(excited.any(axis=0)):
        col = excited[:, hidx]
        idx = np.flatnonzero(col)
        runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
        for run in runs:
            s = svals[run, hidx]
            crossing = bool(np.any(np.sign(s[:-1]) != np.sign(s[1:]))) if len(run) > 1 else False
            k = int(np.argmin(np.abs(s)))
            j = run[k]
            g0 = tilt_rotation(float(tilts[j]), tilt_axis_deg) @ B_lab @ hkl[hidx]
            rate = abs(float(g0 @ perp))  # |ds/dφ| at the crossing
            if not crossing and np.abs(s).min() > 0.5 * rate * dphi:
                n_incomplete += 1
                continue
            if run[0] == 0 or run[-1] == n_t - 1:
                n_incomplete += 1
                continue
            if rate < 0.05 * np.linalg.norm(g0):
                n_axis += 1
                continue
            if bad[run, hidx].any():
                n_rejected += 1
                continue
            if crossing:
                c = np.flatnonzero(np.sign(s[:-1]) != np.sign(s[1:]))[0]
                f = s[c] / (s[c] - s[c + 1])
                t_cross = tilts[run[c]] + f * (tilts[run[c + 1]] - tilts[run[c]])
            else:
                t_cross = tilts[j]
            L_inv = rate * dphi
            out_h.append(hkl[hidx])
            out_i.append(float(inten[run, hidx].sum()) * L_inv)
            out_s.append(math.sqrt(float(var[run, hidx].sum())) * L_inv)
            out_b.append(int(j))
            out_t.append(float(t_cross))
    meta = {
        "n_overlapped_observations": n_overlap,
        "n_saturated_observations": n_sat,
        "n_incomplete_partials": n_incomplete,
        "n_near_axis": n_axis,
        "n_rejected_runs": n_rejected,
        "lorentz": "I = sum(I_tilt) * |g.(z x e)| * dphi",
        "oscillation_deg": step,
    }
    hkl_out = np.array(out_h, dtype=np.int64).reshape(-1, 3)
    return Reflections(
        hkl_out,
        np.array(out_i),
        np.array(out_s),
        cell=cell,
        space_group=space_group,
        batch=np.array(out_b, dtype=np.int64),
        tilt_deg=np.array(out_t),
        wavelength=wavelength,
        meta=meta,
    )
