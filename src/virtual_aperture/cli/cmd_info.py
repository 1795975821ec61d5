"""``virtual-aperture info PATH``: open a dataset lazily and print its shape, chunks and calibration."""

from __future__ import annotations

import argparse
import json

import numpy as np


def _add_open_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default=None, help="force a reader (mib, hspy, hdf5, zarr, npy, ...)")
    p.add_argument("--scan-step", type=float, default=None, metavar="NM", help="scan step in nm")
    p.add_argument(
        "--pixel-size", type=float, default=None, metavar="INV_A", help="detector pixel size in 1/Å (no 2π)"
    )
    p.add_argument("--beam-energy", type=float, default=None, metavar="KV", help="accelerating voltage in kV")
    p.add_argument(
        "--tilt-angles",
        type=float,
        nargs="+",
        default=None,
        metavar="DEG",
        help="one tilt angle per file/tilt, in degrees",
    )
    p.add_argument(
        "--tilt-axis",
        type=float,
        default=None,
        metavar="DEG",
        help="tilt-axis direction on the detector, degrees from +k_x towards +k_y",
    )
    p.add_argument(
        "--center",
        type=float,
        nargs=2,
        default=None,
        metavar=("KY", "KX"),
        help="unscattered-beam position in pixels",
    )
    p.add_argument(
        "--scan-shape",
        type=int,
        nargs=2,
        default=None,
        metavar=("NY", "NX"),
        help="scan shape for files that store a flat stack of frames",
    )
    p.add_argument("--chunk-mb", type=float, default=None, metavar="MB", help="target chunk size in MiB")
    p.add_argument(
        "--fill-missing",
        action="store_true",
        help="zarr/HDF5 not written by virtual-aperture: read chunks that were never written as the "
        "fill value (default: a missing chunk is an error)",
    )


def open_from_args(args: argparse.Namespace):
    """Open the dataset named by ``args.path`` with the calibration overrides of the parser."""
    from virtual_aperture.io import open_dataset

    paths = args.path if len(args.path) > 1 else args.path[0]
    if args.chunk_mb is not None and not args.chunk_mb > 0:  # also NaN
        raise ValueError(f"--chunk-mb must be a positive number of MiB, got {args.chunk_mb:g}")
    return open_dataset(
        paths,
        format=args.format,
        scan_step_nm=args.scan_step,
        pixel_size=args.pixel_size,
        beam_energy_kv=args.beam_energy,
        tilt_angles_deg=args.tilt_angles,
        tilt_axis_deg=args.tilt_axis,
        center=tuple(args.center) if args.center else None,
        scan_shape=tuple(args.scan_shape) if args.scan_shape else None,
        chunk_bytes=max(1, int(args.chunk_mb * 2**20)) if args.chunk_mb is not None else None,
        fill_missing=getattr(args, "fill_missing", False),
    )


def describe(ds) -> dict:
    """A JSON-able summary of a dataset (what ``info`` prints)."""
    cal = ds.calibration
    chunk = tuple(int(max(c)) for c in ds.data.chunks)
    chunk_bytes = int(ds.dtype.itemsize)
    for c in chunk:
        chunk_bytes *= c
    out = {
        "source": ds.source,
        "format": ds.metadata.get("format"),
        "lazy": bool(
            ds.metadata.get("lazy", all(m.get("lazy", True) for m in ds.metadata.get("per_file", [])))
        ),
        "dims": list(ds.dims),
        "shape": list(ds.shape),
        "dtype": str(ds.dtype),
        "size_bytes": ds.nbytes,
        "chunks": list(chunk),
        "n_chunks": int(ds.data.npartitions),
        "chunk_bytes": chunk_bytes,
        "scan_step_nm": cal.scan_step_nm,
        "pixel_size_inv_A": cal.pixel_size,
        "pixel_size_mrad": cal.pixel_size_mrad,
        "beam_energy_kv": cal.beam_energy_kv,
        "wavelength_A": cal.wavelength,
        "tilt_angles_deg": list(cal.tilt_angles_deg) if cal.tilt_angles_deg else None,
        "tilt_axis_deg": cal.tilt_axis_deg,
        "center": list(cal.detector_center(ds.detector_shape)),
        "calibration_source": ds.metadata.get("calibration_source", {}),
    }
    if "files" in ds.metadata:
        out["files"] = ds.metadata["files"]
    return out


def tilt_summary(angles, *, max_listed: int = 8) -> str:
    """``"121: -60 … +60 deg, step 1"`` for a long list (every angle when ≤ ``max_listed``); an
    irregular list says so and gives the smallest and largest step."""
    a = [float(v) for v in angles]
    if len(a) <= max_listed:
        return f"{len(a)}: " + ", ".join(f"{v:g}" for v in a) + " deg"
    steps = np.diff(a)
    lo, hi = float(steps.min()), float(steps.max())
    if np.allclose(steps, steps[0], rtol=1e-3, atol=1e-6):
        step = f"step {float(np.mean(steps)):g}"
    else:
        step = f"irregular steps {lo:g} … {hi:g}"
    return f"{len(a)}: {a[0]:+g} … {a[-1]:+g} deg, {step}"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"


def run(args: argparse.Namespace) -> int:
    ds = open_from_args(args)
    d = describe(ds)
    if args.json:
        print(json.dumps(d, indent=2, default=str))
        return 0
    src = d["calibration_source"]

    def s(key: str) -> str:
        return f"  [{src[key]}]" if key in src else ""

    dims = " × ".join(f"{n}={v}" for n, v in zip(d["dims"], d["shape"]))
    lines = [
        f"source       {d['source']}",
        f"format       {d['format']}",
        f"dims         {dims}",
        f"dtype        {d['dtype']}",
        f"size         {_size(d['size_bytes'])}" + (" (lazy: nothing read yet)" if d["lazy"] else ""),
        f"chunks       {tuple(d['chunks'])}  ({d['n_chunks']} chunks of ≤ {_size(d['chunk_bytes'])})",
        f"scan step    {d['scan_step_nm']:g} nm{s('scan_step_nm')}",
    ]
    if d["pixel_size_inv_A"] is None:
        lines.append(f"pixel size   unknown (pass --pixel-size){s('pixel_size')}")
    else:
        lines.append(
            f"pixel size   {d['pixel_size_inv_A']:.6g} Å⁻¹ = {d['pixel_size_mrad']:.6g} mrad{s('pixel_size')}"
        )
    lines += [
        f"beam energy  {d['beam_energy_kv']:g} kV{s('beam_energy_kv')}",
        f"wavelength   {d['wavelength_A']:.6f} Å",
        f"centre       ({d['center'][0]:g}, {d['center'][1]:g}) px (k_y, k_x){s('center')}",
    ]
    if d["tilt_angles_deg"]:
        lines.append(f"tilts        {tilt_summary(d['tilt_angles_deg'])}{s('tilt_angles_deg')}")
        lines.append(f"tilt axis    {d['tilt_axis_deg']:g} deg{s('tilt_axis_deg')}")
    print("\n".join(lines))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="print a dataset's shape, chunks and calibration",
        description="Open a 4D/5D-STEM dataset lazily and print what was found.",
    )
    p.add_argument("path", nargs="+", help="file, folder, or several files (a tilt series)")
    _add_open_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)
