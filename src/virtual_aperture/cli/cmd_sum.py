"""``virtual-aperture sum PATH --labels labels.tif --out sums.tif``: summed pattern per label."""

from __future__ import annotations

import argparse
import json

import numpy as np

from ._runtime import cli_progress, close_client, open_client
from .cmd_info import _add_open_options, open_from_args


def run(args: argparse.Namespace) -> int:
    import tifffile

    from virtual_aperture.compute import aperture_sums

    ds = open_from_args(args)
    try:
        labels = tifffile.imread(args.labels)
    except FileNotFoundError as exc:
        raise ValueError(f"--labels file {args.labels!r} not found") from exc
    client = open_client(args.scheduler)
    try:
        res = aperture_sums(ds, labels, client=client, memory_budget=args.memory_budget,
                            progress=cli_progress("aperture sums"))
    finally:
        close_client(client)
    if not res:
        raise ValueError(f"--labels {args.labels!r} has no non-zero label: nothing to sum")
    stack = np.stack([r.sum for r in res.values()])
    counts = [np.asarray(r.count).tolist() for r in res.values()]
    tifffile.imwrite(args.out, stack, metadata={"labels": list(res), "counts": counts,
                                                 "axes": "QTYX" if stack.ndim == 4 else "QYX"})
    print(f"wrote {args.out}: {len(res)} summed pattern(s) {stack.shape[1:]} float64")
    print(json.dumps({str(k): c for k, c in zip(res, counts)}))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("sum", help="sum the diffraction patterns of labelled apertures",
                              description="One summed pattern per label of a scan-space labels image (0 = none).")
    p.add_argument("path", nargs="+", help="dataset file(s) or folder")
    _add_open_options(p)
    p.add_argument("--labels", required=True, help="integer labels TIFF (sy, sx) or (n_tilt, sy, sx)")
    p.add_argument("--out", required=True, help="output TIFF stack (n_labels, [n_tilt,] k_y, k_x) float64")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask.distributed scheduler address, or 'local' (default: threads)")
    p.add_argument("--memory-budget", default=None, metavar="SIZE", help="memory for streamed file data, e.g. 2GB")
    p.set_defaults(func=run)
