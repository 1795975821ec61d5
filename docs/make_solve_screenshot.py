"""Make the screenshots of docs/solving.md (napari part) from the real workspace.

Run: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_solve_screenshot.py``

Opens the built-in sample *Brookite tilt series* and the Workspace dock, selects grain 1
("brookite 1") in the Grains tab, clicks *Hand selected grain to indexing / solving*, goes to the
Solve tab, types ``TiO2`` as the composition and clicks *Solve grain*; when the whole chain has run
it saves docs/images/solve-grain.png (the main window, Solve tab with the result) and
docs/images/solve-structure.png (the window of the solved structure: potential, atoms, cell).
Prints what the Solve tab shows, and every napari notification (toast) raised meanwhile.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_API", "pyqt6")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_indexing_screenshots import (  # noqa: E402
    OUT,
    click_tab,
    notifications,
    open_and_hand_on,
    settle,
    wait_worker,
)


def shoot() -> None:
    from napari.qt import get_qapp
    from qtpy.QtCore import QPoint
    from qtpy.QtWidgets import QApplication

    app = get_qapp()
    # the Solve tab is long: napari's layer list closed too, and a wider left column
    viewer, w = open_and_hand_on(app, layer_list=False, width=640)

    # Solve tab: composition, then Solve grain (sum → peaks → index → integrate → symmetry → merge →
    # charge flipping, in a thread worker)
    click_tab(w, "Solve")
    sv = w.panels["solve"]
    print("Solve tab:", sv.chain.status.text(), "| grain", sv.chain.grain_spin.value())
    sv.comp_edit.setText("TiO2")
    t0 = time.perf_counter()
    sv.chain.run_btn.click()
    wait_worker(app, sv, timeout_s=170)
    print(f"Solve grain ({time.perf_counter() - t0:.1f} s):", sv.chain.status.text())
    print(sv.report.toPlainText())
    if sv.structure is None:
        raise RuntimeError("no structure window: " + sv.chain.status.text())

    # the main window, the Solve tab scrolled down to the Solve grain button: its status line, the
    # fields the result filled in and the whole report in view
    page = w.pages["solve"]
    top = sv.chain.run_btn.mapTo(sv, QPoint(0, 0)).y() - 6
    page.verticalScrollBar().setValue(min(top, page.verticalScrollBar().maximum()))
    viewer.reset_view()
    settle(app, 0.5)
    viewer.window._qt_window.grab().save(str(OUT / "solve-grain.png"))

    # the structure window, turned off the c axis so that the cell reads as a box
    st = sv.structure
    st.resize(1000, 700)
    settle(app, 0.5)
    st.viewer.reset_view()
    camera = st.viewer.scene.camera
    camera.angles = (15, -35, 70)
    camera.zoom = 0.5 * camera.zoom  # napari frames the two axes facing it; turned, a shows too
    settle(app, 0.5)
    st.grab().save(str(OUT / "solve-structure.png"))
    print("structure window:", st.windowTitle(), [layer.name for layer in st.viewer.layers])
    print("wrote docs/images/solve-grain.png, docs/images/solve-structure.png")
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
