"""Indexing: unit cell, Bravais lattice and orientation from Bragg peaks of a tilt series.

:func:`index_tilt_series` maps the peaks of every tilt into one 3D reciprocal space
(:func:`crystal.geometry.detector_to_crystal_frame`), finds the lattice with no prior knowledge
(difference-vector search, :mod:`crystal.lattice_search`), Niggli-reduces it (gemmi), lists the
Bravais lattices it fits (:mod:`crystal.lattice`) and refines cell, orientation and tilt axis by
least squares on the detector positions (:mod:`crystal.refine`). :func:`index_zone_axis` handles a
single pattern (see :mod:`crystal.zoneaxis`). Failures raise :class:`IndexingError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..compute.executor import check_cancel
from . import geometry
from .bravais import choose_bravais, family_of_lattice, refine_setting
from .indexing_result import IndexingResult
from .lattice import bravais_candidates, match_cell, niggli_reduce_basis
from .lattice_search import indexed_mask, search_lattice
from .miller import (  # noqa: F401  (peaks_to_reciprocal_space: public here)
    _as_peaklist,
    assign_hkl,
    excitation_spread,
    excitation_weights,
    family_of,
    peaks_to_reciprocal_space,
    read_known_cell,
)
from .multi_lattice import check_single_crystal, index_lattices, lattice_of
from .peaks import PeakList
from .refine import (
    expand_cell_esd,
    predict_positions,
    refine_cell,
    refine_ub,
)
from .validation import reduce_supercell, sublattice_matrices, validate_lattice
from .zoneaxis import IndexingError, ZoneAxisResult, index_zone_axis  # noqa: F401  (public here)

__all__ = [
    "IndexingError",
    "IndexingResult",
    "ZoneAxisResult",
    "index_tilt_series",
    "index_zone_axis",
    "peaks_to_reciprocal_space",
]


def _peak_centers(peaks: PeakList, calibration, centers, list_centers: dict) -> np.ndarray:
    """Beam centre (n, 2) of every peak: ``centers`` given here, else the centre each tilt's
    PeakList was found with, else the calibration's."""
    n_t = len(calibration.tilt_angles_deg)
    if centers is not None:
        c = np.asarray(centers, dtype=float)
        c = np.broadcast_to(c, (n_t, 2)) if c.ndim == 1 else c
        if c.shape != (n_t, 2):
            raise ValueError(f"centers must be (k_y, k_x) or one per tilt ({n_t}, 2), got {c.shape}")
        return c[peaks.tilt]
    fallback = calibration.center
    if fallback is None and all(math.isfinite(v) for v in peaks.center):
        fallback = peaks.center
    out = np.empty((len(peaks), 2))
    for t in np.unique(peaks.tilt):
        c = list_centers.get(int(t), fallback)
        if c is None:
            raise IndexingError("cannot index: no beam centre (set calibration.center or pass centers=)")
        out[peaks.tilt == t] = c
    return out


