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

# Modules and tests measured above ~20 s (`pytest --durations=0`, 2-core machine shared by
# several jobs, 2026-12-02; setup = the module fixture that simulates and solves the sample):
# test_cli_demo 361 s; test_cli_solve 128 s setup + 87 s; test_workflow 93 s setup;
# test_indexing_sample::test_uio66_face_centred_cubic 32 s. A module listed here has its
# expensive fixture shared by all its tests, so the whole module is slow.
SLOW = {
    "test_cli_demo.py",
    "test_cli_solve.py",
    "test_workflow.py::test_grain_solved_from_its_summed_tilt_series",
    "test_workflow.py::test_grain_files_for_crystallographers",
    "test_workflow.py::test_bad_input_is_refused_clearly",
    "test_indexing_sample.py::test_uio66_face_centred_cubic",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath))
        if GUI_DIR in path.parents:
            item.add_marker(pytest.mark.gui)
        name = item.nodeid.split("/")[-1].split("[")[0]
        if path.name in SLOW or name in SLOW:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def p212121_structure():
    """The 8-atom P 2₁2₁2₁ test structure (``builders.P212121_*``, B = 1 Å²) as gemmi."""
    return make_structure(P212121_CELL, "P 21 21 21", P212121_SITES)


@pytest.fixture(scope="session")
def brookite_series():
    """A small simulated brookite tilt series that the whole chain solves: ``(dataset, truth)``."""
    from virtual_aperture import simulate_agglomerate

    return simulate_agglomerate(**BROOKITE_SERIES)
