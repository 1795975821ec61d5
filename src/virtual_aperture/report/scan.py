"""Virtual images for the report's strip of a grain's aperture over the tilts: only the tilts the
strip shows are read (a few chunks, not the whole series)."""

from __future__ import annotations

import numpy as np


def strip_images(dataset, tilts, *, max_panels: int = 6, client=None) -> np.ndarray:
    """``(n_tilts, sy, sx)`` annular dark-field images, computed for the tilts the report's strip
    shows (``max_panels`` spread over ``tilts``, as :func:`figures.pick`), NaN elsewhere."""
    from ..compute import virtual_image
    from ..compute.detectors import annular_dark_field
    from .figures import pick

    tilts = np.asarray(tilts, dtype=int)
    sel = tilts[pick(len(tilts), max_panels)]
    n_t = dataset.n_tilts if dataset.is_tilt_series else 1
    out = np.full((n_t, *dataset.scan_shape), np.nan)
    adf = annular_dark_field(dataset)
    data = dataset.data
    for t in sel:
        out[t] = virtual_image(data[int(t)] if dataset.is_tilt_series else data, adf, client=client)
    return out
