"""Make the screenshots of docs/grains.md.

Run: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_grains_screenshots.py``

Simulates a crowded agglomerate, opens it in napari with the Grains dock, proposes grains,
adds the neighbour-dissimilarity map, separates overlapping grains by diffraction vectors and
saves the window as PNGs under docs/images/ (grains-*.png). Prints what it shows.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_API", "pyqt6")
OUT = Path(__file__).parent / "images"


def _wait(app, widget, timeout_s: float = 300) -> None:
    import time

    t0 = time.time()
    while widget._worker is not None and time.time() - t0 < timeout_s:
        app.processEvents()
        time.sleep(0.05)
    for _ in range(20):
        app.processEvents()


def main() -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    from virtual_aperture import Dataset, simulate_agglomerate
    from virtual_aperture._napari._qt.grains_widget import GrainsWidget
    from virtual_aperture._napari.reader import navigator_layers

    OUT.mkdir(exist_ok=True)
    lazy, truth = simulate_agglomerate(
        n_grains=8, scan_shape=(64, 64), detector_shape=(128, 128), seed=5, dose=5e4
    )
    ds = Dataset(lazy.data.compute(), lazy.calibration)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 950)
    for data, meta, kind in navigator_layers(ds, name="agglomerate"):
        viewer.add_layer(napari.layers.Layer.create(data, meta, kind))
    w = GrainsWidget(viewer)
    viewer.window.add_dock_widget(w, name="Grains", area="right")
    app = QApplication.instance()

    w.min_size.setValue(15)
    w.propose()
    _wait(app, w)
    print("proposal:", w.status.text())
    for row in w.proposal.table():
        tilt, gid, size, conf = row
        print(f"  tilt {tilt} grain {gid} size {size} confidence {conf:.2f}")
    viewer.screenshot(str(OUT / "grains-proposal.png"), canvas_only=False)

    viewer.layers["grains"].visible = False
    w.dissimilarity()
    _wait(app, w)
    print("dissimilarity:", w.status.text())
    viewer.screenshot(str(OUT / "grains-dissimilarity.png"), canvas_only=False)

    viewer.layers["neighbour dissimilarity"].visible = False
    w.separate()
    _wait(app, w)
    print("vectors:", w.status.text())
    viewer.layers["crystals (vectors)"].selected_label = 1
    w.sum_selected_crystal()
    _wait(app, w)
    viewer.layers[-1].visible = False  # the summed pattern lives in detector space
    viewer.screenshot(str(OUT / "grains-vectors.png"), canvas_only=False)
    print("wrote", sorted(p.name for p in OUT.glob("grains-*.png")))
    viewer.close()


if __name__ == "__main__":
    main()
