"""``virtual-aperture virtual PATH --detector bf|adf|annulus:R1,R2|disk:R|mask.tif --out img.tif``.

Computes a virtual image (one per tilt for a tilt series) and writes it as an ImageJ-calibrated float32 TIFF.
"""

from __future__ import annotations

import argparse

import numpy as np

from ._runtime import add_output_options, check_output, cli_progress, close_client, open_client
from .cmd_info import _add_open_options, open_from_args


def parse_detector(spec: str, ds) -> np.ndarray:
    """A detector mask from a CLI spec (see ``--detector``) for dataset ``ds``."""
    from virtual_aperture.compute import detectors

    shape = ds.detector_shape
    center = ds.calibration.detector_center(shape)
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    try:
        if kind == "bf" and not rest:
            return detectors.bright_field(ds)
        if kind == "adf" and not rest:
            return detectors.annular_dark_field(ds)
        if kind == "annulus":
            r1, r2 = (float(v) for v in rest.split(","))
            return detectors.annulus(shape, center, r1, r2)
        if kind == "disk":
            r = float(rest)
            if 0 < r < 1:  # a mask of whole pixels cannot be smaller than one pixel
                raise ValueError(
                    f"radius {r:g} px is smaller than a pixel: a detector is whole pixels (those whose "
                    "centre is within R), so it cannot be area-weighted; use R >= 1 or a weighted .tif mask"
                )
            return detectors.disk(shape, center, r)
    except ValueError as exc:
        raise ValueError(f"--detector {spec!r}: {exc}") from exc
    if spec.lower().endswith((".tif", ".tiff")):
        import tifffile

        try:
            mask = tifffile.imread(spec)
        except FileNotFoundError as exc:
            raise ValueError(f"--detector mask file {spec!r} not found") from exc
        if mask.shape != tuple(shape):
            raise ValueError(
                f"--detector mask {spec!r} has shape {mask.shape}, the detector is {tuple(shape)}"
            )
        return mask
    raise ValueError(f"--detector {spec!r} is not bf, adf, annulus:R1,R2, disk:R or a .tif mask")


def run(args: argparse.Namespace) -> int:
    from virtual_aperture.compute import virtual_image

    check_output(args)  # before opening and computing
    ds = open_from_args(args)
    mask = parse_detector(args.detector, ds)
    client = open_client(args.scheduler)
    try:
        img = virtual_image(
            ds, mask, client=client, memory_budget=args.memory_budget, progress=cli_progress("virtual image")
        )
    finally:
        close_client(client)
    from ._images import REAL_UNIT, save_tiff

    save_tiff(
        args.out,
        img,
        pixel=ds.calibration.scan_step_nm,
        unit=REAL_UNIT,
        overwrite=args.overwrite,
        metadata={"detector": args.detector, "calibration": ds.calibration.to_dict()},
    )
    print(
        f"wrote {args.out}: virtual image {img.shape} float32 (ImageJ-calibrated, "
        f"{ds.calibration.scan_step_nm:g} nm per pixel), min {img.min():.6g}, max {img.max():.6g}"
    )
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "virtual",
        help="compute a virtual detector image",
        description="Virtual image of a 4D scan (or one per tilt of a 5D series).",
    )
    p.add_argument("path", nargs="+", help="dataset file(s) or folder")
    _add_open_options(p)
    p.add_argument(
        "--detector",
        required=True,
        help="bf | adf | annulus:R1,R2 | disk:R (pixels, around the calibrated centre) | mask.tif",
    )
    add_output_options(p, "output TIFF (float32, ImageJ-calibrated)")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="dask.distributed scheduler address, or 'local' for a LocalCluster (default: threads)",
    )
    p.add_argument(
        "--memory-budget",
        default=None,
        metavar="SIZE",
        help="memory for streamed file data, e.g. 2GB (default 1 GiB)",
    )
    p.set_defaults(func=run)
