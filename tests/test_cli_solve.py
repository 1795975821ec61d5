"""``virtual-aperture solve``: a saved tilt series + a labels TIFF → solved structure and its files."""

import json

import numpy as np
import pytest
import tifffile
from test_workflow import SAMPLE

from virtual_aperture import simulate_agglomerate
from virtual_aperture.cli import main
from virtual_aperture.io import save_dataset


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("solve")
    ds, truth = simulate_agglomerate(**SAMPLE)
    save_dataset(ds, d / "tilts.zarr")
    tifffile.imwrite(d / "labels.tif", truth.exclusive_labels())
    return d


def test_solve_writes_the_structure_and_the_frames(saved, capsys):
    out = saved / "grain1"
    code = main(
        [
            "solve",
            str(saved / "tilts.zarr"),
            "--labels",
            str(saved / "labels.tif"),
            "--grain",
            "1",
            "--composition",
            "TiO2",
            "--descan",
            "--out",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    assert "solved" in text and ("P b c a" in text or "P c a b" in text)
    for name in (
        "structure.cif",
        "potential.ccp4",
        "report.json",
        "structure.ins",
        "structure.res",
        "structure.hkl",
        "reflections.cif",
        "frames.mrc",
    ):
        assert (out / name).stat().st_size > 0, name
    rep = json.loads((out / "report.json").read_text())
    assert rep["converged"] and rep["r1"] < 0.25 and len(rep["atoms"]) == 3
    # the exported .ins + .hkl are a valid input of `phase` (SHELXT-style), which solves them again
    code = main(["phase", str(out / "structure.ins"), "--out", str(saved / "again")])
    assert code == 0
    assert json.loads((saved / "again" / "report.json").read_text())["converged"]
    # never overwrites silently
    assert (
        main(
            [
                "solve",
                str(saved / "tilts.zarr"),
                "--labels",
                str(saved / "labels.tif"),
                "--grain",
                "1",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--labels", "missing.tif", "--grain", "1"], "not found"),
        (["--labels", "{labels}", "--grain", "9"], "grain 9 is not in the labels"),
        (["--labels", "{bad_labels}", "--grain", "1"], "labels have shape"),
        (["--labels", "{labels}", "--grain", "1", "--known-cell", "1 2 x"], "--known-cell"),
        (["--labels", "{labels}", "--grain", "1", "--composition", "Qq2"], "Qq"),
        (["--labels", "{labels}", "--grain", "1", "--max-lattices", "0"], "--max-lattices"),
    ],
)
def test_solve_bad_input_exits_2_with_one_line(saved, capsys, args, message):
    np.save(saved / "bad.npy", np.ones((3, 3), np.int32))
    args = [a.format(labels=saved / "labels.tif", bad_labels=saved / "bad.npy") for a in args]
    code = main(["solve", str(saved / "tilts.zarr"), *args, "--out", str(saved / "bad_out")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("extra, expected", [([], 1), (["--max-lattices", "2"], 2)])
def test_solve_passes_max_lattices_to_the_chain(saved, capsys, monkeypatch, extra, expected):
    import virtual_aperture.workflow as workflow

    seen = {}

    def fake_solve_grain(*args, **kwargs):
        seen.update(kwargs)
        raise ValueError("stopped after the arguments were seen")

    monkeypatch.setattr(workflow, "solve_grain", fake_solve_grain)
    args = ["solve", str(saved / "tilts.zarr"), "--labels", str(saved / "labels.tif"), "--grain", "1"]
    assert main([*args, *extra, "--out", str(saved / "ml_out")]) == 2
    assert "stopped after" in capsys.readouterr().err and seen["max_lattices"] == expected
