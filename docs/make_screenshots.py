"""Screenshots of the real napari widgets for the tutorial and the README.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_screenshots.py

Walks through docs/tutorial.md on the built-in 4D sample: open it, look at the dark-field image,
paint two virtual apertures (brush dabs inside two simulated grains), check a boundary, save the
session. Writes docs/images/*.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "images"


def main() -> int:
    os.environ.setdefault("QT_API", "pyqt6")
    import napari
    from qtpy.QtWidgets import QApplication
    from scipy import ndimage

    from virtual_aperture._napari.launch import open_workspace
    from virtual_aperture.sample import simulate_agglomerate

    OUT.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari — virtual aperture")
    w = open_workspace(viewer, sample="4d")
    c = w.controller
    c.flush(timeout=600)
    app = QApplication.instance()

    def shot(name: str, tab: str | None = None) -> None:
        if tab is not None:
            for i in range(w.tabs.count()):
                if w.tabs.tabText(i) == tab:
                    w.tabs.setCurrentIndex(i)
        c.flush(timeout=300)
        for _ in range(5):
            app.processEvents()
        img = viewer.screenshot(str(OUT / name), canvas_only=False, flash=False)
        print(f"wrote docs/images/{name} {img.shape[1]}×{img.shape[0]}")

    # where the grains are: the simulator's ground truth for the same sample (same seed)
    _, truth = simulate_agglomerate(n_grains=6, scan_shape=(64, 64), detector_shape=(128, 128), seed=0)
    sizes = np.bincount(truth.labels.ravel())[1:]
    big = [int(i) + 1 for i in np.argsort(sizes)[::-1][:2]]

    # 1. the sample opened: navigator, dark-field image, pattern under the cursor
    sy, sx = c.dataset.scan_shape
    inner = ndimage.binary_erosion(truth.labels == big[0], iterations=2)
    cy, cx = (int(v) for v in np.argwhere(inner).mean(axis=0).round())
    c.request_pattern(cy, cx)
    shot("napari-sample.png")
    shot("tutorial-1-open.png", tab="Detectors")

    # 2. paint two apertures with the brush, well inside two grains
    g = c.grains
    g.brush_size = 3
    for k, grain in enumerate(big, start=1):
        label = w.grain_list.new_grain()
        inner = ndimage.binary_erosion(truth.labels == grain, iterations=2)
        for y, x in np.argwhere(inner)[::3]:
            g.paint((int(y), int(x)), label)
        c.model.rename_grain(label, ["crystal A", "crystal B"][k - 1])
        c.flush()
    c.model.selected = 1
    c.flush()
    shot("tutorial-2-paint.png", tab="Grains")

    # 3. check the boundary of crystal A after deliberately painting across into its neighbour
    edge = (
        ndimage.binary_dilation(truth.labels == big[0], iterations=3)
        & (truth.labels != big[0])
        & (truth.labels > 0)
    )
    for y, x in np.argwhere(edge)[::4]:
        g.paint((int(y), int(x)), 1)
    c.flush()
    check = w.panels["check"]
    check.check_grain(1)
    c.jobs.wait(timeout=300)
    shot("tutorial-3-check.png", tab="Check")

    # 4. sum all grains and save the session
    w.panels["actions"].sum_all()
    c.jobs.wait(timeout=300)
    session = Path(tempfile.mkdtemp()) / "agglomerate-session.h5"
    w.panels["session"].save(session)
    shot("tutorial-4-session.png", tab="Session")
    w.shutdown()
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
