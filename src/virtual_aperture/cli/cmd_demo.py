"""``virtual-aperture demo``: the main job on the built-in sample, headless.

1. Simulates the crowded-agglomerate sample, saves it to a zarr store, opens that store lazily
   like any user file, computes a bright-field and an annular dark-field virtual image and the
   mean diffraction pattern on the compute engine, and writes each as a PNG figure (axes in nm or
   Å⁻¹, scale bar, colour bar, title) and an ImageJ-calibrated float32 TIFF to ``--out``.
2. Unless ``--no-solve``: a tilt series of touching brookite nanocrystals, from grain proposals
   to a solved structure, compared with the truth (see ``_demo_solve``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ._runtime import close_client, open_client


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job on the built-in sample and write its outputs",
        description="Headless tour on simulated data: (1) a crowded agglomerate of UiO-66 crystals → "
        "bright-field and annular dark-field virtual images and the mean pattern (calibrated TIFF + PNG "
        "figures); (2) a tilt series of touching brookite (TiO2) crystals → descan calibration → grains "
        "proposed and tracked → the best-tracked grain solved ab initio → CIF/SHELX/MRC/SMV files and "
        "report.html, compared with the truth.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("demo_output"), help="output folder (default: demo_output)"
    )
    p.add_argument(
        "--scan",
        type=int,
        nargs=2,
        default=(64, 64),
        metavar=("SY", "SX"),
        help="scan size of the agglomerate, in positions (default: 64 64)",
    )
    p.add_argument(
        "--grains", type=int, default=6, help="number of nanocrystals in the agglomerate (default: 6)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the agglomerate (default: 0)")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="dask.distributed scheduler address, or 'local' (default: threads in this process)",
    )
    p.add_argument(
        "--no-solve", action="store_true", help="skip the tilt-series part (grains → solved structure)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    client = open_client(args.scheduler)
    try:
        return _run(args, out, client)
    finally:
        close_client(client)


def _run(args: argparse.Namespace, out: Path, client) -> int:
    from virtual_aperture.compute import aperture_sums, detectors, virtual_image
    from virtual_aperture.io import open_dataset, save_dataset
    from virtual_aperture.sample import simulate_agglomerate

    from ._demo_solve import run_solve_demo
    from ._images import REAL_UNIT, RECIPROCAL_UNIT, save_figure_png, save_tiff
    from ._runtime import cli_progress

    t0, c0 = time.perf_counter(), time.process_time()

    sim, truth = simulate_agglomerate(n_grains=args.grains, scan_shape=tuple(args.scan), seed=args.seed)
    store = out / "sample.zarr"
    # atomic: the old store stays until the new one is whole
    save_dataset(sim, store, overwrite=True, progress=cli_progress("simulate agglomerate", unit="chunks"))
    ds = open_dataset(store)
    print(f"sample: {ds}  ({time.perf_counter() - t0:.1f} s to simulate and save)")

    mean = aperture_sums(ds, np.ones(ds.scan_shape, dtype=np.int32), client=client)[1].mean
    bf = detectors.bright_field(mean)
    adf = detectors.annular_dark_field(mean)
    images = virtual_image(
        ds, np.stack([bf, adf]).astype(np.float64), client=client, progress=cli_progress("virtual images")
    )
    cal = ds.calibration
    step, px = float(cal.scan_step_nm), float(cal.pixel_size)
    centre = tuple(float(v) for v in cal.detector_center(ds.detector_shape))
    written = []
    for name, img, title, label in (
        ("bright_field", images[0], "Bright-field virtual image", "BF signal (counts)"),
        ("annular_dark_field", images[1], "Annular dark-field virtual image", "ADF signal (counts)"),
    ):
        written.append(
            save_figure_png(out / f"{name}.png", img, pixel=step, unit="nm", title=title, label=label)
        )
        written.append(
            save_tiff(
                out / f"{name}.tif",
                img,
                pixel=step,
                unit=REAL_UNIT,
                metadata={"name": name, "calibration": cal.to_dict()},
            )
        )
    written.append(
        save_figure_png(
            out / "mean_pattern.png",
            mean,
            pixel=px,
            unit="Å⁻¹",
            title="Mean diffraction pattern",
            label="counts per pattern (log scale)",
            log=True,
            center=centre,
        )
    )
    written.append(
        save_tiff(
            out / "mean_pattern.tif",
            mean,
            pixel=px,
            unit=RECIPROCAL_UNIT,
            metadata={"name": "mean_pattern", "calibration": cal.to_dict()},
        )
    )
    summary = {
        "dataset": repr(ds),
        "grains_in_truth": int(len(truth.orientations)),
        "seconds": round(time.perf_counter() - t0, 2),
        "outputs": [str(p) for p in written],
    }
    print(f"wrote {len(written)} images to {out.resolve()}:")
    for p in written:
        print(f"  {p}")
    if not args.no_solve:
        summary["tilt_series"] = run_solve_demo(out, client=client)
        print(f"structure files in {Path(summary['tilt_series']['outputs']).resolve()}")
        print(f"rerun that grain from the command line: {summary['tilt_series']['rerun']}")
        ts = summary["tilt_series"]
        print(
            "tilt-series stages, wall / CPU s: "
            + ", ".join(f"{k} {w:.0f} / {ts['cpu_seconds'][k]:.0f}" for k, w in ts["seconds"].items())
        )
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    summary["cpu_seconds"] = round(time.process_time() - c0, 2)
    (out / "demo.json").write_text(json.dumps(summary, indent=2, default=float))
    print(
        f"summary in {(out / 'demo.json').resolve()}; done in {summary['seconds']} s "
        f"({summary['cpu_seconds']} s CPU)"
    )
    return 0 if args.no_solve or summary["tilt_series"]["solved"] else 3
