"""Frame-addressable files (.npy, Merlin .mib) are read by the compute engine directly: same numbers
as the numpy reference, no dask getter (no copy) on the way, only labelled frames read for
aperture sums, resident memory bounded by the budget on a file larger than it; zarr/HDF5 opened
with whole storage chunks per dask chunk."""

from __future__ import annotations

import threading
import time

import h5py
import numpy as np
import psutil
import pytest
import zarr

from virtual_aperture.compute import aperture_sums, virtual_image
from virtual_aperture.compute.source import Source
from virtual_aperture.io import open_dataset
from virtual_aperture.io.formats import store_chunks
from virtual_aperture.io.framefile import FrameFile

from data_factories import write_mib

SHAPE = (12, 10, 16, 16)


def _cube(dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    top = min(np.iinfo(dtype).max, 60000) if np.dtype(dtype).kind in "ui" else 1000
    return rng.integers(0, top, SHAPE).astype(dtype)


def _files(tmp_path, a, depth="U16"):
    np.save(tmp_path / "s.npy", a)
    write_mib(tmp_path / "s.mib", a, depth=depth)
    # rosettasciio (and so open_dataset) shows Merlin frames upside down
    return {"npy": (tmp_path / "s.npy", a), "mib": (tmp_path / "s.mib", a[:, :, ::-1])}


@pytest.mark.parametrize("depth,dtype", [("U08", np.uint8), ("U16", np.uint16), ("U32", np.uint32)])
def test_file_paths_give_the_numpy_reference(tmp_path, depth, dtype):
    a = _cube(dtype)
    rng = np.random.default_rng(1)
    masks = rng.random((3, 16, 16))
    ann = np.zeros((16, 16), bool)
    ann[3:13, 2:14] = True
    shifts = rng.normal(0, 1.5, SHAPE[:2] + (2,))
    lab = rng.integers(0, 4, SHAPE[:2])
    for name, (path, ref) in _files(tmp_path, a, depth).items():
        if name == "npy" and dtype != np.uint16:
            continue
        ds = open_dataset(path, chunk_bytes=2**13)
        src = Source(ds)
        assert src.file is not None and src.in_memory, name
        assert np.array_equal(ds.data.compute(), ref)
        # integer data, 0/1 mask: exact; real weights: the same up to the order of the float sums
        assert np.array_equal(virtual_image(ds, ann), virtual_image(ref, ann)), name
        np.testing.assert_allclose(virtual_image(ds, masks), virtual_image(ref, masks), rtol=1e-13)
        np.testing.assert_allclose(
            virtual_image(ds, masks, shifts=shifts), virtual_image(ref, masks, shifts=shifts), rtol=1e-12
        )
        for sh in (None, shifts):
            got, want = aperture_sums(ds, lab, shifts=sh), aperture_sums(ref, lab, shifts=sh)
            assert got.keys() == want.keys()
            for k in want:
                np.testing.assert_allclose(got[k].sum, want[k].sum, rtol=1e-12)
                assert got[k].count == want[k].count


def test_5d_npy_is_read_directly(tmp_path):
    a = np.stack([_cube(seed=s) for s in range(3)])
    np.save(tmp_path / "t.npy", a)
    ds = open_dataset(tmp_path / "t.npy", tilt_angles_deg=[-10, 0, 10], chunk_bytes=2**13)
    assert Source(ds).file is not None
    m = np.random.default_rng(2).random((16, 16))
    assert np.array_equal(virtual_image(ds, m), virtual_image(a, m))
    lab = np.random.default_rng(3).integers(0, 3, (3,) + SHAPE[:2])
    got, want = aperture_sums(ds, lab), aperture_sums(a, lab)
    for k in want:
        assert np.array_equal(got[k].sum, want[k].sum)
        assert np.array_equal(got[k].count, want[k].count)


def test_no_dask_copy_on_the_way(tmp_path, monkeypatch):
    """The dask getter (FrameFile.__getitem__, a copy of a whole chunk) is never called."""
    a = _cube()
    files = _files(tmp_path, a)
    datasets = {n: open_dataset(p, chunk_bytes=2**13) for n, (p, _) in files.items()}

    def boom(self, key):
        raise AssertionError("dask read a chunk")

    monkeypatch.setattr(FrameFile, "__getitem__", boom)
    m = np.ones((16, 16), bool)
    lab = np.zeros(SHAPE[:2], int)
    lab[2:5, 3:7] = 1
    for name, ds in datasets.items():
        ref = files[name][1]
        assert np.array_equal(virtual_image(ds, m), ref.sum(axis=(2, 3)))
        assert np.array_equal(aperture_sums(ds, lab)[1].sum, ref[2:5, 3:7].sum(axis=(0, 1)))


def test_npy_frames_are_used_in_place(tmp_path):
    a = _cube()
    np.save(tmp_path / "s.npy", a)
    src = Source(open_dataset(tmp_path / "s.npy"))
    assert src.file is not None and src.file.zero_copy
    piece = src.file_pieces()[0]
    frames = src.read_piece(piece)
    assert isinstance(frames.base, np.memmap) or isinstance(frames, np.memmap)
    assert not frames.flags.writeable and frames.flags.c_contiguous


def test_aperture_sums_read_only_the_labelled_frames(tmp_path, monkeypatch):
    a = _cube()
    files = _files(tmp_path, a)
    lab = np.zeros(SHAPE[:2], int)
    lab[1, 2:6] = 1
    lab[7:9, 4] = 2
    lab[11, 9] = 3
    want = set(np.flatnonzero(lab).tolist())
    # .mib: the stored records of every frame read are reduced in place; record which were read
    decoded: list[int] = []
    orig = FrameFile.records

    def spy(self, index, buf=None):
        decoded.extend(np.asarray(index).tolist())
        return orig(self, index, buf)

    monkeypatch.setattr(FrameFile, "records", spy)
    ds = open_dataset(files["mib"][0])
    res = aperture_sums(ds, lab)
    assert sorted(decoded) == sorted(want)
    assert np.array_equal(res[2].sum, files["mib"][1][7:9, 4].sum(axis=0))
    # .npy: the kernels are handed exactly the labelled frames of the mapped span
    src = Source(open_dataset(files["npy"][0]))
    ys, xs = np.nonzero(lab)
    seen = []
    for _sel, idx in src.file_groups(0, ys, xs):
        flat, local = src.read_group(idx)
        assert flat.shape[0] == idx[-1] - idx[0] + 1 and isinstance(flat.base, np.ndarray)
        seen.extend((local + idx[0]).tolist())
    assert sorted(seen) == sorted(want)


def test_progress_and_cancel_on_files(tmp_path):
    from virtual_aperture.compute import Cancelled, CancelToken

    a = _cube()
    np.save(tmp_path / "s.npy", a)
    ds = open_dataset(tmp_path / "s.npy")
    calls = []
    virtual_image(ds, np.ones((16, 16)), progress=lambda d, t: calls.append((d, t)), memory_budget=2**16)
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] > 1
    tok = CancelToken()
    tok.cancel()
    with pytest.raises(Cancelled):
        virtual_image(ds, np.ones((16, 16)), cancel=tok)


