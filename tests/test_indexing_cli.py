"""``virtual-aperture index`` on a rendered synthetic tilt series; bad input gives exit code 2."""

import json

import numpy as np
import pytest
import tifffile

from virtual_aperture.cli import main

from builders import render_spot_series

CELL = (5.2, 5.5, 9.2, 90, 90, 90)


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory):
    frames = render_spot_series(2, np.arange(-30, 30.1, 2.0), CELL)
    path = tmp_path_factory.mktemp("idx") / "sums.tif"
    tifffile.imwrite(path, frames)
    return path


def test_cli_index_writes_peaks_and_cell(stack_file, tmp_path, capsys):
    out = tmp_path / "res"
    code = main(
        [
            "index",
            str(stack_file),
            "--tilts",
            "-30",
            "30",
            "2",
            "--tilt-axis",
            "14",
            "--pixel-size",
            "0.015",
            "--kv",
            "300",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    res = json.loads((out / "indexing.json").read_text())
    assert res["lattice"] == "oP"
    assert sorted(res["cell"][:3]) == pytest.approx(sorted(CELL[:3]), rel=5e-3)
    assert res["indexed_fraction"] > 0.9 and res["tilt_axis_deg"] == pytest.approx(15.0, abs=0.5)
    lines = (out / "peaks.csv").read_text().splitlines()
    assert lines[0].split(",")[-1] == "hkl" and len(lines) - 1 == res["n_peaks"]
    assert (out / "predicted.csv").read_text().count("\n") > 31
    # known cell given as numbers
    code = main(
        [
            "index",
            str(stack_file),
            "--tilts",
            "-30",
            "30",
            "2",
            "--tilt-axis",
            "14",
            "--pixel-size",
            "0.015",
            "--cell",
            "5.5",
            "9.2",
            "5.2",
            "90",
            "90",
            "90",
            "--out",
            str(out),
            "--overwrite",
        ]
    )
    assert code == 0
    code = main(
        ["index", str(stack_file), "--tilts", "-30", "30", "2", "--pixel-size", "0.015", "--out", str(out)]
    )
    assert code == 2 and "already exists" in capsys.readouterr().err  # never overwritten silently
    assert json.loads((out / "indexing.json").read_text())["cell"] == pytest.approx(
        [5.5, 9.2, 5.2, 90, 90, 90], rel=5e-3
    )


def test_cli_index_errors(stack_file, tmp_path, capsys):
    base = ["--pixel-size", "0.015", "--out", str(tmp_path / "o")]
    assert main(["index", str(tmp_path / "missing.tif"), "--tilts", "0", *base]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["index", str(stack_file), "--tilts", "1", "2", *base]) == 2
    assert "--tilts" in capsys.readouterr().err
    noise = tmp_path / "noise.npy"
    np.save(noise, np.random.default_rng(0).poisson(5.0, (4, 64, 64)).astype(float))
    assert main(["index", str(noise), "--tilts", "0", "6", "2", *base]) == 2
    assert "cannot index" in capsys.readouterr().err
    assert main(["index", str(stack_file), "--tilts", "-30", "30", "2", "--cell", "1", "2", *base]) == 2
    assert "six numbers" in capsys.readouterr().err
