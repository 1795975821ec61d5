"""``make demo`` runs ``virtual-aperture demo``: the images of the 4D sample, then a tilt series from
grain proposals to a solved structure, reported against the truth."""

import json

from virtual_aperture.cli import main


def test_demo_solves_the_sample_and_reports_against_the_truth(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--scan", "32", "32", "--grains", "4"])
    text = capsys.readouterr().out
    assert code == 0, text
    from PIL import Image

    from virtual_aperture.cli._images import read_calibration

    for name, unit in (("bright_field", "nm"), ("annular_dark_field", "nm"), ("mean_pattern", "1/A")):
        w, h = Image.open(out / f"{name}.png").size
        assert w >= 500 and h >= 400  # a figure (axes, colour bar, title), not a 32×32 raw dump
        cal = read_calibration(out / f"{name}.tif")  # what Fiji shows: pixel size and unit
        assert cal["unit"] == unit and cal["pixel"] > 0 and cal["info"]["name"] == name
    assert read_calibration(out / "grains.tif")["unit"] == "nm"
    summary = json.loads((out / "demo.json").read_text())
    ts = summary["tilt_series"]
    assert ts["solved"] and ts["r1"] < 0.25
    assert ts["grain_iou_with_truth"] > 0.85
    cmp = ts["comparison"]
    assert max(abs(v) for v in cmp["cell_error_percent"]) < 0.5
    assert cmp["orientation_error_deg"] < 0.5
    errs = cmp["atom_errors_A"]
    assert errs["site 1 (Ti)"] < 0.2 and all(v < 0.3 for v in errs.values()), errs
    for name in (
        "structure.cif",
        "structure.hkl",
        "structure.ins",
        "potential.ccp4",
        "frames.mrc",
        "report.json",
        "report.html",
    ):
        assert (out / f"grain_{ts['grain']}" / name).is_file()
    assert "against the truth" in text and "rerun that grain" in text
