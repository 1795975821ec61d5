"""Out-of-core benchmark run in its own process (so its peak RSS is its own).

Usage: ``_ooc_worker.py ZARR_PATH BUDGET REPEAT threads|local2``; prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import dask.array as da
import numpy as np
import psutil
import zarr

from virtual_aperture.compute import aperture_sums, detectors, get_client, parse_memory_budget, virtual_image


class PeakRSS:
    """Samples the summed RSS of some processes every 5 ms; ``peak - baseline`` is the figure."""

    def __init__(self, pids):
        self.procs = [psutil.Process(p) for p in pids]
        self.baseline = self.now()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def now(self) -> int:
        return sum(p.memory_info().rss for p in self.procs)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(0.005)

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.peak - self.baseline


def main() -> None:
    path, budget_s, repeat, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    budget = parse_memory_budget(budget_s)
    z = zarr.open_array(path, mode="r")
    sy, sx, ky, kx = z.shape
    cy = z.chunks[0]
    nbytes = int(np.prod(z.shape)) * z.dtype.itemsize

    t0 = time.perf_counter()
    for y in range(0, sy, cy):
        z[y : y + cy]
    t_seq = time.perf_counter() - t0

    client = None
    if mode == "local2":
        client = get_client(
            "local", n_workers=2, threads_per_worker=1, memory_limit=0
        )  # no pausing: RSS is measured
    data = da.from_zarr(path)
    ann = detectors.annulus((ky, kx), (ky / 2, kx / 2), ky / 8, ky / 2 - 2)
    rnd = np.random.default_rng(1).random((ky, kx))
    lab = np.zeros((sy, sx), np.int32)
    h, w = sy // 2, sx // 2
    lab[:h, :w] = 1 + (np.arange(h)[:, None] * 8 // h) * 8 + np.arange(w)[None, :] * 8 // w
    # warm up (numba cache load, worker start-up) on a small slice
    virtual_image(data[:cy], rnd, client=client)
    aperture_sums(data[:cy], lab[:cy], client=client)
    if client is None:
        pids, what = [psutil.Process().pid], "this process"
    else:
        pids, what = list(client.run(lambda: __import__("os").getpid()).values()), "sum of 2 workers"
    rss = PeakRSS(pids)
    out = {
        "t_seq": t_seq,
        "gbs_seq": nbytes / t_seq / 1e9,
        "budget": budget,
        "nbytes": nbytes,
        "rss_what": what,
    }
    for key, m in (("ann", ann), ("rnd", rnd)):
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            virtual_image(data, m, client=client, memory_budget=budget)
            ts.append(time.perf_counter() - t0)
        out[f"t_{key}"] = min(ts)
        out[f"gbs_{key}"] = nbytes / min(ts) / 1e9
    t0 = time.perf_counter()
    aperture_sums(data, lab, client=client, memory_budget=budget)
    out["t_sum"] = time.perf_counter() - t0
    out["peak_rss"] = rss.stop()
    if client is not None:
        cluster = client.cluster
        client.close()
        cluster.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
