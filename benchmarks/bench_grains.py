"""Benchmark of the crowded-agglomerate tools on a 256×256 scan of 128×128 patterns.

The sample is the built-in simulator (``simulate_agglomerate``, 40 grains, uint16, 2 GiB)
rendered once into memory; its generation time is printed separately and is *not* part of
the timed steps. Targets (2 cores): grain proposals < 20 s, vector finding + clustering < 60 s.

Run: ``.venv/bin/python benchmarks/bench_grains.py [--scan 256] [--det 128]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scan", type=int, default=256)
    ap.add_argument("--det", type=int, default=128)
    ap.add_argument("--grains", type=int, default=40)
    args = ap.parse_args()

    import dask

    from virtual_aperture.grains import cluster_vectors, find_vectors, propose_grains
    from virtual_aperture.model import Dataset
    from virtual_aperture.sample import simulate_agglomerate

    print(f"cores: {os.cpu_count()}, dask scheduler: threads")
    t0 = time.perf_counter()
    lazy, truth = simulate_agglomerate(
        n_grains=args.grains,
        scan_shape=(args.scan, args.scan),
        detector_shape=(args.det, args.det),
        seed=0,
        dose=3e4,
    )
    with dask.config.set(scheduler="threads"):
        data = lazy.data.compute()
    t_gen = time.perf_counter() - t0
    ds = Dataset(data, lazy.calibration)
    print(f"sample: {ds} generated in {t_gen:.1f} s (not timed below)")

    # warm the numba caches on a small crop so compile time is not counted
    small = Dataset(data[:16, :16], lazy.calibration)
    propose_grains(small, min_size=4, mean_patterns=False)
    cluster_vectors(find_vectors(small), scan_shape=(16, 16))

    t0 = time.perf_counter()
    prop = propose_grains(ds, min_size=20, mean_patterns=False)
    t_prop = time.perf_counter() - t0
    print(
        f"propose_grains (no mean patterns):   {t_prop:6.1f} s  target < 20 s  ratio {t_prop / 20:.2f}",
        flush=True,
    )
    t0 = time.perf_counter()
    prop_full = propose_grains(ds, min_size=20, mean_patterns=True)
    t_prop_mean = time.perf_counter() - t0
    print(
        f"propose_grains (+ mean patterns):    {t_prop_mean:6.1f} s  ({prop_full.n_grains} grains)",
        flush=True,
    )

    t0 = time.perf_counter()
    vec = find_vectors(ds)
    t_find = time.perf_counter() - t0
    print(f"find_vectors:                        {t_find:6.1f} s  ({len(vec)} vectors)", flush=True)
    t0 = time.perf_counter()
    vc = cluster_vectors(vec, scan_shape=ds.scan_shape)
    t_clu = time.perf_counter() - t0
    print(f"cluster_vectors:                     {t_clu:6.1f} s", flush=True)

    single = truth.footprints.sum(0) == 1
    from scipy.optimize import linear_sum_assignment

    tids = [g for g in np.unique(truth.labels) if g > 0]
    pids = [g for g in np.unique(prop.labels) if g > 0]
    m = np.zeros((len(tids), len(pids)))
    for a, g in enumerate(tids):
        ta = (truth.labels == g) & single
        for b, h in enumerate(pids):
            pb = (prop.labels == h) & single
            m[a, b] = (ta & pb).sum() / max((ta | pb).sum(), 1)
    r, c = linear_sum_assignment(-m)
    ious = np.zeros(len(tids))
    ious[r] = m[r, c]

    print("--- summary ---")
    print(
        f"propose_grains:  {t_prop:6.1f} s  target < 20 s  ratio {t_prop / 20:.2f}"
        f"  -> {prop.n_grains} grains for {truth.n_grains} true, mean IoU vs truth {ious.mean():.3f}"
    )
    print(
        f"vectors: {len(vec) / ds.scan_shape[0] / ds.scan_shape[1]:.1f}/pattern; "
        f"{len(vc)} crystals for {truth.n_grains} grains"
    )
    print(
        f"vectors total:                       {t_find + t_clu:6.1f} "
        f"s  target < 60 s  ratio {(t_find + t_clu) / 60:.2f}"
    )


if __name__ == "__main__":
    main()