def test_memory_stays_bounded_on_a_file_larger_than_the_budget(tmp_path):
    """A 384 MiB .npy (6x the 64 MiB budget): resident memory above the baseline stays under it."""
    shape = (96, 64, 128, 128)
    out = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.uint16, shape=shape)
    for y in range(shape[0]):
        out[y] = y
    out.flush()
    del out
    ds = open_dataset(tmp_path / "big.npy")
    budget = 64 * 2**20
    proc = psutil.Process()
    lab = np.ones(shape[:2], int)
    virtual_image(ds, np.ones((128, 128), bool), memory_budget=budget)  # warm up
    base = peak = proc.memory_info().rss
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.002)

    th = threading.Thread(target=sample)
    th.start()
    try:
        img = virtual_image(ds, np.ones((128, 128), bool), memory_budget=budget)
        sums = aperture_sums(ds, lab, memory_budget=budget)
    finally:
        stop.set()
        th.join()
    assert np.array_equal(img[:, 0], np.arange(shape[0]) * 128.0 * 128.0)
    assert sums[1].sum[0, 0] == shape[1] * np.arange(shape[0]).sum()
    assert peak - base < budget, f"{(peak - base) / 2**20:.0f} MiB above baseline"


def test_store_chunks_never_split_a_storage_chunk():
    frame = 16 * 16 * 2
    # storage chunks of 16x16 positions: whole chunks merged up to the target
    for target in (frame * 16 * 16, frame * 16 * 48, frame * 16 * 100, 10**9):
        cy, cx = store_chunks((100, 100, 16, 16), 2, (16, 16, 16, 16), target)[:2]
        assert (cy % 16 == 0 or cy == 100) and (cx % 16 == 0 or cx == 100)
        assert cy * cx * frame <= max(target, 16 * 16 * frame) or cy == 16 and cx == 16
    assert store_chunks((5, 20, 30, 16, 16), 2, (1, 3, 20, 16, 16), frame * 40)[:3] == (1, 3, 20)
    assert store_chunks((5, 20, 30, 16, 16), 2, (1, 3, 20, 16, 16), frame * 200)[:3] == (1, 6, 30)
    assert store_chunks((10, 10, 16, 16), 2, None, 2**20) == (10, 10, 16, 16)


def test_zarr_and_hdf5_keep_their_storage_chunks(tmp_path):
    a = _cube()
    z = zarr.create_array(store=str(tmp_path / "f.zarr"), shape=a.shape, chunks=(3, 4, 16, 16), dtype=a.dtype)
    z[:] = a
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("frames", data=a, chunks=(3, 4, 16, 16))
    for path in (tmp_path / "f.zarr", tmp_path / "f.h5"):
        ds = open_dataset(path, chunk_bytes=5 * 3 * 4 * 16 * 16 * 2)
        for c, s in zip(ds.data.chunks[:2], (3, 4)):
            assert all(n % s == 0 for n in c[:-1]), (path, ds.data.chunks)
        m = np.random.default_rng(0).random((16, 16))
        assert np.array_equal(virtual_image(ds, m), virtual_image(a, m))