def index_tilt_series(
    peaks_per_tilt: PeakList | Sequence[PeakList] | Sequence[np.ndarray],
    *,
    calibration,
    d_min: float | None = None,
    known_cell: Sequence[float] | str | None = None,
    centring: str = "P",
    lattice: str | None = None,
    centers: np.ndarray | None = None,
    tolerance: float | None = None,
    tolerance_px: float = 3.0,
    lattice_tolerance_deg: float = 3.0,
    refine_axis: bool = True,
    refine_ellipticity: bool = False,
    min_indexed: float = 0.5,
    validate: bool = True,
    max_lattices: int = 1,
    progress: Callable[[int, int], None] | None = None,
    cancel: Any = None,
) -> IndexingResult:
    """Find the unit cell and orientation of a crystal from the Bragg peaks of a tilt series.

    Parameters
    ----------
    peaks_per_tilt
        One :class:`PeakList` per tilt (or one with a ``tilt`` column, or arrays of (k_y, k_x)).
    calibration
        Tilt angles, tilt axis, beam energy, pixel size (Å⁻¹/px), centre and ellipticity.
    d_min
        Ignore peaks beyond 1/d_min Å⁻¹ (Å) for the lattice search.
    known_cell
        ``(a, b, c, α, β, γ)`` or a CIF path: index in that cell (``centring`` gives its lattice
        centring for numbers; a CIF's space group gives it otherwise) instead of choosing one.
    lattice
        Force a Bravais lattice from the candidates (e.g. ``'mP'``); default: every candidate
        whose metric fits within ``lattice_tolerance_deg`` (Le Page misfit, °) is refined with its
        symmetry constraints and the most symmetric one whose spots fit as well as the triclinic
        refinement's is chosen (:mod:`crystal.bravais`; the table is in
        ``result.info["bravais_settings"]``).
    tolerance
        3D tolerance (Å⁻¹) for the lattice search (default: ``max(0.01, 0.8 · pixel_size)``).
    tolerance_px
        A peak is indexed if its refined prediction lies within this many pixels.
    refine_axis, refine_ellipticity
        Refine the tilt-axis direction (default) / the detector's elliptical distortion (the
        refined values are in ``result.calibration``; use the latter when no ring standard was
        measured — the same reflections seen at many azimuths across the tilts calibrate it).
    min_indexed
        Refuse (IndexingError) when less than this fraction of the peaks can be indexed.
    validate
        Refuse a solution that fails the checks of :mod:`crystal.validation` (chance indexing,
        unobserved low-order reflections, an unsupported long axis, instability over subsets of
        the tilts); the checks and ``confidence`` are reported either way.
    max_lattices
        Search the peaks the dominant lattice leaves for up to this many lattices in all
        (:mod:`crystal.multi_lattice`; a contaminated aperture); every lattice found is in
        ``result.lattices``; two lattices of about equal weight are refused.
    progress
        Called as ``progress(done, total)`` after each of the five stages (any thread).
    cancel
        A :class:`~virtual_aperture.compute.CancelToken` (or anything
        :func:`~virtual_aperture.compute.executor.is_cancelled` accepts): checked between stages;
        :class:`~virtual_aperture.compute.Cancelled` is raised when it is set.

    Returns
    -------
    IndexingResult
        Cell, lattice, ``UB``, Miller indices per peak, residuals and the refined calibration.

    Raises
    ------
    IndexingError
        ``"cannot index: <reason>"`` when there are too few peaks or tilts, or no lattice explains them.
    """
    if isinstance(max_lattices, bool) or not isinstance(max_lattices, (int, np.integer)) or max_lattices < 1:
        raise ValueError(f"max_lattices must be a whole number ≥ 1, got {max_lattices!r}")
    options = dict(
        d_min=d_min, known_cell=known_cell, centring=centring, lattice=lattice, centers=centers,
        tolerance=tolerance, tolerance_px=tolerance_px, lattice_tolerance_deg=lattice_tolerance_deg,
        refine_axis=refine_axis, refine_ellipticity=refine_ellipticity, validate=validate,
        progress=progress, cancel=cancel,
    )  # fmt: skip
    if max_lattices > 1:
        return index_lattices(
            _index_one, peaks_per_tilt, calibration=calibration, max_lattices=max_lattices,
            min_indexed=min_indexed, **options,
        )  # fmt: skip
    result = _index_one(peaks_per_tilt, calibration=calibration, min_indexed=min_indexed, **options)
    if validate:  # a second lattice as strong in the leftover peaks: two crystals, refused
        check_single_crystal(_index_one, result, peaks_per_tilt, calibration, min_indexed, options)
    return result


def _index_one(
    peaks_per_tilt,
    *,
    calibration,
    refine_ellipticity=False,
    progress=None,
    cancel=None,
    max_lattices=1,
    **options,
):
    """One lattice (:func:`index_tilt_series` with ``max_lattices=1``, no neighbour check)."""
    options.setdefault("known_cell", None)  # multi_lattice drops it for the other lattices

    def report(done: int, total: int) -> None:
        check_cancel(cancel)
        if progress is not None:
            progress(done, total)

    report(0, 5)
    result, cal = _index_pass(
        peaks_per_tilt, calibration, refine_ellipticity, report, first_of_two=refine_ellipticity, **options
    )
    if refine_ellipticity:  # again from the start: the lattice chosen on the corrected metric
        result, _ = _index_pass(peaks_per_tilt, cal, True, report, first_of_two=False, **options)
    return result


