"""Issue 17/13: outputs are never overwritten without --overwrite (checked before computing), are
written atomically (an error or Ctrl-C leaves nothing that looks complete), and save_dataset can
overwrite its own lazy source; bad chunk sizes are refused with one line."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from virtual_aperture import Calibration, Dataset
from virtual_aperture.cli import main
from virtual_aperture.io import open_dataset, save_dataset


def _scan(tmp_path):
    data = np.arange(4 * 5 * 8 * 8, dtype=np.uint16).reshape(4, 5, 8, 8)
    np.save(tmp_path / "scan.npy", data)
    return data


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp"))


@pytest.mark.parametrize("command", ["virtual", "sum", "propose"])
def test_existing_output_refused_before_computing(tmp_path, capsys, monkeypatch, command):
    _scan(tmp_path)
    out = tmp_path / "out.tif"
    out.write_bytes(b"precious")
    tifffile.imwrite(tmp_path / "labels.tif", np.ones((4, 5), np.int32))
    import virtual_aperture.io as vio

    def no_open(*a, **k):  # the refusal must come before the dataset is even opened
        raise AssertionError("opened the dataset although the output exists")

    monkeypatch.setattr(vio, "open_dataset", no_open)
    labels = str(tmp_path / "labels.tif")
    extra = {"virtual": ["--detector", "bf"], "sum": ["--labels", labels], "propose": []}
    assert main([command, str(tmp_path / "scan.npy"), *extra[command], "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0] and "--overwrite" in err[0], err
    assert out.read_bytes() == b"precious"
    missing = tmp_path / "no-such-folder" / "out.tif"
    assert main([command, str(tmp_path / "scan.npy"), *extra[command], "--out", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_overwrite_replaces_and_interrupt_leaves_nothing(tmp_path, capsys, monkeypatch):
    data = _scan(tmp_path)
    out = tmp_path / "vi.tif"
    out.write_bytes(b"old")
    mask = tmp_path / "mask.tif"
    tifffile.imwrite(mask, np.ones((8, 8)))
    args = ["virtual", str(tmp_path / "scan.npy"), "--detector", str(mask), "--out", str(out)]
    assert main(args + ["--overwrite"]) == 0
    np.testing.assert_array_equal(tifffile.imread(out), data.sum(axis=(2, 3)))
    # Ctrl-C while the TIFF is being written: the old file stays, no partial file, no temporary left
    before = out.read_bytes()
    real = tifffile.imwrite

    def interrupted(path, *a, **k):
        real(path, *a, **k)
        with open(path, "r+b") as f:
            f.truncate(100)
        raise KeyboardInterrupt

    monkeypatch.setattr(tifffile, "imwrite", interrupted)
    assert main(args + ["--overwrite"]) == 130
    assert out.read_bytes() == before
    new = tmp_path / "new.tif"
    assert main(args[:-1] + [str(new)]) == 130
    assert not new.exists()
    assert _leftovers(tmp_path) == []


def test_save_dataset_over_its_own_source(tmp_path):
    data = np.random.default_rng(1).integers(0, 1000, (4, 5, 8, 8)).astype(np.uint16)
    store = save_dataset(Dataset(data, Calibration(scan_step_nm=2.0)), tmp_path / "s.zarr", chunk_bytes=640)
    lazy = open_dataset(store)
    save_dataset(lazy, store, overwrite=True, chunk_bytes=1280)  # reads the store it replaces
    back = open_dataset(store)
    np.testing.assert_array_equal(back.data.compute(), data)
    assert back.calibration.scan_step_nm == 2.0
    assert _leftovers(tmp_path) == []


def test_save_dataset_interrupted_keeps_old_store(tmp_path):
    data = np.ones((4, 5, 8, 8), np.uint16)
    store = save_dataset(Dataset(data, Calibration()), tmp_path / "s.zarr", chunk_bytes=640)

    def stop(done, total):
        if done >= 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_dataset(Dataset(data * 7, Calibration()), store, overwrite=True, chunk_bytes=640, progress=stop)
    np.testing.assert_array_equal(open_dataset(store).data.compute(), data)
    with pytest.raises(KeyboardInterrupt):
        save_dataset(Dataset(data, Calibration()), tmp_path / "new.zarr", chunk_bytes=640, progress=stop)
    assert not (tmp_path / "new.zarr").exists()
    assert _leftovers(tmp_path) == []
    with pytest.raises(FileExistsError, match="already exists"):
        save_dataset(Dataset(data, Calibration()), store)


@pytest.mark.parametrize("bad", [0, -5, float("nan")])
def test_bad_chunk_sizes_refused(tmp_path, capsys, bad):
    _scan(tmp_path)
    ds = Dataset(np.ones((2, 2, 4, 4), np.uint16), Calibration())
    with pytest.raises(ValueError, match="chunk_bytes"):
        save_dataset(ds, tmp_path / "x.zarr", chunk_bytes=bad)
    assert not (tmp_path / "x.zarr").exists()
    with pytest.raises(ValueError, match="chunk_bytes"):
        open_dataset(tmp_path / "scan.npy", chunk_bytes=bad)
    assert main(["info", str(tmp_path / "scan.npy"), "--chunk-mb", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--chunk-mb must be a positive" in err[0]
