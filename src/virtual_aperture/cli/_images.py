"""Images the CLI writes: calibrated TIFFs Fiji/ImageJ read with their scale, and PNG previews made
as figures (axes in physical units, scale bar, colour bar, title).

ImageJ calibration: ``tifffile.imwrite(..., imagej=True)`` with ``resolution`` in pixels per unit
and the unit in the ImageJ metadata (``nm`` for real space, ``1/A`` — ImageJ's ASCII spelling of
Å⁻¹ — for diffraction); the full calibration is also kept as JSON in the ImageJ ``Info`` property.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: ImageJ unit strings (ImageJ metadata is ASCII)
REAL_UNIT = "nm"
RECIPROCAL_UNIT = "1/A"


def display_scale(
    image: np.ndarray, *, log: bool = False, percentiles: tuple[float, float] = (0.5, 99.8)
) -> np.ndarray:
    """Map an image to uint8 for display: optional log1p, then percentile clipping."""
    img = np.asarray(image, dtype=np.float64)
    if log:
        img = np.log1p(np.clip(img, 0, None))
    finite = img[np.isfinite(img)]
    if finite.size == 0:
        return np.zeros(img.shape, dtype=np.uint8)
    lo, hi = np.percentile(finite, percentiles)
    if hi <= lo:
        hi = lo + 1.0
    out = np.clip((np.nan_to_num(img, nan=lo) - lo) / (hi - lo), 0, 1)
    return (out * 255 + 0.5).astype(np.uint8)


def save_figure_png(
    path: Path,
    image: np.ndarray,
    *,
    pixel: float,
    unit: str,
    title: str,
    label: str,
    log: bool = False,
    center: tuple[float, float] | None = None,
) -> Path:
    """A PNG preview drawn as a figure: axes in ``unit`` (``pixel`` per pixel), scale bar, colour bar
    (``label``) and ``title``; ``center`` puts the origin there (diffraction patterns)."""
    from virtual_aperture._atomic import write_with
    from virtual_aperture.report import image_figure

    fig = image_figure(image, pixel=pixel, unit=unit, title=title, label=label, log=log, center=center)
    write_with(
        path, lambda tmp: fig.savefig(tmp, format="png"), overwrite=True
    )  # the demo rewrites its folder
    return Path(path)


def save_tiff(
    path: Path,
    image: np.ndarray,
    *,
    pixel: float | None = None,
    unit: str = REAL_UNIT,
    metadata: dict | None = None,
    axes: str | None = None,
    overwrite: bool = True,
) -> Path:
    """A float32 (or integer labels) ImageJ TIFF calibrated ``pixel`` ``unit`` per pixel.

    ``metadata`` goes to the ImageJ ``Info`` property as JSON (what was measured, the full
    calibration). ``axes`` defaults to ``YX`` / ``TYX`` (stacks of scan images, e.g. per tilt).
    Written atomically; ``overwrite=False`` refuses an existing file.
    """
    import tifffile

    from virtual_aperture._atomic import write_with

    arr = np.asarray(image)
    if arr.dtype.kind in "iub":  # labels: ImageJ has no int32/64; uint16 (or float32, exact < 2**24)
        small = arr.size == 0 or (int(arr.min()) >= 0 and int(arr.max()) < 2**16)
        arr = arr.astype(np.uint16 if small else np.float32)
    else:
        arr = arr.astype(np.float32)
    axes = axes or ("YX" if arr.ndim == 2 else "TYX" if arr.ndim == 3 else None)
    meta = {"axes": axes, "unit": unit, "Info": json.dumps(metadata or {}, default=float)}
    kw = {}
    if pixel is not None and np.isfinite(pixel) and pixel > 0:
        kw["resolution"] = (1.0 / float(pixel), 1.0 / float(pixel))
    write_with(
        path,
        lambda tmp: tifffile.imwrite(tmp, arr, imagej=True, metadata=meta, **kw),
        overwrite=overwrite,
        option="--overwrite",
    )
    return Path(path)


def read_calibration(path: Path) -> dict:
    """``{"pixel": units per pixel, "unit": …, "info": the JSON metadata}`` of a TIFF :func:`save_tiff`
    wrote (what Fiji shows under Image ▸ Properties)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        ij = tif.imagej_metadata or {}
        num, den = tif.pages[0].tags["XResolution"].value
    info = ij.get("Info")
    return {
        "pixel": den / num if num else None,
        "unit": ij.get("unit"),
        "info": json.loads(info) if info else {},
    }
