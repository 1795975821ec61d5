"""``virtual-aperture solve DATASET --labels LABELS --grain N --out DIR``: the whole chain for one grain.

Sums the grain's patterns on every tilt, finds and indexes the Bragg peaks, integrates, chooses
the space group (or takes ``--space-group``), merges, phases by charge flipping and writes
DIR/structure.cif, potential.ccp4, report.json, structure.ins/.res, structure.hkl,
reflections.cif, frames.mrc, smv/ and report.html (figures and every number, with the command
that reruns it; see ``virtual_aperture.workflow`` and ``virtual_aperture.report``).

LABELS is an integer TIFF or .npy, ``(sy, sx)`` or ``(n_tilt, sy, sx)``, or a session file saved
by the napari plugin (its grains and calibration are used). Exit codes: 0 solved, 3 ran without
a solution (the indexing, integration, merged reflections and report are still written; when no
lattice validates: the peaks, frames and the reason), 2 bad input (no output folder is left behind).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ._runtime import add_max_lattices, check_max_lattices, close_client, known_cell_arg, open_client
from .cmd_info import _add_open_options, open_from_args

SESSION_SUFFIXES = (".h5", ".hdf5", ".vas", ".zarr")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "solve",
        help="solve the structure of one grain of a tilt series (sum → peaks → index → integrate → phase)",
        description="The whole chain for one grain of a 5D tilt series; writes CIF, CCP4 map, "
        "SHELX .hkl/.ins/.res, reflections CIF, an MRC and SMV frame stack, a JSON report and "
        "report.html (the figures).",
    )
    p.add_argument("path", nargs="+", help="5D dataset (one file, or one 4D file per tilt)")
    p.add_argument(
        "--labels",
        required=True,
        help="grain labels: TIFF/.npy (sy, sx) or (n_tilt, sy, sx), or a session file",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--grain", type=int, help="label of the grain to solve")
    which.add_argument(
        "--all",
        action="store_true",
        help="solve every grain of the labels (one task per grain; a folder per grain, "
        "summary.csv, phase and orientation maps)",
    )
    p.add_argument(
        "--grains",
        default=None,
        metavar="N,N,...",
        help="with --all: only these labels (default: every label present)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="with --all and no --scheduler: grains solved at once in threads (default 1)",
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--composition", default=None, help="cell contents or formula unit, e.g. TiO2")
    p.add_argument(
        "--space-group", default=None, help="space group in the indexed setting (default: suggested)"
    )
    p.add_argument(
        "--known-cell",
        default=None,
        help="index in this cell: 'A B C ALPHA BETA GAMMA' or a CIF path (default: searched)",
    )
    p.add_argument(
        "--d-min", type=float, default=None, help="resolution limit in Å (default: from the peaks)"
    )
    p.add_argument(
        "--min-positions", type=int, default=3, help="leave out tilts where the grain covers fewer positions"
    )
    p.add_argument("--threshold", type=float, default=6.0, help="peak-finding signal-to-noise threshold")
    add_max_lattices(p)
    p.add_argument("--starts", type=int, default=4, help="random starts of charge flipping (default 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument(
        "--descan",
        action="store_true",
        help="measure and fit the descan (beam-centre shift over the scan) and compensate it in the sums",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="dask.distributed scheduler address, or 'local' (default: threads)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _add_open_options(p)
    p.set_defaults(func=run)


def read_labels(path: str):
    """``(labels, calibration or None)`` from a TIFF, .npy or session file."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"--labels file {path!r} not found")
    suffix = p.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        return tifffile.imread(p), None
    if suffix == ".npy":
        return np.load(p, allow_pickle=False), None
    if suffix in SESSION_SUFFIXES:
        from virtual_aperture.session import load_session

        s = load_session(p)
        return s.grains, s.calibration
    raise ValueError(
        f"--labels {path!r}: expected a .tif/.tiff/.npy labels "
        f"image or a session ({', '.join(SESSION_SUFFIXES)})"
    )


def run(args: argparse.Namespace) -> int:
    from virtual_aperture.crystal.export import SOLUTION_FILES, check_free
    from virtual_aperture.workflow import GRAIN_FILES, UnindexedGrain, write_unindexed

    check_max_lattices(args)
    labels, session_cal = read_labels(args.labels)
    if not args.all and (args.grains is not None or args.workers is not None):
        raise ValueError("--grains and --workers go with --all")
    ds = open_from_args(args)
    overridden = any(
        getattr(args, n) is not None
        for n in ("pixel_size", "beam_energy", "tilt_angles", "tilt_axis", "center", "scan_step")
    )
    if session_cal is not None and not overridden:  # the calibration the user refined in napari
        import dataclasses

        ds = ds.with_calibration(
            **{f.name: getattr(session_cal, f.name) for f in dataclasses.fields(session_cal)}
        )
    if not ds.is_tilt_series:
        raise ValueError(
            f"solve needs a tilt series (5D, one scan per tilt); {Path(args.path[0]).name} is "
            "one 4D scan: pass one file per tilt with --tilt-angles, or sum a grain with "
            "`virtual-aperture sum` and find its peaks and cell with `virtual-aperture index`"
        )
    if args.all:
        return _solve_all(args, ds, labels)
    existed = Path(args.out).exists()
    out = check_free(args.out, (*SOLUTION_FILES, *GRAIN_FILES), overwrite=args.overwrite)
    try:
        return _solve(args, ds, labels, out)
    except UnindexedGrain as exc:  # ran, no lattice: the peaks, frames and the reason are written
        for p in write_unindexed(exc, out, overwrite=args.overwrite):
            print(f"wrote {p}")
        print(f"grain {exc.grain}: {exc}")
        return 3
    finally:
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # never leave an empty output folder behind


def _descan(args, ds):
    if not args.descan:
        return ds
    from virtual_aperture.crystal.calibrate import calibrate_descan

    from ._runtime import cli_progress

    cal, _ = calibrate_descan(ds, progress=cli_progress("descan"))
    return ds.with_calibration(center=cal.center, extra=cal.extra)


def _solve_all(args, ds, labels) -> int:
    from ._solve_all import run_all

    return run_all(args, _descan(args, ds), labels)


def _solve(args, ds, labels, out) -> int:
    from virtual_aperture.workflow import solve_grain, write_grain

    from ._runtime import staged_progress

    ds = _descan(args, ds)
    client = open_client(args.scheduler)
    try:
        res = solve_grain(
            ds,
            labels,
            args.grain,
            composition=args.composition,
            space_group=args.space_group,
            known_cell=known_cell_arg(args.known_cell),
            d_min=args.d_min,
            min_positions=args.min_positions,
            peak_threshold=args.threshold,
            max_lattices=args.max_lattices,
            starts=args.starts,
            seed=args.seed,
            client=client,
            progress=staged_progress(),
        )
    finally:
        close_client(client)
    from virtual_aperture.report import ReportContext, strip_images

    context = ReportContext(
        images=strip_images(ds, res.tilts),
        labels=labels,
        scan_step_nm=ds.calibration.scan_step_nm,
        command=getattr(args, "command_line", None),
        source=ds.source,
    )
    write_grain(res, out, overwrite=args.overwrite, context=context)
    print(res.summary())
    print(f"wrote {out} (open {Path(out) / 'report.html'} in a browser for the figures)")
    return 0 if res.solved else 3
