"""Make the screenshots of docs/indexing.md from the real workspace.

Run: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_indexing_screenshots.py``

Opens the built-in sample *Brookite tilt series* (File ▸ Open Sample ▸ Virtual Aperture) and the
Workspace dock (Plugins ▸ Virtual Aperture ▸ Workspace), selects grain 1 ("brookite 1", which the
sample brings as a ``grains`` layer) in the Grains tab, clicks *Hand selected grain to indexing /
solving*, then *Find peaks* and *Index* in the Index tab, waits for the result and saves
docs/images/indexing-window.png (the main window) and docs/images/indexing-overlay.png (the
diffraction canvas: Bragg peaks green, predicted spots cyan, on the tilt with the most peaks).
Prints what the Index tab shows, and every napari notification (toast) raised meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_API", "pyqt6")
OUT = Path(__file__).resolve().parent / "images"
PLUGIN = "napari-virtual-aperture"
#: width of the left column (napari's layer list and the workspace tabs) in the screenshots
LEFT_WIDTH = 540


def settle(app, seconds: float = 0.3) -> None:
    """Process events for a while (layouts, redraws)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def wait_worker(app, panel, timeout_s: float = 120) -> None:
    """Until the panel's thread worker ended (its ``finished`` handler clears ``_worker``)."""
    end = time.perf_counter() + timeout_s
    while panel._worker is not None:
        if time.perf_counter() > end:
            raise TimeoutError("the worker did not finish")
        app.processEvents()
        time.sleep(0.02)
    settle(app)


def make_room(viewer, w, dock, *, layer_list: bool = True, width: int = LEFT_WIDTH) -> None:
    """What a user does to see a whole tab at 1600×1000: close napari's layer-controls dock (its ×)
    and, with ``layer_list=False``, the layer list too; drag the left column wider."""
    from qtpy.QtCore import Qt

    win = viewer.window._qt_window
    qtv = viewer.window._qt_viewer
    qtv.dockLayerControls.close()
    dock = getattr(dock, "__wrapped__", dock)
    if layer_list:
        win.resizeDocks([qtv.dockLayerList, dock], [110, 850], Qt.Orientation.Vertical)
    else:
        qtv.dockLayerList.close()
    diff = getattr(w.diffraction_dock, "__wrapped__", w.diffraction_dock)
    win.resizeDocks([dock, diff], [width, 580], Qt.Orientation.Horizontal)


def click_tab(w, title: str) -> None:
    tabs = w.tabs
    for i in range(tabs.count()):
        if tabs.tabText(i) == title:
            tabs.tabBar().setCurrentIndex(i)
            return
    raise LookupError(title)


@contextlib.contextmanager
def notifications():
    """napari's hooks as ``napari.run()`` installs them (warnings and errors become notifications,
    shown as toasts in the window); yields the list of their texts."""
    from napari.utils.notifications import notification_manager

    notes: list[str] = []

    def record(n) -> None:
        notes.append(f"{n.severity}: {n.message}")

    notification_manager.notification_ready.connect(record)
    try:
        with notification_manager:
            yield notes
    finally:
        notification_manager.notification_ready.disconnect(record)


def open_and_hand_on(app, *, layer_list: bool = True, width: int = LEFT_WIDTH):
    """napari, File ▸ Open Sample ▸ Brookite tilt series, Plugins ▸ Workspace; in the Grains tab
    the row of grain 1 selected and *Hand selected grain to indexing / solving* clicked (the grain
    is summed at every tilt, descan-compensated). Returns (viewer, workspace widget)."""
    import napari

    viewer = napari.Viewer(title="napari — virtual aperture")
    viewer.window._qt_window.resize(1600, 1000)
    viewer.open_sample(PLUGIN, "brookite-tilt-series")
    dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Workspace")
    c = w.controller
    c.flush(timeout=120)
    settle(app, 1.0)  # the workspace lays the window out once docked
    make_room(viewer, w, dock, layer_list=layer_list, width=width)
    click_tab(w, "Grains")
    table = w.grain_list.table
    row = w.grain_list.labels().index(1)
    table.selectRow(row)
    settle(app)
    print("selected in the Grains tab:", table.item(row, 1).text(), "(label", c.model.selected, ")")
    w.panels["actions"].hand_btn.click()
    c.jobs.wait(timeout=120)
    settle(app)
    print("hand-off:", w.panels["actions"].message.text())
    print(
        f"after the hand-off: workspace at {c.tilt_text()}, diffraction canvas slider at step "
        f"{c.diffraction.dims.current_step[0]} of {c.diffraction.dims.nsteps[0]}"
    )
    return viewer, w


def shoot() -> None:
    import numpy as np
    from napari.qt import get_qapp
    from qtpy.QtWidgets import QApplication

    app = get_qapp()
    viewer, w = open_and_hand_on(app)
    c = w.controller

    # Index tab (the hand-off switched to it): Find peaks, then Index
    ix = w.panels["index"]
    assert w.tabs.currentWidget() is w.pages["index"], "the hand-off did not open the Index tab"
    print("Index tab:", ix.status.text())
    ix.find_btn.click()
    settle(app)
    print("Find peaks:", ix.status.text())
    t0 = time.perf_counter()
    ix.index_btn.click()
    wait_worker(app, ix, timeout_s=150)
    print(f"Index ({time.perf_counter() - t0:.1f} s):", ix.status.text())
    print(ix.report.toPlainText())

    # the tilt with the most peaks, in both views (the real-space slider drives the diffraction canvas)
    tilt = max(range(len(ix.peaks)), key=lambda t: len(ix.peaks[t]))
    c.model.tilt = tilt
    # the layer controls' contrast slider, as a user drags it: the summed patterns are dominated by
    # the direct beam, so the upper limit goes down to the typical peak height at this tilt
    layer = ix._layer(ix.source_combo.currentText())
    pat = np.asarray(layer.data[tilt])
    p = ix.peaks[tilt]
    heights = pat[np.rint(p.y).astype(int), np.rint(p.x).astype(int)]
    layer.contrast_limits = (0.0, float(np.median(heights)))
    page = w.pages["index"]
    page.verticalScrollBar().setValue(page.verticalScrollBar().maximum())  # the result in view
    settle(app, 0.5)
    viewer.reset_view()  # the narrower middle canvas framed again
    c.diffraction.reset_view()
    settle(app, 0.5)
    viewer.window._qt_window.grab().save(str(OUT / "indexing-window.png"))
    w.diffraction.qt_viewer.canvas.native.grab().save(str(OUT / "indexing-overlay.png"))
    print("tilt shown:", c.tilt_text())
    print("wrote docs/images/indexing-window.png, docs/images/indexing-overlay.png")
    w.shutdown()
    viewer.close()
    QApplication.processEvents()


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with notifications() as notes:
        shoot()
    print(f"{time.perf_counter() - t0:.0f} s; napari notifications: {len(notes)}", *notes, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
