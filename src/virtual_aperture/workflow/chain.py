"""Solving one grain: summed patterns → peaks → indexing → integration → symmetry → merging →
phasing (:func:`solve_grain`, :class:`GrainResult`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MIN_REFLECTIONS", "STAGES", "GrainResult", "UnindexedGrain", "grain_tilts", "solve_grain"]

STAGES = ("sum", "peaks", "index", "integrate", "symmetry", "phase")
#: fewer integrated reflections than this: no phasing; indexing, integration and merging are still results
MIN_REFLECTIONS = 20


@dataclass
class GrainResult:
    """Everything :func:`solve_grain` found for one grain (see :meth:`report`)."""

    grain: int
    tilts: np.ndarray  # indices into the dataset's tilt axis that were used
    tilt_angles_deg: np.ndarray
    patterns: np.ndarray  # (n_tilt, k_y, k_x) summed (normalised) patterns
    positions: np.ndarray  # (n_tilt,) scan positions summed per tilt
    peaks: list
    indexing: Any  # IndexingResult
    reflections: Any  # unmerged Reflections in the chosen space group
    merged: Any
    merge_stats: Any
    space_group: str
    symmetry: dict
    solution: Any  # Solution, or None when phasing could not run (``message`` says why)
    composition: str | None = None
    beam_stop_radius_px: float = 4.0
    timings_s: dict = field(default_factory=dict)
    message: str = ""  # why there is no solution (or the solution's own message)

    @property
    def solved(self) -> bool:
        return self.solution is not None and bool(self.solution.converged)

    @property
    def centers(self) -> np.ndarray:
        """Measured unscattered-beam centre (k_y, k_x) of every pattern."""
        return np.array([p.center for p in self.peaks], dtype=float)

    def report(self) -> dict:
        """Every figure of merit of every stage, JSON-able (what ``report.json`` holds)."""
        idx = self.indexing
        rep = (
            self.solution.report()
            if self.solution is not None
            else {
                "cell": [float(v) for v in idx.cell],
                "space_group": self.space_group,
                "converged": False,
                "message": self.message,
                "r1": None,
                "atoms": [],
                "phasing": None,
            }
        )
        rep.update(
            {
                "grain": int(self.grain),
                "tilts_used": [int(t) for t in self.tilts],
                "tilt_range_deg": [float(self.tilt_angles_deg[0]), float(self.tilt_angles_deg[-1])],
                "scan_positions_per_tilt": [int(n) for n in self.positions],
                "n_peaks": int(sum(len(p) for p in self.peaks)),
                "indexing": {
                    "cell": [float(v) for v in idx.cell],
                    "cell_esd": [float(v) for v in idx.cell_esd],
                    "lattice": idx.lattice,
                    "indexed_fraction": float(idx.indexed_fraction),
                    "rmsd_px": float(idx.rmsd_px),
                    "tilt_axis_deg": float(idx.tilt_axis_deg),
                    "reduced_cell": [float(v) for v in idx.reduced_cell],
                    "bravais_candidates": [
                        {"lattice": c.lattice, "score_deg": float(c.score)} for c in idx.bravais_candidates
                    ],
                },
                "integration": {"n_observations": len(self.reflections), **self.reflections.meta},
                "symmetry": self.symmetry,
                "merging": None if self.merge_stats is None else self.merge_stats.as_dict(),
                "timings_s": {k: round(v, 2) for k, v in self.timings_s.items()},
            }
        )
        return rep

    def summary(self) -> str:
        """A few human-readable lines: cell, space group, merging and the solution."""
        idx, sol = self.indexing, self.solution
        cell = " ".join(f"{v:.4f}" for v in idx.cell[:3]) + " " + " ".join(f"{v:.2f}" for v in idx.cell[3:])
        lines = [
            f"grain {self.grain}: {len(self.tilts)} tilts "
            f"{self.tilt_angles_deg[0]:+.1f}…{self.tilt_angles_deg[-1]:+.1f}°, "
            f"{int(sum(len(p) for p in self.peaks))} peaks, {100 * idx.indexed_fraction:.1f} % indexed "
            f"(rmsd {idx.rmsd_px:.2f} px)",
            f"cell {cell} ({idx.lattice}); space group {self.space_group}",
        ]
        tied = self.symmetry.get("equally_consistent", [])
        if self.symmetry.get("chosen_by") == "suggested" and len(tied) > 1:
            lines.append(
                f"  the absences fit {', '.join(tied)} equally: {self.space_group} is the first; "
                "pass the space group if you know it"
            )
        if self.merge_stats is not None:
            o = self.merge_stats.overall
            lines.append(
                f"reflections {o['n_obs']} → {o['n_unique']} unique to {o['d_min']:.2f} Å, completeness "
                f"{100 * o['completeness']:.1f} %, Rint {o['r_int']:.3f}, CC½ {o['cc_half']:.3f}"
            )
        if sol is None:
            lines.append(f"no solution: {self.message}")
            return "\n".join(lines)
        r1 = "n/a" if sol.r1 is None else f"{sol.r1:.3f}"
        state = "solved" if sol.converged else "no solution"
        text = sol.message if sol.message.startswith(state) else f"{state}: {sol.message}"
        lines.append(text if "R1" in text else f"{text} (R1 {r1})")
        for a in sol.atoms:
            lines.append(
                f"  {a.label:<6} {a.element:<2} {a.x:8.4f} {a.y:8.4f} {a.z:8.4f}  height {a.height:.2f}"
            )
        return "\n".join(lines)


class UnindexedGrain(ValueError):
    """``solve_grain`` refused to index (the message is the ``cannot index: <reason>``); carries the
    peaks and summed patterns found before the refusal (:func:`write_unindexed` writes them)."""

    def __init__(
        self, message: str, *, grain: int, peaks, patterns, tilt_angles_deg, pixel_size: float
    ) -> None:
        super().__init__(message)
        self.grain, self.peaks, self.patterns, self.tilt_angles_deg = grain, peaks, patterns, tilt_angles_deg
        self.pixel_size = pixel_size


def grain_tilts(
    labels: np.ndarray, grain: int, n_tilts: int, *, min_positions: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """The longest run of consecutive tilts on which ``grain`` covers ≥ ``min_positions`` scan
    positions, and the positions per tilt of that run."""
    lab = np.asarray(labels)
    per_tilt = (lab == grain).sum(axis=(-2, -1))
    counts = np.broadcast_to(per_tilt, (n_tilts,)) if lab.ndim == 2 else per_tilt
    present = counts >= min_positions
    best, start = (0, 0), None
    for i, ok in enumerate([*present, False]):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    run = np.arange(*best)
    return run, np.asarray(counts)[run]


def _check_inputs(dataset, labels, grain: int) -> np.ndarray:
    from ..model.dataset import Dataset

    if not isinstance(dataset, Dataset):
        raise ValueError(f"dataset must be a virtual_aperture.Dataset, got {type(dataset).__name__}")
    if not dataset.is_tilt_series:
        raise ValueError("solving needs a tilt series (5D dataset); for one pattern use index_zone_axis")
    cal = dataset.calibration
    if cal.pixel_size is None:
        raise ValueError("the dataset's calibration has no detector pixel size (Å⁻¹/px): calibrate it first")
    lab = np.asarray(labels)
    if lab.dtype.kind not in "iub":
        raise ValueError(f"labels must be integers, got dtype {lab.dtype}")
    scan = tuple(dataset.scan_shape)
    if lab.shape not in (scan, (dataset.n_tilts, *scan)):
        raise ValueError(f"labels have shape {lab.shape}; expected {scan} or {(dataset.n_tilts, *scan)}")
    if not isinstance(grain, (int, np.integer)) or grain <= 0:
        raise ValueError(f"grain must be a positive label, got {grain!r}")
    if not np.any(lab == grain):
        present = sorted(int(v) for v in np.unique(lab) if v > 0)
        raise ValueError(f"grain {grain} is not in the labels (labels present: {present[:20]})")
    return lab


def solve_grain(
    dataset,
    labels: np.ndarray,
    grain: int,
    *,
    composition: str | None = None,
    space_group: str | None = None,
    known_cell: Sequence[float] | str | None = None,
    d_min: float | None = None,
    min_positions: int = 3,
    normalise: bool = True,
    peak_threshold: float = 6.0,
    max_lattices: int = 1,
    starts: int = 4,
    seed: int | None = 0,
    client: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
    cancel: Any = None,
) -> GrainResult:
    """Solve the structure of one grain of a tilt series.

    Parameters
    ----------
    dataset
        A 5D :class:`~virtual_aperture.Dataset` with tilt angles, beam energy and pixel size. A
        descan fit stored by :func:`crystal.calibrate.calibrate_descan` is applied to the sums.
    labels, grain
        Grain labels over the scan, ``(sy, sx)`` or one image per tilt ``(n_tilt, sy, sx)`` (e.g.
        from :func:`~virtual_aperture.propose_grains` with ``track=True``), and the label to solve.
    composition
        Cell contents or formula unit (e.g. ``"TiO2"``): elements go to potential peaks by height.
    space_group
        Hermann–Mauguin symbol in the setting of the indexed cell; default: the best suggestion
        from merging statistics and systematic absences.
    known_cell
        Index in this cell (``(a, b, c, α, β, γ)`` or a CIF path) instead of searching for one.
    d_min
        Resolution limit (Å) of integration; default: the highest resolution of the indexed peaks.
    min_positions
        Tilts where the grain covers fewer scan positions are left out; the longest consecutive
        run of the remaining tilts is used (integration needs neighbouring tilts).
    normalise
        Scale each tilt's sum to the median number of positions (the aperture area changes
        between tilts; the illuminated volume should not change the intensities).
    peak_threshold
        Signal-to-noise threshold of :func:`~virtual_aperture.find_bragg_peaks`.
    max_lattices
        Search the peaks the dominant lattice leaves for up to this many lattices in all (a
        contaminated aperture; ``max_lattices`` of :func:`~virtual_aperture.index_tilt_series`).
        The dominant lattice is integrated and phased; every lattice is in the indexing result.
    starts, seed, client
        Charge-flipping random starts, seed, and an optional dask.distributed client (also used
        for the sums).
    progress
        ``progress(stage, done, total)`` with ``stage`` one of :data:`STAGES`.
    cancel
        A token with ``.cancelled``; checked between and inside stages.

    Returns
    -------
    GrainResult
        Every stage's result (sums, peaks, indexing, reflections, merging statistics, solution) and
        ``solved``; write its files with :func:`write_grain`.

    Raises
    ------
    ValueError
        Bad input (not a tilt series, labels of the wrong shape, grain absent or on too few tilts,
        no pixel size); :class:`~virtual_aperture.crystal.indexing.IndexingError` (a ValueError)
        when the peaks cannot be indexed. An unsolved structure is *not* an error: the result has
        ``solved == False`` and the solution's message says why.
    """
    from ..compute import aperture_sums
    from ..compute.detectors import measure_central_disk
    from ..compute.executor import check_cancel
    from ..crystal.descan import descan_shifts
    from ..crystal.indexing import IndexingError, index_tilt_series
    from ..crystal.integrate import integrate_reflections
    from ..crystal.merge import merge_reflections
    from ..crystal.peaks import find_bragg_peaks
    from ..crystal.reflections import check_cell_matches_space_group
    from ..crystal.solve import solve_structure
    from ..crystal.symmetry import suggest_laue_class, suggest_space_groups

    lab = _check_inputs(dataset, labels, grain)
    cal = dataset.calibration
    if composition is not None:
        from ..crystal.atoms import parse_formula

        parse_formula(composition)  # a clear error now, not after the long run
    tilts, positions = grain_tilts(lab, grain, dataset.n_tilts, min_positions=min_positions)
    if len(tilts) < 5:
        raise ValueError(
            f"grain {grain} covers ≥ {min_positions} scan positions on only {len(tilts)} consecutive "
            "tilts; integration needs at least 5"
        )

    def stage(name):
        return (lambda d, t: progress(name, d, t)) if progress is not None else None

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    one = np.where(lab == grain, 1, 0).astype(np.int32)
    if one.ndim == 3:
        one[np.setdiff1d(np.arange(dataset.n_tilts), tilts)] = 0
    sums = aperture_sums(
        dataset,
        one,
        shifts=descan_shifts(cal, dataset.scan_shape),
        client=client,
        progress=stage("sum"),
        cancel=cancel,
    )[1]
    pats = np.asarray(sums.sum)[tilts]  # (n_tilt, k_y, k_x): the dataset is a tilt series
    if normalise:
        pats = pats * (float(np.median(positions)) / positions)[:, None, None]
    angles = np.asarray(cal.tilt_angles_deg, dtype=float)[tilts]
    sub_cal = cal.replace(tilt_angles_deg=tuple(float(a) for a in angles))
    timings["sum"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    check_cancel(cancel)
    _, disk_r = measure_central_disk(pats[len(pats) // 2])
    exclude = max(4.0, 2.0 * disk_r)
    peaks = find_bragg_peaks(
        pats,
        calibration=sub_cal,
        exclude_center_radius=exclude,
        threshold=peak_threshold,
        center="beam",
        progress=stage("peaks"),
        cancel=cancel,
    )
    timings["peaks"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    try:
        idx = index_tilt_series(
            peaks,
            calibration=sub_cal,
            known_cell=known_cell,
            max_lattices=max_lattices,
            progress=stage("index"),
        )
    except IndexingError as exc:  # keep what was found: the peaks and the patterns are results too
        raise UnindexedGrain(
            str(exc),
            grain=int(grain),
            peaks=peaks,
            patterns=pats,
            tilt_angles_deg=angles,
            pixel_size=sub_cal.pixel_size,
        ) from None
    timings["index"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ical = idx.calibration
    if d_min is None:
        g = np.hypot(*(idx.peaks.positions - np.array([p.center for p in peaks])[idx.peaks.tilt]).T)
        d_min = float(1.0 / (np.percentile(g[idx.indexed], 99) * ical.pixel_size))
    radius = max(2.5, disk_r + 1.5)
    refl = integrate_reflections(
        pats,
        UB=idx.UB,
        tilt_angles_deg=angles,
        tilt_axis_deg=idx.tilt_axis_deg,
        wavelength=ical.wavelength,
        pixel_size=ical.pixel_size,
        center=np.array([p.center for p in peaks], dtype=float),
        ellipticity=ical.ellipticity,
        d_min=d_min,
        radius_px=radius,
        background_annulus=(radius + 2, radius + 4),
        excitation_width=0.01,
        centring=idx.centring,
        beam_radius_px=2 * exclude,
        progress=stage("integrate"),
        cancel=cancel,
    )
    timings["integrate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    check_cancel(cancel)
    merged = stats = sol = None
    symmetry: dict = {}
    message = ""
    if len(refl) < MIN_REFLECTIONS:
        message = f"too few reflections to phase ({len(refl)}; need at least {MIN_REFLECTIONS})"
        if space_group is not None:
            check_cell_matches_space_group(idx.cell, space_group)
        space_group = space_group or "P 1"
        chosen_by = "user" if space_group != "P 1" else "fallback (too few reflections for a suggestion)"
        symmetry = {"chosen_by": chosen_by}
    else:
        laue, laue_table = suggest_laue_class(refl)
        candidates = suggest_space_groups(refl, laue=laue)
        if space_group is None:
            consistent = [c for c in candidates if c["consistent"]]
            space_group = (consistent or candidates or [{"space_group": "P 1"}])[0]["space_group"]
            chosen_by = "suggested"
        else:
            check_cell_matches_space_group(idx.cell, space_group)
            chosen_by = "user"
        symmetry = {"laue": laue, "laue_table": laue_table, "candidates": candidates, "chosen_by": chosen_by}
        top = next((c for c in candidates if c["consistent"]), None)
        if top is not None:  # groups the absences cannot tell apart (e.g. F432, F-43m, Fm-3m)
            tied: dict[int, str] = {}
            for c in candidates:
                if c["consistent"] and c["n_absent"] == top["n_absent"]:
                    tied.setdefault(c["number"], c["space_group"])
            symmetry["equally_consistent"] = list(tied.values())
    refl = refl.replace(space_group=space_group)
    if len(refl):
        merged, stats = merge_reflections(refl)
        space_group = merged.space_group
    timings["symmetry"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if not message:
        try:
            sol = solve_structure(
                merged,
                composition=composition,
                starts=starts,
                seed=seed,
                client=client,
                progress=stage("phase"),
                cancel=cancel,
            )
        except ValueError as exc:  # phasing cannot run: the partial result is still a result
            message = str(exc)
    timings["phase"] = time.perf_counter() - t0
    return GrainResult(
        grain=int(grain),
        tilts=tilts,
        tilt_angles_deg=angles,
        patterns=pats,
        positions=positions,
        peaks=peaks,
        indexing=idx,
        reflections=refl,
        merged=merged,
        merge_stats=stats,
        space_group=space_group,
        symmetry=symmetry,
        solution=sol,
        composition=composition,
        beam_stop_radius_px=exclude,
        timings_s=timings,
        message=message or sol.message,
    )
