"""Laziness: opening files far larger than the chunk budget reads (almost) nothing, and saving
streams chunk by chunk. The big files are sparse (headers written, pixel bytes never), so they
cost no disk; memory is measured in a fresh subprocess so other tests cannot hide a leak."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import data_factories as F

GIB = 2**30


def sparse_npy(path: Path, shape, dtype=np.uint16) -> Path:
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    mm[3, 4, 5, 6] = 1234  # one known value
    mm.flush()
    del mm
    return path


def sparse_mib(path: Path, sy: int, sx: int, h: int = 256, w: int = 256) -> Path:
    """A Merlin file of sy*sx U16 frames: every 384-byte header written, the pixels left as holes."""
    frame = h * w * 2
    with open(path, "wb") as f:
        for i in range(sy * sx):
            f.seek(i * (384 + frame))
            f.write(F.mib_header(i + 1, h, w))
        f.truncate(sy * sx * (384 + frame))
    path.with_suffix(".hdr").write_text(
        f"HDR,\t\nFrames in Acquisition (Number):\t{sy * sx}\nFrames per Trigger (Number):\t{sx}\nEnd\t\n"
    )
    return path


PROBE = r"""
import json, os, sys, time, psutil, numpy as np
import virtual_aperture as va
import dask.array, h5py, zarr, rsciio.quantumdetector, virtual_aperture.io.dispatch  # imports are not data
proc = psutil.Process()
results = {}
for path, kw in json.loads(sys.argv[1]):
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    ds = va.open_dataset(path, **kw)
    t_open = time.perf_counter() - t0
    rss1 = proc.memory_info().rss
    big = 0
    for v in ds.data.__dask_graph__().values():
        if isinstance(v, np.ndarray) and not isinstance(v, np.memmap):
            big = max(big, v.nbytes)
    frame = np.asarray(ds.data[3, 4].compute())
    results[os.path.basename(path)] = {
        "nbytes": ds.nbytes, "rss_delta": rss1 - rss0, "open_s": t_open, "largest_array_in_graph": big,
        "chunk_max": int(np.prod([max(c) for c in ds.data.chunks]) * ds.dtype.itemsize),
        "npartitions": ds.data.npartitions, "type": type(ds.data).__name__,
        "v3456": int(frame[5, 6]), "format": ds.metadata["format"]}
    del ds, frame
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """Three big sparse files opened in one fresh subprocess; returns what it measured."""
    import shutil

    import h5py

    tmp = tmp_path_factory.mktemp("big")
    if shutil.disk_usage(tmp).free < GIB:
        pytest.skip("not enough free disk for sparse files")
    sparse_npy(tmp / "big.npy", (128, 128, 256, 256))  # 2 GiB
    sparse_mib(tmp / "big.mib", 128, 128)  # 16384 frames of 256×256 U16, 2 GiB
    with h5py.File(tmp / "big.h5", "w") as f:  # chunked, never written: no disk used
        f.create_dataset("frames", shape=(64, 64, 256, 256), dtype="u2", chunks=(1, 8, 256, 256))
    jobs = [
        (str(tmp / "big.npy"), {"chunk_bytes": 32 * 2**20}),
        (str(tmp / "big.mib"), {"chunk_bytes": 32 * 2**20}),
        (str(tmp / "big.h5"), {"chunk_bytes": 16 * 2**20, "fill_missing": True}),
    ]  # never written
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(jobs)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_open_2gib_npy_is_lazy(probed):
    r = probed["big.npy"]
    assert r["type"] == "Array" and r["nbytes"] == 2 * GIB
    assert r["npartitions"] >= 64 and r["chunk_max"] <= 32 * 2**20
    assert r["rss_delta"] < 64 * 2**20, r  # far less than the file
    assert r["largest_array_in_graph"] < 2**20
    assert r["v3456"] == 1234


def test_open_2gib_mib_is_lazy(probed):
    r = probed["big.mib"]
    assert r["format"] == "mib" and r["nbytes"] == 2 * GIB
    assert r["rss_delta"] < 64 * 2**20, r
    assert r["largest_array_in_graph"] < 2**20
    assert r["npartitions"] >= 64 and r["chunk_max"] <= 32 * 2**20


def test_open_big_hdf5_is_lazy(probed):
    r = probed["big.h5"]
    assert r["nbytes"] == 512 * 2**20 and r["rss_delta"] < 48 * 2**20, r
    assert r["npartitions"] >= 32
    assert r["largest_array_in_graph"] < 2**20


SAVE = r"""
import resource, sys, json, dask.array as da, numpy as np
import virtual_aperture as va
from virtual_aperture.io import save_dataset
import zarr, numcodecs, virtual_aperture.io.store, virtual_aperture.io.dispatch  # imports are not data
da.zeros((2, 2), chunks=1).sum().compute()  # start the thread pool
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
data = (da.ones((64, 64, 256, 256), dtype=np.uint16, chunks=(1, 64, 256, 256))
        + da.arange(64, dtype=np.uint16, chunks=1)[:, None, None, None]
        + da.arange(256, dtype=np.uint16, chunks=256))  # 512 MiB in 8 MiB chunks, made chunk by chunk
ds = va.Dataset(data)
save_dataset(ds, sys.argv[1], chunk_bytes=8 * 2**20)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
back = va.open_dataset(sys.argv[1])
same = bool((back.data[::7, ::13] == data[::7, ::13]).all().compute())
print(json.dumps({"peak_delta": peak, "same": same, "nbytes": ds.nbytes}))
"""


def test_save_streams_chunks(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", SAVE, str(tmp_path / "s.zarr")],
        capture_output=True,
        text=True,
        timeout=300,
        env={"DASK_NUM_WORKERS": "2", **__import__("os").environ},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["same"]
    assert r["peak_delta"] < r["nbytes"] / 4, r  # streams: never more than a fraction of the 512 MiB
