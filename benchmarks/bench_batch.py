"""Benchmark: every grain of an acquisition (``solve_all_grains``) on threads and on LocalClusters
of 1, 2 and 4 worker processes, side by side in one run.

The tilt series (brookite, ``--grains`` grains) is written to a zarr store first and reopened
lazily, so cluster workers read their chunks from disk themselves (what a shared file system gives
on a real cluster). Prints, per engine: wall time of the batch, grains solved per minute, a
virtual image's throughput (GB/s over the same store, same engine) and the peak resident memory of
the busiest worker (or of this process for threads). Cluster start-up is timed apart (it is paid
once per session, not per batch).

    python benchmarks/bench_batch.py [--grains 4] [--workers 1 2 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

import virtual_aperture as va


def _reset_peak_rss() -> bool:
    """Reset this process's peak resident set (Linux: ``5`` into /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mib() -> float:
    """Peak resident memory of this process since the last reset, in MiB. ``VmHWM`` of
    /proc/self/status, not ``getrusage``'s ``ru_maxrss``: a worker process started by fork + exec
    inherits its parent's ``ru_maxrss``, so every worker would report the client's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_series(n_grains: int, folder: Path):
    from virtual_aperture.crystal.calibrate import calibrate_descan

    ds, truth = va.simulate_agglomerate(
        structure="brookite",
        n_grains=n_grains,
        scan_shape=(24, 24),
        detector_shape=(96, 96),
        tilts=(-45, 45, 1.0),
        seed=5,
        overlap=False,
        thickness_nm=(8, 12),
        pixel_size=0.025,
    )
    cal, _ = calibrate_descan(ds)
    path = folder / "series.zarr"
    va.save_dataset(ds.with_calibration(center=cal.center, extra=cal.extra), path)
    return va.open_dataset(path), truth.exclusive_labels()


def run_engine(name: str, ds, labels, out: Path, client=None) -> dict:
    bf = va.detectors.bright_field(ds)
    if client is None:
        _reset_peak_rss()
    else:
        client.run(_reset_peak_rss)
    t0 = time.perf_counter()
    img = va.virtual_image(ds, bf, client=client)
    np.asarray(img)
    t_vi = time.perf_counter() - t0
    t0 = time.perf_counter()
    batch = va.solve_all_grains(ds, labels, out=out, client=client, composition="TiO2", starts=2)
    wall = time.perf_counter() - t0
    if client is None:
        rss = _peak_rss_mib()
    else:
        rss = max(client.run(_peak_rss_mib).values())
    return {
        "engine": name,
        "grains": len(batch.outcomes),
        "solved": batch.n_solved,
        "wall_s": round(wall, 1),
        "grains_per_min": round(60.0 * len(batch.outcomes) / wall, 2),
        "solved_per_min": round(60.0 * batch.n_solved / wall, 2),
        "virtual_image_GBps": round(ds.nbytes / t_vi / 1e9, 3),
        "peak_rss_MiB": round(rss, 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grains", type=int, default=4)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ds, labels = make_series(args.grains, tmp)
        print(
            f"tilt series {ds} on disk; grains {sorted(int(v) for v in np.unique(labels) if v > 0)}",
            flush=True,
        )
        rows.append(run_engine("threads", ds, labels, tmp / "threads"))
        print(rows[-1], flush=True)
        from distributed import Client, LocalCluster

        for n in args.workers:
            t0 = time.perf_counter()
            with (
                LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cl,
                Client(cl) as client,
            ):
                startup = time.perf_counter() - t0
                row = run_engine(f"LocalCluster {n}×1", ds, labels, tmp / f"cluster{n}", client=client)
            row["startup_s"] = round(startup, 1)
            rows.append(row)
            print(row, flush=True)
    cols = (
        "engine",
        "grains",
        "solved",
        "wall_s",
        "grains_per_min",
        "solved_per_min",
        "virtual_image_GBps",
        "peak_rss_MiB",
        "startup_s",
    )
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
