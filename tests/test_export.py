"""Exports: SHELX hkl/ins, CIF, CCP4, MRC/SMV, JSON report, atomic writes."""

import json
import os

import gemmi
import mrcfile
import numpy as np
import pytest

from virtual_aperture.crystal.atoms import Atom
from virtual_aperture.crystal.export import (
    atomic_path,
    read_hkl,
    read_ins,
    sfac_coefficients,
    shelx_symmetry,
    smv_header,
    write_ccp4_map,
    write_hkl,
    write_ins,
    write_mrc_stack,
    write_reflections_cif,
    write_report,
    write_smv,
    write_structure_cif,
)
from virtual_aperture.crystal.reflections import Reflections

CELL = (7.1, 9.3, 11.2, 90, 90, 90)


def _refl(n=50, seed=0, big=1.0):
    rng = np.random.default_rng(seed)
    hkl = rng.integers(-9, 10, (n, 3))
    hkl[np.all(hkl == 0, axis=1)] = [1, 0, 0]
    i = rng.exponential(500.0, n) * big
    return Reflections(
        hkl, i, np.sqrt(i) + 1, cell=CELL, space_group="P 21 21 21", batch=rng.integers(1, 40, n)
    )


def test_hkl_fixed_columns_round_trip_and_zero_record(tmp_path):
    r = _refl()
    scale = write_hkl(tmp_path / "a.hkl", r)
    lines = (tmp_path / "a.hkl").read_text().splitlines()
    # FORMAT(3I4,2F8.2) without the batch column: SHELXL then reads batch 1 for all (no BASF needed)
    assert all(len(line) == 28 for line in lines[:-1])
    assert lines[-1] == "   0   0   0    0.00    0.00"
    back = read_hkl(tmp_path / "a.hkl", cell=CELL, space_group="P 21 21 21")
    np.testing.assert_array_equal(back.hkl, r.hkl)
    np.testing.assert_allclose(back.intensity, np.round(r.intensity * scale, 2), atol=0.0051)
    np.testing.assert_allclose(back.sigma, np.round(r.sigma * scale, 2), atol=0.0051)
    assert not back.batch.any()
    # the largest value uses the whole F8.2 range: most significant digits kept
    assert max(back.intensity.max(), back.sigma.max()) == pytest.approx(99999.0, abs=0.01)
    h, k, l = int(lines[0][0:4]), int(lines[0][4:8]), int(lines[0][8:12])
    assert (h, k, l) == tuple(r.hkl[0])
    # the batch column only on request
    write_hkl(tmp_path / "b.hkl", r, batch=True)
    lines = (tmp_path / "b.hkl").read_text().splitlines()
    assert all(len(line) == 32 for line in lines[:-1])
    np.testing.assert_array_equal(read_hkl(tmp_path / "b.hkl", cell=CELL).batch, r.batch)


def test_hkl_negative_intensities_fit_f8_2(tmp_path):
    r = _refl()
    r = Reflections(r.hkl, r.intensity - 0.5 * r.intensity.max(), r.sigma, cell=CELL)
    write_hkl(tmp_path / "n.hkl", r)
    lines = (tmp_path / "n.hkl").read_text().splitlines()
    assert all(len(line) == 28 for line in lines[:-1])
    back = read_hkl(tmp_path / "n.hkl", cell=CELL)
    assert back.intensity.min() == pytest.approx(-9999.0, abs=0.01)


def test_hkl_sigma_never_written_as_zero(tmp_path):
    r = _refl()
    r = Reflections(r.hkl, r.intensity, np.where(np.arange(len(r)) % 2, 0.0, r.sigma), cell=CELL)
    write_hkl(tmp_path / "s.hkl", r)
    assert read_hkl(tmp_path / "s.hkl", cell=CELL).sigma.min() == pytest.approx(0.01)


def test_hkl_scales_large_intensities_to_fit(tmp_path):
    r = _refl(big=1e5)
    scale = write_hkl(tmp_path / "b.hkl", r)
    assert scale < 1
    back = read_hkl(tmp_path / "b.hkl", cell=CELL)
    assert back.intensity.max() <= 99999.99
    np.testing.assert_allclose(back.intensity / scale, r.intensity, rtol=1e-3, atol=0.01 / scale)


