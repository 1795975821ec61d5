"""``make demo`` runs ``virtual-aperture demo``: the images of the 4D sample, then a tilt series from
grain proposals to a solved structure, reported against the truth."""

import json

from virtual_aperture.cli import main


def test_demo_solves_the_sample_and_reports_against_the_truth(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--scan", "32", "32", "--grains", "4"])
    text = capsys.readouterr().out
    assert code == 0, text
    for name in ("bright_field", "annular_dark_field", "mean_pattern"):
        assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.tif").stat().st_size > 0
    summary = json.loads((out / "demo.json").read_text())
    ts = summary["tilt_series"]
    assert ts["solved"] and ts["r1"] < 0.25
    assert ts["grain_iou_with_truth"] > 0.85
    cmp = ts["comparison"]
    assert max(abs(v) for v in cmp["cell_error_percent"]) < 0.5
    assert cmp["orientation_error_deg"] < 0.5
    errs = cmp["atom_errors_A"]
    assert errs["site 1 (Ti)"] < 0.2 and all(v < 0.3 for v in errs.values()), errs
    for name in ("structure.cif", "structure.hkl", "structure.ins", "potential.ccp4", "frames.mrc", "report.json"):
        assert (out / f"grain_{ts['grain']}" / name).is_file()
    assert "against the truth" in text and "rerun that grain" in text
