"""`virtual-aperture phase` end to end on a small simulated data set."""

import json
import os
import subprocess
import sys

import consumers
import gemmi
import pytest

from virtual_aperture.cli import main
from virtual_aperture.crystal.export import write_hkl, write_ins
from virtual_aperture.crystal.solve import simulate_reflections

from builders import P212121_CELL

CELL = P212121_CELL


@pytest.fixture(scope="module")
def hkl_file(tmp_path_factory, p212121_structure):
    refl = simulate_reflections(p212121_structure, d_min=0.8, tilt_range_deg=35, noise=0.05, seed=2)
    d = tmp_path_factory.mktemp("data")
    write_hkl(d / "org.hkl", refl)
    write_ins(
        d / "org.ins",
        cell=CELL,
        space_group="P 21 21 21",
        wavelength=0.0251,
        unit={"S": 4, "O": 8, "N": 4, "C": 16},
    )
    return d / "org.hkl"


def test_phase_hkl_writes_outputs(hkl_file, tmp_path, capsys):
    out = tmp_path / "out"
    old = os.umask(0o027)
    try:
        code = main(
            [
                "phase",
                str(hkl_file),
                "--cell",
                *map(str, CELL),
                "--space-group",
                "P212121",
                "--composition",
                "S O2 N C4 H6",
                "--starts",
                "3",
                "--seed",
                "0",
                "--out",
                str(out),
            ]
        )
    finally:
        os.umask(old)
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.count("solved") == 1 and "solved: solved" not in printed, printed
    rep = json.loads((out / "report.json").read_text())
    for key in ("cell", "space_group", "converged", "r1", "atoms", "phasing", "refinement"):
        assert key in rep
    assert rep["converged"] and rep["r1"] < 0.25
    assert {"label", "element", "x", "y", "z", "height", "b_iso"} <= set(rep["atoms"][0])
    st = gemmi.read_small_structure(str(out / "structure.cif"))
    assert len(st.sites) == len(rep["atoms"]) == 8
    m = gemmi.read_ccp4_map(str(out / "potential.ccp4"))
    assert m.grid.unit_cell.a == pytest.approx(7.1)
    res = (out / "structure.res").read_text()
    assert "HKLF 4" in res
    # hydrogen of the composition stays in SFAC/UNIT (cell contents, Z = 4); unknown esds are zeros
    lines = res.splitlines()
    sfac = [line.split()[1] for line in lines if line.startswith("SFAC")]
    unit = dict(zip(sfac, next(line for line in lines if line.startswith("UNIT")).split()[1:]))
    assert unit == {"S": "4", "O": "8", "N": "4", "C": "16", "H": "24"}
    assert next(line for line in lines if line.startswith("ZERR")).split()[2:] == ["0.00000"] * 6
    # files honour the umask (0o027 → 0o640), not mkstemp's 0600
    for name in ("structure.res", "structure.cif", "report.json", "potential.ccp4", "reflections.cif"):
        assert (out / name).stat().st_mode & 0o777 == 0o640, name
    # an independent program gets the reported R1 from the exported model and merged data
    by_cif, by_res, check = consumers.cctbx_batch(
        [
            ("recompute_r1", out / "structure.cif", out / "reflections.cif"),
            ("recompute_r1", out / "structure.res", out / "reflections.cif"),
            ("check_cif", out / "structure.cif"),
        ]
    )
    assert check["errors"] == 0, check["messages"]
    assert abs(by_cif["r1"] - rep["r1"]) < 0.01 and abs(by_res["r1"] - rep["r1"]) < 0.01, (
        by_cif,
        by_res,
        rep["r1"],
    )
    assert by_res["cell"] == pytest.approx(CELL) and len(by_res["scatterers"]) == 8
    with capsys.disabled():
        print(
            f"\norganic P212121: reported R1 {rep['r1']:.4f}, cctbx from structure.cif {by_cif['r1']:.4f}, "
            f"from structure.res {by_res['r1']:.4f}"
        )
    # refuses to overwrite without --overwrite
    code = main(
        ["phase", str(hkl_file), "--cell", *map(str, CELL), "--space-group", "P212121", "--out", str(out)]
    )
    assert code == 2 and "already exists" in capsys.readouterr().err


def test_phase_ins_reads_cell_symmetry_and_unit(hkl_file, tmp_path):
    out = tmp_path / "ins_out"
    code = main(
        ["phase", str(hkl_file.with_suffix(".ins")), "--starts", "3", "--seed", "1", "--out", str(out)]
    )
    assert code == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["space_group"] == "P 21 21 21" and rep["converged"]
    assert rep["composition"].startswith("S4")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cell", "7.1", "9.3", "11.2", "90", "90", "90"], "required"),
        (["--cell", "7.1", "9.3", "11.2", "90", "90", "90", "--space-group", "P 4 2 2"], "does not fit"),
        (["--cell", "7.1", "9.3", "11.2", "90", "90", "90", "--space-group", "F 2 2 2"], "centring"),
        (["--cell", "7.1", "9.3", "11.2", "90", "90", "90", "--space-group", "Q 9"], "unknown space group"),
        (
            [
                "--cell",
                "7.1",
                "9.3",
                "11.2",
                "90",
                "90",
                "90",
                "--space-group",
                "P212121",
                "--composition",
                "Xq2",
            ],
            "unknown element",
        ),
    ],
)
def test_phase_bad_input_exits_nonzero(hkl_file, tmp_path, capsys, args, message):
    code = main(["phase", str(hkl_file), *args, "--out", str(tmp_path / "o")])
    assert code == 2
    assert message in capsys.readouterr().err


def test_phase_unreadable_and_too_few(tmp_path, capsys):
    bad = tmp_path / "bad.hkl"
    bad.write_bytes(b"\x00\xff garbage")
    assert main(["phase", str(bad), "--cell", *map(str, CELL), "--space-group", "P1"]) == 2
    assert "bad.hkl" in capsys.readouterr().err
    few = tmp_path / "few.hkl"
    few.write_text(
        "   1   0   0  100.00    1.00\n   0   1   1   50.00    1.00\n   0   0   0    0.00    0.00\n"
    )
    assert main(["phase", str(few), "--cell", *map(str, CELL), "--space-group", "P1"]) == 2
    assert "too few" in capsys.readouterr().err
    assert main(["phase", str(tmp_path / "nope.hkl"), "--cell", *map(str, CELL), "--space-group", "P1"]) == 2


def test_console_entry_point_help():
    res = subprocess.run(
        [sys.executable, "-m", "virtual_aperture.cli", "phase", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0 and "--space-group" in res.stdout and "--scheduler" in res.stdout