@pytest.mark.parametrize(
    "sg",
    [
        "P 21 21 21",
        "P 1 21/c 1",
        "C 1 2/c 1",
        "F m -3 m",
        "I 41/a m d:1",
        "R -3 c:H",
        "P 63/m m c",
        "P -1",
        "F -4 3 m",
    ],
)
def test_ins_latt_symm_round_trip(tmp_path, sg):
    g = gemmi.SpaceGroup(sg)
    cell = {
        "cubic": (20.7,) * 3 + (90,) * 3,
        "hexagonal": (5, 5, 8, 90, 90, 120),
        "trigonal": (5, 5, 13, 90, 90, 120),
        "tetragonal": (6, 6, 9, 90, 90, 90),
        "monoclinic": (5, 6, 7, 90, 101, 90),
    }.get(g.crystal_system_str(), (5, 6, 7, 90, 90, 90))
    if g.crystal_system_str() == "triclinic":
        cell = (5, 6, 7, 80, 85, 95)
    write_ins(
        tmp_path / "x.ins",
        cell=cell,
        space_group=sg,
        wavelength=0.0251,
        unit={"C": 8, "O": 4},
        atoms=[Atom("C1", "C", 0.1, 0.2, 0.3, 5.0)],
    )
    info = read_ins(tmp_path / "x.ins")
    assert gemmi.SpaceGroup(info["space_group"]).operations() == g.operations() or sorted(
        op.triplet() for op in gemmi.SpaceGroup(info["space_group"]).operations()
    ) == sorted(op.triplet() for op in g.operations())
    np.testing.assert_allclose(info["cell"], cell, atol=1e-4)
    assert info["unit"] == {"C": 8.0, "O": 4.0}
    text = (tmp_path / "x.ins").read_text()
    latt, symm = shelx_symmetry(sg)
    assert f"LATT {latt}\n" in text
    assert (
        text.index("CELL")
        < text.index("ZERR")
        < text.index("LATT")
        < text.index("SFAC")
        < text.index("UNIT")
        < text.index("HKLF 4")
        < text.index("END")
    )
    # operators as gemmi gives them: the SYMM cards + LATT regenerate the whole group
    gen = [gemmi.Op("x,y,z")] + [gemmi.Op(c[5:].replace(" ", "").lower()) for c in symm]
    assert all(op in list(g.operations()) for op in gen)  # every SYMM card is an operator of the group
    assert len(symm) < len(list(g.operations()))


def test_latt_sign_and_centring():
    assert shelx_symmetry("P 21 21 21")[0] == -1
    assert shelx_symmetry("P 1 21/c 1")[0] == 1
    assert shelx_symmetry("F m -3 m")[0] == 4
    assert shelx_symmetry("F -4 3 m")[0] == -4
    assert shelx_symmetry("C 1 2/c 1")[0] == 7
    assert shelx_symmetry("P 1 21/c 1")[1] == ["SYMM -X, Y+1/2, -Z+1/2"]


def test_sfac_electron_coefficients_fit():
    for el in ("C", "O", "Zr", "Au"):
        a, b, c, err = sfac_coefficients(el)
        assert err < 1e-3
        assert abs(a.sum() + c - gemmi.Element(el).c4322.calculate_sf(0.0)) < 1e-3 * a.sum()


