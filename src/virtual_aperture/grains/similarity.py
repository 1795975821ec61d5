"""Boundary checks: how coherent a painted grain is, and where pattern boundaries lie.

Both work on compressed spot features (see :mod:`._common`): binned, sqrt-scaled patterns with
the smooth background and the central disk removed, so correlation measures shared Bragg spots.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from ._common import as_dataset, central_mask, check_bin, feature_array, normalise_rows, tilt_array


def grain_coherence(
    data: Any, mask: Any, *, tilt: int = 0, binning: int | None = None, denoise: int = 2
) -> tuple[float, np.ndarray]:
    """How much the patterns under a real-space mask look like one crystal.

    Parameters
    ----------
    data
        :class:`~virtual_aperture.Dataset` or a 4D/5D array.
    mask
        Boolean ``(scan_y, scan_x)`` virtual aperture (at least one position).
    tilt
        Tilt index for 5D data.
    binning
        Detector binning factor for the comparison; ``None`` bins to ≤ 32×32 pixels.
    denoise
        Keep this many leading singular components of the member patterns before comparing
        (removes shot noise, which spreads over all pixels); 0 compares the raw spot patterns.

    Returns
    -------
    score
        Mean normalised correlation (Pearson, −1…1) of each member's spot pattern with the mean
        spot pattern of the mask. A single grain gives a high score; a mask straddling two grains
        with different orientations a clearly lower one.
    correlation
        ``(scan_y, scan_x)`` float array of each member's correlation, NaN outside the mask.
    """
    ds = as_dataset(data)
    arr = tilt_array(ds, tilt)
    m = np.asarray(mask)
    if m.shape != ds.scan_shape:
        raise ValueError(f"mask has shape {m.shape}, expected the scan shape {ds.scan_shape}")
    m = m.astype(bool)
    if not m.any():
        raise ValueError("mask is empty: select at least one scan position")
    b = check_bin(binning, ds.detector_shape, name="binning")
    ys, xs = np.nonzero(m)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    cm = central_mask(arr, b, center=ds.calibration.center)
    feats = feature_array(arr[y0:y1, x0:x1], b, cm)
    sub = m[y0:y1, x0:x1]
    members = feats.reshape(feats.shape[0] * feats.shape[1], -1)[np.flatnonzero(sub)]
    f = np.asarray(members.compute(), dtype=np.float32)
    if denoise and min(f.shape) > denoise:
        # keep the leading singular directions of the members: shot noise spreads over all
        # detector pixels, the crystal(s) under the mask live in a few directions
        from sklearn.utils.extmath import randomized_svd

        u, s, vt = randomized_svd(f, int(denoise), n_iter=4, random_state=0)
        f = (u * s) @ vt
    mean = f.mean(axis=0)
    corr_members = normalise_rows(f) @ normalise_rows(mean[None])[0]
    corr = np.full(ds.scan_shape, np.nan, dtype=np.float64)
    corr[ys, xs] = corr_members
    return float(np.mean(corr_members)), corr


def _block_dissimilarity(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
    """1 − correlation with the 4-neighbours, averaged over the neighbours inside the scan.

    ``block`` is an overlapped block (ghost rows/columns of depth 1 on interior sides).
    """
    loc = block_info[0]["chunk-location"] if block_info else (0, 0, 0, 0)
    num = block_info[0]["num-chunks"] if block_info else (1, 1, 1, 1)
    lead = [1 if loc[a] > 0 else 0 for a in (0, 1)]
    trail = [1 if loc[a] < num[a] - 1 else 0 for a in (0, 1)]
    f = normalise_rows(block.reshape(block.shape[0], block.shape[1], -1))
    ny, nx = f.shape[:2]
    acc = np.zeros((ny, nx), np.float64)
    cnt = np.zeros((ny, nx), np.float64)
    cd = 1.0 - np.einsum("ijk,ijk->ij", f[1:], f[:-1])  # vertical edges (i, i+1)
    acc[1:] += cd
    acc[:-1] += cd
    cnt[1:] += 1
    cnt[:-1] += 1
    cr = 1.0 - np.einsum("ijk,ijk->ij", f[:, 1:], f[:, :-1])
    acc[:, 1:] += cr
    acc[:, :-1] += cr
    cnt[:, 1:] += 1
    cnt[:, :-1] += 1
    out = acc / np.maximum(cnt, 1)
    out = out[lead[0] : ny - trail[0], lead[1] : nx - trail[1]]
    return out.astype(np.float32)[:, :, None, None]


def neighbour_dissimilarity(data: Any, *, tilt: int = 0, binning: int = 2, client: Any = None) -> np.ndarray:
    """Local pattern dissimilarity map, bright along grain boundaries.

    For every scan position: 1 − normalised correlation of its spot pattern with each 4-neighbour
    (up, down, left, right), averaged over the neighbours inside the scan. Inside one grain the
    neighbours share reflections (low values); across a boundary they do not (values near 1).
    Vacuum and amorphous areas carry no spot signal and look uniformly high (noise does not
    correlate); use it together with a virtual dark-field image.

    Computed lazily with dask over scan chunks (``map_overlap``-style ghost rows of depth 1).

    Parameters
    ----------
    data
        :class:`~virtual_aperture.Dataset` or a 4D/5D array.
    tilt
        Tilt index for 5D data.
    binning
        Detector binning factor (≥ 1) applied before comparing patterns.
    client
        Optional ``dask.distributed`` client; the threaded scheduler is used otherwise.

    Returns
    -------
    ``(scan_y, scan_x)`` float32 array, values in 0…2 (typically 0…1).
    """
    ds = as_dataset(data)
    arr = tilt_array(ds, tilt)
    b = check_bin(binning, ds.detector_shape, name="binning")
    cm = central_mask(arr, b, center=ds.calibration.center)
    feats = feature_array(arr, b, cm)
    ov = da.overlap.overlap(feats, depth={0: 1, 1: 1, 2: 0, 3: 0}, boundary="none")
    out = ov.map_blocks(_block_dissimilarity, chunks=feats.chunks[:2] + ((1,), (1,)), dtype=np.float32)[
        :, :, 0, 0
    ]
    if client is not None:
        return np.asarray(client.compute(out).result())
    return np.asarray(out.compute())
