"""Partial results are results: on a coarse, sparse tilt series from the independent generator
`solve` writes the indexing, integration, merged reflections and report and exits 3 when phasing
cannot run; a refusal to index writes the peaks and the reason; bad input leaves no empty folder."""

import json

import numpy as np
import pytest
from generators import kinematic as K

from virtual_aperture.cli import main


@pytest.fixture(scope="module")
def coarse(tmp_path_factory):
    d = tmp_path_factory.mktemp("coarse")
    cr = K.CRYSTALS["cF"]
    S = K.tilt_series([cr, cr], tilts=(-40, 40, 4), seed=3)
    masks = K.grain_masks((8, 8), 2)
    data, _ = K.compose_5d(S, masks, seed=3)
    np.save(d / "tilts.npy", data)
    np.save(d / "labels.npy", np.where(masks[0], 1, 0).astype(np.int32))
    noise = np.random.default_rng(0).poisson(3.0, size=data.shape).astype(np.float32)
    np.save(d / "noise.npy", noise)
    return d, S


def _args(d, S, name):
    return [
        str(d / name),
        "--labels",
        str(d / "labels.npy"),
        "--grain",
        "1",
        "--pixel-size",
        str(S.pixel_size),
        "--beam-energy",
        str(S.kv),
        "--tilt-axis",
        str(S.tilt_axis_deg),
        "--tilt-angles",
        *[str(a) for a in S.tilts_deg],
    ]


def test_unphased_grain_still_writes_its_results(coarse, capsys):
    d, S = coarse
    out = d / "out"
    code = main(["solve", *_args(d, S, "tilts.npy"), "--out", str(out)])
    text = capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    assert (out / "indexing.json").stat().st_size > 0
    assert (out / "frames.mrc").stat().st_size > 0
    idx = json.loads((out / "indexing.json").read_text())
    # the true lattice (on 4° steps its metric may be reported at a lower symmetry, never a false one)
    verdict, why = K.cell_matches(
        np.array(idx["UB"]), S.UB[0], found_centring=idx["lattice"][1], true_centring="F"
    )
    assert verdict in ("right", "inaccurate"), why
    assert idx["confidence"] > 0.5
    if code == 3:  # ran without a solution: the reflections are written all the same
        assert not rep["converged"] and rep["message"]
        assert (out / "structure.hkl").stat().st_size > 0 and (out / "reflections.cif").stat().st_size > 0
    else:
        assert code == 0, text


def test_refusal_to_index_writes_the_peaks_and_the_reason(coarse, capsys):
    d, S = coarse
    out = d / "noise_out"
    code = main(["solve", *_args(d, S, "noise.npy"), "--out", str(out)])
    capsys.readouterr()
    assert code == 3
    rep = json.loads((out / "report.json").read_text())
    assert rep["message"].startswith("cannot index") and not rep["converged"]
    assert (out / "peaks.csv").exists() and (out / "frames.mrc").exists()


def test_bad_input_leaves_no_empty_folder(coarse, capsys):
    d, S = coarse
    out = d / "never"
    args = _args(d, S, "tilts.npy")
    args[args.index("--grain") + 1] = "5"
    code = main(["solve", *args, "--out", str(out)])
    assert code == 2 and "grain 5" in capsys.readouterr().err
    assert not out.exists()
