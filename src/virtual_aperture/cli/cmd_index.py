"""``virtual-aperture index``: Bragg peaks and unit cell from per-tilt summed patterns.

    virtual-aperture index PATTERNS.tif --tilts -30 30 1 --tilt-axis 20 --pixel-size 0.015 --kv 300 \\
        [--cell CIF | --cell A B C AL BE GA [--centring F]] --out DIR

PATTERNS is a stack of summed patterns, one per tilt (TIFF, MRC or .npy, shape (n_tilts, k_y, k_x));
the 4D output of ``virtual-aperture sum`` (labels × tilts × k_y × k_x) is accepted with ``--grain``.
Writes DIR/peaks.csv (every peak with its hkl, or blank when not indexed), DIR/indexing.json (cell,
Bravais candidates, UB, tilt axis, indexed fraction, rmsd; with ``--max-lattices N`` every
lattice found and the peaks it owns) and DIR/predicted.csv (predicted spots per tilt of the
dominant lattice).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from ..model.tilts import parse_tilt_angles
from ._runtime import add_max_lattices, check_max_lattices


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "index",
        help="find Bragg peaks in per-tilt summed patterns and index them (unit cell, orientation)",
        description="Peak finding (probe-template correlation, sub-pixel) on every pattern of a tilt series, "
        "then lattice search, Niggli reduction, Bravais candidates and least-squares refinement.",
    )
    p.add_argument("patterns", help="stack of summed patterns (n_tilts, k_y, k_x): .tif/.tiff/.mrc/.npy")
    p.add_argument(
        "--tilts",
        nargs="+",
        type=float,
        required=True,
        help="tilt angles in degrees: one per pattern, or START STOP STEP (stop included)",
    )
    p.add_argument(
        "--tilt-axis",
        type=float,
        default=0.0,
        help="tilt-axis direction on the detector, degrees from +k_x towards +k_y (refined)",
    )
    p.add_argument("--pixel-size", type=float, required=True, help="detector pixel size in Å⁻¹ per pixel")
    p.add_argument("--kv", type=float, default=300.0, help="beam energy in kV (default 300)")
    p.add_argument(
        "--center",
        nargs=2,
        type=float,
        metavar=("KY", "KX"),
        default=None,
        help="beam centre in pixels (default: measured in every pattern)",
    )
    p.add_argument(
        "--ellipticity",
        nargs=2,
        type=float,
        metavar=("RATIO", "ANGLE"),
        default=(1.0, 0.0),
        help="elliptical distortion (ratio, angle in degrees); default none",
    )
    p.add_argument(
        "--refine-ellipticity",
        action="store_true",
        help="refine the detector's elliptical distortion from the indexed peaks (no ring standard)",
    )
    p.add_argument(
        "--cell",
        nargs="+",
        default=None,
        help="known cell: a CIF file or six numbers A B C ALPHA BETA GAMMA (Å, degrees)",
    )
    p.add_argument("--centring", default="P", help="lattice centring of --cell numbers (P, A, B, C, I, F, R)")
    p.add_argument("--lattice", default=None, help="force a Bravais lattice from the candidates, e.g. mP")
    add_max_lattices(p)
    p.add_argument("--grain", type=int, default=0, help="which pattern set of a 4D (labels × tilts) stack")
    p.add_argument("--d-min", type=float, default=None, help="ignore peaks beyond 1/d_min Å⁻¹ when indexing")
    p.add_argument("--threshold", type=float, default=6.0, help="peak signal-to-noise threshold (default 6)")
    p.add_argument(
        "--disk-radius",
        type=float,
        default=None,
        help="probe-disk radius in pixels for template matching (default: small Gaussian)",
    )
    p.add_argument(
        "--exclude-center",
        type=float,
        default=4.0,
        help="ignore peaks within this many pixels of the beam centre (default 4)",
    )
    p.add_argument("--sigma-background", type=float, default=8.0, help="background-subtraction σ in pixels")
    p.add_argument("--min-distance", type=float, default=None, help="minimum peak separation in pixels")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace peaks.csv, indexing.json and predicted.csv if they exist in --out",
    )
    p.set_defaults(func=run)


def read_pattern_stack(path: str | Path, *, grain: int = 0) -> np.ndarray:
    """A (n_tilts, k_y, k_x) float array from a TIFF, MRC or .npy file (clear errors otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pattern file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        elif suffix in (".mrc", ".mrcs", ".st"):
            import mrcfile

            with mrcfile.open(path, permissive=True) as m:
                arr = np.array(m.data)
        elif suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            raise ValueError(f"pattern file {path}: unsupported format {suffix!r} (use .tif, .mrc or .npy)")
    except (OSError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith("pattern file"):
            raise
        raise ValueError(f"cannot read pattern file {path}: {exc}") from None
    arr = np.asarray(arr, dtype=float)
    if arr.ndim == 4:
        if not 0 <= grain < arr.shape[0]:
            raise ValueError(f"--grain {grain} out of range: {path} holds {arr.shape[0]} pattern sets")
        arr = arr[grain]
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"pattern file {path} has shape {arr.shape}; expected (n_tilts, k_y, k_x)")
    return arr


def _cell_arg(values, centring):
    if values is None:
        return None
    if len(values) == 1:
        if not Path(values[0]).is_file():
            raise ValueError(f"--cell CIF file {values[0]} does not exist")
        return values[0]
    if len(values) != 6:
        raise ValueError(f"--cell needs a CIF file or six numbers, got {len(values)} values")
    try:
        return tuple(float(x) for x in values)
    except ValueError:
        raise ValueError(f"--cell numbers must be numeric, got {values}") from None


def run(args: argparse.Namespace) -> int:
    from virtual_aperture import Calibration, find_bragg_peaks, index_tilt_series
    from virtual_aperture.crystal.peaks import PeakList

    check_max_lattices(args)
    stack = read_pattern_stack(args.patterns, grain=args.grain)
    cal = Calibration(
        pixel_size=args.pixel_size,
        beam_energy_kv=args.kv,
        tilt_angles_deg=parse_tilt_angles(args.tilts, stack.shape[0], name="--tilts"),
        tilt_axis_deg=args.tilt_axis,
        center=tuple(args.center) if args.center else None,
        ellipticity=tuple(args.ellipticity),
    )
    known = _cell_arg(args.cell, args.centring)
    from virtual_aperture.crystal.export.solution import check_free

    out = check_free(args.out, ("peaks.csv", "indexing.json", "predicted.csv"), overwrite=args.overwrite)
    peaks = find_bragg_peaks(
        stack,
        template=args.disk_radius,
        threshold=args.threshold,
        sigma_background=args.sigma_background,
        min_distance=args.min_distance,
        exclude_center_radius=args.exclude_center,
        calibration=cal,
        center=tuple(args.center) if args.center else "beam",
    )
    all_peaks = PeakList.concatenate(peaks)
    all_peaks.to_csv(out / "peaks.csv")  # written first: kept even if indexing fails
    print(f"found {len(all_peaks)} peaks in {stack.shape[0]} patterns → {out / 'peaks.csv'}")
    result = index_tilt_series(
        peaks,
        calibration=cal,
        d_min=args.d_min,
        known_cell=known,
        centring=args.centring,
        lattice=args.lattice,
        refine_ellipticity=args.refine_ellipticity,
        max_lattices=args.max_lattices,
    )
    hkl = [" ".join(map(str, h)) if ok else "" for h, ok in zip(result.hkl.tolist(), result.indexed)]
    result.peaks.to_csv(out / "peaks.csv", extra={"hkl": hkl})
    with open(out / "indexing.json", "w") as fh:
        json.dump(result.to_dict(), fh, indent=1)
    with open(out / "predicted.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["tilt", "angle_deg", "h", "k", "l", "y", "x", "s"])
        for t, angle in enumerate(cal.tilt_angles_deg):
            pred = result.predict(t, d_min=args.d_min or 0.5, detector_shape=stack.shape[1:])
            for h, p, s in zip(pred["hkl"], pred["positions"], pred["s"]):
                w.writerow([t, f"{angle:g}", *map(int, h), f"{p[0]:.3f}", f"{p[1]:.3f}", f"{s:.5f}"])
    print(result.summary())
    print(f"wrote {out / 'peaks.csv'}, {out / 'indexing.json'}, {out / 'predicted.csv'}")
    return 0
