"""Fixtures of the napari GUI tests: a small in-memory dataset and an open workspace."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from virtual_aperture.model import Calibration, Dataset


def make_dataset(*, tilts: int = 0, scan=(16, 20), det=(12, 10), seed: int = 0) -> tuple[Dataset, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = ((tilts,) if tilts else ()) + tuple(scan) + tuple(det)
    arr = rng.integers(0, 200, size=shape).astype(np.uint16)
    cal = Calibration(
        pixel_size=0.02, tilt_angles_deg=tuple(float(t) for t in range(tilts)) if tilts else None
    )
    return Dataset(da.from_array(arr), cal), arr


@pytest.fixture
def dataset_factory():
    """make_dataset(tilts=0, scan=(16, 20), det=(12, 10), seed=0) -> (Dataset, numpy array)."""
    return make_dataset


@pytest.fixture
def open_workspace(make_napari_viewer, qtbot):
    """Factory: (dataset) -> (viewer, WorkspaceWidget) with the dataset's navigator loaded."""
    import napari

    from virtual_aperture._napari._qt.workspace import WorkspaceWidget
    from virtual_aperture._napari.reader import navigator_layers

    widgets = []

    def factory(ds, *, show=True):
        viewer = make_napari_viewer(show=show)
        for data, meta, kind in navigator_layers(ds):
            viewer.add_layer(napari.layers.Layer.create(data, meta, kind))
        widget = WorkspaceWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Workspace")
        widgets.append(widget)
        widget.controller.flush(timeout=60)
        return viewer, widget

    yield factory
    for w in widgets:
        w.shutdown()
    widgets.clear()
    qtbot.wait(20)
