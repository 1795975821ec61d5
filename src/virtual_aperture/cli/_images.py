"""Small helpers the CLI uses to write images a person can look at (PNG) and analyse (TIFF)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def display_scale(image: np.ndarray, *, log: bool = False, percentiles: tuple[float, float] = (0.5, 99.8)) -> np.ndarray:
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


def save_png(path: Path, image: np.ndarray, *, log: bool = False) -> Path:
    from PIL import Image

    from virtual_aperture._atomic import write_with

    img = Image.fromarray(display_scale(image, log=log))
    write_with(path, lambda tmp: img.save(tmp, format="PNG"), overwrite=True)  # the demo rewrites its folder
    return path


def save_tiff(path: Path, image: np.ndarray, *, metadata: dict | None = None) -> Path:
    import tifffile

    from virtual_aperture._atomic import write_with

    data = np.asarray(image, dtype=np.float32)
    text = json.dumps(metadata or {}, default=float)
    write_with(path, lambda tmp: tifffile.imwrite(tmp, data, description=text), overwrite=True)
    return path
