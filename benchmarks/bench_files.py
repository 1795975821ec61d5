"""File benchmark: virtual image and aperture sum straight from .npy, Merlin .mib and zarr files
(≥ 4 GiB) opened by ``open_dataset``, against a read ceiling of the same file measured in the
same process (interleaved, warm page cache) and against LiberTEM's native readers.

* read ceiling: .npy/.mib — a sequential ``readinto`` of the whole file into one reused 64 MiB
  buffer; zarr — every storage chunk read and decoded in turn (one thread).
* virtual image: annulus (bool mask); target ≤ 1.3x the ceiling.
* aperture sum: one real-space disk over f = 20 % of the scan; target ≤ 1.3x f x the ceiling.
* LiberTEM (``ctx.load("npy"|"mib")``, threads executor, ring analysis / SumUDF with the disk as
  ROI) runs in its own interpreter (``--peer-python``, a venv with ``pip install libertem``),
  timing the same ceiling in its process. LiberTEM has no zarr reader.
* "before" rows: the chunking/reading ``open_dataset`` used before (dask over a copying memmap
  source; zarr re-chunked across its storage chunks), same file, same run.

EMPAD, DM4 and Arina/EMD files are not benchmarked here. Every figure is the median of
``--repeat`` runs. ``make bench`` runs this with the default 384×384 scan (writes ~11.5 GiB under
``--folder``, deleted afterwards). Run:
``python benchmarks/bench_files.py --folder /work/benchdata --peer-python /work/benchenv/bin/python``
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _files_data import write_all  # noqa: E402


def run_worker(python: str, side: str, fmt: str, path: Path, repeat: int, budget: str) -> dict | str:
    cmd = [python, str(HERE / "_files_worker.py"), side, fmt, str(path), str(repeat), budget]
    env = {**os.environ, "VA_BENCH_SCAN": os.environ.get("VA_BENCH_SCAN", "384,384")}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=env)
    if out.returncode != 0:
        return "FAILED: " + (out.stderr.strip().splitlines() or ["?"])[-1][:100]
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folder", default="/tmp/va-bench-files")
    p.add_argument("--scan", type=int, nargs=2, default=(384, 384), help="scan shape (4.5 GiB at 384 384)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--budget", default="512MiB")
    p.add_argument(
        "--peer-python",
        default=os.environ.get("VA_PEER_PYTHON"),
        help="interpreter with LiberTEM installed (default: $VA_PEER_PYTHON)",
    )
    p.add_argument("--keep", action="store_true", help="keep the files afterwards")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    folder = Path(args.folder)
    files = write_all(folder, *args.scan)
    os.environ["VA_BENCH_SCAN"] = f"{args.scan[0]},{args.scan[1]}"
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{started}, load avg {os.getloadavg()}, {os.cpu_count()} cores, budget {args.budget}")
    for name, path in files.items():
        size = (
            sum(q.stat().st_size for q in path.rglob("*") if q.is_file())
            if path.is_dir()
            else path.stat().st_size
        )
        print(f"  {name}: {path} {size / 2**30:.2f} GiB on disk")
    rows = []
    plan = [
        ("npy", "ours"),
        ("npy-before", "ours"),
        ("mib", "ours"),
        ("zarr", "ours"),
        ("zarr-before", "ours"),
    ]
    if args.peer_python:
        plan += [("npy", "libertem"), ("mib", "libertem")]
    results: dict = {}
    for fmt, side in plan:
        path = files[fmt.split("-")[0]]
        python = sys.executable if side == "ours" else args.peer_python
        res = run_worker(python, side, fmt, path, args.repeat, args.budget)
        results[f"{fmt}/{side}"] = res
        print(f"  {fmt:12s} {side:9s} {res if isinstance(res, str) else _brief(res)}", flush=True)
    print(
        f"\n{'file':12s} {'what':14s} {'ours s':>7s} {'x ceil':>7s} {'LiberTEM s':>10s} {'x ceil':>7s}"
        f" {'ours/LT':>8s}  target"
    )
    for fmt in ("npy", "npy-before", "mib", "zarr", "zarr-before"):
        ours = results.get(f"{fmt}/ours")
        peer = results.get(f"{fmt}/libertem")
        if not isinstance(ours, dict):
            continue
        for key, what in (("vi", "virtual image"), ("sum", "aperture sum")):
            f = ours["f"] if key == "sum" else 1.0
            r = ours[key] / (f * ours["read"])
            lt = (
                f"{peer[key]:10.2f} {peer[key] / (f * peer['read']):7.2f} {ours[key] / peer[key]:8.2f}"
                if isinstance(peer, dict)
                else f"{'n/a':>10s} {'':7s} {'':8s}"
            )
            ok = r <= 1.3 and (not isinstance(peer, dict) or ours[key] <= peer[key])
            flag = "" if fmt.endswith("before") else ("OK" if ok else "MISSED")
            print(f"{fmt:12s} {what:14s} {ours[key]:7.2f} {r:7.2f} {lt}  {flag}")
            rows.append({"file": fmt, "what": what, "ours": ours[key], "ratio": r, "peer": peer})
    for fmt in ("npy", "mib", "zarr"):
        ours = results.get(f"{fmt}/ours")
        if isinstance(ours, dict):
            print(
                f"{fmt}: read ceiling {ours['read']:.2f} s ({ours['nbytes'] / ours['read'] / 1e9:.2f} GB/s), "
                f"{ours['path']}, peak RSS above baseline {ours['peak_rss'] / 2**20:.0f} MiB"
            )
    print(f"finished, load avg {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"started": started, "results": results}, indent=1))
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def _brief(res: dict) -> str:
    return (
        f"read {res['read']:.2f} s, vi {res['vi']:.2f} s, sum {res['sum']:.2f} s "
        f"(runs {[round(x, 2) for x in res['all']['vi']]}), load {res['load'][0]:.1f}"
    )


if __name__ == "__main__":
    sys.exit(main())
