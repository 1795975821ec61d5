"""Indexing dock widget: peaks as an editable Points layer, indexing in a worker, overlays."""

import numpy as np
import pytest

from builders import SPOT_TILTS, render_spot_series

CELL = (5.2, 5.5, 9.2, 90, 90, 90)


TILTS = SPOT_TILTS


def render_series(seed=2, tilts=TILTS):
    return render_spot_series(seed, tilts, CELL)


def wait_worker(qtbot, widget, timeout=60_000):
    """Until the widget's job ended (its ``finished`` handler clears ``_worker``); a fast job may
    have finished before a ``waitSignal`` could be connected."""
    qtbot.waitUntil(lambda: widget._worker is None, timeout=timeout)


@pytest.mark.gui
def test_find_edit_index_overlay(make_napari_viewer, qtbot):
    from virtual_aperture._napari._qt.indexing_widget import PEAKS_NAME, PRED_NAME, IndexingWidget

    viewer = make_napari_viewer()
    viewer.add_image(render_series(), name="grain patterns")
    w = IndexingWidget(viewer)
    viewer.window.add_dock_widget(w)
    assert w.source_combo.currentText() == "grain patterns"
    w.pixel_spin.setValue(0.015)
    w.axis_spin.setValue(14.0)
    w.tilts_edit.setText("-30 30 2")
    assert w.find_peaks()
    layer = viewer.layers[PEAKS_NAME]
    n = len(layer.data)
    assert n > 100 and layer.data.shape[1] == 3
    # hand edits: delete a peak, add a (spurious) one; indexing uses the edited layer
    layer.data = np.concatenate([layer.data[1:], [[3, 20.0, 20.0]]])
    edited = w.edited_peaks()
    assert sum(len(p) for p in edited) == n
    worker = w.run_indexing()
    assert worker is not None
    wait_worker(qtbot, w)
    r = w.result
    assert r is not None and r.lattice == "oP"
    assert sorted(r.cell[:3]) == pytest.approx(sorted(CELL[:3]), rel=5e-3)
    assert "oP" in w.report.toPlainText() and "indexed" in w.status.text()
    assert "ellipticity 1.0000" in w.report.toPlainText()
    pred = viewer.layers[PRED_NAME].data
    assert len(pred) > 31 and set(np.unique(pred[:, 0]).astype(int)) <= set(range(31))


@pytest.mark.gui
def test_bad_input_messages(make_napari_viewer, qtbot):
    from virtual_aperture._napari._qt.indexing_widget import IndexingWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).poisson(5.0, (3, 64, 64)).astype(float), name="noise")
    w = IndexingWidget(viewer)
    assert w.run_indexing() is None and "find peaks first" in w.status.text()
    assert not w.find_peaks()  # three patterns need three tilt angles
    assert "tilt angles" in w.status.text()
    w.tilts_edit.setText("0 1 2")
    assert not w.find_peaks()  # no pixel size
    assert "pixel size" in w.status.text()
    w.pixel_spin.setValue(0.02)
    assert w.find_peaks()
    assert w.run_indexing() is not None  # noise: refused with a clear message, no cell
    wait_worker(qtbot, w)
    assert "cannot index" in w.status.text() and w.result is None
    assert w.sum_grain() is None and "navigator" in w.status.text()


@pytest.mark.gui
def test_sum_grain_from_navigator(make_napari_viewer, qtbot):
    import napari

    from virtual_aperture import simulate_agglomerate
    from virtual_aperture._napari._qt.indexing_widget import IndexingWidget
    from virtual_aperture._napari.reader import navigator_layers

    ds, truth = simulate_agglomerate(
        structure="brookite", n_grains=2, scan_shape=(8, 8), detector_shape=(48, 48), tilts=(-2, 2, 2), seed=1
    )
    viewer = make_napari_viewer()
    for data, meta, kind in navigator_layers(ds):
        viewer.add_layer(napari.layers.Layer.create(data, meta, kind))
    viewer.add_labels(truth.labels, name="grains")
    w = IndexingWidget(viewer)
    w.source_combo.setCurrentIndex(0)
    w.grain_spin.setValue(1)
    worker = w.sum_grain()
    assert worker is not None
    wait_worker(qtbot, w)
    layer = viewer.layers["grain 1 patterns"]
    assert layer.data.shape == (3, 48, 48)
    assert w.source_combo.currentText() == "grain 1 patterns"
    assert w.pixel_spin.value() == pytest.approx(ds.calibration.pixel_size)


