"""Make the screenshots of docs/indexing.md.

Run: ``xvfb-run -a .venv/bin/python docs/make_indexing_screenshots.py``.

Simulates a small brookite tilt series, opens it in napari, sums one grain with the indexing widget,
finds peaks, indexes and overlays the predicted spots; saves the canvas and the dock as PNGs under
docs/images/. Prints the indexing result it shows.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_API", "pyqt6")
OUT = Path(__file__).parent / "images"


def main() -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    from virtual_aperture import simulate_agglomerate
    from virtual_aperture._napari._qt.indexing_widget import IndexingWidget
    from virtual_aperture._napari.reader import navigator_layers

    OUT.mkdir(exist_ok=True)
    ds, truth = simulate_agglomerate(
        structure="brookite",
        n_grains=2,
        scan_shape=(16, 16),
        detector_shape=(128, 128),
        tilts=(-24, 24, 2),
        seed=3,
        ellipticity=(1.02, 30.0),
        overlap=False,
    )
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    for data, meta, kind in navigator_layers(ds, name="brookite tilt series"):
        viewer.add_layer(napari.layers.Layer.create(data, meta, kind))
    only = truth.footprints & (truth.footprints.sum(0) == 1)[None]
    labels = np.zeros(truth.footprints.shape[1:], np.int32)
    for i in range(only.shape[0]):
        labels[only[i]] = i + 1
    viewer.add_labels(labels, name="grains", scale=viewer.layers[0].scale)
    w = IndexingWidget(viewer)
    viewer.window.add_dock_widget(w, name="Peaks and indexing", area="right")
    app = QApplication.instance()
    done = {"n": 0}
    w.source_combo.setCurrentIndex(w.source_combo.findText(viewer.layers[0].name))
    w.grain_spin.setValue(1)
    worker = w.sum_grain()
    worker.finished.connect(lambda: done.__setitem__("n", done["n"] + 1))
    while done["n"] < 1:
        app.processEvents()
    for layer in list(viewer.layers)[:2]:
        layer.visible = False
    w.find_peaks()
    worker = w.run_indexing()
    worker.finished.connect(lambda: done.__setitem__("n", done["n"] + 1))
    while done["n"] < 2:
        app.processEvents()
    for _ in range(30):
        app.processEvents()
    viewer.dims.set_point(0, 12)
    viewer.reset_view()
    viewer.screenshot(str(OUT / "indexing-overlay.png"), canvas_only=True, flash=False)
    img = viewer.window._qt_window.grab()
    img.save(str(OUT / "indexing-window.png"))
    print(w.result.summary())
    print(w.report.toPlainText())
    viewer.close()


if __name__ == "__main__":
    main()
