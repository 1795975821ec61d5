"""Make the screenshots of docs/grains.md.

Run: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_grains_screenshots.py``

Simulates a crowded agglomerate, opens it in napari with the Workspace dock (Plugins ▸ Virtual
Aperture ▸ Workspace) as a user would, and clicks the real buttons: in the Propose tab
*Propose grains*; in the Check tab *Show neighbour dissimilarity*; in the Propose tab *Separate
overlapping grains (vectors)* and *Sum selected crystal* (the crystal's pattern appears in the
diffraction canvas). Saves the window as PNGs under docs/images/ (grains-*.png) and prints what
the widgets say.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("QT_API", "pyqt6")
OUT = Path(__file__).resolve().parent / "images"
PLUGIN = "napari-virtual-aperture"


def settle(app, seconds: float = 0.4) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def wait_idle(app, w, timeout_s: float = 300) -> None:
    """Until no job of the workspace (tab workers, the job runner, live sums) is running."""
    c = w.controller
    end = time.perf_counter() + timeout_s
    while True:
        app.processEvents()
        busy = (
            c.jobs.busy
            or c.sums.busy
            or any(getattr(p, "_worker", None) is not None for p in w.panels.values())
        )
        if not busy:
            break
        if time.perf_counter() > end:
            raise TimeoutError("the workspace did not finish")
        time.sleep(0.02)
    settle(app)


def click_tab(w, title: str) -> None:
    for i in range(w.tabs.count()):
        if w.tabs.tabText(i) == title:
            w.tabs.tabBar().setCurrentIndex(i)
            return
    raise KeyError(title)


def click(app, w, page: str, text: str) -> None:
    from qtpy.QtWidgets import QPushButton

    for b in w.pages[page].findChildren(QPushButton):
        if b.text() == text:
            b.click()
            wait_idle(app, w)
            return
    raise KeyError(text)


def main() -> None:
    import napari
    from make_indexing_screenshots import make_room  # docs/: closes layer controls, widens the tabs
    from qtpy.QtWidgets import QApplication

    from virtual_aperture import Dataset, simulate_agglomerate
    from virtual_aperture._napari.reader import navigator_layers

    OUT.mkdir(exist_ok=True)
    lazy, _truth = simulate_agglomerate(
        n_grains=8, scan_shape=(64, 64), detector_shape=(128, 128), seed=5, dose=5e4
    )
    ds = Dataset(lazy.data.compute(), lazy.calibration)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    for data, meta, kind in navigator_layers(ds, name="agglomerate"):
        viewer.add_layer(napari.layers.Layer.create(data, meta, kind))
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Workspace")
    app = QApplication.instance()
    w.controller.flush(timeout=120)
    settle(app, 1.0)
    make_room(viewer, w, _dock, layer_list=True)
    settle(app)

    click_tab(w, "Propose")
    prop = w.panels["propose"]
    prop.min_size.setValue(15)
    click(app, w, "propose", "Propose grains")
    print("proposal:", prop.status.text())
    for tilt, gid, size, conf in prop.proposal.table():
        print(f"  tilt {tilt} grain {gid} size {size} confidence {conf:.2f}")
    viewer.screenshot(str(OUT / "grains-proposal.png"), canvas_only=False)

    click_tab(w, "Check")
    w.controller.grains.visible = False
    click(app, w, "check", "Show neighbour dissimilarity")
    print("dissimilarity:", w.panels["check"].status.text() if hasattr(w.panels["check"], "status") else "")
    viewer.screenshot(str(OUT / "grains-dissimilarity.png"), canvas_only=False)

    viewer.layers["neighbour dissimilarity"].visible = False
    click_tab(w, "Propose")
    click(app, w, "propose", "Separate overlapping grains (vectors)")
    print("vectors:", prop.status.text())
    viewer.layers["crystals (vectors)"].selected_label = 1
    click(app, w, "propose", "Sum selected crystal")
    print("crystal:", prop.status.text())
    shown = [layer.name for layer in w.controller.diffraction.layers]
    assert "crystal 1 pattern (log)" in shown, shown  # in diffraction space, not the scan
    w.controller.grain_layer.visible = False  # the eye in the diffraction layer list
    settle(app)
    print("diffraction title:", w.diffraction.title.text())
    viewer.screenshot(str(OUT / "grains-vectors.png"), canvas_only=False)
    notes = [n.message for n in getattr(napari.notification_manager, "records", [])]
    assert not any("Inconsistent units" in m for m in notes), notes
    print("wrote", sorted(p.name for p in OUT.glob("grains-*.png")))
    w.shutdown()
    viewer.close()


if __name__ == "__main__":
    main()