@pytest.mark.gui
def test_buttons_index_then_cancel(make_napari_viewer, qtbot):
    """The real buttons: Find peaks and Index clicked, then Index again with Cancel clicked at once."""
    from qtpy.QtCore import Qt

    from virtual_aperture._napari._qt.indexing_widget import IndexingWidget

    viewer = make_napari_viewer()
    viewer.add_image(render_series(), name="grain patterns")
    w = IndexingWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.pixel_spin.setValue(0.015)
    w.axis_spin.setValue(14.0)
    w.tilts_edit.setText("-30 30 2")
    assert not w.cancel_btn.isEnabled()
    qtbot.mouseClick(w.find_btn, Qt.MouseButton.LeftButton)
    assert "peaks in 31 pattern(s)" in w.status.text()
    qtbot.mouseClick(w.index_btn, Qt.MouseButton.LeftButton)
    assert w.cancel_btn.isEnabled() and not w.index_btn.isEnabled()
    wait_worker(qtbot, w)
    assert w.result is not None and w.result.lattice == "oP"
    assert w.progress.value() == w.progress.maximum()
    first = w.result
    qtbot.mouseClick(w.index_btn, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(w.cancel_btn, Qt.MouseButton.LeftButton)
    wait_worker(qtbot, w)
    assert w.status.text() == "indexing cancelled"
    assert w.result is first  # the earlier result is kept, not replaced by a partial one
    assert w.index_btn.isEnabled() and not w.cancel_btn.isEnabled()


def _two_crystals():
    """A dominant aP crystal and a weaker mC neighbour in one sum (the independent generator, as
    tests/test_multi_lattice.py): the contaminated aperture the 'lattices' spin box is for."""
    from generators import kinematic as K

    S = K.tilt_series([K.CRYSTALS["aP"], K.CRYSTALS["mC"]], tilts=(-30, 30, 2), seed=3)
    pats = S.patterns[0] / S.patterns[0].max() + 0.5 * S.patterns[1] / S.patterns[1].max()
    return S, np.random.default_rng(0).poisson(pats * 1e4 / pats.max() + 0.5).astype(float)


@pytest.mark.gui
def test_lattices_spin_box_indexes_the_neighbour_too(make_napari_viewer, qtbot):
    """'lattices' set to 3, the real Index button clicked: the dominant lattice is the result and
    the neighbour's lattice is reported apart; set back to 1, one lattice only."""
    from generators import kinematic as K
    from qtpy.QtCore import Qt

    from virtual_aperture._napari._qt.indexing_widget import IndexingWidget

    S, pats = _two_crystals()
    viewer = make_napari_viewer()
    viewer.add_image(pats, name="contaminated sum")
    w = IndexingWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.pixel_spin.setValue(S.pixel_size)
    w.kv_spin.setValue(S.kv)
    w.axis_spin.setValue(S.tilt_axis_deg)
    w.tilts_edit.setText("-30 30 2")
    assert w.lattices_spin.value() == 1  # the default: one lattice, as before
    w.lattices_spin.setValue(3)
    qtbot.mouseClick(w.find_btn, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(w.index_btn, Qt.MouseButton.LeftButton)
    wait_worker(qtbot, w, timeout=120_000)
    r = w.result
    assert r is not None, w.status.text()
    assert len(r.lattices) == 2 and "2 lattices found" in w.status.text()
    assert K.cell_matches(r.UB, S.UB[0], found_centring=r.centring)[0] != "false"
    assert "lattice 2 (not integrated)" in w.report.toPlainText()
    assert not set(r.lattices[0].peaks) & set(r.lattices[1].peaks)
    w.lattices_spin.setValue(1)
    qtbot.mouseClick(w.index_btn, Qt.MouseButton.LeftButton)
    wait_worker(qtbot, w, timeout=120_000)
    assert w.result is not r and len(w.result.lattices) <= 1
    assert "lattices found" not in w.status.text() and "lattice 2" not in w.report.toPlainText()
