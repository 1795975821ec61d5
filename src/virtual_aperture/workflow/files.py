"""The files of one grain: what :func:`write_grain` and :func:`write_unindexed` write."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .chain import GrainResult, UnindexedGrain

__all__ = ["GRAIN_FILES", "smv_frames", "write_grain", "write_unindexed"]


def write_unindexed(exc: UnindexedGrain, out: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """``peaks.csv`` (every peak with its tilt), ``frames.mrc`` and ``report.json`` (the refusal)."""
    from ..crystal.export import check_free, write_mrc_stack
    from ..crystal.export.report import write_report
    from ..crystal.peaks import PeakList

    out = check_free(out, ("peaks.csv", "frames.mrc", "report.json"), overwrite=overwrite)
    allp = PeakList.concatenate([replace(p, tilt=np.full(len(p), t)) for t, p in enumerate(exc.peaks)])
    allp.to_csv(out / "peaks.csv")
    paths = [out / "peaks.csv"]
    paths.append(
        write_mrc_stack(
            out / "frames.mrc",
            np.asarray(exc.patterns, np.float32),
            pixel_size=exc.pixel_size,
            tilt_angles_deg=exc.tilt_angles_deg,
            overwrite=overwrite,
        )
    )
    rep = {
        "grain": exc.grain,
        "converged": False,
        "message": str(exc),
        "indexed": False,
        "n_peaks": len(allp),
        "tilt_range_deg": [float(exc.tilt_angles_deg[0]), float(exc.tilt_angles_deg[-1])],
        "peaks_per_tilt": [len(p) for p in exc.peaks],
    }
    paths.append(write_report(out / "report.json", rep, overwrite=overwrite))
    return paths


#: files :func:`write_grain` adds to those of ``crystal.export.write_solution``
GRAIN_FILES = ("indexing.json", "structure.hkl", "frames.mrc", "smv", "report.html")


def write_grain(
    result: GrainResult,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    physical_pixel_mm: float = 0.055,
    context: Any = None,
) -> list[Path]:
    """Write the crystallographer's files of one solved (or unsolved) grain into ``out``.

    ``structure.cif``, ``potential.ccp4``, ``structure.ins``/``.res``, ``reflections.cif`` (the
    merged data R1 was computed against) and ``report.json`` (as ``virtual-aperture phase`` writes
    them), ``indexing.json`` (cell, orientation, validation), ``structure.hkl`` (unmerged HKLF 4
    beside the .ins, no batch column, ready for SHELXT/SHELXL/Olex2), ``frames.mrc`` (the summed
    patterns as an MRC stack, calibration and tilts in its FEI2 extended header), ``smv/`` (one
    SMV image per tilt, turned so the tilt axis is along the fast axis as dxtbx's ADSC reader
    assumes) and ``report.html`` (the figures and every number, see
    :func:`virtual_aperture.report.write_report`). Without a solution (phasing could not run) the
    indexing, integration, merged reflections, frames and both reports are still written.
    Refuses to overwrite unless ``overwrite=True``.

    Parameters
    ----------
    result
        What :func:`solve_grain` returned.
    out
        The output folder (created).
    overwrite
        Replace existing files.
    physical_pixel_mm
        Detector pixel size (mm) written into the SMV headers.
    context
        A :class:`~virtual_aperture.report.ReportContext`: adds the aperture over the tilts and
        the rerun command to ``report.html``.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    import json

    from .._atomic import write_text
    from ..crystal.export import (
        SOLUTION_FILES,
        check_free,
        write_hkl,
        write_mrc_stack,
        write_reflections_cif,
        write_smv,
        write_solution,
    )
    from ..crystal.export.report import to_jsonable
    from ..crystal.export.report import write_report as write_json_report

    out = check_free(out, (*SOLUTION_FILES, *GRAIN_FILES), overwrite=overwrite)
    ical = result.indexing.calibration
    axis = float(result.indexing.tilt_axis_deg)
    frames, smv_scale = smv_frames(result)
    report = result.report()
    report["exports"] = {
        "smv_scale": smv_scale,
        "smv_beam_stop_radius_px": result.beam_stop_radius_px,
        "physical_pixel_mm": physical_pixel_mm,
        "smv_rotated_by_deg": -axis,
    }
    paths = [
        write_text(
            out / "indexing.json",
            json.dumps(to_jsonable(result.indexing.to_dict()), indent=2) + "\n",
            overwrite=overwrite,
        )
    ]
    if len(result.reflections):
        report["exports"]["hkl_scale"] = write_hkl(
            out / "structure.hkl", result.reflections, overwrite=overwrite
        )
        paths.append(out / "structure.hkl")
    if result.solution is not None:  # structure files and reflections.cif (the data R1 is against)
        paths += write_solution(
            out,
            result.solution,
            wavelength=ical.wavelength,
            report=report,
            composition=result.composition,
            cell_esd=result.indexing.cell_esd or None,
            overwrite=overwrite,
        )
    else:  # partial result: indexing, integration, merging and the report, no structure files
        if result.merged is not None:
            paths.append(write_reflections_cif(out / "reflections.cif", result.merged, overwrite=overwrite))
        paths.append(write_json_report(out / "report.json", report, overwrite=overwrite))
    paths.append(
        write_mrc_stack(
            out / "frames.mrc",
            result.patterns.astype(np.float32),
            pixel_size=ical.pixel_size,
            tilt_angles_deg=result.tilt_angles_deg,
            wavelength=ical.wavelength,
            tilt_axis_deg=axis,
            overwrite=overwrite,
        )
    )
    (out / "smv").mkdir(exist_ok=True)
    paths.extend(
        write_smv(
            out / "smv",
            frames,
            tilt_angles_deg=result.tilt_angles_deg,
            wavelength=ical.wavelength,
            pixel_size=ical.pixel_size,
            center=tuple(np.median(result.centers, axis=0)),
            physical_pixel_mm=physical_pixel_mm,
            tilt_axis_deg=axis,
            overwrite=overwrite,
        )
    )
    from ..report import write_report

    paths.append(write_report(result, out, report=report, context=context))
    return paths


def smv_frames(result: GrainResult) -> tuple[np.ndarray, float]:
    """The patterns as SMV counts: the unscattered beam masked (NaN) as by a beam stop, then scaled
    down only if the strongest remaining pixel exceeds 65533 (+ pedestal 1 ≤ 65534, the ADSC
    trusted maximum); returns (frames, scale)."""
    frames = np.array(result.patterns, dtype=np.float64)
    ky, kx = np.ogrid[: frames.shape[1], : frames.shape[2]]
    for f, (cy, cx) in zip(frames, result.centers):
        f[(ky - cy) ** 2 + (kx - cx) ** 2 <= result.beam_stop_radius_px**2] = np.nan  # no data: SMV 0
    top = float(np.nanmax(frames, initial=0.0))
    scale = 1.0 if top <= 65533 else 65533.0 / top
    return frames * scale, scale
