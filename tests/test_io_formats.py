"""Every supported format, written by its real writer (or byte-exact from its published layout
where nothing here writes it, see tests/data_factories.py), read back through open_dataset:
shape, dtype, values, calibration from the file, user overrides, laziness."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from virtual_aperture import Dataset, electron_wavelength  # noqa: E402
from virtual_aperture.io import open_dataset  # noqa: E402

import data_factories as F


def check(ds: Dataset, expected: np.ndarray, fmt: str) -> None:
    assert isinstance(ds, Dataset)
    assert isinstance(ds.data, da.Array)
    assert ds.shape == expected.shape
    assert ds.dtype == expected.dtype.newbyteorder("=")
    assert ds.metadata["format"] == fmt
    assert ds.data.dtype.isnative
    np.testing.assert_array_equal(ds.data.compute(), expected)
    # detector axes never split
    assert len(ds.data.chunks[-1]) == 1 and len(ds.data.chunks[-2]) == 1


def test_hspy_written_by_hyperspy(tmp_path):
    """.hspy written by HyperSpy's Signal2D.save (rosettasciio hspy writer)."""
    data = F.cube()
    p = F.write_hyperspy(tmp_path / "scan.hspy", data, scan_step_nm=2.5, pixel_inv_nm=0.1, beam_kv=200.0)
    ds = open_dataset(p)
    check(ds, data, "hspy")
    cal = ds.calibration
    assert cal.scan_step_nm == pytest.approx(2.5)
    assert cal.pixel_size == pytest.approx(0.01)  # 0.1 1/nm = 0.01 1/Å
    assert cal.beam_energy_kv == pytest.approx(200.0)
    assert ds.metadata["calibration_source"]["pixel_size"] == "file"
    assert "original_metadata" in ds.metadata
    # user overrides win over the file
    ds2 = open_dataset(
        p, scan_step_nm=7.0, pixel_size=0.02, beam_energy_kv=300, center=(7, 8), tilt_axis_deg=12
    )
    assert (ds2.calibration.scan_step_nm, ds2.calibration.pixel_size, ds2.calibration.beam_energy_kv) == (
        7.0,
        0.02,
        300,
    )
    assert ds2.calibration.center == (7.0, 8.0) and ds2.calibration.tilt_axis_deg == 12.0
    assert ds2.metadata["calibration_source"]["scan_step_nm"] == "user"


def test_hspy_mrad_detector_converted_with_wavelength(tmp_path):
    """Detector axes in mrad become Å⁻¹ through the wavelength of the (final) beam energy."""
    p = F.write_hyperspy(tmp_path / "mrad.hspy", F.cube(), pixel_inv_nm=0.5, det_units="mrad", beam_kv=200.0)
    ds = open_dataset(p)
    assert ds.calibration.pixel_size == pytest.approx(0.5 / (1000 * electron_wavelength(200.0)))
    assert ds.calibration.pixel_size_mrad == pytest.approx(0.5)
    ds300 = open_dataset(p, beam_energy_kv=300.0)
    assert ds300.calibration.pixel_size_mrad == pytest.approx(0.5)


def test_blockfile_written_by_rosettasciio(tmp_path):
    """.blo written by HyperSpy (rosettasciio blockfile writer, uint8); the blockfile stores the
    detector scale as a physical length (cm), so no reciprocal pixel size is derived."""
    data = F.cube(dtype=np.uint8)
    ds = open_dataset(F.write_hyperspy(tmp_path / "scan.blo", data, scan_step_nm=3.0))
    check(ds, data, "blockfile")
    assert ds.calibration.scan_step_nm == pytest.approx(3.0)
    assert ds.calibration.pixel_size is None


def test_emd_ncem_written_by_rosettasciio(tmp_path):
    """Berkeley EMD 0.2 written by HyperSpy (rosettasciio emd writer; stored transposed)."""
    data = F.cube()
    ds = open_dataset(F.write_hyperspy(tmp_path / "scan.emd", data, scan_step_nm=2.0, pixel_inv_nm=0.2))
    check(ds, data, "emd")
    assert ds.calibration.scan_step_nm == pytest.approx(2.0)
    assert ds.calibration.pixel_size == pytest.approx(0.02)


def test_nexus_written_by_rosettasciio(tmp_path):
    data = F.cube()
    ds = open_dataset(F.write_hyperspy(tmp_path / "scan.nxs", data, beam_kv=120.0))
    check(ds, data, "nexus")
    assert ds.calibration.beam_energy_kv == pytest.approx(120.0)


