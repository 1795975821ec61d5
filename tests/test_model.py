import subprocess
import sys

import dask.array as da
import numpy as np
import pytest

import virtual_aperture as va
from virtual_aperture.model import Calibration, Dataset, electron_wavelength, scan_chunks


def test_import_loads_no_qt_or_napari():
    code = (
        "import sys, virtual_aperture as va; "
        "va.Dataset; va.Calibration; va.open_dataset; "
        "va.simulate_agglomerate; va.virtual_image; va.aperture_sums; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0].lower() in "
        "('pyqt5','pyqt6','pyside2','pyside6','qtpy','napari','vispy','magicgui','superqt')); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"GUI modules imported by the library: {out.stdout}"


@pytest.mark.parametrize("kv, lam", [(200, 0.02508), (300, 0.01969), (80, 0.04176)])
def test_relativistic_wavelength(kv, lam):
    assert electron_wavelength(kv) == pytest.approx(lam, abs=2e-5)


@pytest.mark.parametrize("kv", [0, -5, float("nan"), float("inf")])
def test_wavelength_rejects_bad_energy(kv):
    with pytest.raises(ValueError, match="beam energy"):
        electron_wavelength(kv)


def test_calibration_derived_and_roundtrip():
    cal = Calibration(scan_step_nm=2.0, pixel_size=0.01, beam_energy_kv=300, center=(63.5, 64.0))
    assert cal.pixel_size_mrad == pytest.approx(1000 * 0.01969 * 0.01, rel=1e-3)
    assert Calibration.from_dict(cal.to_dict()) == cal
    assert cal.detector_center((128, 128)) == (63.5, 64.0)
    assert Calibration().detector_center((128, 128)) == (63.5, 63.5)
    with pytest.raises(ValueError, match="pixel_size"):
        Calibration(pixel_size=-1)
    with pytest.raises(TypeError, match="unknown calibration field"):
        cal.replace(wavelength=3)


def test_scan_chunks_whole_frames_and_size():
    ch = scan_chunks((256, 256, 128, 128), 2)
    assert ch[2:] == (128, 128)
    nbytes = np.prod(ch) * 2
    assert 64 * 2**20 <= nbytes <= 256 * 2**20
    ch5 = scan_chunks((5, 64, 64, 256, 256), 4)
    assert ch5[0] == 1 and ch5[3:] == (256, 256)


def test_dataset_shape_and_errors():
    arr = da.zeros((4, 6, 8, 10), dtype=np.uint16, chunks=(2, 3, 4, 5))
    ds = Dataset(arr)
    assert ds.dims == ("scan_y", "scan_x", "k_y", "k_x")
    assert ds.scan_shape == (4, 6) and ds.detector_shape == (8, 10)
    assert len(ds.data.chunks[-1]) == 1 and len(ds.data.chunks[-2]) == 1
    assert ds.pattern(1, 2).shape == (8, 10)
    with pytest.raises(IndexError, match="outside the scan"):
        ds.pattern(4, 0)
    with pytest.raises(ValueError, match="4D"):
        Dataset(da.zeros((4, 5, 6)))
    with pytest.raises(ValueError, match="tilt angles"):
        Dataset(da.zeros((3, 2, 2, 4, 4)))
    with pytest.raises(ValueError, match="2 tilt angles given for 3"):
        Dataset(da.zeros((3, 2, 2, 4, 4)), Calibration(tilt_angles_deg=(0, 1)))
    ds5 = Dataset(da.zeros((3, 2, 2, 4, 4)), Calibration(tilt_angles_deg=(-1, 0, 1)))
    assert ds5.is_tilt_series and ds5.n_tilts == 3
    t = ds5.tilt(2)
    assert t.data.ndim == 4 and t.calibration.extra["tilt_angle_deg"] == 1.0
    assert "GiB" in repr(ds5)


def test_unknown_public_name():
    with pytest.raises(AttributeError):
        va.does_not_exist  # noqa: B018 - the attribute access is what raises
