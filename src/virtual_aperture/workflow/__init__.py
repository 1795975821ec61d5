"""One grain, end to end: summed patterns → Bragg peaks → indexing → integration → symmetry →
merging → charge flipping → atoms, and the files crystallographers use.

This is what ``virtual-aperture solve`` and ``make demo`` run; every step is also public on its
own (:func:`~virtual_aperture.aperture_sums`, :func:`~virtual_aperture.find_bragg_peaks`,
:func:`~virtual_aperture.index_tilt_series`, :func:`~virtual_aperture.integrate_reflections`,
:func:`~virtual_aperture.merge_reflections`, :func:`~virtual_aperture.solve_structure`).
"""

from .chain import MIN_REFLECTIONS, STAGES, GrainResult, UnindexedGrain, grain_tilts, solve_grain
from .files import GRAIN_FILES, smv_frames, write_grain, write_unindexed

__all__ = [
    "GRAIN_FILES",
    "MIN_REFLECTIONS",
    "STAGES",
    "GrainResult",
    "UnindexedGrain",
    "grain_tilts",
    "smv_frames",
    "solve_grain",
    "write_grain",
    "write_unindexed",
]