def test_tvips_written_by_rosettasciio(tmp_path):
    """TVIPS written by HyperSpy (rosettasciio writer). TVIPS keeps the detector pixel size as an
    integer number of 1/nm and no scan shape, so the scan shape is given."""
    data = F.cube(dtype=np.uint8)
    p = F.write_hyperspy(tmp_path / "scan.tvips", data, pixel_inv_nm=2.0, beam_kv=200.0)
    ds = open_dataset(p, scan_shape=(4, 5))
    check(ds, data, "tvips")
    assert ds.calibration.pixel_size == pytest.approx(0.2)
    assert ds.calibration.beam_energy_kv == pytest.approx(200.0)
    assert ds.metadata["calibration_source"]["scan_step_nm"] == "default"


def test_mrc_stack_written_by_mrcfile(tmp_path):
    """MRC stack of frames written with mrcfile (rosettasciio reads MRC but does not write it)."""
    data = F.cube()
    ds = open_dataset(F.write_mrc(tmp_path / "scan.mrc", data), scan_shape=(4, 5), scan_step_nm=1.5)
    check(ds, data, "mrc")
    assert ds.calibration.scan_step_nm == 1.5


@pytest.mark.parametrize("depth,dtype", [("U16", np.uint16), ("U08", np.uint8), ("U32", np.uint32)])
def test_merlin_mib_byte_exact(tmp_path, depth, dtype):
    """Merlin .mib written byte by byte (384-byte MQ1 header + big-endian pixels per frame, and
    the .hdr acquisition header). rosettasciio flips frames vertically, as Merlin stores them."""
    stored = F.cube(dtype=dtype)
    p = F.write_mib(tmp_path / "scan.mib", stored, depth=depth)
    ds = open_dataset(p)
    check(ds, np.flip(stored, axis=-2), "mib")


def test_merlin_mib_without_hdr_needs_scan_shape(tmp_path):
    stored = F.cube()
    p = F.write_mib(tmp_path / "scan.mib", stored, hdr=False)
    ds = open_dataset(p, scan_shape=(4, 5))
    check(ds, np.flip(stored, axis=-2), "mib")


def test_dm4_byte_exact(tmp_path):
    """DigitalMicrograph 4 written byte by byte from the DM4 tag-file layout (see
    data_factories.write_dm4); beam energy and stage tilt come through rosettasciio's mapping."""
    data = F.cube()
    ds = open_dataset(
        F.write_dm4(
            tmp_path / "scan.dm4",
            data,
            scan_step_nm=2.0,
            pixel_inv_nm=0.25,
            voltage_v=200e3,
            stage_alpha_deg=-12.5,
        )
    )
    check(ds, data, "dm")
    assert ds.calibration.scan_step_nm == pytest.approx(2.0)
    assert ds.calibration.pixel_size == pytest.approx(0.025)
    assert ds.calibration.beam_energy_kv == pytest.approx(200.0)
    assert ds.metadata["stage_tilt_deg"] == pytest.approx(-12.5)


def test_empad_byte_exact(tmp_path):
    """EMPAD .xml + .raw written byte by byte (float32 frames of 130×128 rows with 2 footer rows);
    opening the .raw finds its .xml."""
    data = F.cube((4, 5, 128, 128)).astype(np.float32)
    xml = F.write_empad(tmp_path, data, fov_m=(2e-8, 2.5e-8), pixel_per_m=1e-10)
    ds = open_dataset(xml)
    check(ds, data, "empad")
    assert ds.calibration.scan_step_nm == pytest.approx(5.0)
    assert ds.calibration.pixel_size == pytest.approx(0.01)  # 1e-10 /m → 0.1 1/nm
    ds_raw = open_dataset(xml.with_suffix(".raw"))
    assert ds_raw.shape == data.shape


def test_py4dstem_emd1(tmp_path):
    """py4DSTEM / EMD 1.0 DataCube written with h5py following the emdfile layout."""
    data = F.cube()
    ds = open_dataset(F.write_py4dstem(tmp_path / "cube.h5", data, r_step_A=25.0, q_step=0.012, kv=200.0))
    check(ds, data, "py4dstem")
    assert ds.calibration.scan_step_nm == pytest.approx(2.5)
    assert ds.calibration.pixel_size == pytest.approx(0.012)
    assert ds.calibration.beam_energy_kv == pytest.approx(200.0)


