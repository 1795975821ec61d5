"""``virtual-aperture propose PATH --out labels.tif``: automatic grain proposals."""

from __future__ import annotations

import argparse
import json

import numpy as np

from ._runtime import cli_progress, close_client, open_client
from .cmd_info import _add_open_options, open_from_args


def run(args: argparse.Namespace) -> int:
    import tifffile

    from virtual_aperture.grains import propose_grains

    ds = open_from_args(args)
    client = open_client(args.scheduler)
    try:
        prop = propose_grains(
            ds,
            min_size=args.min_size,
            threshold=args.threshold,
            n_components=args.n_components,
            min_confidence=args.min_confidence,
            bin=args.bin,
            tilt=args.tilt,
            mean_patterns=False,
            track=not args.no_track,
            client=client,
            progress=cli_progress("propose"),
        )
    finally:
        close_client(client)
    tifffile.imwrite(args.out, prop.labels.astype(np.int32), metadata={"axes": "TYX" if prop.labels.ndim == 3 else "YX"})
    print(f"wrote {args.out}: labels {prop.labels.shape} int32, {prop.n_grains} grain(s)")
    rows = [{"tilt": t, "grain": g, "size": s, "confidence": round(c, 3)} for t, g, s, c in prop.table()]
    print(json.dumps(rows))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "propose",
        help="propose grains (labels) by diffraction similarity",
        description="Spatially coherent segmentation of the scan into grains by the similarity of their "
        "diffraction patterns; vacuum/amorphous = 0. Writes an int32 labels TIFF and prints size and "
        "confidence per grain as JSON.",
    )
    p.add_argument("path", nargs="+", help="dataset file(s) or folder")
    _add_open_options(p)
    p.add_argument("--out", required=True, help="output labels TIFF (sy, sx) or (n_tilt, sy, sx)")
    p.add_argument("--min-size", type=int, default=20, help="smallest grain in scan positions (default 20)")
    p.add_argument("--threshold", type=float, default=0.6, help="similarity to join a grain, 0-1 (default 0.6)")
    p.add_argument("--min-confidence", type=float, default=0.35,
                   help="drop regions less coherent than this, 0-1 (vacuum/support; default 0.35)")
    p.add_argument("--n-components", type=int, default=32, help="singular vectors kept for denoising (default 32)")
    p.add_argument("--bin", type=int, default=None, help="detector binning (default: to <= 32x32 pixels)")
    p.add_argument("--tilt", type=int, default=None, help="only this tilt of a 5D series (default: all)")
    p.add_argument("--no-track", action="store_true", help="keep independent ids per tilt (no tracking)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask.distributed scheduler address, or 'local' (default: threads)")
    p.set_defaults(func=run)
