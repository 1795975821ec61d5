"""5D tilt series from folders and lists, our own zarr store round trip, can_read, CLI info."""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

import virtual_aperture  # noqa: E402
from virtual_aperture import Dataset  # noqa: E402
from virtual_aperture.io import angle_from_name, can_read, open_dataset, open_tilt_series, save_dataset  # noqa: E402

import data_factories as F


@pytest.mark.parametrize(
    "name,angle",
    [
        ("scan_-30.0deg.mib", -30.0),
        ("scan_+12.5deg.h5", 12.5),
        ("tilt_+12.5.h5", 12.5),
        ("tilt_-7.npy", -7.0),
        ("t-30_scan.mib", -30.0),
        ("t15_x.hspy", 15.0),
        ("series_angle=4.5.zarr", 4.5),
        ("a 10 degrees.npy", 10.0),
        ("scan_0005.mib", None),
        ("dataset.h5", None),
    ],
)
def test_angle_from_name(name, angle):
    assert angle_from_name(name) == angle


def test_angle_from_name_custom_pattern():
    assert angle_from_name("run7_A-22.5_B.mib", r"_A(?P<angle>[-+\d.]+)_") == -22.5
    assert angle_from_name("x_m12.mib", r"_m(\d+)") == 12.0


def _write_series(folder: Path, angles, writer="npy"):
    cubes = {}
    for i, a in enumerate(angles):
        data = F.cube(seed=i)
        cubes[a] = data
        if writer == "npy":
            np.save(folder / f"scan_{a:+.1f}deg.npy", data)
        else:
            F.write_mib(folder / f"scan_{a:+.1f}deg.mib", data)
    return cubes


def test_folder_to_5d_sorted_by_angle_from_names(tmp_path):
    cubes = _write_series(tmp_path, [20.0, -30.0, 0.0, -10.0])
    ds = open_dataset(tmp_path, scan_step_nm=3.0)
    assert ds.is_tilt_series and ds.shape == (4, 4, 5, 16, 16)
    assert ds.calibration.tilt_angles_deg == (-30.0, -10.0, 0.0, 20.0)
    assert ds.calibration.scan_step_nm == 3.0
    assert ds.metadata["angle_source"] == "file names"
    assert isinstance(ds.data, da.Array) and ds.data.chunks[0] == (1, 1, 1, 1)
    expected = np.stack([cubes[a] for a in (-30.0, -10.0, 0.0, 20.0)])
    np.testing.assert_array_equal(ds.data.compute(), expected)


def test_folder_of_merlin_scans(tmp_path):
    """Merlin .mib + .hdr per tilt (byte-exact writer); the .hdr files are not taken as scans."""
    cubes = _write_series(tmp_path, [-5.0, 5.0], writer="mib")
    ds = open_tilt_series(tmp_path)
    assert ds.shape == (2, 4, 5, 16, 16) and ds.metadata["format"] == "mib"
    np.testing.assert_array_equal(ds.data[1].compute(), np.flip(cubes[5.0], -2))


def test_list_with_user_angles_wins_over_names(tmp_path):
    cubes = _write_series(tmp_path, [1.0, 2.0, 3.0])
    files = sorted(tmp_path.glob("*.npy"))  # +1, +2, +3 in name order
    ds = open_dataset(files, tilt_angles_deg=[40.0, -40.0, 0.0])
    assert ds.calibration.tilt_angles_deg == (-40.0, 0.0, 40.0)
    assert ds.metadata["angle_source"] == "user"
    assert [Path(f).name for f in ds.metadata["files"]] == [files[1].name, files[2].name, files[0].name]
    np.testing.assert_array_equal(ds.data[0].compute(), cubes[2.0])
    ds2 = open_tilt_series([str(f) for f in files], pattern=r"scan_(?P<angle>[-+.\d]+)deg")
    assert ds2.calibration.tilt_angles_deg == (1.0, 2.0, 3.0)


def test_angles_from_metadata(tmp_path):
    """No angle in the names: the stage tilt recorded by a Dataset saved per tilt is used."""
    full = Dataset(
        da.from_array(np.stack([F.cube(seed=s) for s in range(3)])),
        virtual_aperture.Calibration(tilt_angles_deg=(-20.0, 0.0, 20.0)),
    )
    for i, name in enumerate(["c.zarr", "a.zarr", "b.zarr"]):
        save_dataset(full.tilt(i), tmp_path / name)
    ds = open_dataset(tmp_path)
    assert ds.metadata["angle_source"] == "metadata"
    assert ds.calibration.tilt_angles_deg == (-20.0, 0.0, 20.0)
    np.testing.assert_array_equal(ds.data.compute(), full.data.compute())


def test_angles_from_dm4_stage_tilt(tmp_path):
    """DM4 files (byte-exact writer) whose names carry no angle: the stage alpha is used."""
    for name, alpha in [("first.dm4", 15.0), ("second.dm4", -15.0)]:
        F.write_dm4(tmp_path / name, F.cube(seed=int(alpha + 20)), stage_alpha_deg=alpha)
    ds = open_dataset(tmp_path)
    assert ds.calibration.tilt_angles_deg == (-15.0, 15.0) and ds.metadata["angle_source"] == "metadata"
    np.testing.assert_array_equal(ds.data[0].compute(), F.cube(seed=5))


