"""``virtual-aperture propose PATH --out labels.tif``: automatic grain proposals."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ._images import REAL_UNIT, save_tiff
from ._runtime import add_output_options, check_output, cli_progress, close_client, open_client
from .cmd_info import _add_open_options, open_from_args


def grain_table(rows: list[dict], angles: list[float]) -> str:
    """One line per grain: tilts covered, scan positions (median over those tilts), mean confidence."""
    by: dict[int, list[dict]] = {}
    for r in rows:
        by.setdefault(r["grain"], []).append(r)
    lines = [f"{'grain':>5}  {'tilts covered':<24} {'positions':>9}  {'confidence':>10}"]
    for g in sorted(by):
        rs = by[g]
        ts = sorted(r["tilt"] for r in rs)
        if angles:
            cover = f"{len(ts)}: {angles[ts[0]]:+.1f}…{angles[ts[-1]]:+.1f}°"
        else:
            cover = "1" if len(ts) == 1 else f"{len(ts)}"
        pos = int(np.median([r["size"] for r in rs]))
        conf = float(np.mean([r["confidence"] for r in rs]))
        lines.append(f"{g:>5}  {cover:<24} {pos:>9}  {conf:>10.2f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from virtual_aperture._atomic import check_target, write_text
    from virtual_aperture.grains import propose_grains

    check_output(args)  # before opening and computing
    record = Path(args.record) if args.record else Path(args.out).with_suffix(".json")
    check_target(record, args.overwrite, option="--overwrite")
    ds = open_from_args(args)
    client = open_client(args.scheduler)
    try:
        prop = propose_grains(
            ds,
            min_size=args.min_size,
            threshold=args.threshold,
            n_components=args.n_components,
            min_confidence=args.min_confidence,
            binning=args.bin,
            tilt=args.tilt,
            mean_patterns=False,
            track=not args.no_track,
            client=client,
            progress=cli_progress("propose"),
        )
    finally:
        close_client(client)
    cal = ds.calibration
    save_tiff(
        Path(args.out),
        prop.labels,
        pixel=cal.scan_step_nm,
        unit=REAL_UNIT,
        overwrite=args.overwrite,
        metadata={"what": "grain labels (0 = none)", "tilt_angles_deg": list(cal.tilt_angles_deg or [])},
    )
    rows = [{"tilt": t, "grain": g, "size": s, "confidence": round(c, 3)} for t, g, s, c in prop.table()]
    full = {"labels": str(args.out), "shape": list(prop.labels.shape), "per_tilt": rows}
    write_text(record, json.dumps(full, indent=1), overwrite=args.overwrite)
    print(
        f"wrote {args.out}: labels {prop.labels.shape}, {prop.n_grains} grain(s); "
        f"every grain on every tilt in {record}"
    )
    print(grain_table(rows, list(cal.tilt_angles_deg or []) if prop.labels.ndim == 3 else []))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "propose",
        help="propose grains (labels) by diffraction similarity",
        description="Spatially coherent segmentation of the scan into grains by the similarity of their "
        "diffraction patterns; vacuum/amorphous = 0. Writes a labels TIFF (ImageJ-calibrated in nm), prints "
        "one line per grain (tilts covered, positions, confidence) and writes every grain on every tilt to "
        "a JSON record.",
    )
    p.add_argument("path", nargs="+", help="dataset file(s) or folder")
    _add_open_options(p)
    add_output_options(p, "output labels TIFF (sy, sx) or (n_tilt, sy, sx)")
    p.add_argument(
        "--record",
        default=None,
        metavar="JSON",
        help="full record: size and confidence of every grain on every tilt (default: OUT with .json)",
    )
    p.add_argument("--min-size", type=int, default=20, help="smallest grain in scan positions (default 20)")
    p.add_argument(
        "--threshold", type=float, default=0.6, help="similarity to join a grain, 0-1 (default 0.6)"
    )
    p.add_argument(
        "--min-confidence",
        type=float,
        default=0.35,
        help="drop regions less coherent than this, 0-1 (vacuum/support; default 0.35)",
    )
    p.add_argument(
        "--n-components", type=int, default=32, help="singular vectors kept for denoising (default 32)"
    )
    p.add_argument("--bin", type=int, default=None, help="detector binning (default: to <= 32x32 pixels)")
    p.add_argument("--tilt", type=int, default=None, help="only this tilt of a 5D series (default: all)")
    p.add_argument("--no-track", action="store_true", help="keep independent ids per tilt (no tracking)")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="dask.distributed scheduler address, or 'local' (default: threads)",
    )
    p.set_defaults(func=run)
