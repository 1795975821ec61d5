"""Live behaviour of the workspace: painting, hover, detectors, tilts (napari + Qt, under Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _ref_sum(arr, mask):
    return arr[mask].astype(np.float64).sum(axis=0)


def test_paint_through_layer_api_gives_exact_sum(dataset_factory, open_workspace):
    ds, arr = dataset_factory()
    viewer, w = open_workspace(ds)
    c = w.controller
    g = c.grains
    g.selected_label = 2
    g.brush_size = 3
    g.paint((5, 5), 2)
    g.paint((6, 9), 2)
    c.flush()
    assert c.grain_key == (0, 2)
    assert c.grain_count == int((g.data == 2).sum()) > 0
    np.testing.assert_array_equal(c.grain_sum, _ref_sum(arr, g.data == 2))
    # erase part of it (paint background) and undo/redo through napari's history
    g.paint((5, 5), 0)
    c.flush()
    np.testing.assert_array_equal(c.grain_sum, _ref_sum(arr, g.data == 2))
    g.undo()
    c.flush()
    np.testing.assert_array_equal(c.grain_sum, _ref_sum(arr, g.data == 2))
    g.redo()
    c.flush()
    np.testing.assert_array_equal(c.grain_sum, _ref_sum(arr, g.data == 2))
    # the grain list shows the grain with its pixel count and total counts
    w.grain_list.refresh()
    assert w.grain_list.labels() == [2]
    assert w.grain_list.table.item(0, 2).text() == str(int((g.data == 2).sum()))
    assert float(w.grain_list.table.item(0, 3).text()) == pytest.approx(arr[g.data == 2].sum(), rel=1e-3)


def _canvas_pos(viewer, y, x):
    canvas = viewer.window._qt_viewer.canvas
    view = canvas.view
    tr = view.transform * view.scene.transform
    world = viewer.layers["grains"].data_to_world((y, x))
    px = tr.map([world[1], world[0]])
    return canvas, (int(round(px[0])), int(round(px[1])))


def test_paint_with_simulated_mouse_drag_gives_exact_sum(dataset_factory, open_workspace, qtbot):
    from vispy.app.canvas import MouseEvent

    ds, arr = dataset_factory()
    viewer, w = open_workspace(ds)
    c = w.controller
    g = c.grains
    w.grain_list.new_grain()  # selects label 1 and the paint tool
    assert g.mode == "paint" and g.selected_label == 1
    g.brush_size = 2
    canvas, p0 = _canvas_pos(viewer, 4, 3)
    sc = canvas._scene_canvas
    sc.events.mouse_press(pos=p0, modifiers=(), button=1)
    press = MouseEvent(type="mouse_press", pos=p0, button=1)
    for x in range(3, 12):
        _, p = _canvas_pos(viewer, 4 + (x - 3) // 3, x)
        sc.events.mouse_move(pos=p, modifiers=(), button=1, press_event=press)
        qtbot.wait(5)
    sc.events.mouse_release(pos=p, modifiers=(), button=1)
    c.flush()
    painted = g.data == 1
    assert painted.sum() >= 9 and painted[4, 3] and painted[6, 11]
    np.testing.assert_array_equal(c.grain_sum, _ref_sum(arr, painted))
    assert c.grain_count == int(painted.sum())
    # the whole stroke is one undo step
    g.undo()
    c.flush()
    assert not (g.data == 1).any()
    np.testing.assert_array_equal(c.grain_sum, np.zeros(ds.detector_shape))


def test_hover_shows_pattern_under_cursor(dataset_factory, open_workspace):
    ds, arr = dataset_factory()
    viewer, w = open_workspace(ds)
    c = w.controller
    canvas, p = _canvas_pos(viewer, 7, 13)
    canvas._scene_canvas.events.mouse_move(pos=p, modifiers=())
    c.flush()
    assert c.cursor_position == (0, 7, 13)
    np.testing.assert_array_equal(c.cursor_pattern, arr[7, 13])
    shown = c.cursor_layer.data
    np.testing.assert_allclose(shown, np.log1p(arr[7, 13].astype(np.float32)), rtol=1e-6)
    # display controls: turning log off shows the raw counts
    w.diffraction.toggle_log()
    np.testing.assert_allclose(c.cursor_layer.data, arr[7, 13].astype(np.float32))


def test_detector_edit_updates_virtual_image_exactly(dataset_factory, open_workspace):
    ds, arr = dataset_factory()
    viewer, w = open_workspace(ds)
    c = w.controller
    det = w.panels["detectors"]
    assert set(det.names) >= {1}
    ref = (arr.astype(np.float64) * det.mask(1)).sum(axis=(-2, -1))
    np.testing.assert_allclose(det.vi_image(1), ref, rtol=1e-6)
    # paint a detector pixel with the brush, as a user would in the diffraction canvas
    layer = det.layers[1]
    layer.brush_size = 1
    layer.paint((0, 0), 1)
    c.flush()
    assert det.mask(1)[0, 0]
    ref = (arr.astype(np.float64) * det.mask(1)).sum(axis=(-2, -1))
    np.testing.assert_allclose(det.vi_image(1), ref, rtol=1e-6)
    # a ring preset with explicit radii
    label = det.apply_preset("ring", label=3, inner=2.0, outer=4.0)
    c.flush()
    m = det.mask(label)
    assert m.any()
    ref = (arr.astype(np.float64) * m).sum(axis=(-2, -1))
    np.testing.assert_allclose(det.vi_image(label), ref, rtol=1e-6)


def test_tilt_series_per_tilt_labels_and_drift_copy(dataset_factory, open_workspace):
    ds, arr = dataset_factory(tilts=3, scan=(24, 24), det=(8, 8))
    viewer, w = open_workspace(ds)
    c = w.controller
    g = c.grains
    assert g.data.shape == (3, 24, 24)
    c.model.tilt = 1
    assert viewer.dims.current_step[0] == 1
    g.selected_label = 4
    g.brush_size = 3
    g.paint((1, 10, 10), 4)
    c.flush()
    np.testing.assert_array_equal(c.grain_sum, _ref_sum(arr[1], g.data[1] == 4))
    # copy without drift to the next tilt; the view moves there and the sum follows
    tp = w.panels["tilts"]
    tp.follow.setChecked(False)
    assert tp.copy_grain(+1) == (0.0, 0.0)
    c.flush()
    assert c.model.tilt == 2 and viewer.dims.current_step[0] == 2
    np.testing.assert_array_equal(g.data[2] == 4, g.data[1] == 4)
    np.testing.assert_array_equal(c.grain_sum, _ref_sum(arr[2], g.data[2] == 4))
    # keyboard-equivalent stepping
    c.step_tilt(-1)
    assert c.model.tilt == 1


def test_merge_delete_polygon(dataset_factory, open_workspace):
    ds, arr = dataset_factory()
    viewer, w = open_workspace(ds)
    c, gl = w.controller, w.grain_list
    g = c.grains
    g.paint((3, 3), 1)
    g.paint((10, 10), 2)
    c.flush()
    gl.merge_selected([1, 2])
    c.flush()
    assert set(np.unique(g.data)) == {0, 1}
    assert 2 not in c.model.grain_names
    gl.delete_selected([1])
    assert not g.data.any()
    c.model.selected = 5
    shapes = gl.polygon_layer()
    shapes.add_polygons([np.array([[2, 2], [2, 8], [8, 8], [8, 2]])])
    gl.polygons_to_grain()
    c.flush()
    assert (g.data == 5).sum() == 49
    np.testing.assert_array_equal(c.grain_sum, _ref_sum(arr, g.data == 5))
    g.undo()
    assert not g.data.any()


def test_copy_grain_follows_measured_drift(open_workspace):
    """A bright (dark-field) block that moves by (2, 3) scan pixels between tilts is followed."""
    import dask.array as da

    from virtual_aperture.model import Calibration, Dataset

    arr = np.zeros((2, 32, 32, 16, 16), np.uint16)
    arr[..., 7:9, 7:9] = 50  # central beam everywhere
    arr[0, 8:18, 6:14, 4, 5] = 400  # a crystal scattering to (4, 5), seen in dark field
    arr[1, 10:20, 9:17, 4, 5] = 400  # the same crystal after a (2, 3) drift
    ds = Dataset(da.from_array(arr), Calibration(tilt_angles_deg=(0.0, 1.0)))
    viewer, w = open_workspace(ds)
    c, tp = w.controller, w.panels["tilts"]
    assert tp.drift_mask() is not None  # the ADF preset is used for the drift images
    g = c.grains
    g.data_setitem(np.nonzero(np.pad(np.ones((1, 10, 8), bool), ((0, 1), (8, 14), (6, 18)))), 1)
    c.model.selected = 1
    c.flush()
    worker = tp.copy_grain(+1)
    assert worker is not None
    c.jobs.wait()
    c.flush()
    assert tp.last_shift == pytest.approx((2.0, 3.0), abs=0.3)
    np.testing.assert_array_equal(np.nonzero(g.data[1] == 1)[0].min(), 10)
    assert (g.data[1] == 1).sum() == 80 and g.data[1, 10:20, 9:17].min() == 1
    assert c.model.tilt == 1


def test_keyboard_shortcuts(dataset_factory, open_workspace):
    from app_model.types import KeyBinding

    ds, _ = dataset_factory(tilts=3)
    viewer, w = open_workspace(ds)
    c = w.controller

    def press(key):
        viewer.keymap[KeyBinding.from_str(key)](viewer)

    press("Shift+N")
    assert c.model.selected in c.model.grain_names and c.grains.mode == "paint"
    start = c.model.tilt  # the tilt napari's slider opened on
    press("PageUp")
    assert c.model.tilt == start - 1 and viewer.dims.current_step[0] == start - 1
    press("PageDown")
    assert c.model.tilt == start
    log = c.model.display.log
    press("Shift+L")
    assert c.model.display.log is (not log)
