"""Click every button of every tab of the workspace, on 4D and 5D data, without an exception.

File dialogs are answered with paths in a temporary folder, so the buttons that open them run too.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication, QPushButton

pytestmark = pytest.mark.gui


def _settle(w, timeout: float = 300.0) -> None:
    """Process events until no job, runner or worker of the workspace is running (a wait, not a
    speed limit: *Solve all grains* on the 5D sample runs the chain for every grain)."""
    c = w.controller
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        QApplication.processEvents()
        busy = c.jobs.busy or c.sums.busy or c.hover.busy or any(r.busy for r in c.extra_runners())
        busy = busy or any(getattr(p, "_worker", None) is not None for p in w.panels.values())
        busy = busy or getattr(w.panels["solve"].chain, "_worker", None) is not None
        if not busy:
            QApplication.processEvents()
            return
        time.sleep(0.01)
    raise TimeoutError("the workspace did not settle")


def _answer_dialogs(monkeypatch, tmp_path):
    from qtpy.QtWidgets import QFileDialog

    out = tmp_path / "out"
    out.mkdir()
    session = tmp_path / "session.h5"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(out)))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(session), "")))
    monkeypatch.setattr(
        QFileDialog,
        "getOpenFileName",
        staticmethod(lambda *a, **k: (str(session) if session.exists() else "", "")),
    )
    return out


def _tour(w, qtbot) -> list[str]:
    """Click each enabled button of each tab once (tabs in order); returns the buttons clicked."""
    clicked = []
    skip = {"Cancel"}  # clicked separately: it only acts while a job runs
    # napari's own layer list and layer controls of the diffraction viewer (Detectors tab) are
    # napari's widgets, not the workspace's: their colour buttons open modal dialogs
    qtv = w.diffraction.qt_viewer
    napari_parts = [qtv.controls, qtv.layers]
    for i in range(w.tabs.count()):
        w.tabs.setCurrentIndex(i)
        page = w.tabs.widget(i)
        for b in page.findChildren(QPushButton):
            if not b.isVisibleTo(page) or not b.isEnabled() or b.text() in skip:
                continue
            if any(part.isAncestorOf(b) for part in napari_parts):
                continue
            print("click", w.tabs.tabText(i), b.text(), flush=True)
            qtbot.mouseClick(b, Qt.MouseButton.LeftButton)
            _settle(w)
            clicked.append(f"{w.tabs.tabText(i)}: {b.text()}")
    return clicked


def _paint_two_grains(c, tilts: int) -> None:
    g = c.grains
    g.brush_size = 5
    for t in range(max(tilts, 1)):
        g.paint((t, 4, 4) if tilts else (4, 4), 1)
        g.paint((t, 9, 9) if tilts else (9, 9), 2)
    c.flush()
    c.model.selected = 1


@pytest.mark.parametrize("tilts", [0, 3])
def test_every_button_of_every_tab(dataset_factory, open_workspace, qtbot, monkeypatch, tmp_path, tilts):
    _answer_dialogs(monkeypatch, tmp_path)
    ds, arr = dataset_factory(tilts=tilts, scan=(14, 14), det=(16, 16))
    viewer, w = open_workspace(ds)
    c = w.controller
    _paint_two_grains(c, tilts)
    clicked = _tour(w, qtbot)
    names = " | ".join(clicked)
    for expected in (
        "Grains: Merge",
        "Grains: Delete",
        "Grains: Sum all grains",
        "Detectors: Add preset detector",
        "Check: Check selected grain",
        "Index: Find peaks",
        "Solve: Solve grain",
        "Session: Measure descan",
        "Session: Save session…",
        "Propose: Propose grains",
    ):
        assert expected in names, names
    if tilts:
        assert "Tilts: next tilt ▶" in names and "Propose: Track across tilts" in names
    # after the tour the workspace still works: the handed grain reached the Index tab
    assert c.model.handed_grain is not None
    # Cancel with nothing running is harmless; while a job runs it stops it and the bar is not at 100 %
    for b in w.findChildren(QPushButton):
        if b.text() == "Cancel" and b.isEnabled():
            qtbot.mouseClick(b, Qt.MouseButton.LeftButton)
    assert np.asarray(c.grains.data).shape == ((tilts, 14, 14) if tilts else (14, 14))


@pytest.mark.slow
@pytest.mark.parametrize("sample", ["agglomerate-4d", "agglomerate-5d"])
def test_every_button_on_the_builtin_samples(make_napari_viewer, qtbot, monkeypatch, tmp_path, sample):
    """The same tour on the samples a new user opens first (File ▸ Open Sample ▸ Virtual Aperture):
    no exception, and the refusals (e.g. indexing five tilts 10° apart) are messages."""
    _answer_dialogs(monkeypatch, tmp_path)
    viewer = make_napari_viewer()
    viewer.open_sample("napari-virtual-aperture", sample)
    _dock, w = viewer.window.add_plugin_dock_widget("napari-virtual-aperture", "Workspace")
    c = w.controller
    c.flush(timeout=120)
    tilts = c.dataset.n_tilts if c.dataset.is_tilt_series else 0
    _paint_two_grains(c, tilts)
    clicked = _tour(w, qtbot)
    names = " | ".join(clicked)
    for expected in ("Grains: Merge", "Index: Find peaks", "Solve: Solve grain", "Propose: Propose grains"):
        assert expected in names, names
    if tilts:
        assert "Propose: Track across tilts" in names
    assert c.model.handed_grain is not None
    # every layer landed in the space it belongs to: one set of units per canvas (napari warns
    # "Inconsistent units across layers" and drops calibration otherwise)
    for canvas in (viewer, c.diffraction):
        units = canvas.layers.extent.units
        assert units is not None, [(layer.name, layer.units) for layer in canvas.layers]
    # a refusal of "Solve all grains" is a one-line message in the tab, not a traceback
    status = w.panels["solve"].all_grains.status.text()
    assert status and "Traceback" not in status, status
    print("Solve all grains:", status)
    w.shutdown()
