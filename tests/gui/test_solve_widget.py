"""Solve dock widget: load an .ins/.hkl, solve in a thread worker, layers added; bad input shown."""

import gemmi
import pytest

from virtual_aperture.crystal.export import write_hkl, write_ins
from virtual_aperture.crystal.solve import simulate_reflections

CELL = (7.1, 9.3, 11.2, 90, 90, 90)
SITES = [
    ("S1", "S", (0.511822, 0.950464, 0.144160)),
    ("O2", "O", (0.948649, 0.311831, 0.423326)),
    ("O3", "O", (0.827703, 0.409199, 0.549594)),
    ("N4", "N", (0.027559, 0.753513, 0.538143)),
    ("C5", "C", (0.329732, 0.788429, 0.303195)),
    ("C6", "C", (0.280409, 0.485191, 0.980737)),
    ("C7", "C", (0.276891, 0.160652, 0.969925)),
    ("C8", "C", (0.776683, 0.613003, 0.917298)),
]


@pytest.fixture
def ins_file(tmp_path):
    st = gemmi.SmallStructure()
    st.cell = gemmi.UnitCell(*CELL)
    st.spacegroup = gemmi.SpaceGroup("P 21 21 21")
    for label, el, xyz in SITES:
        s = gemmi.SmallStructure.Site()
        s.label, s.element, s.occ, s.u_iso = label, gemmi.Element(el), 1.0, 0.0127
        s.fract = gemmi.Fractional(*xyz)
        st.add_site(s)
    refl = simulate_reflections(st, d_min=0.8, tilt_range_deg=35, noise=0.05, seed=2)
    write_hkl(tmp_path / "org.hkl", refl)
    write_ins(
        tmp_path / "org.ins",
        cell=CELL,
        space_group="P 21 21 21",
        wavelength=0.0251,
        unit={"S": 4, "O": 8, "N": 4, "C": 16},
    )
    return tmp_path / "org.ins"


def test_solve_widget_end_to_end(make_napari_viewer, qtbot, ins_file):
    from virtual_aperture._napari._qt.solve_widget import SolveWidget

    viewer = make_napari_viewer()
    w = SolveWidget(viewer)
    qtbot.addWidget(w)
    w.path_edit.setText(str(ins_file))
    assert w.load()
    assert w.sg_edit.text() == "P 21 21 21" and "S4" in w.comp_edit.text()
    w.starts_spin.setValue(2)
    worker = w.run()
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=60000):
        pass
    qtbot.waitUntil(lambda: w.solution is not None, timeout=5000)
    assert w.solution.converged
    # the structure has its own 3D window; the real-space viewer stays 2D and untouched
    sv = w.structure.viewer
    assert {"potential", "atoms", "unit cell"} <= {layer.name for layer in sv.layers}
    assert not {"potential", "atoms", "unit cell"} & {layer.name for layer in viewer.layers}
    assert viewer.dims.ndisplay == 2 and sv.dims.ndisplay == 3
    assert sv.layers["atoms"].data.shape == (8, 3)
    assert sv.layers["potential"].rendering == "iso"
    assert len(sv.layers["unit cell"].data) == 12
    assert "R1" in w.report.toPlainText()
    # rerun with other parameters replaces the layers
    w.delta_spin.setValue(1.3)
    worker = w.run()
    with qtbot.waitSignal(worker.finished, timeout=60000):
        pass
    assert [layer.name for layer in sv.layers].count("atoms") == 1


def test_solve_widget_bad_input(qtbot, tmp_path):
    from virtual_aperture._napari._qt.solve_widget import SolveWidget

    w = SolveWidget(None)
    qtbot.addWidget(w)
    assert w.run() is None and "load reflections" in w.status.text()
    w.path_edit.setText(str(tmp_path / "missing.hkl"))
    w.cell_edit.setText("7 8 9 90 90 90")
    assert not w.load() and "error" in w.status.text()
    w.cell_edit.setText("7 8")
    assert not w.load() and "6 numbers" in w.status.text()
    # the whole-chain box refuses clearly without a dataset and grains
    assert w.chain.run() is None and "grains" in w.chain.status.text()
    assert w.chain.export(tmp_path / "x") == [] and "solve a grain first" in w.chain.status.text()


