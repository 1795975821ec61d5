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


@pytest.fixture(scope="module")
def contaminated(tmp_path_factory):
    """A dominant aP crystal and a weaker mC neighbour summed in one aperture (the independent
    generator, as tests/test_multi_lattice.py)."""
    from generators import kinematic as K

    S = K.tilt_series([K.CRYSTALS["aP"], K.CRYSTALS["mC"]], tilts=(-30, 30, 2), seed=3)
    pats = S.patterns[0] / S.patterns[0].max() + 0.5 * S.patterns[1] / S.patterns[1].max()
    pats = np.random.default_rng(0).poisson(pats * 1e4 / pats.max() + 0.5).astype(float)
    path = tmp_path_factory.mktemp("two") / "sums.npy"
    np.save(path, pats)
    return S, path


def test_cli_index_max_lattices(contaminated, tmp_path, capsys):
    from generators import kinematic as K

    S, path = contaminated
    base = ["index", str(path), "--tilts", "-30", "30", "2", "--tilt-axis", str(S.tilt_axis_deg)]
    base += ["--pixel-size", str(S.pixel_size), "--kv", str(S.kv)]
    assert main([*base, "--out", str(tmp_path / "one")]) == 0
    one = json.loads((tmp_path / "one" / "indexing.json").read_text())
    assert len(one["lattices"]) <= 1
    capsys.readouterr()
    assert main([*base, "--max-lattices", "3", "--out", str(tmp_path / "three")]) == 0
    assert "lattice 2 (not integrated)" in capsys.readouterr().out
    res = json.loads((tmp_path / "three" / "indexing.json").read_text())
    assert len(res["lattices"]) == 2
    first, second = res["lattices"]
    assert first["n_peaks"] > second["n_peaks"] > 12 and not set(first["peaks"]) & set(second["peaks"])
    assert K.cell_matches(np.array(res["UB"]), S.UB[0], found_centring=res["lattice"][1])[0] != "false"
    assert main([*base, "--max-lattices", "0", "--out", str(tmp_path / "zero")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--max-lattices must be 1 or more" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "zero").exists()
