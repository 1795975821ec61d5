"""The exports read by the programs that consume them (cctbx, gemmi, mrcfile, dxtbx's rules).

cctbx (iotbx.cif with cif_core, iotbx.shelx, cctbx.xray with its electron table) runs in a fresh
interpreter through ``tests/consumers.py``. Where a consumer cannot be run here, the test follows
its documented format:

- SHELXL (``.ins``/``.res``/``.hkl``): SHELXL manual, "HKLF 4: h k l Fo² σ(Fo²) [batch]"
  ``FORMAT(3I4,2F8.2,I4)``; a missing batch number reads as 1, batch numbers > 1 need BASF
  (https://shelx.uni-goettingen.de/shelxl_html.php, HKLF and BASF).
- DIALS/XDS via dxtbx (``.img``): dxtbx ``src/dxtbx/format/FormatSMVADSC.py`` (cctbx/dxtbx,
  commit 59ea1c67): ``_detector`` = ``detector_factory.simple("CCD", DISTANCE,
  (BEAM_CENTER_Y, BEAM_CENTER_X), "+x", "-y", ...)`` — (fast, slow) mm from the pixel corner;
  ``_goniometer`` = ``single_axis()`` — rotation axis +x = fast; ``_adsc_trusted_range`` = (1,
  65534): "pixels at module boundaries are == 0"; ``FormatSMV._get_endianic_raw_data`` reshapes
  to (SIZE2, SIZE1).
- PETS/DIALS via dxtbx (``frames.mrc``): dxtbx ``src/dxtbx/format/FormatMRC.py``: FEI extended
  header items ``Alpha tilt``, ``Pixel size X`` (reciprocal, 1/m), ``HT``, ``Tilt per image``,
  goniometer axis (0, −1, 0) rotated by ``Tilt axis angle`` about the beam.
"""

import importlib.util
import json
from pathlib import Path

import consumers
import gemmi
import numpy as np
import pytest

from virtual_aperture.cli import main
from virtual_aperture.crystal.export import (
    rotate_to_fast_axis,
    write_ccp4_map,
    write_hkl,
    write_ins,
    write_smv,
)
from virtual_aperture.crystal.solve import simulate_reflections
from virtual_aperture.sample.structures import load_structure

if importlib.util.find_spec("cctbx") is None:  # not imported here: cctbx runs in a subprocess
    pytest.skip("cctbx-base (test extra) is not installed", allow_module_level=True)

ZERR = (0.0021, 0.0013, 0.0012, 0.0, 0.0, 0.0)


@pytest.fixture(scope="module")
def brookite_phase(tmp_path_factory):
    """`phase` on brookite (the sample's published structure) given as .ins + .hkl with ZERR."""
    st = load_structure("brookite")
    d = tmp_path_factory.mktemp("brookite")
    refl = simulate_reflections(st, d_min=0.8, tilt_range_deg=40, noise=0.05, seed=1)
    write_hkl(d / "brk.hkl", refl)
    write_ins(
        d / "brk.ins",
        cell=st.cell.parameters,
        space_group="P b c a",
        wavelength=0.02508,
        z=8,
        unit={"Ti": 8, "O": 16},
        zerr=ZERR,
    )
    return d


