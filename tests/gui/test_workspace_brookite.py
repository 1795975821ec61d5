"""The brookite sample through the real workspace, as docs/indexing.md and docs/solving.md show it:
the hand-off lands on the tilt the workspace shows and keeps its message; *Solve all grains* in
the Solve tab puts the phase and orientation maps over the real-space canvas."""

from __future__ import annotations

import time

import numpy as np
import pytest
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication

pytestmark = pytest.mark.gui
PLUGIN = "napari-virtual-aperture"


def _wait(cond, timeout=300.0):
    end = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > end:
            raise TimeoutError("no result")
        QApplication.processEvents()
        time.sleep(0.02)


def test_hand_off_and_solve_all_in_the_workspace(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "brookite-tilt-series")
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Workspace")
    c = w.controller
    c.flush(timeout=120)
    c.model.tilt = 40
    row = w.grain_list.labels().index(1)
    w.grain_list.table.selectRow(row)
    actions = w.panels["actions"]
    qtbot.mouseClick(actions.hand_btn, Qt.MouseButton.LeftButton)
    c.jobs.wait(timeout=120)
    QApplication.processEvents()
    assert c.diffraction.dims.current_step[0] == c.model.tilt == 40  # the same tilt in both views
    assert "handed to the Index and Solve tabs" in actions.message.text()  # not "…: done"

    solve = w.panels["solve"]
    solve.comp_edit.setText("TiO2")
    solve.starts_spin.setValue(2)
    box = solve.all_grains
    qtbot.mouseClick(box.run_btn, Qt.MouseButton.LeftButton)
    _wait(lambda: box.result is not None and solve._worker is None)
    assert box.table.rowCount() == len([v for v in np.unique(c.grains.data) if v > 0])
    assert "grains solved" in box.status.text()
    phases = viewer.layers["phases"]  # the real-space viewer, on the grains' geometry
    assert phases.data.shape == c.grains.data.shape[-2:] or phases.data.shape == c.grains.data.shape
    np.testing.assert_allclose(phases.scale[-2:], c.grains.scale[-2:])
    assert "orientations" in viewer.layers
    assert "phases" not in c.diffraction.layers
    assert viewer.layers.selection.active is c.grains  # painting goes on in the grains layer
    w.shutdown()
