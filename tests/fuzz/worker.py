"""Runs corpus jobs in one interpreter under an address-space limit: reads one JSON job per line on
stdin, answers one JSON line on stdout. The parent (``runner.py``) enforces the per-job timeout by
killing this process. Usage: ``python worker.py LIMIT_BYTES``."""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import sys
import traceback


def _limit(nbytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))


def _compare(img, ref_path: str) -> str | None:
    import numpy as np

    ref = np.load(ref_path)
    img = np.asarray(img)
    if img.shape != ref.shape:
        return f"shape {img.shape}, expected {ref.shape}"
    if not np.allclose(img, ref, rtol=1e-5, atol=1e-6, equal_nan=False):
        bad = int((~np.isclose(img, ref, rtol=1e-5, atol=1e-6)).sum())
        return f"{bad} of {ref.size} values differ (max |diff| {float(np.nanmax(np.abs(img - ref))):.4g})"
    return None


def run_cli(job: dict) -> dict:
    from virtual_aperture.cli import main

    argv = [job["command"], *job["paths"], *job["cli"]]
    out_path = None
    if job["command"] == "virtual":
        out_path = os.path.join(job["tmp"], "out.tif")
        argv += ["--detector", job["mask"], "--out", out_path]
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code if isinstance(exc.code, int) else 2
    except MemoryError:
        return {"status": "memory", "message": "MemoryError"}
    except BaseException as exc:  # noqa: BLE001 - what a user would see as a traceback
        return {
            "status": "traceback",
            "message": f"{type(exc).__name__}: {exc}",
            "tb": traceback.format_exc()[-2000:],
        }
    text = err.getvalue()
    if "Traceback" in text:
        return {"status": "traceback", "message": text[-2000:]}
    if rc != 0:
        lines = [ln for ln in text.splitlines() if ln.strip() and "error" in ln]
        return {"status": "error", "message": (lines[-1] if lines else text.strip()[-500:]), "rc": rc}
    res: dict = {"status": "ok", "stdout": out.getvalue()[-1000:]}
    if out_path and job.get("ref"):
        import tifffile

        res["mismatch"] = _compare(tifffile.imread(out_path), job["ref"])
    return res


def run_api(job: dict) -> dict:
    from virtual_aperture.compute import virtual_image
    from virtual_aperture.io import ReadError, open_dataset

    try:
        import tifffile

        mask = tifffile.imread(job["mask"])
        paths = job["paths"] if len(job["paths"]) > 1 else job["paths"][0]
        ds = open_dataset(paths, **job["api"])
        img = virtual_image(ds, mask)
    except MemoryError:
        return {"status": "memory", "message": "MemoryError"}
    except (ReadError, ValueError, OSError) as exc:
        msg = str(exc)
        return {
            "status": "error",
            "message": msg.splitlines()[0] if msg else type(exc).__name__,
            "kind": type(exc).__name__,
        }
    except BaseException as exc:  # noqa: BLE001
        return {
            "status": "traceback",
            "message": f"{type(exc).__name__}: {exc}"[:2000],
            "tb": traceback.format_exc()[-2000:],
        }
    res = {"status": "ok"}
    if job.get("ref"):
        res["mismatch"] = _compare(img, job["ref"])
    return res


def warm_up() -> None:
    """Import and JIT-compile before the first timed job."""
    import numpy as np

    from virtual_aperture import Calibration, Dataset
    from virtual_aperture.compute import virtual_image

    for dt in (np.uint16, np.float32, np.uint8, np.float64):
        virtual_image(Dataset(np.ones((2, 2, 4, 4), dt), Calibration()), np.ones((4, 4)))
    import tempfile

    import tifffile

    with tempfile.TemporaryDirectory() as tmp:  # the CLI path too (progress bar, TIFF writer)
        np.save(os.path.join(tmp, "w.npy"), np.ones((2, 2, 4, 4), np.uint16))
        tifffile.imwrite(os.path.join(tmp, "m.tif"), np.ones((4, 4)))
        run_cli(
            {
                "command": "virtual",
                "paths": [os.path.join(tmp, "w.npy")],
                "cli": [],
                "mask": os.path.join(tmp, "m.tif"),
                "tmp": tmp,
            }
        )


def main() -> None:
    _limit(int(sys.argv[1]))
    import warnings

    warnings.simplefilter("ignore")
    warm_up()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        os.makedirs(job["tmp"], exist_ok=True)
        os.chdir(job.get("cwd") or job["tmp"])
        res = run_api(job) if job["command"] == "api" else run_cli(job)
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
