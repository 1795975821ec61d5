"""One side of ``bench_files.py`` in its own process: ours (this package) or LiberTEM's native reader.

Usage: ``_files_worker.py ours|libertem FORMAT PATH REPEAT BUDGET``; prints one JSON line. Every
repeat times the read ceiling of the same file first (warm page cache, same process), then the
virtual image (annulus), then the aperture sum (one real-space disk over 20 % of the frames).
LiberTEM needs only numpy/LiberTEM here, so this file imports nothing of virtual_aperture for it.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time

import numpy as np

F_DISK = 0.2  # fraction of the scan inside the real-space aperture


def read_file(path: str) -> int:
    """Sequential read of the whole file into one reused 64 MiB buffer (one thread)."""
    buf = bytearray(64 * 2**20)
    view = memoryview(buf)
    n = 0
    with open(path, "rb", buffering=0) as f:
        while k := f.readinto(view):
            n += k
    return n


def read_zarr(path: str) -> int:
    """Every storage chunk of a zarr array read and decoded in turn (one thread)."""
    import zarr

    z = zarr.open_array(path, mode="r")
    cy, cx = z.chunks[:2]
    for y in range(0, z.shape[0], cy):
        for x in range(0, z.shape[1], cx):
            z[y : y + cy, x : x + cx]
    return int(np.prod(z.shape)) * z.dtype.itemsize


def disk(sy: int, sx: int) -> np.ndarray:
    yy, xx = np.mgrid[:sy, :sx]
    return np.hypot(yy - sy / 2, xx - sx / 2) < np.sqrt(F_DISK * sy * sx / np.pi)


class PeakRSS:
    """Peak resident memory of this process above its baseline, sampled every 5 ms."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.baseline = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.peak - self.baseline


def ours(fmt: str, path: str, budget: str):
    from virtual_aperture.compute import aperture_sums, detectors, virtual_image
    from virtual_aperture.compute.source import Source
    from virtual_aperture.io import open_dataset

    ds = open_dataset(path)
    if fmt.endswith("-before"):  # the chunking/reading open_dataset did before (for the table)
        ds = before(fmt, path, ds)
    sy, sx = ds.scan_shape
    ky, kx = ds.detector_shape
    ann = detectors.annulus((ky, kx), (ky / 2, kx / 2), ky / 8, ky / 2 - 2)
    lab = disk(sy, sx).astype(np.int32)
    src = Source(ds)
    if src.file is not None:
        info = {"path": "direct (FrameFile, fused records)" if src.fused else "direct (FrameFile)"}
    elif src.store_direct:
        info = {"path": f"local threads, whole storage chunks {src.store_chunks}"}
    else:
        info = {"path": f"dask chunks {ds.data.chunksize[:2]}"}
    small = ds.data[:2] if src.file is None else ds  # warm up the kernels (numba cache load)
    virtual_image(small, ann, memory_budget=budget)
    aperture_sums(small, lab[:2] if src.file is None else lab, memory_budget=budget)

    def vi():
        return virtual_image(ds, ann, memory_budget=budget)

    def sums():
        return aperture_sums(ds, lab, memory_budget=budget)

    return vi, sums, info, (ds.nbytes, sy, sx)


def before(fmt: str, path: str, ds):
    import dask.array as da

    from virtual_aperture.io.binary import MemmapSource
    from virtual_aperture.io.store import ZarrSource
    from virtual_aperture.model import Dataset
    from virtual_aperture.model.dataset import scan_chunks

    chunks = scan_chunks(ds.shape, ds.dtype.itemsize)
    if fmt == "npy-before":  # dask over a memmap-copying source (every chunk copied out)
        from virtual_aperture.compute.source import Source

        src = MemmapSource(path, ds.dtype, ds.shape, Source(ds).file.offset)
    else:  # zarr re-chunked to 128 MiB scan chunks across its storage chunks
        import zarr

        z = zarr.open_array(path, mode="r")
        src = _Opaque(ZarrSource(path, "", z.shape, z.dtype, z.chunks))
    return Dataset(da.from_array(src, chunks=chunks, asarray=False, fancy=False, name=f"before-{fmt}"))


class _Opaque:
    """An array-like that hides its storage chunks (as open_dataset's arrays did before)."""

    def __init__(self, inner) -> None:
        self.inner, self.shape, self.dtype, self.ndim = inner, inner.shape, inner.dtype, inner.ndim

    def __getitem__(self, key):
        return self.inner[key]


def libertem(fmt: str, path: str):
    from libertem.api import Context
    from libertem.udf.sum import SumUDF

    ctx = Context.make_with("threads")  # its fastest on this machine (inline: one thread)
    scan = tuple(int(n) for n in os.environ.get("VA_BENCH_SCAN", "384,384").split(","))
    kw = {"nav_shape": scan} if fmt == "mib" else {}
    ds = ctx.load(fmt, path=path, **kw)
    sy, sx, ky, kx = ds.shape
    roi = disk(sy, sx)
    an = ctx.create_ring_analysis(ds, cy=ky / 2, cx=kx / 2, ri=ky / 8, ro=ky / 2 - 2)
    ctx.run(an)  # warm up (numba compilation)
    ctx.run_udf(dataset=ds, udf=SumUDF(), roi=roi)
    nbytes = int(np.prod(ds.shape)) * 2
    return lambda: ctx.run(an), lambda: ctx.run_udf(dataset=ds, udf=SumUDF(), roi=roi), {}, (nbytes, sy, sx)


def main() -> None:
    side, fmt, path, repeat, budget = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    if side == "ours":
        vi, sums, info, (nbytes, sy, sx) = ours(fmt, path, budget)
    else:
        vi, sums, info, (nbytes, sy, sx) = libertem(fmt, path)
    ceiling = read_zarr if fmt.startswith("zarr") else read_file
    rss = PeakRSS() if side == "ours" else None
    t = {"read": [], "vi": [], "sum": []}
    for _ in range(repeat):
        for key, fn in (("read", lambda: ceiling(path)), ("vi", vi), ("sum", sums)):
            t0 = time.perf_counter()
            fn()
            t[key].append(time.perf_counter() - t0)
    out = {k: statistics.median(v) for k, v in t.items()}
    out.update({"all": t, "nbytes": nbytes, "f": float(disk(sy, sx).mean()), "load": os.getloadavg(), **info})
    if rss is not None:
        out["peak_rss"] = rss.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