def test_structure_cif_rereads(tmp_path):
    atoms = [
        Atom("Ti1", "Ti", 0.1289, 0.0972, 0.8628, 9.0, 8, 1.0, 0.41),
        Atom("O1", "O", 0.0095, 0.1491, 0.1835, 4.0, 8, 1.0, 0.63),
    ]
    write_structure_cif(
        tmp_path / "s.cif",
        atoms,
        cell=(9.17, 5.45, 5.14, 90, 90, 90),
        space_group="P b c a",
        wavelength=0.0251,
        z=8,
        extra={"_refine_ls_R_factor_all": 0.12},
    )
    st = gemmi.read_small_structure(str(tmp_path / "s.cif"))
    assert [s.label for s in st.sites] == ["Ti1", "O1"]
    assert st.spacegroup.hm == "P b c a"
    assert abs(st.cell.a - 9.17) < 1e-6
    assert abs(st.sites[0].fract.x - 0.1289) < 1e-6
    # the atom's total B, not a clamped or overall one
    assert st.sites[0].u_iso * 8 * np.pi**2 == pytest.approx(0.41, abs=1e-4)
    block = gemmi.cif.read(str(tmp_path / "s.cif")).sole_block()
    assert block.find_value("_diffrn_radiation_probe") == "electron"
    assert block.find_value("_cell_formula_units_Z") == "8"
    assert gemmi.cif.as_string(block.find_value("_chemical_formula_sum")) == "O Ti"
    assert gemmi.cif.as_string(block.find_value("_space_group_name_Hall")) == "-P 2ac 2ab"
    assert float(block.find_value("_cell_volume")) == pytest.approx(9.17 * 5.45 * 5.14, rel=1e-5)
    assert block.find_value("_symmetry_space_group_name_H-M") is None
    assert list(block.find_loop("_atom_type_symbol")) == ["O", "Ti"]
    assert "4.3.2.2" in block.find_loop("_atom_type_scat_source")[0]


def test_reflections_cif(tmp_path):
    r = _refl(20)
    write_reflections_cif(tmp_path / "r.cif", r)
    block = gemmi.cif.read(str(tmp_path / "r.cif")).sole_block()
    h = [int(v) for v in block.find_loop("_refln_index_h")]
    assert h == r.hkl[:, 0].tolist()
    assert float(block.find_value("_cell_length_b")) == pytest.approx(9.3)


def test_ccp4_rereads_with_cell_and_grid(tmp_path):
    m = np.random.default_rng(0).normal(size=(24, 30, 36)).astype(np.float32)
    write_ccp4_map(tmp_path / "m.ccp4", m, cell=CELL, space_group="P 21 21 21")
    back = gemmi.read_ccp4_map(str(tmp_path / "m.ccp4"))
    assert back.grid.shape == (24, 30, 36)
    assert back.grid.unit_cell.parameters == pytest.approx(CELL, abs=1e-4)
    np.testing.assert_allclose(np.array(back.grid), m)


def test_mrc_stack_keeps_calibration_out_of_the_voxel_size(tmp_path):
    frames = np.random.default_rng(1).integers(0, 1000, (3, 32, 40)).astype(np.float32)
    write_mrc_stack(
        tmp_path / "f.mrc",
        frames,
        pixel_size=0.01,
        tilt_angles_deg=[-1, 0, 1],
        wavelength=0.02508,
        tilt_axis_deg=30.0,
    )
    with mrcfile.open(tmp_path / "f.mrc") as mrc:
        assert mrc.data.shape == (3, 32, 40)
        # Å/px field: diffraction frames have no real-space sampling (never the Å⁻¹/px calibration)
        assert mrc.voxel_size.x == 0
        # FEI2 extended header, one record per frame, as dxtbx FormatMRC._extend_header reads it:
        # "Alpha tilt" (deg), "Pixel size X/Y" (reciprocal, 1/m), "HT" (V), "Tilt axis angle" (deg)
        assert mrc.header.exttyp.tobytes() == b"FEI2"
        xh = mrc.indexed_extended_header
        assert len(xh) == 3
        np.testing.assert_allclose(xh["Alpha tilt"], [-1, 0, 1])
        assert xh["Tilt per image"][0] == pytest.approx(1.0)  # FEI2 items (FormatMRC, exttyp FEI2)
        assert (xh["Start tilt angle"][0], xh["End tilt angle"][0]) == (-1, 1)
        assert xh["Pixel size X"][0] == xh["Pixel size Y"][0] == pytest.approx(0.01 * 1e10)
        assert xh["HT"][0] == pytest.approx(200e3, rel=1e-3)  # 0.02508 Å = 200 kV
        # dxtbx: axis = (0, -1, 0) rotated about the beam by "Tilt axis angle"; ours 30° from +x
        assert xh["Tilt axis angle"][0] == pytest.approx(60.0)
        assert b"tilts -1.000 to 1.000" in mrc.header.label[1].tobytes()