def test_aperture_sums_on_a_store_read_only_the_labelled_storage_chunks(tmp_path, monkeypatch):
    from virtual_aperture.io.store import ZarrSource

    a = _cube()
    z = zarr.create_array(store=str(tmp_path / "f.zarr"), shape=a.shape, chunks=(3, 5, 16, 16), dtype=a.dtype)
    z[:] = a
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("frames", data=a, chunks=(3, 5, 16, 16))
    lab = np.zeros(SHAPE[:2], int)
    lab[4, 1] = 1  # storage chunk (1, 0)
    lab[10, 6:8] = 2  # storage chunk (3, 1)
    regions = []
    orig = ZarrSource.__getitem__

    def spy(self, key):
        regions.append(key)
        return orig(self, key)

    monkeypatch.setattr(ZarrSource, "__getitem__", spy)
    for path in (tmp_path / "f.zarr", tmp_path / "f.h5"):
        ds = open_dataset(path)
        assert Source(ds).store_chunks == (3, 5)
        got, want = aperture_sums(ds, lab), aperture_sums(a, lab)
        for k in want:
            assert np.array_equal(got[k].sum, want[k].sum)
    read = [(k[0], k[1]) for k in regions if k[0].stop > k[0].start]
    assert sorted((y.start, y.stop, x.start, x.stop) for y, x in read) == [(3, 6, 0, 5), (9, 12, 5, 10)]


def test_small_budget_rereads_the_store_in_whole_storage_chunks(tmp_path):
    a = _cube()
    z = zarr.create_array(store=str(tmp_path / "f.zarr"), shape=a.shape, chunks=(3, 5, 16, 16), dtype=a.dtype)
    z[:] = a
    src = Source(open_dataset(tmp_path / "f.zarr"))
    arr = src.dask5(3 * 5 * 16 * 16 * 2)  # room for one storage chunk per dask chunk
    assert all(c == 3 for c in arr.chunks[1][:-1]) and all(c == 5 for c in arr.chunks[2][:-1])
    m = np.random.default_rng(0).random((16, 16))
    assert np.array_equal(virtual_image(src.array5[0], m, memory_budget=2**16), virtual_image(a, m))


def test_empad_raw_is_read_directly(tmp_path):
    from data_factories import write_empad

    a = np.random.default_rng(0).random((6, 5, 128, 128)).astype("f4")
    a[0, 0, 3, 4] = np.nan  # a dead pixel outside the mask must not reach the image
    ds = open_dataset(write_empad(tmp_path, a))
    src = Source(ds)
    assert src.file is not None and not src.file.zero_copy
    assert np.array_equal(ds.data.compute(), a, equal_nan=True)
    m = np.zeros((128, 128))
    m[10:100, 20:90] = np.random.default_rng(1).random((90, 70))
    assert np.array_equal(virtual_image(ds, m), virtual_image(a, m))
    lab = np.random.default_rng(2).integers(0, 3, (6, 5))
    lab[0, 0] = 0
    got, want = aperture_sums(ds, lab), aperture_sums(a, lab)
    for k in want:
        np.testing.assert_allclose(got[k].sum, want[k].sum, rtol=1e-12)


def test_stores_are_reduced_on_local_threads_without_dask(tmp_path, monkeypatch):
    """zarr/HDF5 (opened, or passed as zarr.Array / h5py.Dataset): no dask task is run, whole
    storage chunks are read, the numbers are the numpy reference's."""
    from virtual_aperture.compute import executor

    a = _cube()
    z = zarr.create_array(store=str(tmp_path / "f.zarr"), shape=a.shape, chunks=(3, 4, 16, 16), dtype=a.dtype)
    z[:] = a
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("frames", data=a, chunks=(3, 4, 16, 16))

    def boom(*args, **kwargs):
        raise AssertionError("streamed through dask")

    monkeypatch.setattr(executor, "_compute_sync", boom)
    m = np.random.default_rng(0).random((16, 16)) > 0.5
    lab = np.zeros(SHAPE[:2], int)
    lab[2:8, 3:9] = 1
    with h5py.File(tmp_path / "f.h5", "r") as h5:
        for data in (open_dataset(tmp_path / "f.zarr"), open_dataset(tmp_path / "f.h5"), z, h5["frames"]):
            assert Source(data).store_direct
            assert np.array_equal(virtual_image(data, m, memory_budget=2**16), virtual_image(a, m))
            assert np.array_equal(aperture_sums(data, lab)[1].sum, a[2:8, 3:9].sum(axis=(0, 1)))