def test_solve_grain_of_the_dataset_in_the_viewer(make_napari_viewer, qtbot, tmp_path):
    """A grain of a simulated brookite tilt series → 'Solve grain' → solution layers → Export…"""
    from virtual_aperture import simulate_agglomerate
    from virtual_aperture._napari._qt.solve_widget import SolveWidget
    from virtual_aperture._napari.reader import META_KEY
    from virtual_aperture.crystal.calibrate import calibrate_descan

    from builders import BROOKITE_SERIES

    ds, truth = simulate_agglomerate(**BROOKITE_SERIES)
    cal, _ = calibrate_descan(ds)
    ds = ds.with_calibration(center=cal.center, extra=cal.extra)
    viewer = make_napari_viewer()
    viewer.add_labels(truth.exclusive_labels(), name="grains", metadata={META_KEY: {"dataset": ds}})
    w = SolveWidget(viewer)
    qtbot.addWidget(w)
    w.comp_edit.setText("TiO2")
    w.chain.grain_spin.setValue(1)
    worker = w.chain.run()
    assert worker is not None and not w.chain.run_btn.isEnabled()
    with qtbot.waitSignal(worker.finished, timeout=300000):
        pass
    qtbot.waitUntil(lambda: w.chain.result is not None, timeout=5000)
    res = w.chain.result
    assert res.solved and "solved" in w.chain.status.text()
    assert {"potential", "atoms", "unit cell"} <= {layer.name for layer in w.structure.viewer.layers}
    assert w.reflections is res.merged and "cell" in w.report.toPlainText()
    paths = w.chain.export(tmp_path / "grain1")
    names = {p.name for p in paths}
    assert {"structure.cif", "structure.hkl", "structure.ins", "frames.mrc", "report.html"} <= names
    page = (tmp_path / "grain1" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "not drawn" not in page  # with the aperture strip
    assert w.chain.export(tmp_path / "grain1") == [] and "already exists" in w.chain.status.text()
    # a second run cancelled at once ends cleanly: status says so, buttons come back
    worker = w.chain.run()
    w.cancel()
    with qtbot.waitSignal(worker.finished, timeout=120000):
        pass
    qtbot.waitUntil(lambda: w.chain.run_btn.isEnabled(), timeout=5000)
    assert "cancelled" in w.chain.status.text() and not w.cancel_btn.isEnabled()


def test_solve_all_grains_button_fills_the_table_and_adds_the_maps(make_napari_viewer, qtbot, tmp_path):
    """Every grain of a small simulated tilt series through the real 'Solve all grains' button."""
    import numpy as np

    from virtual_aperture import simulate_agglomerate
    from virtual_aperture._napari._qt.solve_widget import SolveWidget
    from virtual_aperture._napari.reader import META_KEY
    from virtual_aperture.crystal.calibrate import calibrate_descan

    ds, truth = simulate_agglomerate(
        structure="brookite",
        n_grains=2,
        scan_shape=(16, 16),
        detector_shape=(96, 96),
        tilts=(-45, 45, 1.0),
        seed=5,
        overlap=False,
        thickness_nm=(8, 12),
        pixel_size=0.025,
    )
    cal, _ = calibrate_descan(ds)
    ds = ds.with_calibration(center=cal.center, extra=cal.extra)
    viewer = make_napari_viewer()
    labels = truth.exclusive_labels()
    viewer.add_labels(labels, name="grains", metadata={META_KEY: {"dataset": ds}})
    w = SolveWidget(viewer)
    qtbot.addWidget(w)
    w.comp_edit.setText("TiO2")
    w.starts_spin.setValue(2)
    box = w.all_grains
    box.out_edit.setText(str(tmp_path / "all"))
    box.run_btn.click()
    worker = w._worker
    assert worker is not None and not box.run_btn.isEnabled()
    with qtbot.waitSignal(worker.finished, timeout=300000):
        pass
    qtbot.waitUntil(lambda: box.result is not None, timeout=5000)
    assert box.table.rowCount() == 2
    statuses = {box.table.item(i, 0).text(): box.table.item(i, 1).text() for i in range(2)}
    assert statuses["2"] == "solved", statuses
    assert "grains solved" in box.status.text()
    assert (tmp_path / "all" / "summary.csv").is_file()
    phases = viewer.layers["phases"]
    assert phases.data.shape == labels.shape and np.all(phases.data[labels == 0] == 0)
    assert viewer.layers["orientations"].rgb
    assert viewer.layers.selection.active is not phases
    # again into the same folder: refused with one line, nothing lost
    box.run_btn.click()
    qtbot.waitUntil(lambda: box.run_btn.isEnabled(), timeout=60000)
    assert "already exists" in box.status.text()