def test_5d_hspy_with_tilt_axis_in_degrees(tmp_path):
    """A 5D HyperSpy file (written by Signal2D.save) whose outer navigation axis is a tilt in
    degrees gives the tilt angles; a single-file list opens as that file."""
    import hyperspy.api as hs

    data = F.cube((3, 4, 5, 16, 16))
    s = hs.signals.Signal2D(data)
    tilt = s.axes_manager.navigation_axes[2]
    tilt.units, tilt.offset, tilt.scale = "deg", -20.0, 20.0
    s.save(str(tmp_path / "series.hspy"))
    ds = open_dataset([tmp_path / "series.hspy"])
    assert ds.shape == data.shape and ds.calibration.tilt_angles_deg == (-20.0, 0.0, 20.0)
    np.testing.assert_array_equal(ds.data.compute(), data)


def test_save_and_open_round_trip_4d_and_5d(tmp_path):
    data = F.cube((3, 4, 5, 16, 16))
    cal = virtual_aperture.Calibration(
        scan_step_nm=2.5,
        pixel_size=0.0123,
        beam_energy_kv=200.0,
        tilt_angles_deg=(-10, 0, 10),
        tilt_axis_deg=33.0,
        center=(7.5, 8.25),
        scan_rotation_deg=4.0,
        ellipticity=(1.02, 15.0),
    )
    ds = Dataset(
        da.from_array(data, chunks=(1, 2, 5, 16, 16)),
        cal,
        source="orig.mib",
        metadata={"format": "mib", "note": np.float32(1.5), "arr": np.arange(3)},
    )
    out = save_dataset(ds, tmp_path / "store.zarr")
    back = open_dataset(out)
    assert back.calibration == cal
    assert back.shape == ds.shape and back.dtype == ds.dtype
    np.testing.assert_array_equal(back.data.compute(), data)
    assert back.metadata["format"] == "virtual-aperture" and back.metadata["original_format"] == "mib"
    assert back.metadata["note"] == 1.5 and back.metadata["arr"] == [0, 1, 2]
    assert back.source == "orig.mib"
    # stored chunks span scan positions only
    import zarr

    z = zarr.open_group(str(out), mode="r")["data"]
    assert z.chunks[-2:] == (16, 16) and z.chunks[0] == 1
    # 4D tilt view round trip and the overwrite guard
    four = ds.tilt(2)
    with pytest.raises(FileExistsError):
        save_dataset(four, out)
    save_dataset(four, out, overwrite=True)
    back4 = open_dataset(out)
    np.testing.assert_array_equal(back4.data.compute(), data[2])
    assert back4.metadata["stage_tilt_deg"] == 10.0
    # user overrides still win on our own store
    assert open_dataset(out, scan_step_nm=9.0).calibration.scan_step_nm == 9.0


def test_save_reports_progress_and_streams_chunks(tmp_path):
    data = F.cube((6, 8, 16, 16))
    ds = Dataset(da.from_array(data, chunks=(1, 8, 16, 16)))
    calls = []
    save_dataset(
        ds, tmp_path / "p.zarr", chunk_bytes=8 * 16 * 16 * 2, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1][0] == calls[-1][1] and len(calls) > 1
    np.testing.assert_array_equal(open_dataset(tmp_path / "p.zarr").data.compute(), data)


def test_can_read(tmp_path):
    assert (
        can_read(tmp_path / "a.mib") and can_read(tmp_path / "B.HSPY") and can_read(str(tmp_path / "c.npy"))
    )
    assert not can_read(tmp_path / "notes.txt") and not can_read(tmp_path / "image.png")
    np.save(tmp_path / "x.npy", F.cube())
    assert can_read(tmp_path)  # folder with a supported file
    assert can_read([tmp_path / "x.npy", tmp_path / "y.mib"])
    assert not can_read([tmp_path / "x.npy", tmp_path / "y.txt"]) and not can_read([])
    save_dataset(Dataset(da.from_array(F.cube())), tmp_path / "s.zarr")
    assert can_read(tmp_path / "s.zarr")
    (tmp_path / "plain").mkdir()
    assert not can_read(tmp_path / "plain")
    assert not can_read(12345)


def test_public_names():
    assert virtual_aperture.open_dataset is open_dataset
    assert virtual_aperture.open_tilt_series is open_tilt_series


def test_cli_info_text_and_json(tmp_path, capsys):
    from virtual_aperture.cli import main

    p = F.write_hyperspy(tmp_path / "scan.hspy", F.cube(), scan_step_nm=2.5, pixel_inv_nm=0.1, beam_kv=200.0)
    assert main(["info", str(p), "--center", "7", "8"]) == 0
    out = capsys.readouterr().out
    assert "scan_y=4 × scan_x=5 × k_y=16 × k_x=16" in out and "uint16" in out and "hspy" in out
    assert "2.5 nm  [file]" in out and "0.01 Å⁻¹" in out and "200 kV  [file]" in out
    assert "0.025079 Å" in out and "(7, 8) px" in out
    assert main(["info", str(p), "--json", "--scan-step", "4", "--beam-energy", "300"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["scan_step_nm"] == 4.0 and d["calibration_source"]["scan_step_nm"] == "user"
    assert d["pixel_size_mrad"] == pytest.approx(1000 * virtual_aperture.electron_wavelength(300) * 0.01)
    # several files → tilt series
    for a in (-10, 10):
        np.save(tmp_path / f"tilt_{a:+d}.npy", F.cube())
    assert (
        main(["info", str(tmp_path / "tilt_-10.npy"), str(tmp_path / "tilt_+10.npy"), "--chunk-mb", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "tilts        2: -10, 10 deg  [file names]" in out
