"""Grains dock: propose into a 'grains' Labels layer, dissimilarity, checks, vectors, tracking."""

from __future__ import annotations

import napari
import numpy as np
import pytest

from virtual_aperture._napari.reader import navigator_layers
from virtual_aperture.model import Dataset
from virtual_aperture.sample import simulate_agglomerate


def _viewer_with(make_napari_viewer, ds):
    viewer = make_napari_viewer()
    for data, meta, kind in navigator_layers(ds, name="sample"):
        viewer.add_layer(napari.layers.Layer.create(data, meta, kind))
    return viewer


def _wait(qtbot, w, worker, timeout=90000):
    """Wait until the widget's job has finished (its finished callback clears ``_worker``)."""
    assert worker is not None
    qtbot.waitUntil(lambda: w._worker is None, timeout=timeout)


@pytest.fixture(scope="module")
def sample4d():
    ds, tr = simulate_agglomerate(n_grains=4, scan_shape=(32, 32), detector_shape=(64, 64), seed=3, dose=1e5)
    return Dataset(ds.data.compute(), ds.calibration), tr


def test_propose_check_dissimilarity_vectors(make_napari_viewer, qtbot, sample4d):
    from virtual_aperture._napari._qt.grains_widget import GrainsWidget

    ds, tr = sample4d
    viewer = _viewer_with(make_napari_viewer, ds)
    w = GrainsWidget(viewer)
    qtbot.addWidget(w)
    assert w.dataset_combo.currentText() == "sample · total intensity" and w.dataset() is ds
    w.min_size.setValue(10)
    _wait(qtbot, w, w.propose())
    assert "grains" in viewer.layers
    labels = viewer.layers["grains"].data
    assert labels.shape == (32, 32) and labels.max() >= 3
    assert (tr.labels[labels > 0] > 0).mean() > 0.9
    assert w.table.rowCount() == w.proposal.n_grains
    assert w.progress.maximum() > 1  # the job reported its progress
    # boundary check of the selected grain
    viewer.layers["grains"].selected_label = 1
    _wait(qtbot, w, w.check_selected())
    assert "coherence" in w.status.text()
    # dissimilarity layer
    _wait(qtbot, w, w.dissimilarity())
    assert viewer.layers["neighbour dissimilarity"].data.shape == (32, 32)
    # vectors: crystals layer + selective sum
    _wait(qtbot, w, w.separate())
    assert len(w.clusters) >= 3 and "crystals (vectors)" in viewer.layers
    viewer.layers["crystals (vectors)"].selected_label = 1
    _wait(qtbot, w, w.sum_selected_crystal())
    assert viewer.layers[-1].name == "crystal 1 pattern (log)" and viewer.layers[-1].data.shape == (64, 64)


def test_cancel_and_no_dataset(make_napari_viewer, qtbot, sample4d):
    from virtual_aperture._napari._qt.grains_widget import GrainsWidget

    viewer = make_napari_viewer()
    w = GrainsWidget(viewer)
    qtbot.addWidget(w)
    assert w.propose() is None and "open a 4D/5D dataset" in w.status.text()
    ds, _ = sample4d
    for data, meta, kind in navigator_layers(ds, name="sample"):
        viewer.add_layer(napari.layers.Layer.create(data, meta, kind))
    assert w.dataset() is ds
    w.cancel()  # cancelled before the first chunk: the job stops at its first check
    worker = w.propose()
    _wait(qtbot, w, worker)
    assert "cancel" in w.status.text() and "grains" not in viewer.layers


def test_tilt_series_propose_and_track(make_napari_viewer, qtbot):
    from virtual_aperture._napari._qt.grains_widget import GrainsWidget

    ds, tr = simulate_agglomerate(
        n_grains=3, scan_shape=(24, 24), detector_shape=(64, 64), tilts=(-2, 2, 2), seed=4, dose=3e4
    )
    ds = Dataset(ds.data.compute(), ds.calibration)
    viewer = _viewer_with(make_napari_viewer, ds)
    w = GrainsWidget(viewer)
    qtbot.addWidget(w)
    w.min_size.setValue(8)
    _wait(qtbot, w, w.propose())
    labels = viewer.layers["grains"].data
    assert labels.shape == (3, 24, 24)
    shuffled = labels.copy()
    shuffled[1][labels[1] > 0] = labels[1][labels[1] > 0] + 10  # break the ids on one tilt
    viewer.layers["grains"].data = shuffled
    _wait(qtbot, w, w.track())
    out = viewer.layers["grains"].data
    assert w.tracks is not None
    for g in np.unique(labels[0][labels[0] > 0]):
        ids = [
            np.bincount(out[t][tr.labels[t] == np.bincount(tr.labels[0][labels[0] == g]).argmax()]).argmax()
            for t in range(3)
        ]
        assert len(set(ids)) == 1, ids
