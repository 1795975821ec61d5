"""Real detector files (RosettaSciIO's test data, tests/data/real/README.md): the calibration each
file holds is read, values agree with what rosettasciio itself reads, and arrays that are not
4D-STEM scans are refused."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from virtual_aperture.io import ReadError, open_dataset
from virtual_aperture.io.readers_rsciio import empad_beam_energy

REAL = Path(__file__).parent / "data" / "real"


def rsciio_read(module: str, path: Path, **kw):
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(module).file_reader(str(path), lazy=False, **kw)


def test_de_mrc_calibration_from_info_txt():
    """DE-Server movie: scan step 0.2 nm (y) / 0.1 nm (x), 0.1 nm⁻¹ pixels and 300 kV come from the
    _info.txt, never rosettasciio's placeholder scale 1."""
    p = REAL / "mrc" / "20241021_00405_movie.mrc"
    ds = open_dataset(p)
    (ref,) = rsciio_read("rsciio.mrc", p)
    assert ds.shape == ref["data"].shape == (4, 8, 4, 8)
    np.testing.assert_array_equal(ds.data.compute(), ref["data"])
    assert [a["scale"] for a in ref["axes"]] == [1.0] * 4  # rosettasciio's placeholders
    cal, src = ds.calibration, ds.metadata["calibration_source"]
    assert cal.scan_step_nm == pytest.approx(0.2)
    assert cal.extra["scan_step_nm_yx"] == pytest.approx([0.2, 0.1])
    assert cal.pixel_size == pytest.approx(0.01)  # 0.1 nm⁻¹
    assert cal.beam_energy_kv == pytest.approx(300.0)
    assert src["scan_step_nm"] == "file" and src["beam_energy_kv"] == "file"
    assert src["pixel_size"].startswith("file: _info.txt")


def test_de_mrc_without_info_says_default(tmp_path):
    """Without its _info.txt the MRC holds no calibration: every value is [default]."""
    q = tmp_path / "20241021_00405_movie.mrc"
    shutil.copy(REAL / "mrc" / q.name, q)
    ds = open_dataset(q, scan_shape=(4, 8))
    src = ds.metadata["calibration_source"]
    assert src["pixel_size"] == src["scan_step_nm"] == src["beam_energy_kv"] == "default"


def test_arina_scan_step_energy_and_folder():
    pytest.importorskip("hdf5plugin")
    master = REAL / "arina" / "test_00_master.h5"
    (ref,) = rsciio_read("rsciio.arina", master)
    for p in (master, REAL / "arina", REAL / "arina" / "test_00.h5"):
        ds = open_dataset(p)
        assert ds.metadata["format"] == "arina", p
        assert ds.shape == ref["data"].shape == (4, 4, 192, 192)
        # rosettasciio: scan axes 1.3915206 Å
        assert ds.calibration.scan_step_nm == pytest.approx(ref["axes"][0]["scale"] / 10)
        assert ds.calibration.scan_step_nm == pytest.approx(0.139152, rel=1e-5)
        assert ds.calibration.beam_energy_kv == pytest.approx(300.0)
    np.testing.assert_array_equal(ds.data.compute(), ref["data"])
    # detector pixel 100 µm at the 0.115 m camera length of the metadata file
    from virtual_aperture import electron_wavelength

    assert ds.calibration.pixel_size == pytest.approx(1e-4 / (0.115 * electron_wavelength(300.0)))
    assert "camera length" in ds.metadata["calibration_source"]["pixel_size"]


def test_arina_filters_are_loaded_before_reading():
    """The bitshuffle-LZ4 filter comes from hdf5plugin, imported by the reader itself."""
    pytest.importorskip("hdf5plugin")
    import subprocess
    import sys

    code = (
        "import sys; from virtual_aperture.io import open_dataset; "
        f"ds = open_dataset({str(REAL / 'arina' / 'test_00_master.h5')!r}); "
        "print(int(ds.data[0, 0].compute().sum()), 'hdf5plugin' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[1] == "True"


def test_ncem_emd_dpc_and_virtual_detector_are_not_scans():
    p = REAL / "emd" / "Si100_2D_3D_DPC_potential_2slices.emd"
    with pytest.raises(ReadError, match="no 4D-STEM scan.*DPC_CoM.*real-space"):
        open_dataset(p)


def test_ncem_emd_prismatic_cbed_scan():
    """prismatic's CBED_array (depth, R_x, R_y, Q_x, Q_y): the last depth, reordered to
    (scan_y, scan_x, k_y, k_x), probe step 0.5 Å (rx), Q step 1/5.43 Å⁻¹, E = 100 kV."""
    p = REAL / "emd" / "Si100_4D.emd"
    ds = open_dataset(p)
    ref = next(s for s in rsciio_read("rsciio.emd", p) if s["data"].ndim == 5)
    assert ref["data"].shape == (2, 11, 11, 8, 8)
    np.testing.assert_array_equal(ds.data.compute(), ref["data"][-1].transpose(1, 0, 3, 2))
    cal = ds.calibration
    assert cal.scan_step_nm == pytest.approx(0.05)
    assert cal.pixel_size == pytest.approx(1 / 5.43, rel=1e-4)
    assert cal.beam_energy_kv == pytest.approx(100.0)
    assert "last" in ds.metadata["note"]


def test_empad_beam_energy_from_xml(tmp_path):
    xml = tmp_path / "map4x4.xml"
    shutil.copy(REAL / "empad" / xml.name, xml)
    np.arange(4 * 4 * 130 * 128, dtype="<f4").tofile(tmp_path / "scan_x4_y4.raw")
    ds = open_dataset(xml)
    (ref,) = rsciio_read("rsciio.empad", xml)
    np.testing.assert_array_equal(ds.data.compute(), ref["data"])
    assert ds.calibration.beam_energy_kv == pytest.approx(300.0)
    assert ds.metadata["calibration_source"]["beam_energy_kv"] == "file"
    assert ds.calibration.scan_step_nm == pytest.approx(ref["axes"][0]["scale"] * 1e3)  # µm
    # software 1.2.2 writes the high tension under another name
    assert empad_beam_energy(REAL / "empad" / "EMPAD_v1.2.2_x32_y64_size0.8.xml") == pytest.approx(300.0)


def test_float16_converted_and_complex_refused(tmp_path):
    a = (np.random.default_rng(0).random((3, 4, 8, 8)) * 100).astype(np.float16)
    np.save(tmp_path / "h.npy", a)
    ds = open_dataset(tmp_path / "h.npy")
    assert ds.dtype == np.float32 and ds.metadata["dtype_converted"] == "float16 → float32"
    np.testing.assert_array_equal(ds.data.compute(), a.astype(np.float32))
    from virtual_aperture.compute import virtual_image

    np.testing.assert_allclose(virtual_image(ds, np.ones((8, 8), bool)), a.astype(np.float64).sum((2, 3)))
    np.save(tmp_path / "c.npy", a.astype(np.complex64))
    with pytest.raises(ReadError, match="complex"):
        open_dataset(tmp_path / "c.npy")
