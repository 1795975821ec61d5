import numpy as np
import pytest

from virtual_aperture.model import Calibration
from virtual_aperture.session import load_session, save_session


def _state(ndim=3):
    rng = np.random.default_rng(1)
    shape = (3, 9, 11) if ndim == 3 else (9, 11)
    grains = rng.integers(0, 5, size=shape).astype(np.int32)
    names = {1: "grain A", 2: "β-phase", 4: "grain 4"}
    dets = {"bright field": rng.random((16, 12)) > 0.5, "ring": np.zeros((16, 12), bool)}
    cal = Calibration(scan_step_nm=2.5, pixel_size=0.012, tilt_angles_deg=(-1.0, 0.0, 1.0), center=(7.5, 5.0))
    return grains, names, dets, cal


@pytest.mark.parametrize("suffix", [".h5", ".zarr"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_session_round_trip_is_exact(tmp_path, suffix, ndim):
    grains, names, dets, cal = _state(ndim)
    path = tmp_path / f"s{suffix}"
    extra = {"selected": 2, "display": {"log": True, "gamma": 0.5}}
    save_session(
        path,
        dataset_source="/data/x.h5",
        grains=grains,
        grain_names=names,
        detectors=dets,
        calibration=cal,
        extra=extra,
    )
    # saving again over an existing session replaces it
    save_session(
        path,
        dataset_source="/data/x.h5",
        grains=grains,
        grain_names=names,
        detectors=dets,
        calibration=cal,
        extra=extra,
    )
    s = load_session(path)
    assert s.grains.dtype == grains.dtype and np.array_equal(s.grains, grains)
    assert s.grain_names == names
    assert list(s.detectors) == list(dets)
    for k in dets:
        assert s.detectors[k].dtype == bool and np.array_equal(s.detectors[k], dets[k])
    assert s.calibration == cal
    assert s.dataset_source == "/data/x.h5"
    assert s.extra == extra
    assert [p.name for p in tmp_path.iterdir()] == [f"s{suffix}"]  # no temporary files left


def test_session_without_detectors_or_calibration(tmp_path):
    g = np.zeros((4, 4), np.uint8)
    save_session(tmp_path / "a.vas", dataset_source=None, grains=g, grain_names={})
    s = load_session(tmp_path / "a.vas")
    assert s.calibration is None and s.detectors == {} and s.dataset_source is None
    assert s.grains.dtype == np.uint8


def test_session_errors(tmp_path):
    g = np.zeros((4, 4), np.int32)
    with pytest.raises(ValueError, match="must end in"):
        save_session(tmp_path / "a.txt", dataset_source=None, grains=g, grain_names={})
    with pytest.raises(ValueError, match="integer label image"):
        save_session(tmp_path / "a.h5", dataset_source=None, grains=g.astype(float), grain_names={})
    with pytest.raises(ValueError, match="boolean mask"):
        save_session(tmp_path / "a.h5", dataset_source=None, grains=g, grain_names={}, detectors={"d": g})
    with pytest.raises(ValueError, match="positive integer"):
        save_session(tmp_path / "a.h5", dataset_source=None, grains=g, grain_names={0: "x"})
    with pytest.raises(ValueError, match="JSON"):
        save_session(tmp_path / "a.h5", dataset_source=None, grains=g, grain_names={}, extra={"x": object()})
    with pytest.raises(FileNotFoundError):
        load_session(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a virtual-aperture session"):
        load_session(tmp_path / "junk.h5")
