"""Crystallography: geometry, Bragg peaks, calibration, indexing, integration, merging, phasing.

Public names are loaded lazily from their modules (see ``_LAZY``), so importing this package
is cheap. Nothing here imports Qt or napari.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "find_bragg_peaks": ".peaks",
    "index_zone_axis": ".indexing",
    "index_tilt_series": ".indexing",
    "integrate_reflections": ".integrate",
    "merge_reflections": ".merge",
    "charge_flip": ".phasing",
    "solve_structure": ".solve",
    "simulate_reflections": ".solve",
    "Reflections": ".reflections",
    "suggest_laue_class": ".symmetry",
    "suggest_space_groups": ".symmetry",
    "lattice_centring": ".symmetry",
    "IndexingError": ".indexing",
    "match_to_reference": ".compare",
    # submodules reachable as attributes (``virtual_aperture.crystal.calibrate.calibrate_descan``)
    "calibrate": ".calibrate",
    "geometry": ".geometry",
    "export": ".export",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    mod = importlib.import_module(module, __name__)
    value = mod if module == f".{name}" and not hasattr(mod, name) else getattr(mod, name)
    globals()[name] = value
    return value
