"""``virtual-aperture sum PATH --labels labels.tif --out sums.tif``: summed pattern per label."""

from __future__ import annotations

import argparse
import json

import numpy as np

from ._images import RECIPROCAL_UNIT, save_tiff
from ._runtime import add_output_options, check_output, cli_progress, close_client, open_client
from .cmd_info import _add_open_options, open_from_args


def run(args: argparse.Namespace) -> int:
    import tifffile

    from virtual_aperture.compute import aperture_sums

    check_output(args)  # before opening and computing
    ds = open_from_args(args)
    try:
        labels = tifffile.imread(args.labels)
    except FileNotFoundError as exc:
        raise ValueError(f"--labels file {args.labels!r} not found") from exc
    client = open_client(args.scheduler)
    try:
        res = aperture_sums(
            ds,
            labels,
            client=client,
            memory_budget=args.memory_budget,
            progress=cli_progress("aperture sums"),
        )
    finally:
        close_client(client)
    if not res:
        raise ValueError(f"--labels {args.labels!r} has no non-zero label: nothing to sum")
    stack = np.stack([r.sum for r in res.values()])
    counts = [np.asarray(r.count).tolist() for r in res.values()]
    cal = ds.calibration
    meta = {
        "what": "summed diffraction pattern per label",
        "labels": list(res),
        "counts": counts,
        "dims": ["label", "tilt", "k_y", "k_x"] if stack.ndim == 4 else ["label", "k_y", "k_x"],
        "calibration": cal.to_dict(),
    }
    # ImageJ hyperstack: labels as frames (T), tilts as slices (Z); float32 (ImageJ has no float64:
    # relative rounding <= 6e-8, exact for counts below 2**24)
    save_tiff(
        args.out,
        stack,
        pixel=cal.pixel_size,
        unit=RECIPROCAL_UNIT,
        metadata=meta,
        axes="TZYX" if stack.ndim == 4 else "TYX",
        overwrite=args.overwrite,
    )
    scale = (
        f"ImageJ-calibrated, {cal.pixel_size:g} Å⁻¹ per pixel" if cal.pixel_size else "no pixel size known"
    )
    print(f"wrote {args.out}: {len(res)} summed pattern(s) {stack.shape[1:]} float32 ({scale})")
    print(json.dumps({str(k): c for k, c in zip(res, counts)}))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sum",
        help="sum the diffraction patterns of labelled apertures",
        description="One summed pattern per label of a scan-space labels image (0 = none).",
    )
    p.add_argument("path", nargs="+", help="dataset file(s) or folder")
    _add_open_options(p)
    p.add_argument("--labels", required=True, help="integer labels TIFF (sy, sx) or (n_tilt, sy, sx)")
    add_output_options(p, "output TIFF stack (n_labels, [n_tilt,] k_y, k_x) float32, calibrated in Å⁻¹")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="dask.distributed scheduler address, or 'local' (default: threads)",
    )
    p.add_argument(
        "--memory-budget", default=None, metavar="SIZE", help="memory for streamed file data, e.g. 2GB"
    )
    p.set_defaults(func=run)