def test_smv_headers_and_frames(tmp_path):
    frames = np.random.default_rng(1).integers(0, 1000, (3, 32, 40)).astype(np.float64)
    files = write_smv(
        tmp_path,
        frames,
        tilt_angles_deg=[-1.0, 0.0, 1.0],
        wavelength=0.0251,
        pixel_size=0.01,
        center=(16.0, 20.0),
        physical_pixel_mm=0.055,
    )
    raw = files[1].read_bytes()
    head = raw[:512].decode("ascii")
    # ADSC: BEAM_CENTER_X is the slow (row) coordinate, BEAM_CENTER_Y the fast one, mm from the pixel corner
    for key in (
        "HEADER_BYTES=512;",
        "DISTANCE=",
        "PIXEL_SIZE=0.055000;",
        "WAVELENGTH=0.025100;",
        "OSC_START=-0.5000;",
        "OSC_RANGE=1.0000;",
        "BEAM_CENTER_X=0.90750;",
        "BEAM_CENTER_Y=1.12750;",
        "SIZE1=40;",
        "SIZE2=32;",
        "IMAGE_PEDESTAL=1;",
    ):
        assert key in head
    dist = float(head.split("DISTANCE=")[1].split(";")[0])
    assert dist == pytest.approx(0.055 / (0.0251 * 0.01), rel=1e-4)
    data = np.frombuffer(raw[512:], dtype="<u2").reshape(32, 40)
    np.testing.assert_array_equal(data, frames[1] + 1)  # + pedestal: 0 stays free for "no data"
    with pytest.raises(ValueError, match="uint16"):
        write_smv(
            tmp_path,
            frames * 100,
            tilt_angles_deg=[0, 1, 2],
            wavelength=0.0251,
            pixel_size=0.01,
            center=(16, 20),
            prefix="big",
        )
    assert "DISTANCE" in smv_header(
        (4, 4), wavelength=0.02, pixel_size=0.01, center=(2, 2), osc_start=0, osc_range=1
    )


def test_report_json_with_nan(tmp_path):
    write_report(tmp_path / "r.json", {"r1": np.float64(0.12), "x": float("nan"), "a": np.arange(3)})
    d = json.loads((tmp_path / "r.json").read_text())
    assert d == {"r1": 0.12, "x": None, "a": [0, 1, 2]}


def test_refuses_to_overwrite_and_never_leaves_partial_files(tmp_path):
    target = tmp_path / "a.hkl"
    write_hkl(target, _refl())
    before = target.read_bytes()
    with pytest.raises(FileExistsError, match="a.hkl"):
        write_hkl(target, _refl(seed=1))
    assert target.read_bytes() == before
    write_hkl(target, _refl(seed=1), overwrite=True)
    assert target.read_bytes() != before
    # a writer failing half way leaves neither the target nor a temporary file
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "c.txt") as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert sorted(os.listdir(tmp_path)) == ["a.hkl"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_hkl(tmp_path / "u.hkl", _refl())
        write_ccp4_map(tmp_path / "u.ccp4", np.zeros((4, 4, 4)), cell=CELL)
        write_mrc_stack(tmp_path / "u.mrc", np.zeros((2, 4, 4)))
    finally:
        os.umask(old)
    for name in ("u.hkl", "u.ccp4", "u.mrc"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_read_hkl_errors(tmp_path):
    (tmp_path / "bad.hkl").write_text("this is not hkl\n")
    with pytest.raises(ValueError, match="bad.hkl, line 1"):
        read_hkl(tmp_path / "bad.hkl", cell=CELL)
    with pytest.raises(ValueError, match="cannot read"):
        read_hkl(tmp_path / "missing.hkl", cell=CELL)
