"""Every grain of an acquisition (``virtual_aperture.batch``, ``solve --all``) and the phase /
orientation maps (``virtual_aperture.grains.phases``)."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

import virtual_aperture as va
from virtual_aperture.grains.phases import (
    beam_direction,
    group_by_cell,
    orientation_colours,
    orientation_map,
    phase_map,
)

SAMPLE = dict(
    structure="brookite",
    n_grains=2,
    scan_shape=(16, 16),
    detector_shape=(96, 96),
    tilts=(-45, 45, 1.0),
    seed=5,
    overlap=False,
    thickness_nm=(8, 12),
    pixel_size=0.025,
)
SPECK = 7  # a label on 3 tilts only: it must fail alone and not stop the others


def _rotation(axis, deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    t = np.radians(deg)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(t) * K + (1 - np.cos(t)) * K @ K


# ---- phases: cells written by hand in different settings, not by the indexer ---------------------------
def test_same_lattice_in_other_settings_is_one_phase():
    a = 4.078  # gold, F-centred cubic; its primitive rhombohedral cell: a/√2, 60°
    cells = {
        1: (a, a, a, 90, 90, 90),
        2: (a / np.sqrt(2),) * 3 + (60.0, 60.0, 60.0),
        3: (9.174, 5.449, 5.138, 90, 90, 90),
        4: (5.449, 5.138, 9.174, 90, 90, 90),  # brookite, permuted axes
        5: (9.174 * 1.001, 5.449, 5.138 * 0.999, 90, 90, 90.3),
    }
    phases = group_by_cell(cells, centrings={1: "F"})
    assert [ph.grains for ph in phases] == [(3, 4, 5), (1, 2)]
    assert [ph.rare for ph in phases] == [False, False]
    assert phases[1].reduced_cell[:3] == pytest.approx((a / np.sqrt(2),) * 3, rel=1e-6)


def test_different_lattices_are_different_phases_and_a_lone_one_is_rare():
    phases = group_by_cell(
        {
            1: (9.174, 5.449, 5.138, 90, 90, 90),
            2: (9.174, 5.449, 5.138, 90, 90, 90),
            3: (9.174 * 1.05, 5.449, 5.138, 90, 90, 90),
        }
    )  # 5 % longer: another phase
    assert [ph.grains for ph in phases] == [(1, 2), (3,)]
    assert phases[1].rare and not phases[0].rare
    with pytest.raises(ValueError, match="tolerances must be positive"):
        group_by_cell({1: (5, 5, 5, 90, 90, 90)}, length_tol=0)


def test_ipf_colours_of_known_directions():
    cubic = {"c": "cF"}
    # U takes crystal to lab; the beam (+z) along crystal [001], [101] and [111]
    to_001 = np.eye(3)
    d101 = np.array([1, 0, 1]) / np.sqrt(2)
    to_101 = _rotation(np.cross(d101, [0, 0, 1]), 45.0)
    d111 = np.ones(3) / np.sqrt(3)
    to_111 = _rotation(np.cross(d111, [0, 0, 1]), np.degrees(np.arccos(d111[2])))
    for U, d in ((to_101, d101), (to_111, d111)):
        assert U.T @ [0, 0, 1] == pytest.approx(d, abs=1e-9)
    col = orientation_colours({1: to_001, 2: to_101, 3: to_111}, lattices={g: cubic["c"] for g in (1, 2, 3)})
    assert col[1] == pytest.approx((1, 0, 0), abs=1e-9)
    assert col[2] == pytest.approx((0, 1, 0), abs=1e-9)
    assert col[3] == pytest.approx((0, 0, 1), abs=1e-9)
    assert beam_direction(to_111, (4.0, 4.0, 4.0, 90, 90, 90)) == pytest.approx(d111)


def test_maps_paint_each_grain_and_leave_no_grain_black():
    labels = np.array([[0, 1, 1], [2, 2, 0], [3, 3, 3]], dtype=np.int32)
    phases = group_by_cell({1: (5, 5, 5, 90, 90, 90), 2: (7, 7, 7, 90, 90, 90), 3: (5, 5, 5, 90, 90, 90)})
    pm = phase_map(labels, phases)
    assert pm.tolist() == [[0, 1, 1], [2, 2, 0], [1, 1, 1]]
    om = orientation_map(labels, {1: (1.0, 0.0, 0.0), 3: (0.0, 0.0, 1.0)})
    assert om.shape == (3, 3, 3) and om[0, 0].tolist() == [0, 0, 0] and om[1, 0].tolist() == [0, 0, 0]
    assert om[2, 1].tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="integer image"):
        phase_map(labels.astype(float), phases)


# ---- the batch on a simulated tilt series ------------------------------------------------------------
@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    from virtual_aperture.crystal.calibrate import calibrate_descan

    ds, truth = va.simulate_agglomerate(**SAMPLE)
    cal, _ = calibrate_descan(ds)
    ds = ds.with_calibration(center=cal.center, extra=cal.extra)
    labels = truth.exclusive_labels().copy()
    bg = np.argwhere(labels[0] == 0)[:2]
    labels[:3, bg[:, 0], bg[:, 1]] = SPECK
    out = tmp_path_factory.mktemp("batch")
    seen = []
    res = va.solve_all_grains(
        ds,
        labels,
        out=out,
        composition="TiO2",
        starts=2,
        progress=lambda stage, done, total: seen.append((stage, done, total)),
    )
    return ds, truth, labels, res, out, seen


def test_every_grain_gets_a_row_and_one_failure_stops_nothing(batch):
    ds, truth, labels, res, out, seen = batch
    rows = {o.grain: o for o in res.outcomes}
    assert sorted(rows) == [1, 2, SPECK]
    assert rows[SPECK].status == "failed" and "tilts" in rows[SPECK].message
    assert rows[2].status == "solved" and rows[2].r1 < 0.25
    assert sorted(rows[2].cell[:3]) == pytest.approx(sorted(truth.cell[:3]), rel=5e-3)
    assert [s[1] for s in seen] == [1, 2, 3] and all(s[2] == 3 for s in seen)
    # folders only for grains that got as far as indexing; none left empty
    assert (out / "grain_2" / "structure.cif").is_file()
    assert not (out / f"grain_{SPECK}").exists()
    for folder in out.glob("grain_*"):
        assert any(folder.iterdir())


def test_summary_table_and_maps_on_disk(batch):
    ds, truth, labels, res, out, _ = batch
    with open(out / "summary.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [int(r["grain"]) for r in table] == [1, 2, SPECK]
    assert set(va.batch.SUMMARY_COLUMNS) == set(table[0])
    r2 = next(r for r in table if r["grain"] == "2")
    assert r2["status"] == "solved" and float(r2["r1"]) == pytest.approx(res.outcomes[1].r1, abs=1e-4)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_solved"] == res.n_solved >= 1
    pm = tifffile.imread(out / "phase_map.tif")
    om = tifffile.imread(out / "orientation_map.tif")
    assert pm.shape == labels.shape and om.shape == (*labels.shape, 3) and om.dtype == np.uint8
    two = labels == 2
    assert np.all(pm[two] == res.outcomes[1].phase) and res.outcomes[1].phase >= 1
    assert np.all(pm[labels == 0] == 0) and np.all(om[labels == 0] == 0)
    # the orientation colour is that of the true orientation (brookite: |beam direction| in crystal axes)
    d_true = np.abs(truth.orientations[1].T @ [0, 0, 1])
    assert om[two][0] / 255.0 == pytest.approx(d_true / d_true.max(), abs=0.02)
    assert "grains solved" in res.table_text()
    from PIL import Image

    assert Image.open(out / "maps.png").size[0] > 800


def test_bad_batch_input_is_one_clear_error(batch, tmp_path):
    ds, _, labels, _, out, _ = batch
    with pytest.raises(ValueError, match=r"grain\(s\) \[99\] not in the labels"):
        va.solve_all_grains(ds, labels, grains=[99])
    with pytest.raises(ValueError, match="unknown option"):
        va.solve_all_grains(ds, labels, grains=[2], colour="red")
    with pytest.raises(FileExistsError, match="already exists"):
        va.solve_all_grains(ds, labels, out=out, grains=[2])
    with pytest.raises(ValueError, match="no positive label"):
        va.solve_all_grains(ds, np.zeros_like(labels))


def test_cli_solve_all_refuses_bad_combinations(tmp_path):
    np.save(tmp_path / "labels.npy", np.ones((4, 4), dtype=np.int32))
    np.save(tmp_path / "data.npy", np.zeros((4, 4, 8, 8), dtype=np.uint16))
    cmd = [
        sys.executable,
        "-m",
        "virtual_aperture.cli",
        "solve",
        str(tmp_path / "data.npy"),
        "--labels",
        str(tmp_path / "labels.npy"),
        "--out",
        str(tmp_path / "o"),
    ]
    both = subprocess.run([*cmd, "--all", "--grain", "1"], capture_output=True, text=True)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    grains_alone = subprocess.run([*cmd, "--grain", "1", "--grains", "1,2"], capture_output=True, text=True)
    assert grains_alone.returncode == 2 and "--grains and --workers go with --all" in grains_alone.stderr
    assert "Traceback" not in grains_alone.stderr


@pytest.mark.slow
def test_batch_on_a_local_cluster_of_processes_reading_from_disk(batch, tmp_path):
    """Each worker process opens the zarr store itself (the task carries only the lazy graph)."""
    distributed = pytest.importorskip("distributed")
    ds, truth, labels, threaded, _, _ = batch
    va.save_dataset(ds, tmp_path / "series.zarr")
    on_disk = va.open_dataset(tmp_path / "series.zarr")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cl,
        distributed.Client(cl) as client,
    ):
        res = va.solve_all_grains(
            on_disk,
            labels,
            out=tmp_path / "out",
            grains=[2, SPECK],
            client=client,
            composition="TiO2",
            starts=2,
        )
    rows = {o.grain: o for o in res.outcomes}
    assert rows[2].status == "solved" and rows[SPECK].status == "failed"
    assert rows[2].cell == pytest.approx(threaded.outcomes[1].cell, rel=1e-3)
    assert res.info["scheduler"].startswith("tcp://")
    assert (tmp_path / "out" / "grain_2" / "structure.cif").is_file()
