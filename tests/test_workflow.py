"""One grain end to end (``virtual_aperture.workflow``) on the simulated brookite tilt series:
sums → peaks → indexing → integration → space group → merging → charge flipping → atoms → files."""

import json

import numpy as np
import pytest

from virtual_aperture import simulate_agglomerate
from virtual_aperture.crystal.calibrate import calibrate_descan
from virtual_aperture.crystal.compare import match_to_reference, reference_sites
from virtual_aperture.sample import structures
from virtual_aperture.workflow import grain_tilts, solve_grain, write_grain

from builders import BROOKITE_SERIES

SAMPLE = BROOKITE_SERIES


@pytest.fixture(scope="module")
def solved():
    ds, truth = simulate_agglomerate(**SAMPLE)
    cal, _ = calibrate_descan(ds)
    ds = ds.with_calibration(center=cal.center, extra=cal.extra)
    labels = truth.exclusive_labels()
    stages = []
    res = solve_grain(ds, labels, 1, composition="TiO2", progress=lambda s, d, t: stages.append(s))
    return ds, truth, labels, res, stages


def in_truth_setting(res, truth, grain):
    """Found atoms transformed into the truth's cell setting (h_true = M h_found ⇒ x_true = M⁻ᵀ x_found)."""
    M = np.rint(np.linalg.inv(truth.UB[grain - 1]) @ res.indexing.UB)
    assert abs(abs(np.linalg.det(M)) - 1) < 1e-6
    Minv_T = np.linalg.inv(M).T
    return [(a.element, Minv_T @ np.array(a.xyz)) for a in res.solution.atoms]


def test_grain_solved_from_its_summed_tilt_series(solved):
    ds, truth, labels, res, stages = solved
    assert set(stages) == {"sum", "peaks", "index", "integrate", "phase"}
    assert sorted(res.indexing.cell[:3]) == pytest.approx(sorted(truth.cell[:3]), rel=5e-3)
    assert res.indexing.indexed_fraction > 0.9
    # the space group was found ab initio (Pbca in whichever axis setting indexing chose)
    assert res.symmetry["chosen_by"] == "suggested"
    assert res.symmetry["laue"] == "mmm"
    # brookite's absences single out one group (UiO-66's leave F432, F-43m and Fm-3m tied)
    assert res.symmetry["equally_consistent"] == [res.symmetry["candidates"][0]["space_group"]]
    import gemmi

    assert gemmi.SpaceGroup(res.space_group).number == 61
    sol = res.solution
    assert res.solved, sol.message
    assert sol.r1 < 0.25
    assert sorted(a.element for a in sol.atoms) == ["O", "O", "Ti"]
    line = next(s for s in res.summary().splitlines() if s.startswith("solved"))
    assert line.count("solved") == 1 and line.count("R1") == 1, line  # not "solved: solved: …"
    sites, cell, sg = reference_sites(structures.STRUCTURE_DIR / "brookite.cif")
    found = in_truth_setting(res, truth, 1)
    dist = match_to_reference(found, sites, cell, sg)
    heavy = np.array([e == "Ti" for e, _ in sites])
    assert np.all(dist[heavy] < 0.2) and np.all(dist[~heavy] < 0.3), dist


