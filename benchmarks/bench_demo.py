"""Benchmark of ``make demo``'s tilt-series half, stage by stage (2 cores).

The demo's series (121 tilts of 24×24 positions × 128×128 uint16 patterns, 2.1 GiB, brookite) is
simulated and saved to zarr (timed, not part of the ratios), then each stage is timed as the demo
runs it, in wall-clock and CPU seconds (CPU = all threads of this process; on a shared machine
wall ≫ CPU means waiting for cores, not work):

* ``read``  — every chunk of the store read and decompressed once: the ceiling a quiet machine sets
  for one pass over the data; every other stage is printed as a ratio to it;
* ``descan``, ``propose + track`` (grain proposals on every tilt and tracking), ``solve`` (one
  grain, sums → phasing), ``write + report`` (files and report.html).

``--streamed`` also times the proposal with every tilt read again per stage (the path taken
for tilts above ``IN_MEMORY_TILT_BYTES`` or with a distributed client) and checks both paths give
identical labels.

Run: ``.venv/bin/python benchmarks/bench_demo.py [--store DIR] [--streamed]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


class Stage:
    def __init__(self, name: str, rows: list):
        self.name, self.rows = name, rows

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.rows.append((self.name, time.perf_counter() - self.w, time.process_time() - self.c))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", type=Path, default=None, help="reuse (or create) the series here")
    ap.add_argument("--streamed", action="store_true", help="also time the re-reading proposal path")
    args = ap.parse_args()

    import dask
    import dask.array as da

    from virtual_aperture.cli._demo_solve import COMPOSITION, TILT_SERIES
    from virtual_aperture.crystal.calibrate import calibrate_descan
    from virtual_aperture.grains import propose_grains
    from virtual_aperture.io import open_dataset, save_dataset
    from virtual_aperture.report import ReportContext, strip_images
    from virtual_aperture.sample import simulate_agglomerate
    from virtual_aperture.workflow import grain_tilts, solve_grain, write_grain

    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (shared machine: compare CPU s)")
    tmp = Path(tempfile.mkdtemp(prefix="bench_demo_"))
    store = args.store or tmp / "tilt_series.zarr"
    rows: list = []
    if not store.exists():
        with Stage("simulate + save (not a ratio)", rows):
            sim, truth = simulate_agglomerate(**TILT_SERIES, seed=3)
            save_dataset(sim, store)
    ds = open_dataset(store)
    print(f"series: {ds}")
    with Stage("read (ceiling)", rows):
        with dask.config.set(scheduler="threads"):
            da.map_blocks(
                lambda b: np.zeros((1,) * b.ndim), ds.data, dtype=float, chunks=(1,) * 5
            ).sum().compute()
    with Stage("descan", rows):
        cal, _ = calibrate_descan(ds)
        ds = ds.with_calibration(center=cal.center, extra=cal.extra)
    # numba kernels compiled before timing (the demo's first run compiles them once, then caches)
    propose_grains(ds.data[:2, :8, :8], min_size=4)
    with Stage("propose + track", rows):
        prop = propose_grains(ds, tilt=None, track=True)
    labels = prop.labels
    if args.streamed:
        import virtual_aperture.grains.propose as propose_mod

        saved, propose_mod.IN_MEMORY_TILT_BYTES = propose_mod.IN_MEMORY_TILT_BYTES, 0
        try:
            with Stage("propose + track, streamed (peer)", rows):
                slow = propose_grains(ds, tilt=None, track=True)
        finally:
            propose_mod.IN_MEMORY_TILT_BYTES = saved
        print(f"streamed and in-memory labels identical: {bool(np.array_equal(slow.labels, labels))}")
    runs = {
        int(g): len(grain_tilts(labels, int(g), ds.n_tilts, min_positions=3)[0])
        for g in np.unique(labels[labels > 0])
    }
    grain = max(runs, key=runs.get)
    with Stage("solve", rows):
        res = solve_grain(ds, labels, grain, composition=COMPOSITION)
    with Stage("write + report.html", rows):
        ctx = ReportContext(
            images=strip_images(ds, res.tilts), labels=labels, scan_step_nm=ds.calibration.scan_step_nm
        )
        write_grain(res, tmp / "grain", context=ctx)
    print(
        f"{len(runs)} tracks; grain {grain} on {runs[grain]} tilts; solved {res.solved}, R1 {res.solution.r1}"
    )
    read = next(w for n, w, _ in rows if n.startswith("read"))
    print(f"\n{'stage':<36} {'wall s':>8} {'CPU s':>8} {'wall / read':>12}")
    for name, w, c in rows:
        ratio = "" if "not a ratio" in name else f"{w / read:12.1f}"
        print(f"{name:<36} {w:8.1f} {c:8.1f} {ratio}")
    if res.timings_s:
        print("solve stages (wall s): " + ", ".join(f"{k} {v:.1f}" for k, v in res.timings_s.items()))
    total = sum(w for n, w, _ in rows if not n.startswith(("simulate", "read", "propose + track, streamed")))
    print(f"tilt-series stages after the simulation: {total:.1f} s wall")
    if args.store is None:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
