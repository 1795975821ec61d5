"""napari-virtual-aperture: virtual apertures for 4D/5D-STEM, from crowded agglomerates to solved structures.

The library is Qt-free; everything public is importable from here and loaded lazily, so
``import virtual_aperture`` is fast and pulls in neither napari nor Qt (the napari widgets
live in :mod:`virtual_aperture._napari`). ``__init__.pyi`` lists the same names as imports, so
type checkers and IDEs see them (``tests/test_public_api.py`` keeps the two in step).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (relative to this package)
_LAZY: dict[str, str] = {
    # data model
    "Dataset": ".model.dataset",
    "Calibration": ".model.calibration",
    "electron_wavelength": ".model.calibration",
    # io
    "open_dataset": ".io",
    "open_tilt_series": ".io",
    "save_dataset": ".io",
    "can_read": ".io",
    "ReadError": ".io.errors",
    # built-in sample
    "simulate_agglomerate": ".sample",
    "load_structure": ".sample",
    "builtin_structures": ".sample",
    # compute engine
    "virtual_image": ".compute",
    "aperture_sums": ".compute",
    "ApertureSum": ".compute",
    "VirtualImageUpdater": ".compute",
    "detectors": ".compute.detectors",
    "get_client": ".compute",
    "ApertureSumResult": ".compute",
    "pattern_at": ".compute",
    "region_mean": ".compute",
    "CancelToken": ".compute",
    "Cancelled": ".compute",
    # crystallography
    "find_bragg_peaks": ".crystal",
    "index_tilt_series": ".crystal",
    "index_zone_axis": ".crystal",
    "integrate_reflections": ".crystal",
    "merge_reflections": ".crystal",
    "charge_flip": ".crystal",
    "solve_structure": ".crystal",
    "Reflections": ".crystal",
    "simulate_reflections": ".crystal",
    "suggest_laue_class": ".crystal",
    "suggest_space_groups": ".crystal",
    "lattice_centring": ".crystal",
    "IndexingError": ".crystal",
    "match_to_reference": ".crystal",
    "calibrate_descan": ".crystal.calibrate",
    "crystal": ".crystal",
    "grains": ".grains",
    "report": ".report",
    # one grain end to end
    "solve_grain": ".workflow",
    "write_grain": ".workflow",
    "GrainResult": ".workflow",
    "ReportContext": ".report",
    "write_report": ".report",
    # every grain of an acquisition
    "solve_all_grains": ".batch",
    "BatchResult": ".batch",
    "GrainOutcome": ".batch",
    "group_by_cell": ".grains.phases",
    "Phase": ".grains.phases",
    # sessions
    "save_session": ".session",
    "load_session": ".session",
    # crowded agglomerates
    "propose_grains": ".grains",
    "cluster_vectors": ".grains",
    "track_grains": ".grains",
    "grain_coherence": ".grains",
    "neighbour_dissimilarity": ".grains",
    "find_vectors": ".grains",
    "vector_selective_sum": ".grains",
    "estimate_drift": ".grains",
}

# result types of the functions above, from the modules that define them
_LAZY.update(
    {
        "Truth": ".sample.truth",
        "PeakList": ".crystal.peaks",
        "IndexingResult": ".crystal.indexing",
        "ZoneAxisResult": ".crystal.zoneaxis",
        "MergeStats": ".crystal.merge",
        "PhasingResult": ".crystal.phasing",
        "Solution": ".crystal.solve",
        "GrainProposal": ".grains.proposal",
        "Tracks": ".grains.tracking",
        "VectorClusters": ".grains.vectors",
        "Session": ".session",
    }
)

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'virtual_aperture' has no attribute {name!r}")
    mod = importlib.import_module(module, __name__)
    value = mod if name == module.rsplit(".", 1)[-1] and not hasattr(mod, name) else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
