"""Benchmark of the built-in sample (``simulate_agglomerate``).

Budget (from the project brief): the default 4D sample and a default-size 5D tilt series
(±30° in 2° steps, 32×32 scan, 128×128 detector) must each simulate in under 30 s on 2 cores.
Prints, from one run: time to build the lazy dataset, time to compute every frame, the ratio
to the 30 s budget, the ratio to writing the same bytes with numpy (``np.full``, a
memory-bandwidth floor), and the latency of one pattern (what a viewer waits for).

Run: ``.venv/bin/python benchmarks/bench_sample.py``
"""

from __future__ import annotations

import os
import time

import numpy as np

from virtual_aperture import simulate_agglomerate

BUDGET_S = 30.0


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench(label: str, **kw) -> None:
    (ds, truth), t_build = timed(lambda: simulate_agglomerate(**kw))
    _, t_one = timed(lambda: ds.pattern(ds.scan_shape[0] // 2, ds.scan_shape[1] // 2))
    data, t_all = timed(lambda: ds.data.compute())
    _, t_floor = timed(lambda: np.full(ds.shape, 1, dtype=ds.dtype))
    total = t_build + t_all
    print(f"{label}: {ds}")
    print(f"  build (lazy)          {t_build:8.3f} s")
    print(f"  one pattern           {t_one * 1e3:8.1f} ms")
    print(
        f"  compute all frames    {t_all:8.3f} s   ({ds.nbytes / 2**20 / t_all:7.1f} MiB/s, "
        f"{int(np.prod(ds.shape[:-2])) / t_all:8.0f} frames/s)"
    )
    print(f"  build + compute       {total:8.3f} s   = {total / BUDGET_S:5.2f} x the {BUDGET_S:.0f} s budget")
    print(f"  vs numpy np.full of the same array ({t_floor:.3f} s): {t_all / t_floor:6.1f} x slower")
    print(
        f"  mean counts/frame     {data.sum(axis=(-2, -1), dtype=np.float64).mean():10.1f}; "
        f"grains {truth.n_grains}"
    )


def main() -> None:
    print(f"cores: {os.cpu_count()}")
    _, t_cold = timed(lambda: simulate_agglomerate(scan_shape=(8, 8), n_grains=1)[0].data.compute())
    print(f"warm-up (imports, numba cache load/compile): {t_cold:.2f} s")
    bench(
        "default 4D",
    )
    bench("5D ±30° step 2°, 32×32 scan", tilts=(-30, 30, 2), scan_shape=(32, 32))


if __name__ == "__main__":
    main()
