"""``virtual-aperture propose`` on a saved simulated sample."""

from __future__ import annotations

import json

import numpy as np
import tifffile

from virtual_aperture.cli import main
from virtual_aperture.sample import simulate_agglomerate


def test_cli_propose_writes_labels(tmp_path, capsys):
    ds, tr = simulate_agglomerate(n_grains=4, scan_shape=(32, 32), detector_shape=(64, 64), seed=3, dose=3e4)
    path = tmp_path / "scan.npy"
    np.save(path, ds.data.compute())
    out = tmp_path / "labels.tif"
    assert main(["propose", str(path), "--out", str(out), "--min-size", "10", "--scan-step", "0.5"]) == 0
    labels = tifffile.imread(out)
    assert labels.shape == (32, 32) and labels.dtype.kind in "iu"
    with tifffile.TiffFile(out) as tif:  # Fiji reads the scale: ImageJ unit + pixels per unit
        assert tif.imagej_metadata["unit"] == "nm"
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == np.float32(0.5)
    text = capsys.readouterr().out
    assert len(text) < 2000 and "{" not in text  # a short table for people, not a JSON blob
    table = text.strip().splitlines()
    assert table[1].split()[:2] == ["grain", "tilts"]
    record = json.loads(out.with_suffix(".json").read_text())
    rows = record["per_tilt"]
    assert {r["grain"] for r in rows} == set(np.unique(labels[labels > 0]).tolist())
    assert len(rows) >= 3 and len(table) == 2 + len(rows)  # one line per grain (one tilt)
    # grains sit on crystals, vacuum stays 0
    assert (tr.labels[labels > 0] > 0).mean() > 0.9


def test_cli_propose_bad_parameters(tmp_path, capsys):
    path = tmp_path / "scan.npy"
    np.save(path, np.zeros((4, 4, 16, 16), np.float32))
    assert main(["propose", str(path), "--out", str(tmp_path / "l.tif"), "--min-size", "0"]) == 2
    assert "min_size" in capsys.readouterr().err
    assert main(["propose", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "l.tif")]) == 2
