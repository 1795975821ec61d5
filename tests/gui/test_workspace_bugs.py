"""Regression tests of issue 14's bug list, each clicking the real widget."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

pytestmark = pytest.mark.gui


def _select_rows(table, rows):
    from qtpy.QtCore import QItemSelectionModel

    sm = table.selectionModel()
    sm.clearSelection()
    for r in rows:
        sm.select(
            table.model().index(r, 0),
            QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows,
        )


def test_merge_and_delete_buttons_work(dataset_factory, open_workspace, qtbot, recwarn):
    ds, arr = dataset_factory()
    viewer, w = open_workspace(ds)
    c, gl = w.controller, w.grain_list
    g = c.grains
    g.paint((3, 3), 1)
    g.paint((10, 10), 2)
    g.paint((13, 16), 3)
    c.flush()
    gl.refresh()
    _select_rows(gl.table, [0, 1])
    qtbot.mouseClick(gl.merge_btn, Qt.MouseButton.LeftButton)
    c.flush()
    assert set(np.unique(g.data)) == {0, 1, 3}
    gl.refresh()
    _select_rows(gl.table, [gl.labels().index(3)])
    qtbot.mouseClick(gl.delete_btn, Qt.MouseButton.LeftButton)
    c.flush()
    assert set(np.unique(g.data)) == {0, 1}
    assert 3 not in c.model.grain_names
    assert not [r for r in recwarn if "no signature found" in str(r.message)]  # the QTimer warning


def test_shift_n_selects_one_row_and_says_so(dataset_factory, open_workspace, qtbot):
    ds, _ = dataset_factory()
    viewer, w = open_workspace(ds)
    gl = w.grain_list
    assert "Shift+N" in gl.new_btn.toolTip()
    for _ in range(3):
        qtbot.mouseClick(gl.new_btn, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier)
        w.controller.flush()
        gl.refresh()
    assert len(gl.selected_labels()) == 1 and gl.selected_labels()[0] == w.model.selected


def test_apply_preset_without_data_is_a_message(make_napari_viewer, qtbot):
    from virtual_aperture._napari._qt.workspace import WorkspaceWidget

    viewer = make_napari_viewer()
    w = WorkspaceWidget(viewer)
    try:
        det = w.panels["detectors"]
        for b in (det.apply_btn, det.replace_btn, det.new_btn, det.delete_btn):
            qtbot.mouseClick(b, Qt.MouseButton.LeftButton)
        assert "open a dataset" in det.message.text()
    finally:
        w.shutdown()


def test_tilt_series_opens_in_step_with_the_slider(dataset_factory, open_workspace):
    ds, arr = dataset_factory(tilts=5, scan=(12, 12), det=(8, 8))
    viewer, w = open_workspace(ds)
    c = w.controller
    shown = viewer.dims.current_step[0]
    assert c.model.tilt == shown  # napari opens on the middle tilt; the workspace works on it
    g = c.grains
    g.selected_label = 1
    g.paint((shown, 5, 5), 1)
    c.flush()
    mask = g.data[shown] == 1
    np.testing.assert_array_equal(c.grain_sum, arr[shown][mask].astype(np.float64).sum(axis=0))
    # one numbering (from 1) in the status line, the tilt tab and the diffraction title
    text = f"tilt {shown + 1}/5"
    assert text in w.status.text()
    assert text in w.panels["tilts"].info.text()
    assert text in c.cursor_layer.metadata["title"]


def test_detectors_overlap_and_their_images_are_visible(dataset_factory, open_workspace, qtbot):
    ds, arr = dataset_factory(det=(16, 16))
    viewer, w = open_workspace(ds)
    c, det = w.controller, w.panels["detectors"]
    c.flush()
    n0 = len(det.names)
    det.preset.setCurrentText("ring")
    det.inner.setValue(2.0)
    det.outer.setValue(5.0)
    qtbot.mouseClick(det.apply_btn, Qt.MouseButton.LeftButton)
    det.preset.setCurrentText("bright field")
    det.outer.setValue(3.0)
    qtbot.mouseClick(det.apply_btn, Qt.MouseButton.LeftButton)
    c.flush()
    assert len(det.names) == n0 + 2
    ring, bf = sorted(det.names)[-2:]
    both = det.mask(ring) & det.mask(bf)
    assert both.any()  # they overlap, neither erased the other
    for k in (ring, bf):
        ref = (arr.astype(np.float64) * det.mask(k)).sum(axis=(-2, -1))
        np.testing.assert_allclose(det.vi_image(k), ref, rtol=1e-6)
        assert det.vi_layers[k].visible
    assert "Å⁻¹" in det.radii_info.text() and "mrad" in det.radii_info.text()
    # delete one: its virtual image goes with it, the other stays
    det.list.setCurrentRow(sorted(det.names).index(bf))
    qtbot.mouseClick(det.delete_btn, Qt.MouseButton.LeftButton)
    assert bf not in det.names and ring in det.names
    assert not any(lyr.name == "VI: bright field" and lyr is det.vi_layers.get(bf) for lyr in viewer.layers)


def test_rename_reaches_the_writer(dataset_factory, open_workspace, tmp_path):
    from virtual_aperture._napari.writer import read_grain_names

    ds, _ = dataset_factory()
    viewer, w = open_workspace(ds)
    c, gl = w.controller, w.grain_list
    c.grains.paint((3, 3), 1)
    c.flush()
    gl.refresh()
    gl.table.item(0, 1).setText("anatase")
    from virtual_aperture._napari.writer import write_grains

    out = write_grains(str(tmp_path / "g.tif"), c.grains.data, {"metadata": c.grains.metadata})
    assert read_grain_names(out[0]) == {1: "anatase"}


def test_check_keeps_the_grains_layer_active(dataset_factory, open_workspace, qtbot):
    ds, _ = dataset_factory()
    viewer, w = open_workspace(ds)
    c, ck = w.controller, w.panels["check"]
    c.grains.brush_size = 5
    c.grains.paint((5, 5), 1)
    c.flush()
    c.model.selected = 1
    qtbot.mouseClick(ck.check_btn, Qt.MouseButton.LeftButton)
    c.jobs.wait()
    qtbot.mouseClick(ck.dissim_btn, Qt.MouseButton.LeftButton)
    c.jobs.wait()
    assert viewer.layers.selection.active is c.grains
    assert "coherence" in ck.result.text()


def test_local_scheduler_started_once_and_closed(dataset_factory, open_workspace, monkeypatch):
    import virtual_aperture.compute as compute

    made = []

    class FakeClient:
        status = "running"

        def close(self):
            self.status = "closed"

    def fake_get_client(address):
        made.append(address)
        return FakeClient()

    monkeypatch.setattr(compute, "get_client", fake_get_client)
    ds, _ = dataset_factory()
    viewer, w = open_workspace(ds)
    m = w.model
    m.scheduler_address = "local"
    a, b = m.client(), m.client()
    assert a is b and made == ["local"]
    w.shutdown()
    assert a.status == "closed"


def test_reopened_store_shows_its_file_name_and_autosaves_beside_it(dataset_factory, tmp_path):
    from virtual_aperture._napari._qt.session_panel import autosave_path
    from virtual_aperture._napari.reader import get_reader
    from virtual_aperture.io import save_dataset

    ds, _ = dataset_factory()
    ds = type(ds)(ds.data, ds.calibration, source="simulate_agglomerate(seed=0)")
    path = tmp_path / "scan.va"
    save_dataset(ds, path)
    ((data, meta, kind),) = get_reader(str(path))(str(path))
    opened = meta["metadata"]["virtual_aperture"]["dataset"]
    assert meta["name"].startswith("scan.va")
    assert opened.metadata["original_source"] == "simulate_agglomerate(seed=0)"
    assert autosave_path(opened).parent == tmp_path