def test_arina_master_and_data_files(tmp_path):
    """Dectris Arina master + data files (HDF5 external links) written with h5py; a square scan
    is assumed when no scan shape is given, like rosettasciio; the pixel size comes from the
    detector pixel pitch, distance and wavelength."""
    data = F.cube((4, 4, 16, 16))
    master = F.write_arina(tmp_path, data, per_file=5, kv=300.0, pixel_m=75e-6, distance_m=0.5)
    ds = open_dataset(master)
    check(ds, data, "arina")
    assert ds.calibration.beam_energy_kv == pytest.approx(300.0, rel=1e-6)
    assert ds.calibration.pixel_size == pytest.approx(75e-6 / (0.5 * electron_wavelength(300.0)))
    ds2 = open_dataset(master, scan_shape=(2, 8))
    np.testing.assert_array_equal(ds2.data.compute(), data.reshape(2, 8, 16, 16))


def test_generic_hdf5_and_zarr_and_npy(tmp_path):
    data = F.cube()
    check(open_dataset(F.write_generic_h5(tmp_path / "any.hdf5", data)), data, "hdf5")
    check(open_dataset(F.write_zarr_array(tmp_path / "any.zarr", data)), data, "zarr")
    np.save(tmp_path / "any.npy", data)
    check(open_dataset(tmp_path / "any.npy", scan_step_nm=4.0), data, "npy")
    # a big-endian .npy comes back native
    np.save(tmp_path / "be.npy", data.astype(">u2"))
    check(open_dataset(tmp_path / "be.npy"), data, "npy")


def test_format_keyword_forces_reader(tmp_path):
    data = F.cube()
    p = tmp_path / "scan.dat"
    np.save(tmp_path / "tmp.npy", data)
    (tmp_path / "tmp.npy").rename(p)
    check(open_dataset(p, format="npy"), data, "npy")


def test_3d_stack_reshaped_with_scan_shape(tmp_path):
    data = F.cube()
    np.save(tmp_path / "stack.npy", data.reshape(20, 16, 16))
    check(open_dataset(tmp_path / "stack.npy", scan_shape=(4, 5)), data, "npy")


def test_chunk_bytes_gives_whole_frame_scan_chunks(tmp_path):
    data = F.cube((8, 10, 16, 16))
    np.save(tmp_path / "c.npy", data)
    ds = open_dataset(tmp_path / "c.npy", chunk_bytes=16 * 16 * 2 * 20)  # 20 frames per chunk
    assert ds.data.chunks[2:] == ((16,), (16,))
    assert max(ds.data.chunks[0]) * max(ds.data.chunks[1]) <= 20
    assert ds.data.npartitions > 1
    np.testing.assert_array_equal(ds.data.compute(), data)


def test_graphs_are_picklable_for_distributed(tmp_path):
    """Every reader's dask graph survives pickling (h5py handles do not), so datasets run on a
    dask.distributed cluster of processes."""
    import cloudpickle

    data = F.cube()
    np.save(tmp_path / "a.npy", data)
    files = {
        "hspy": F.write_hyperspy(tmp_path / "a.hspy", data),
        "emd": F.write_hyperspy(tmp_path / "a.emd", data),
        "nexus": F.write_hyperspy(tmp_path / "a.nxs", data),
        "mib": F.write_mib(tmp_path / "a.mib", data),
        "dm": F.write_dm4(tmp_path / "a.dm4", data),
        "py4dstem": F.write_py4dstem(tmp_path / "p.h5", data),
        "hdf5": F.write_generic_h5(tmp_path / "g.h5", data),
        "zarr": F.write_zarr_array(tmp_path / "z.zarr", data),
        "npy": tmp_path / "a.npy",
    }
    for fmt, path in files.items():
        ds = open_dataset(path)
        back = cloudpickle.loads(cloudpickle.dumps(ds.data))
        expected = np.flip(data, -2) if fmt == "mib" else data
        np.testing.assert_array_equal(back.compute(), expected, err_msg=fmt)


def test_runs_on_a_distributed_process_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    data = F.cube()
    p = F.write_py4dstem(tmp_path / "p.h5", data)
    ds = open_dataset(p, chunk_bytes=16 * 16 * 2 * 5)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cl,
        distributed.Client(cl) as client,
    ):
        total = client.compute(ds.data.sum(dtype=np.uint64)).result()
    assert int(total) == int(data.sum(dtype=np.uint64))


def test_rewritten_hdf5_is_read_afresh(tmp_path):
    p = tmp_path / "same.h5"
    a, b = F.cube(seed=1), F.cube(seed=2)
    F.write_py4dstem(p, a)
    np.testing.assert_array_equal(open_dataset(p).data.compute(), a)
    F.write_py4dstem(p, b)
    np.testing.assert_array_equal(open_dataset(p).data.compute(), b)