def _index_pass(
    peaks_per_tilt,
    calibration,
    refine_ellipticity: bool,
    report: Callable[[int, int], None],
    *,
    first_of_two: bool,
    d_min,
    known_cell,
    centring,
    lattice,
    centers,
    tolerance,
    tolerance_px,
    lattice_tolerance_deg,
    refine_axis,
    min_indexed,
    validate,
):
    """One indexing pass (see :func:`index_tilt_series`); returns the result and the calibration
    with the refined tilt axis and ellipticity. ``first_of_two``: stop after the cell refinement
    and return ``(None, calibration)``, where the second pass starts."""
    cal = calibration
    if cal is None or cal.pixel_size is None:
        raise IndexingError("cannot index: the calibration has no pixel size (Å⁻¹/px)")
    if not cal.tilt_angles_deg:
        raise IndexingError("cannot index: the calibration has no tilt angles")
    peaks, list_centers = _as_peaklist(peaks_per_tilt)
    n_t = len(cal.tilt_angles_deg)
    if len(peaks) and (peaks.tilt.min() < 0 or peaks.tilt.max() >= n_t):
        raise IndexingError(
            f"cannot index: peaks refer to tilt {int(peaks.tilt.max())} but only {n_t} tilt angles are given"
        )
    pc = _peak_centers(peaks, cal, centers, list_centers)
    G_all = peaks_to_reciprocal_space(peaks, cal, pc)
    use = np.ones(len(peaks), bool)
    if d_min is not None:
        use &= np.linalg.norm(G_all, axis=1) <= 1.0 / d_min
    tilts_used = np.unique(peaks.tilt[use])
    if use.sum() < 12:
        raise IndexingError(f"cannot index: too few peaks ({int(use.sum())}; need at least 12)")
    if len(tilts_used) < 2:
        raise IndexingError(
            "cannot index: peaks from one tilt only; use index_zone_axis for a single pattern"
        )
    span = np.ptp(np.asarray(cal.tilt_angles_deg)[tilts_used])
    tol = tolerance if tolerance is not None else max(0.01, 0.8 * cal.pixel_size)
    G = G_all[use]
    report(1, 5)
    max_len = min(0.9 * float(np.linalg.norm(G, axis=1).max()), 0.7)
    B, frac, info = search_lattice(G, tolerance=tol, max_length=max_len)
    if B is None:
        raise IndexingError(
            f"cannot index: no lattice found among {len(G)} peaks (no repeated difference vectors: noise?)"
        )
    if frac < min_indexed:
        raise IndexingError(f"cannot index: the best lattice explains only {100 * frac:.0f}% of the peaks")
    B = reduce_supercell(G, B, tol)  # a supercell of a smaller lattice that explains as much loses
    report(2, 5)
    # Niggli-reduce the primitive lattice (direct basis = inverse transpose of the reciprocal one)
    R, _ = niggli_reduce_basis(np.linalg.inv(B).T)
    UB = np.linalg.inv(R).T
    tilts = np.asarray(cal.tilt_angles_deg)[peaks.tilt]
    axis = cal.tilt_axis_deg
    H, ok3 = indexed_mask(G_all, UB, tol)
    s_sigma = None
    sw = excitation_weights(peaks)

    def fit(m, **extra) -> dict:
        """Keyword arguments of refine_ub / refine_cell for the peaks ``m`` (current axis, s σ)."""
        base = dict(
            positions=peaks.positions[m], tilts_deg=tilts[m], tilt_axis_deg=axis, pixel_size=cal.pixel_size,
            centers=pc[m], ellipticity=cal.ellipticity, refine_axis=refine_axis, wavelength=cal.wavelength,
            s_sigma=s_sigma, s_weights=sw[m],
        )  # fmt: skip
        return {**base, **extra}

    tol_i = tolerance_px
    for _ in range(4):
        UB, axis, _res = refine_ub(UB, H[ok3], **fit(ok3))
        H, ok3, res3 = assign_hkl(UB, peaks, tilts, pc, cal, axis, tol_i, G_all)
        s_sigma = excitation_spread(UB, H[ok3], tilts[ok3], axis, cal)
        if ok3.sum() >= 10:  # tighten: peaks of a neighbour lattice must not pull the refinement
            tol_i = min(tolerance_px, max(1.0, 4.0 * float(np.median(res3[ok3])) / 1.1774))
    H, ok3, _ = assign_hkl(UB, peaks, tilts, pc, cal, axis, tolerance_px, G_all)
    # a supercell of a smaller lattice that explains as much loses (indices 2 and 3)
    _, ok1, res1 = assign_hkl(UB, peaks, tilts, pc, cal, axis, tolerance_px, G_all)
    f_tight = float(np.mean(ok1 & (res1 <= 1.0)))
    for M in sublattice_matrices():
        _, ok2, res2 = assign_hkl(UB @ M, peaks, tilts, pc, cal, axis, tolerance_px, G_all)
        if np.mean(ok2 & (res2 <= 1.0)) >= f_tight - 0.03:
            UB = np.linalg.inv(niggli_reduce_basis(np.linalg.inv(UB @ M).T)[0]).T
            info["supercell_reduced"] = int(round(abs(np.linalg.det(M))))
            H, ok3, _ = assign_hkl(UB, peaks, tilts, pc, cal, axis, tolerance_px, G_all)
            for _ in range(2):
                UB, axis, _res = refine_ub(UB, H[ok3], **fit(ok3))
                H, ok3, _ = assign_hkl(UB, peaks, tilts, pc, cal, axis, tolerance_px, G_all)
            break
    report(3, 5)
    direct = np.linalg.inv(UB).T  # lab-frame direct basis of the reduced cell
    reduced_cell = geometry.cell_from_basis(direct)
    cands = bravais_candidates(direct)
    fit_kwargs = fit(ok3, refine_ellipticity=refine_ellipticity)
    # choose the setting: a known cell, a forced lattice, or the most symmetric one that fits
    if known_cell is not None:
        kcell, centring = read_known_cell(known_cell, centring)
        prim = geometry.direct_basis(kcell)
        R_known, _ = niggli_reduce_basis(prim, centring=centring)
        try:
            N_red, _, _, _ = match_cell(
                direct, geometry.cell_from_basis(R_known), max_angle_dev=3.0, max_length_dev=0.05
            )
        except ValueError:
            raise IndexingError(
                f"cannot index: the peaks do not fit the given cell {tuple(kcell)} "
                f"(found reduced cell {tuple(round(v, 3) for v in reduced_cell)})"
            ) from None
        # conventional known basis in terms of its own reduced basis, then of ours
        _, M_known = niggli_reduce_basis(prim, centring=centring)
        R_ours = niggli_reduce_basis(direct)[0]
        conv_direct = R_ours @ N_red @ np.linalg.inv(M_known)
        chosen = family_of(kcell) + centring
        setting = refine_setting(
            chosen, 0.0, geometry.cell_from_basis(conv_direct), conv_direct, UB, H, ok3, fit_kwargs
        )
    elif lattice is not None:
        match = [c for c in cands if c.lattice == lattice]
        if not match:
            raise IndexingError(
                f"cannot index in lattice {lattice!r}: candidates are {[c.lattice for c in cands]}"
            )
        pick = match[0]
        conv_direct = niggli_reduce_basis(direct)[0] @ pick.N
        setting = refine_setting(pick.lattice, pick.score, pick.cell, conv_direct, UB, H, ok3, fit_kwargs)
    else:
        setting, info["bravais_settings"] = choose_bravais(
            cands, direct, UB, H, ok3, fit_kwargs, max_misfit_deg=lattice_tolerance_deg
        )
    chosen = setting.lattice
    family = family_of_lattice(chosen)
    cell, U, axis, _res, esd, ell = setting.refined
    report(4, 5)
    cal = cal.replace(ellipticity=ell)
    if first_of_two:  # the caller starts again on the corrected metric
        return None, cal.replace(tilt_axis_deg=axis)
    Bm = geometry.reciprocal_basis(cell)
    UB_final = U @ Bm
    G_all = peaks_to_reciprocal_space(peaks, cal.replace(tilt_axis_deg=axis), pc)
    hkl, ok, res = assign_hkl(UB_final, peaks, tilts, pc, cal, axis, tolerance_px, G_all, allowed=chosen[1])
    if ok.sum() >= 10:  # final call: within 4 robust σ of the refined predictions (≥ 1 px), |s| plausible
        sigma = float(np.median(res[ok])) / 1.1774  # median of a 2D Rayleigh radius = 1.1774 σ
        tight = min(tolerance_px, max(1.0, 4.0 * sigma))
        _, s_ok = predict_positions(
            UB_final,
            hkl[ok],
            tilts[ok],
            tilt_axis_deg=axis,
            pixel_size=cal.pixel_size,
            centers=pc[ok],
            ellipticity=cal.ellipticity,
            wavelength=cal.wavelength,
        )
        s_lim = 2.0 * float(np.percentile(np.abs(s_ok), 90))  # spots far off the Ewald sphere: not ours
        hkl, ok, res = assign_hkl(
            UB_final, peaks, tilts, pc, cal, axis, tight, G_all, allowed=chosen[1], s_max=s_lim
        )
        info["final_tolerance_px"], info["final_s_max"] = tight, s_lim
        for _ in range(2):  # refine again on the spots that passed: neighbours' spots no longer pull
            cell, U, axis, _res, esd, _ = refine_cell(
                cell, U, family, hkl[ok], **fit(ok, refine_ellipticity=False)
            )
            UB_final = U @ geometry.reciprocal_basis(cell)
            G_all = peaks_to_reciprocal_space(peaks, cal.replace(tilt_axis_deg=axis), pc)
            hkl, ok, res = assign_hkl(
                UB_final, peaks, tilts, pc, cal, axis, tight, G_all, allowed=chosen[1], s_max=s_lim
            )
        Bm = geometry.reciprocal_basis(cell)
    if ok.mean() < min_indexed:
        raise IndexingError(
            f"cannot index: the refined cell explains only {100 * ok.mean():.0f}% of the peaks"
        )
    _, s = predict_positions(
        UB_final,
        hkl[ok],
        tilts[ok],
        tilt_axis_deg=axis,
        pixel_size=cal.pixel_size,
        centers=pc[ok],
        ellipticity=cal.ellipticity,
        wavelength=cal.wavelength,
    )
    rmsd = float(np.sqrt(np.mean(res[ok] ** 2)))
    s_tol = float(np.percentile(np.abs(s), 90) + 1e-4)
    tight = info.get("final_tolerance_px", tolerance_px)
    s_lim = info.get("final_s_max")
    val = validate_lattice(
        UB_final,
        hkl,
        ok,
        peaks,
        G=G_all,
        tilts=tilts,
        centers=pc,
        calibration=cal,
        tilt_axis_deg=axis,
        tolerance_px=tight,
        s_max=s_tol,
        centring=chosen[1],
        assign=lambda M: assign_hkl(
            M, peaks, tilts, pc, cal, axis, tight, G_all, allowed=chosen[1], s_max=s_lim
        ),
        refit=lambda m: refine_ub(UB_final, hkl[m], **fit(m, refine_axis=False))[0],
    )
    info["validation"] = val.to_dict()
    if validate and not val.accepted:
        raise IndexingError(
            f"cannot index: {val.reason} (best cell {chosen} {' '.join(f'{v:.3f}' for v in cell)})"
        )
    report(5, 5)
    import gemmi

    # independent check with gemmi: rotations of the lattice's point group within the same tolerance
    gemmi_tol = max(0.5, 1.05 * setting.misfit_deg + 0.05)  # the chosen lattice's misfit
    lattice_ops = gemmi.find_lattice_symmetry(gemmi.UnitCell(*reduced_cell), "P", gemmi_tol)
    info.update(
        {
            "tilt_span_deg": float(span),
            "search_tolerance": tol,
            "gemmi_lattice_rotations": len(lattice_ops),
            "centers": {int(t): tuple(pc[peaks.tilt == t][0]) for t in np.unique(peaks.tilt)},
        }
    )
    result = IndexingResult(
        cell=tuple(float(v) for v in cell),
        UB=UB_final,
        U=U,
        B=Bm,
        lattice=chosen,
        bravais_candidates=cands,
        tilt_axis_deg=axis,
        indexed_fraction=float(ok.mean()),
        hkl=hkl,
        indexed=ok,
        rmsd_px=rmsd,
        rmsd_inv_A=rmsd * cal.pixel_size,
        peaks=peaks,
        calibration=cal.replace(tilt_axis_deg=axis),
        excitation_tolerance=s_tol,
        confidence=val.confidence,
        cell_esd=expand_cell_esd(esd, family),
        reduced_cell=tuple(float(v) for v in reduced_cell),
        info=info,
    )
    result.lattices = [lattice_of(0, result, np.flatnonzero(ok))]
    return result, result.calibration