def test_grain_files_for_crystallographers(solved, tmp_path):
    *_, res, _ = solved
    paths = write_grain(res, tmp_path)
    names = {p.name for p in paths}
    assert {
        "structure.cif",
        "potential.ccp4",
        "report.json",
        "structure.ins",
        "structure.res",
        "structure.hkl",
        "reflections.cif",
        "frames.mrc",
    } <= names
    assert len(list((tmp_path / "smv").glob("frame_*.img"))) == len(res.tilts)
    rep = json.loads((tmp_path / "report.json").read_text())
    for key in (
        "cell",
        "space_group",
        "converged",
        "r1",
        "atoms",
        "indexing",
        "merging",
        "symmetry",
        "timings_s",
    ):
        assert key in rep
    assert rep["converged"] and {"label", "element", "x", "y", "z", "height"} <= set(rep["atoms"][0])
    ins = (tmp_path / "structure.ins").read_text().splitlines()
    zerr = next(line for line in ins if line.startswith("ZERR")).split()
    assert len(zerr) == 8 and int(zerr[1]) == 8  # Z = 8 TiO2 in the brookite cell, six esds
    hkl = (tmp_path / "structure.hkl").read_text().splitlines()
    assert hkl[-1].split()[:3] == ["0", "0", "0"] and len(hkl) == len(res.reflections) + 1
    assert rep["exports"]["hkl_scale"] > 0 and all(len(line) == 28 for line in hkl[:-1])  # no batch column
    # read back by independent programs: cctbx R1 of the exported model, the ADSC header as dxtbx reads it
    import consumers

    by_res, check = consumers.cctbx_batch(
        [
            ("recompute_r1", tmp_path / "structure.res", tmp_path / "reflections.cif"),
            ("check_cif", tmp_path / "structure.cif"),
        ]
    )
    assert check["errors"] == 0 and abs(by_res["r1"] - rep["r1"]) < 0.01, (by_res["r1"], rep["r1"])
    g = consumers.smv_geometry(tmp_path / "smv" / "frame_00001.img")
    assert float(g["header"]["ROTATED_BY_DEG"]) == pytest.approx(-res.indexing.tilt_axis_deg, abs=1e-3)
    assert (g["data"] == 0).any()  # the beam stop: outside the ADSC trusted range
    with pytest.raises(FileExistsError, match="already exists"):
        write_grain(res, tmp_path)


def test_grain_report_is_one_self_contained_page(solved, tmp_path):
    """report.html: figures embedded as PNG (no external resource), the aperture strip, every
    number of report.json, the space-group candidates, the atoms and the rerun command."""
    import base64
    import io
    import re

    from PIL import Image

    from virtual_aperture.report import ReportContext, strip_images

    ds, truth, labels, res, _ = solved
    ctx = ReportContext(
        images=strip_images(ds, res.tilts),
        labels=labels,
        scan_step_nm=ds.calibration.scan_step_nm,
        command="virtual-aperture solve data.zarr --grain 1",
        source="simulated brookite",
    )
    write_grain(res, tmp_path, context=ctx)
    page = (tmp_path / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(?!data:)[a-z]+:""", page)  # nothing fetched from anywhere
    assert "<script" not in page and "<link" not in page
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(pngs) == 5 and "not drawn" not in page  # strip, patterns, reciprocal, merging, solution
    for b in pngs:
        w, h = Image.open(io.BytesIO(base64.b64decode(b))).size
        assert w > 600 and h > 250
    assert "virtual-aperture solve data.zarr --grain 1" in page
    rep = json.loads((tmp_path / "report.json").read_text())
    assert f"{rep['merging']['overall']['cc_half']:.4g}" in page and rep["space_group"] in page
    assert all(c["space_group"] in page for c in rep["symmetry"]["candidates"])
    assert all(f"{a['x']:.4g}" in page for a in rep["atoms"])
    assert "timings_s.phase" in page and "indexing.rmsd_px" in page  # the flattened report.json


def test_tilt_run_of_a_grain():
    lab = np.zeros((8, 4, 4), np.int32)
    lab[[0, 2, 3, 4, 6], :2, :2] = 5
    run, pos = grain_tilts(lab, 5, 8, min_positions=1)
    assert run.tolist() == [2, 3, 4] and pos.tolist() == [4, 4, 4]
    run, _ = grain_tilts(lab[0], 5, 8)  # one label image for every tilt
    assert run.tolist() == list(range(8))


def test_bad_input_is_refused_clearly(solved):
    ds, truth, labels, *_ = solved
    with pytest.raises(ValueError, match="tilt series"):
        solve_grain(ds.tilt(0), labels[0], 1)
    with pytest.raises(ValueError, match="labels have shape"):
        solve_grain(ds, labels[:, :10], 1)
    with pytest.raises(ValueError, match="grain 7 is not in the labels"):
        solve_grain(ds, labels, 7)
    with pytest.raises(ValueError, match="must be integers"):
        solve_grain(ds, labels.astype(float), 1)
    few = np.zeros_like(labels)
    few[60:63] = labels[60:63]
    with pytest.raises(ValueError, match="only 3 consecutive tilts"):
        solve_grain(ds, few, 1)
    with pytest.raises(ValueError):
        solve_grain(ds, labels, 1, composition="Xq2")
    with pytest.raises(ValueError, match="pixel size"):
        solve_grain(ds.with_calibration(pixel_size=None), labels, 1)
