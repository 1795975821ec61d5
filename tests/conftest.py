"""Fixtures shared by the whole test suite, and the markers given by folder.

Every test under ``tests/gui/`` is marked ``gui`` (needs napari, Qt and a display); tests that
take more than ~20 s are marked ``slow``. ``make test-fast`` runs ``-m "not slow and not gui"``,
``make test`` (CI) runs everything. Plain builders live in ``builders.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from builders import BROOKITE_SERIES, P212121_CELL, P212121_SITES, make_structure

GUI_DIR = Path(__file__).parent / "gui"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if GUI_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.gui)


@pytest.fixture(scope="session")
def p212121_structure():
    """The 8-atom P 2₁2₁2₁ test structure (``builders.P212121_*``, B = 1 Å²) as gemmi."""
    return make_structure(P212121_CELL, "P 21 21 21", P212121_SITES)


@pytest.fixture(scope="session")
def brookite_series():
    """A small simulated brookite tilt series that the whole chain solves: ``(dataset, truth)``."""
    from virtual_aperture import simulate_agglomerate

    return simulate_agglomerate(**BROOKITE_SERIES)