def test_brookite_exports_read_by_cctbx_give_the_reported_r1(brookite_phase, capsys):
    d = brookite_phase
    out = d / "out"
    assert main(["phase", str(d / "brk.ins"), "--seed", "0", "--starts", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.count("solved") == 1, text  # not "solved: solved:"
    rep = json.loads((out / "report.json").read_text())
    res_cif, res_res, cif_check, refl_check, hkl = consumers.cctbx_batch(
        [
            ("recompute_r1", out / "structure.cif", out / "reflections.cif"),
            ("recompute_r1", out / "structure.res", out / "reflections.cif"),
            ("check_cif", out / "structure.cif"),
            ("check_cif", out / "reflections.cif"),
            ("hkl_as_cctbx", d / "brk.hkl", list(load_structure("brookite").cell.parameters), "P b c a"),
        ]
    )
    assert cif_check["errors"] == 0, cif_check["messages"]
    assert refl_check["errors"] == 0, refl_check["messages"]
    for built in (res_cif, res_res):
        assert built["cell"] == pytest.approx(rep["cell"], abs=1e-4)
        assert built["hall"].strip() == gemmi.SpaceGroup("P b c a").hall.strip()
        assert abs(built["r1"] - rep["r1"]) < 0.01, (built["r1"], rep["r1"])
        # the per-atom B that was scored is the one cctbx read
        np.testing.assert_allclose(
            [s["b_iso"] for s in built["scatterers"]], [a["b_iso"] for a in rep["atoms"]], atol=2e-3
        )
    assert res_cif["n"] == rep["n_reflections"]
    # the HKLF 4 input and its merging, by iotbx
    assert hkl["is_intensity"] and hkl["i_max"] == pytest.approx(99999.0, abs=0.01)
    # ZERR copied from the input (not invented); UNIT is the cell contents
    res = (out / "structure.res").read_text().splitlines()
    zerr = next(line for line in res if line.startswith("ZERR")).split()
    assert [float(v) for v in zerr[2:]] == pytest.approx(ZERR) and zerr[1] == "8"
    with capsys.disabled():
        print(
            f"\nbrookite: reported R1 {rep['r1']:.4f}, cctbx from structure.cif {res_cif['r1']:.4f}, "
            f"from structure.res {res_res['r1']:.4f}"
        )


def test_ccp4_map_cell_and_axis_order_by_gemmi(tmp_path):
    cell = (7.0, 9.0, 11.0, 90, 100, 90)
    m = np.zeros((14, 18, 22), np.float32)
    m += np.arange(14)[:, None, None]  # varies along a only
    write_ccp4_map(tmp_path / "m.ccp4", m, cell=cell, space_group="P 1 21/c 1")
    back = gemmi.read_ccp4_map(str(tmp_path / "m.ccp4"))
    assert back.grid.unit_cell.parameters == pytest.approx(cell, abs=1e-4)
    assert back.grid.spacegroup.number == 14
    # MAPC, MAPR, MAPS = 1, 2, 3: columns along a (fastest), rows along b, sections along c
    assert [back.header_i32(w) for w in (17, 18, 19)] == [1, 2, 3]
    assert [back.header_i32(w) for w in (1, 2, 3)] == [14, 18, 22]  # NC NR NS: the array's (a, b, c) axes
    back.setup(float("nan"))
    assert back.grid.get_value(5, 3, 2) == pytest.approx(5.0) and back.grid.get_value(0, 7, 9) == 0.0


def _smv_case(tmp_path, axis_deg, prefix):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 500, (2, 48, 48)).astype(np.float64)
    center = (23.3, 25.6)
    frames[:, 22:25, 24:28] = np.nan  # beam stop
    frames[:, 10, 26] = 60000.0  # a spot 13.3 px from the centre along -y (on the axis when it is at 90°)
    files = write_smv(
        tmp_path,
        frames,
        tilt_angles_deg=[0.0, 2.0],
        wavelength=0.02508,
        pixel_size=0.01,
        center=center,
        tilt_axis_deg=axis_deg,
        prefix=prefix,
    )
    return frames, center, files


def test_smv_as_dxtbx_adsc_reads_it(tmp_path):
    frames, center, files = _smv_case(tmp_path, 0.0, "a")
    g = consumers.smv_geometry(files[0])
    # (fast, slow) = (BEAM_CENTER_Y, BEAM_CENTER_X) from the pixel corner: pixel centres at index + ½
    assert g["beam_index_fast_slow"] == pytest.approx((center[1], center[0]), abs=1e-4)
    assert g["data"].shape == (48, 48) and g["osc_start"] == -1.0 and g["osc_range"] == 2.0
    lo, hi = g["trusted_range"]
    assert g["data"][23, 25] < lo  # beam stop: outside the trusted range, not a valid zero
    valid = np.isfinite(frames[0])
    assert np.all((g["data"][valid] >= lo) & (g["data"][valid] <= hi))
    np.testing.assert_array_equal(g["data"][valid] - g["pedestal"], frames[0][valid])


def test_smv_frames_turned_so_the_tilt_axis_is_fast(tmp_path):
    # tilt axis along +y (rows): turned by -90° so it lies along +x (fast), exactly
    _, center, files = _smv_case(tmp_path, 90.0, "b")
    g = consumers.smv_geometry(files[0])
    assert g["header"]["ROTATED_BY_DEG"] == "-90.0000"
    bf, bs = g["beam_index_fast_slow"]
    # the spot 13.3 px from the centre along -y (on the axis) is now along -fast, on the centre's row
    spot = np.argwhere(g["data"] == 60001)
    assert len(spot) == 1
    slow, fast = spot[0]
    assert abs(slow - bs) <= 0.5 and abs(abs(fast - bf) - 13.3) <= 0.7
    # the beam stop moved with the pattern and is still untrusted
    assert np.sum(g["data"] == 0) >= 1 and g["data"][round(bs), round(bf)] == 0
    # an arbitrary axis: interpolated turn about the centre keeps the centre
    turned, new_center = rotate_to_fast_axis(np.ones((1, 48, 48)), center, 33.0)
    assert new_center == pytest.approx(center) and np.isnan(turned[0, 0, 0])


def test_smv_header_keys_the_adsc_reader_requires(tmp_path):
    _, _, files = _smv_case(tmp_path, 0.0, "c")
    size, head = consumers.smv_header(files[0])
    # FormatSMVADSC.understand: every wanted key present, no DTREK_DATE_TIME
    for key in (
        "BEAM_CENTER_X",
        "BEAM_CENTER_Y",
        "DISTANCE",
        "WAVELENGTH",
        "PIXEL_SIZE",
        "OSC_START",
        "OSC_RANGE",
        "SIZE1",
        "SIZE2",
        "BYTE_ORDER",
    ):
        assert key in head
    assert "DTREK_DATE_TIME" not in head and size % 512 == 0
    assert Path(files[0]).stat().st_size == size + 48 * 48 * 2
