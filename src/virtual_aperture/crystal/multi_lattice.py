"""Several lattices in one aperture (a contaminated sum): index the dominant lattice, then search
the peaks it leaves for more, as DIALS does with ``max_lattices``.

:func:`index_lattices` runs :func:`~virtual_aperture.crystal.indexing.index_tilt_series` (with its
validation) on all peaks, then again on the peaks no lattice found so far explains, up to
``max_lattices``. Every lattice found is reported as a :class:`Lattice` (cell, UB, the indices of
the peaks it owns, confidence) in ``result.lattices``, ordered by the number of peaks (order 0 is
the chosen lattice, the one integrated). Peaks of the chosen lattice that another lattice also
explains are flagged in ``result.info["overlapped_peaks"]``. Two lattices explaining about as many
peaks (the second ≥ ``ambiguous_ratio`` of the first) is refused: the aperture holds two crystals
equally and no choice would be honest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

#: a second lattice owning this fraction of the first's peaks (or more) makes the result ambiguous
AMBIGUOUS_RATIO = 0.7

__all__ = ["Lattice", "index_lattices"]


@dataclass(frozen=True)
class Lattice:
    """One lattice found in the peaks. ``peaks`` are indices into ``IndexingResult.peaks``;
    ``hkl`` their Miller indices (conventional cell); ``order`` 0 is the chosen lattice."""

    order: int
    lattice: str
    cell: tuple
    reduced_cell: tuple
    UB: np.ndarray
    peaks: np.ndarray
    hkl: np.ndarray
    confidence: float
    tilt_axis_deg: float

    def to_dict(self) -> dict:
        return {
            "order": self.order,
            "lattice": self.lattice,
            "cell": [round(v, 5) for v in self.cell],
            "reduced_cell": [round(v, 5) for v in self.reduced_cell],
            "UB": np.asarray(self.UB).tolist(),
            "n_peaks": len(self.peaks),
            "peaks": [int(i) for i in self.peaks],
            "confidence": self.confidence,
            "tilt_axis_deg": self.tilt_axis_deg,
        }


def lattice_of(order: int, r, owned: np.ndarray) -> Lattice:
    return Lattice(
        order=order,
        lattice=r.lattice,
        cell=tuple(r.cell),
        reduced_cell=tuple(r.reduced_cell),
        UB=np.asarray(r.UB),
        peaks=owned,
        hkl=np.asarray(r.hkl)[r.indexed],
        confidence=r.confidence,
        tilt_axis_deg=float(r.tilt_axis_deg),
    )


def index_lattices(
    index_one,
    peaks,
    *,
    calibration,
    max_lattices: int = 3,
    min_indexed: float = 0.5,
    min_first: float = 0.25,
    ambiguous_ratio: float = AMBIGUOUS_RATIO,
    **kwargs,
):
    """Index up to ``max_lattices`` lattices; return the chosen lattice's ``IndexingResult`` with
    ``lattices`` filled. ``min_indexed`` applies to all lattices together, ``min_first`` to the
    dominant one alone (each must pass the validation of :mod:`crystal.validation`). ``index_one``
    indexes one lattice (:func:`~virtual_aperture.crystal.indexing.index_tilt_series`, which calls
    this function for ``max_lattices > 1``)."""
    from .miller import _as_peaklist, assign_hkl, peaks_to_reciprocal_space
    from .zoneaxis import IndexingError

    allp, list_centers = _as_peaklist(peaks)
    centers = kwargs.pop("centers", None)
    if centers is None and list_centers:
        n_t = len(calibration.tilt_angles_deg)
        fallback = calibration.center if calibration.center is not None else next(iter(list_centers.values()))
        centers = np.array([list_centers.get(t, fallback) for t in range(n_t)], dtype=float)
    first_min = min_indexed if max_lattices <= 1 else min(min_indexed, min_first)
    first = index_one(
        allp, calibration=calibration, centers=centers, min_indexed=first_min, max_lattices=1, **kwargs
    )
    owned = [np.flatnonzero(first.indexed)]
    found = [first]
    free = ~first.indexed
    while len(found) < max_lattices and free.sum() >= 12:
        sub = allp.select(np.flatnonzero(free))
        try:
            r = index_one(
                sub,
                calibration=calibration,
                centers=centers,
                min_indexed=min_first,
                max_lattices=1,
                **{k: v for k, v in kwargs.items() if k != "known_cell"},
            )
        except IndexingError:
            break
        idx = np.flatnonzero(free)[r.indexed]
        found.append(r)
        owned.append(idx)
        free[idx] = False
    explained = 1.0 - free.mean()
    if len(found) > 1 and len(owned[1]) >= ambiguous_ratio * len(owned[0]):
        raise IndexingError(
            f"cannot index: two lattices explain {len(owned[0])} and {len(owned[1])} of {len(allp)} peaks "
            f"({found[0].lattice} {' '.join(f'{v:.2f}' for v in found[0].cell[:3])} Å and "
            f"{found[1].lattice} "
            f"{' '.join(f'{v:.2f}' for v in found[1].cell[:3])} Å): the aperture holds two crystals about "
            "equally; draw it over one of them"
        )
    if explained < min_indexed:
        raise IndexingError(
            f"cannot index: the lattices found explain only {100 * explained:.0f}% of the "
            "peaks "
            f"(the best one {100 * first.indexed_fraction:.0f}%)"
        )
    lattices = [lattice_of(i, r, o) for i, (r, o) in enumerate(zip(found, owned))]
    # peaks of the chosen lattice that another lattice explains too: overlapping reflections
    overlapped = np.zeros(len(allp), bool)
    for r in found[1:]:
        tilts = np.asarray(calibration.tilt_angles_deg)[allp.tilt]
        pc = np.array([first.info["centers"][int(t)] for t in allp.tilt])
        G = peaks_to_reciprocal_space(allp, r.calibration, pc)
        _, ok, _ = assign_hkl(
            r.UB,
            allp,
            tilts,
            pc,
            r.calibration,
            r.tilt_axis_deg,
            r.info.get("final_tolerance_px", 2.0),
            G,
            allowed=r.centring,
        )
        overlapped |= ok & first.indexed
    info = dict(
        first.info,
        n_lattices=len(lattices),
        overlapped_peaks=np.flatnonzero(overlapped).tolist(),
        explained_fraction=float(explained),
    )
    return replace(first, lattices=lattices, info=info)


def check_single_crystal(index_one, result, peaks, calibration, min_indexed: float, options: dict) -> None:
    """Raise ``IndexingError`` when the peaks one lattice leaves (``result``, indexing less than
    80 %) hold a second lattice about as strong: the peaks it owns plus those it shares with the
    first reach ``AMBIGUOUS_RATIO`` of the first's (two crystals equally in the aperture)."""
    from .zoneaxis import IndexingError

    if result.indexed_fraction >= 0.8 or (~result.indexed).sum() < 12:
        return
    r2 = index_lattices(
        index_one, peaks, calibration=calibration, max_lattices=2, min_indexed=min_indexed, **options
    )
    n = [len(lat.peaks) for lat in r2.lattices] + [len(r2.info["overlapped_peaks"])]
    if len(n) == 3 and n[1] + n[2] >= AMBIGUOUS_RATIO * n[0]:
        raise IndexingError(
            f"cannot index: two lattices explain {n[0]} and {n[1] + n[2]} of {len(result.peaks)} peaks: "
            "the aperture holds two crystals about equally; draw it over one of them"
        )
