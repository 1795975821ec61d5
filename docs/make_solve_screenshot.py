"""Screenshot of the Solve dock after 'Solve grain' on the simulated brookite tilt series.

Run under a display (``xvfb-run -a .venv/bin/python docs/make_solve_screenshot.py``); writes
``docs/images/solve-grain.png``.
"""

from pathlib import Path

import napari

from virtual_aperture import simulate_agglomerate, solve_grain
from virtual_aperture._napari._qt.solve_widget import SolveWidget
from virtual_aperture._napari.reader import META_KEY
from virtual_aperture.crystal.calibrate import calibrate_descan

SAMPLE = dict(
    structure="brookite",
    n_grains=2,
    scan_shape=(24, 24),
    detector_shape=(128, 128),
    tilts=(-60, 60, 1.0),
    seed=3,
    overlap=False,
    thickness_nm=(8, 12),
    pixel_size=0.02,
)


def main() -> None:
    ds, truth = simulate_agglomerate(**SAMPLE)
    cal, _ = calibrate_descan(ds)
    ds = ds.with_calibration(center=cal.center, extra=cal.extra)
    labels = truth.exclusive_labels()
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 950)
    viewer.add_labels(labels, name="grains", metadata={META_KEY: {"dataset": ds}})
    w = SolveWidget(viewer)
    viewer.window.add_dock_widget(w, name="Solve structure", area="right")
    w.comp_edit.setText("TiO2")
    w.chain.grain_spin.setValue(1)
    res = solve_grain(ds, labels, 1, composition="TiO2")
    w.chain._on_result(res)
    viewer.layers.remove("grains")  # the solution is shown in Å; the scan-space labels would dwarf it
    for _ in range(5):
        napari.qt.get_qapp().processEvents()
    viewer.reset_view()
    viewer.camera.angles = (15, -35, 70)
    viewer.camera.zoom = viewer.camera.zoom * 0.45
    for _ in range(5):
        napari.qt.get_qapp().processEvents()
    out = Path(__file__).parent / "images" / "solve-grain.png"
    viewer.screenshot(str(out), canvas_only=False)
    print("wrote", out)
    viewer.close()


if __name__ == "__main__":
    main()
