"""Malformed input: every case raises ReadError (a ValueError) whose message names the file and
the problem — never a bare traceback from inside a library."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

import virtual_aperture  # noqa: E402
from virtual_aperture.io import ReadError, open_dataset, open_tilt_series  # noqa: E402

import data_factories as F


def raises(path, match, **kw) -> ReadError:
    with pytest.raises(ReadError, match=match) as info:
        open_dataset(path, **kw)
    assert Path(path).name in str(info.value)  # the file is named
    assert "\n" not in str(info.value)  # one line
    return info.value


def test_readerror_is_valueerror_and_public():
    assert issubclass(ReadError, ValueError)
    assert virtual_aperture.ReadError is ReadError


def test_missing_file(tmp_path):
    raises(tmp_path / "nothere.mib", "no such file")


@pytest.mark.parametrize("name", ["empty.mib", "empty.npy", "empty.h5", "empty.hspy", "empty.blo"])
def test_zero_length(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    raises(tmp_path / name, "empty")


def test_truncated_mib_mid_frame(tmp_path):
    p = F.write_mib(tmp_path / "cut.mib", F.cube())
    size = p.stat().st_size
    with open(p, "r+b") as f:
        f.truncate(size - 100)
    raises(p, "truncated.*last frame is incomplete")


def test_mib_shorter_than_hdr_says(tmp_path):
    """Whole frames missing at the end (interrupted scan): the .hdr says 20 frames, 15 are there."""
    p = F.write_mib(tmp_path / "short.mib", F.cube())
    frame = 384 + 16 * 16 * 2
    with open(p, "r+b") as f:
        f.truncate(15 * frame)
    raises(p, "truncated.*says 20 frames.*holds 15")


def test_mib_header_inconsistent(tmp_path):
    p = F.write_mib(tmp_path / "bad.mib", F.cube())
    raw = bytearray(p.read_bytes())
    raw[4:10] = b"xx,yy,"  # garbles sequence/header-size fields
    p.write_bytes(bytes(raw))
    raises(p, "inconsistent")


def test_mib_hdr_disagrees_with_data(tmp_path):
    p = F.write_mib(tmp_path / "more.mib", F.cube())
    hdr = p.with_suffix(".hdr")
    hdr.write_text(
        hdr.read_text().replace("Frames in Acquisition (Number):\t20", "Frames in Acquisition (Number):\t12")
    )
    raises(p, "inconsistent header.*12 frames.*holds 20")


def test_scan_shape_not_matching_frames(tmp_path):
    p = F.write_mib(tmp_path / "s.mib", F.cube(), hdr=False)
    raises(p, r"scan_shape \(3, 3\) needs 9 frames.*holds 20", scan_shape=(3, 3))
    np.save(tmp_path / "stack.npy", F.cube().reshape(20, 16, 16))
    raises(tmp_path / "stack.npy", "needs 21 frames", scan_shape=(3, 7))


def test_truncated_dm4(tmp_path):
    p = F.write_dm4(tmp_path / "cut.dm4", F.cube())
    with open(p, "r+b") as f:
        f.truncate(p.stat().st_size - 100)
    raises(p, "cannot be read as dm — it may be truncated")


def test_truncated_npy(tmp_path):
    p = tmp_path / "cut.npy"
    np.save(p, F.cube())
    with open(p, "r+b") as f:
        f.truncate(p.stat().st_size - 1000)
    raises(p, r"truncated.*shape \(4, 5, 16, 16\)")


def test_truncated_hdf5(tmp_path):
    p = F.write_py4dstem(tmp_path / "cut.h5", F.cube())
    with open(p, "r+b") as f:
        f.truncate(p.stat().st_size // 2)
    raises(p, "cut.h5")


def test_truncated_empad_raw(tmp_path):
    xml = F.write_empad(tmp_path, F.cube((2, 3, 128, 128)).astype(np.float32))
    raw = xml.with_suffix(".raw")
    with open(raw, "r+b") as f:
        f.truncate(raw.stat().st_size - 4)
    with pytest.raises(ReadError, match="truncated.*2×3 scan") as info:
        open_dataset(xml)
    assert raw.name in str(info.value)


def test_empad_raw_without_xml(tmp_path):
    (tmp_path / "lonely.raw").write_bytes(b"\0" * 1000)
    raises(tmp_path / "lonely.raw", "xml")


def test_unknown_extension_lists_supported(tmp_path):
    p = tmp_path / "scan.xyz"
    p.write_bytes(b"12345")
    e = raises(p, "unknown format")
    assert ".mib" in str(e) and ".hspy" in str(e) and ".npy" in str(e)


@pytest.mark.parametrize("name,content_kind", [("data.mib", "NPY"), ("data.h5", "NPY"), ("data.dm4", "NPY")])
def test_wrong_extension_npy_content(tmp_path, name, content_kind):
    p = tmp_path / name
    np.save(tmp_path / "x.npy", F.cube())
    (tmp_path / "x.npy").rename(p)
    raises(p, f"extension says .* content is {content_kind}.*format='npy'")


def test_wrong_extension_hdf5_content(tmp_path):
    p = F.write_py4dstem(tmp_path / "scan.npy", F.cube())
    raises(p, "content is HDF5")


def test_garbage_with_known_extension(tmp_path):
    for name in ("junk.h5", "junk.mib", "junk.npy", "junk.dm4"):
        (tmp_path / name).write_bytes(b"this is not a detector file" * 10)
        raises(tmp_path / name, "not a valid")


@pytest.mark.parametrize("shape", [(20, 16, 16), (16, 16), (3, 2, 4, 5, 16, 16)])
def test_wrong_dimensionality_npy(tmp_path, shape):
    p = tmp_path / "bad.npy"
    np.save(p, np.zeros(shape, np.uint8))
    e = raises(p, rf"{len(shape)}D data of shape \({shape[0]}, .*4D .*5D")
    if len(shape) == 3:
        assert "scan_shape" in str(e)


def test_wrong_dimensionality_hspy_and_hdf5(tmp_path):
    p = F.write_hyperspy(tmp_path / "stack.hspy", F.cube().reshape(20, 16, 16))
    raises(p, r"3D data of shape \(20, 16, 16\)")
    with h5py.File(tmp_path / "img.h5", "w") as f:
        f["image"] = np.zeros((32, 32))
    raises(tmp_path / "img.h5", r"2D data of shape \(32, 32\)")
    with h5py.File(tmp_path / "none.h5", "w") as f:
        f["labels"] = np.array([b"a", b"b"])
    raises(tmp_path / "none.h5", "no numeric dataset")


def test_zarr_group_without_4d(tmp_path):
    import zarr

    g = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    g.create_array("img", shape=(8, 8), dtype="u2")
    raises(tmp_path / "g.zarr", r"no 4D or 5D array.*img \(8, 8\)")


def test_5d_without_angles_and_angles_for_4d(tmp_path):
    np.save(tmp_path / "five.npy", np.zeros((2, 2, 3, 8, 8), np.uint8))
    raises(tmp_path / "five.npy", "5D data with 2 tilts needs tilt angles")
    raises(tmp_path / "five.npy", "3 tilt angles given for 2 tilts", tilt_angles_deg=[0, 1, 2])
    ds = open_dataset(tmp_path / "five.npy", tilt_angles_deg=[-10, 10])
    assert ds.calibration.tilt_angles_deg == (-10.0, 10.0)
    np.save(tmp_path / "four.npy", np.zeros((2, 3, 8, 8), np.uint8))
    raises(tmp_path / "four.npy", "tilt_angles_deg given for 4D", tilt_angles_deg=[0.0])


def test_bad_override_named(tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((2, 3, 8, 8), np.uint8))
    raises(tmp_path / "ok.npy", "scan_step_nm must be a positive", scan_step_nm=-1.0)


def test_unknown_format_keyword(tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((2, 3, 8, 8), np.uint8))
    raises(tmp_path / "ok.npy", "unknown format 'foo'", format="foo")


def test_folder_of_scans_with_different_shapes(tmp_path):
    np.save(tmp_path / "tilt_-10.npy", F.cube())
    np.save(tmp_path / "tilt_+00.npy", F.cube())
    np.save(tmp_path / "tilt_+10.npy", F.cube((4, 6, 16, 16)))
    with pytest.raises(ReadError, match=r"tilt_\+10.npy.*shape \(4, 6, 16, 16\).*same shape") as info:
        open_dataset(tmp_path)
    assert "\n" not in str(info.value)
    np.save(tmp_path / "tilt_+10.npy", F.cube().astype(np.float32))
    with pytest.raises(ReadError, match=r"tilt_\+10.npy.*float32.*same shape and dtype"):
        open_tilt_series(tmp_path)


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    raises(tmp_path / "empty", "no supported files")
    (tmp_path / "noangles").mkdir()
    np.save(tmp_path / "noangles" / "first.npy", F.cube())
    np.save(tmp_path / "noangles" / "second.npy", F.cube())
    with pytest.raises(ReadError, match="no tilt angle for first.npy, second.npy"):
        open_dataset(tmp_path / "noangles")
    with pytest.raises(ReadError, match="duplicate tilt angle"):
        open_dataset(tmp_path / "noangles", tilt_angles_deg=[5, 5])
    with pytest.raises(ReadError, match="3 tilt angles given for 2 files"):
        open_dataset(tmp_path / "noangles", tilt_angles_deg=[1, 2, 3])


def test_cli_info_error_is_one_line(tmp_path, capsys):
    from virtual_aperture.cli import main

    p = tmp_path / "cut.npy"
    np.save(p, F.cube())
    with open(p, "r+b") as f:
        f.truncate(500)
    assert main(["info", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "truncated" in err and "cut.npy" in err
