"""Choose the Bravais lattice by refining every candidate setting (as DIALS ``refine_bravais_settings``).

A metric misfit alone cannot decide: a coarse (±30°) or contaminated tilt series gives an
unconstrained cell that misses cubic by 1–3°, while a pseudo-symmetric cell can fit a higher
lattice within a fraction of a degree. So every candidate of :func:`crystal.lattice.bravais_candidates`
within ``max_misfit_deg`` is refined with its symmetry constraints on the same indexed spots
(:func:`crystal.refine.refine_cell`) and compared with the triclinic refinement: the most
symmetric lattice whose spots fit about as well (median residual ≤ ``rmsd_ratio`` × the
triclinic one + ``rmsd_margin_px``) is chosen. A lattice of higher symmetry that the positions
reject (a pseudo-symmetric metric) loses because its constrained predictions miss the spots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import geometry
from .lattice import SYMMETRY_ORDER, BravaisCandidate, niggli_reduce_basis
from .refine import nearest_rotation, refine_cell, symmetrize_cell

#: median residual of a candidate may exceed the triclinic one by this factor …
RMSD_RATIO = 1.3
#: … plus this many pixels (noiseless simulated spots fit to ~0.05 px, noisy ones to ~0.1–0.4 px)
RMSD_MARGIN_PX = 0.05


@dataclass
class RefinedSetting:
    """One Bravais setting refined on the indexed spots."""

    lattice: str
    misfit_deg: float
    conv_direct: np.ndarray  # conventional direct basis (columns) from the unconstrained fit
    hkl: np.ndarray  # conventional indices of every peak
    refined: tuple  # refine_cell's (cell, U, axis, residuals, esd, ellipticity)
    median_px: float

    def to_dict(self, ref_px: float) -> dict[str, Any]:
        return {
            "lattice": self.lattice,
            "misfit_deg": round(self.misfit_deg, 3),
            "cell": [round(v, 4) for v in self.refined[0]],
            "median_residual_px": round(self.median_px, 4),
            "ratio_to_triclinic": round(self.median_px / max(ref_px, 1e-9), 3),
        }


def family_of_lattice(lattice: str) -> str:
    """Crystal family letter for :func:`refine_cell` (``hR`` is refined in the hexagonal setting)."""
    return lattice[0] if lattice != "hR" else "h"


def refine_setting(lattice, misfit, cell, conv_direct, UB, H, ok, fit_kwargs) -> RefinedSetting:
    """Refine one conventional setting (``conv_direct``, measured ``cell``) on the spots ``ok``."""
    UB_conv = np.linalg.inv(conv_direct).T
    hkl_conv = np.rint(H @ (np.linalg.inv(UB_conv) @ UB).T).astype(int)
    family = family_of_lattice(lattice)
    U0 = nearest_rotation(UB_conv @ np.linalg.inv(geometry.reciprocal_basis(symmetrize_cell(cell, family))))
    out = refine_cell(cell, U0, family, hkl_conv[ok], **fit_kwargs)
    med = float(np.median(np.hypot(*out[3].T))) if len(out[3]) else math.inf
    return RefinedSetting(lattice, float(misfit), conv_direct, hkl_conv, out, med)


def choose_bravais(
    candidates: list[BravaisCandidate],
    direct: np.ndarray,
    UB: np.ndarray,
    H: np.ndarray,
    ok: np.ndarray,
    fit_kwargs: dict,
    *,
    max_misfit_deg: float,
    rmsd_ratio: float = RMSD_RATIO,
    rmsd_margin_px: float = RMSD_MARGIN_PX,
) -> tuple[RefinedSetting, list[dict]]:
    """Refine every candidate within ``max_misfit_deg`` and pick the most symmetric one that fits.

    Parameters
    ----------
    candidates
        From :func:`~virtual_aperture.crystal.lattice.bravais_candidates` (``aP`` last).
    direct
        Lab-frame direct basis (columns) of the reduced cell; ``UB`` its reciprocal basis.
    H, ok
        Reduced-cell Miller indices of every peak and which peaks are indexed.
    fit_kwargs
        Keyword arguments of :func:`~virtual_aperture.crystal.refine.refine_cell` after ``hkl``
        (positions, tilts and calibration of the indexed peaks).
    max_misfit_deg
        Candidates whose metric misfit exceeds this are not refined.
    rmsd_ratio, rmsd_margin_px
        A candidate is accepted when its median spot residual is at most
        ``rmsd_ratio`` × the triclinic one + ``rmsd_margin_px``.

    Returns
    -------
    tuple
        The chosen :class:`RefinedSetting` and one dict per refined candidate (for the report).
    """
    R = niggli_reduce_basis(direct)[0]
    tri = next(c for c in candidates if c.lattice == "aP")
    ref = refine_setting("aP", 0.0, tri.cell, R @ tri.N, UB, H, ok, fit_kwargs)
    table = []
    chosen = ref
    others = sorted(
        (c for c in candidates if c.lattice != "aP" and c.score <= max_misfit_deg),
        key=lambda c: (-SYMMETRY_ORDER[c.lattice], c.score),
    )
    limit = rmsd_ratio * ref.median_px + rmsd_margin_px
    for c in others:
        try:
            s = refine_setting(c.lattice, c.score, c.cell, R @ c.N, UB, H, ok, fit_kwargs)
        except (ValueError, np.linalg.LinAlgError):
            continue
        row = s.to_dict(ref.median_px)
        row["accepted"] = bool(s.median_px <= limit)
        table.append(row)
        if row["accepted"] and chosen is ref:
            chosen = s
    table.append({**ref.to_dict(ref.median_px), "accepted": True})
    return chosen, table
