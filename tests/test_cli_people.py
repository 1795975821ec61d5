"""Terminal output for people: ``info`` summarises long tilt lists, ``solve`` on a 4D scan names the
command-line route, ``demo --help`` explains itself and every option."""

from __future__ import annotations

import numpy as np
import pytest

from virtual_aperture.cli import build_parser, main
from virtual_aperture.cli.cmd_info import tilt_summary


def test_tilt_summary_first_last_step():
    assert tilt_summary(np.arange(-60, 61, 1.0)) == "121: -60 … +60 deg, step 1"
    assert tilt_summary([0, 10, 20]) == "3: 0, 10, 20 deg"
    assert "irregular steps 1 … 2" in tilt_summary([0, 1, 2, 3, 5, 6, 7, 8, 9, 10])


def test_info_prints_one_line_for_121_tilts(tmp_path, capsys):
    path = tmp_path / "series.npy"
    np.save(path, np.zeros((121, 2, 2, 8, 8), np.uint16))
    angles = [str(a) for a in np.arange(-60, 61, 1.0)]
    assert main(["info", str(path), "--tilt-angles", *angles]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("tilts"))
    assert "121: -60 … +60 deg, step 1" in line and len(line) < 80


def test_solving_a_4d_scan_names_the_cli_route(tmp_path, capsys):
    path = tmp_path / "scan.npy"
    np.save(path, np.zeros((4, 4, 16, 16), np.uint16))
    labels = tmp_path / "labels.npy"
    np.save(labels, np.ones((4, 4), np.int32))
    code = main(
        [
            "solve",
            str(path),
            "--labels",
            str(labels),
            "--grain",
            "1",
            "--pixel-size",
            "0.02",
            "--out",
            str(tmp_path / "g"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "virtual-aperture sum" in err and "virtual-aperture index" in err and "index_zone_axis" not in err


@pytest.mark.parametrize("command", ["demo", "propose", "solve", "info"])
def test_help_has_a_description_and_every_option_a_help_text(command):
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    p = sub.choices[command]
    assert p.description and len(p.description) > 40
    missing = [a.dest for a in p._actions if a.dest != "help" and not a.help]
    assert not missing, missing
