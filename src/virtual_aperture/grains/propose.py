"""Automatic grain proposals: spatially coherent segmentation by diffraction similarity.

Workflow (after the unsupervised 4D-STEM clustering of Lee, Ribet, …, Ophus, arXiv 2601.17262,
py4DSTEM ``process/utils/cluster.py``, re-implemented here):

1. compress every pattern to Bragg-spot features on a binned detector (dask, one pass);
2. denoise by projecting onto the leading ``n_components`` singular vectors (truncated SVD,
   uncentred so that vacuum stays near zero);
3. seeded region growing on the scan grid: seeds are positions most similar to their
   neighbours, a region absorbs a neighbour whose cosine with the region's mean ≥ ``threshold``;
4. regions smaller than ``min_size`` are dropped (vacuum/amorphous never form coherent regions,
   so they stay 0), enclosed holes are filled, ids are ordered by size;
5. per grain: confidence (mean correlation of members with the grain mean, as
   :func:`grain_coherence`) and the mean diffraction pattern at full detector resolution.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np
from scipy import ndimage

from ..compute.executor import check_cancel
from ._common import (
    as_dataset,
    central_mask,
    check_bin,
    compute_rows,
    feature_array,
    normalise_rows,
    report,
    spot_features,
    tilt_array,
)
from ._grain_kernels import grow_regions, seed_scores
from .proposal import GrainProposal

#: a tilt at most this large (bytes) is read into memory once for all the proposal's stages
IN_MEMORY_TILT_BYTES = 256 * 2**20


def _check_params(min_size: Any, threshold: Any, n_components: Any) -> None:
    if not isinstance(min_size, (int, np.integer)) or isinstance(min_size, bool) or min_size < 1:
        raise ValueError(f"min_size must be an integer ≥ 1 (scan positions), got {min_size!r}")
    if not isinstance(threshold, (int, float)) or not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"threshold must be a correlation strictly between 0 and 1, got {threshold!r}")
    if not isinstance(n_components, (int, np.integer)) or isinstance(n_components, bool) or n_components < 1:
        raise ValueError(f"n_components must be an integer ≥ 1, got {n_components!r}")


def _reduce(x: np.ndarray, n_components: int, seed: int = 0) -> np.ndarray:
    """Unit vectors of the rows of ``x`` projected on its leading right singular vectors."""
    n, m = x.shape
    k = min(n_components, m, n)
    if k < min(m, n):
        from sklearn.utils.extmath import randomized_svd

        # all rows: a row subsample misses small grains (mean IoU 0.89 instead of 0.91 on the
        # 256×256 benchmark sample)
        _, _, vt = randomized_svd(x, k, n_iter=3, random_state=seed)
        z = x @ vt.T
    else:
        z = x
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    return np.where(norm > 0, z / np.where(norm > 0, norm, 1), 0).astype(np.float32)


def _fill_edges(labels: np.ndarray, u: np.ndarray, relaxed: float, iterations: int = 2) -> np.ndarray:
    """Let grains absorb unassigned edge positions that match the grain's *final* mean.

    Thin grain edges (weak, partly covered patterns) fail the growing threshold against the
    running mean; a relaxed test against the final mean, for up to ``iterations`` rings of
    neighbours, recovers them without reaching into vacuum (cosine ≈ 0 there).
    """
    n = int(labels.max())
    if n == 0:
        return labels
    k = u.shape[-1]
    flat = labels.ravel()
    sums = np.zeros((n + 1, k), np.float64)
    np.add.at(sums, flat, u.reshape(-1, k))
    sums[0] = 0
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    means = np.where(norms > 0, sums / np.where(norms > 0, norms, 1), 0).astype(np.float32)
    out = labels.copy()
    for _ in range(iterations):
        best = np.full(out.shape, relaxed, np.float32)
        choice = np.zeros(out.shape, np.int32)
        for axis, shift in ((0, 1), (0, -1), (1, 1), (1, -1)):
            nb = np.roll(out, shift, axis=axis)
            edge = [slice(None)] * 2
            edge[axis] = 0 if shift == 1 else -1
            nb[tuple(edge)] = 0
            cand = (out == 0) & (nb > 0)
            if not cand.any():
                continue
            cos = np.zeros(out.shape, np.float32)
            cos[cand] = np.einsum("ij,ij->i", u[cand], means[nb[cand]])
            better = cand & (cos > best)
            best[better] = cos[better]
            choice[better] = nb[better]
        if not choice.any():
            break
        out = np.where(choice > 0, choice, out)
    return out


def segment_features(
    feats: np.ndarray, *, min_size: int, threshold: float, n_components: int, min_confidence: float = 0.35
) -> tuple[np.ndarray, dict[int, float], dict[int, int]]:
    """Region-grow grains on in-memory spot features ``(scan_y, scan_x, m)``.

    Returns ``(labels, confidence, sizes)`` with ids 1..n ordered by decreasing size.
    """
    sy, sx, m = feats.shape
    x = feats.reshape(sy * sx, m)
    u = _reduce(normalise_rows(x), n_components).reshape(sy, sx, -1)
    scores = seed_scores(u)
    order = np.argsort(-scores, axis=None, kind="stable").astype(np.int64)
    raw = grow_regions(u, order, scores, float(threshold))
    ids, counts = np.unique(raw[raw > 0], return_counts=True)
    keep = ids[counts >= min_size]
    keep = keep[np.argsort(-counts[counts >= min_size], kind="stable")]
    labels = np.zeros((sy, sx), np.int32)
    for new, old in enumerate(keep, start=1):
        region = ndimage.binary_fill_holes(raw == old) & ((labels == 0) & ((raw == 0) | (raw == old)))
        labels[region] = new
    labels = _fill_edges(labels, u, 0.5 * float(threshold))
    # confidence on the raw (not denoised) spot patterns: a region of vacuum or amorphous
    # support can look coherent after denoising (any shared residual survives the projection),
    # but its members hardly correlate with their mean; such regions are dropped
    scores = []
    for gid in range(1, len(keep) + 1):
        members = x[(labels == gid).ravel()]
        mean = members.mean(axis=0)
        scores.append(
            (gid, float(np.mean(normalise_rows(members) @ normalise_rows(mean[None])[0])), len(members))
        )
    kept = [(gid, c, n) for gid, c, n in scores if c >= min_confidence]
    lut = np.zeros(len(keep) + 1, np.int32)
    confidence: dict[int, float] = {}
    sizes: dict[int, int] = {}
    for new, (gid, c, n) in enumerate(kept, start=1):
        lut[gid] = new
        confidence[new] = c
        sizes[new] = int(n)
    return lut[labels], confidence, sizes


def _mean_patterns(arr, labels: np.ndarray, client, cancel) -> dict[int, np.ndarray]:
    """Mean full-resolution pattern of every grain, in one pass of the compute engine."""
    from ..compute import aperture_sums

    if not labels.any():
        return {}
    sums = aperture_sums(arr, labels, client=client, cancel=cancel)
    return {gid: r.mean for gid, r in sums.items()}


def propose_grains(
    dataset: Any,
    *,
    min_size: int = 20,
    threshold: float = 0.6,
    n_components: int = 32,
    min_confidence: float = 0.35,
    binning: int | None = None,
    tilt: int | None = None,
    mean_patterns: bool = True,
    track: bool = True,
    client: Any = None,
    progress: Callable[[int, int], Any] | None = None,
    cancel: Any = None,
) -> GrainProposal:
    """Propose grains: spatially coherent regions of similar diffraction patterns.

    Parameters
    ----------
    dataset
        :class:`~virtual_aperture.Dataset` (4D or 5D) or a 4D/5D array.
    min_size
        Smallest grain kept, in scan positions (≥ 1).
    threshold
        Cosine similarity (0…1, on denoised spot features) a position needs with a growing
        grain's mean to join it; higher splits more, lower merges more.
    n_components
        Number of singular vectors kept to denoise the compressed patterns.
    min_confidence
        Regions whose member patterns correlate less than this (on average) with their mean
        spot pattern are noise — vacuum or amorphous support — and are dropped (set to 0).
    binning
        Detector binning factor; ``None`` bins to ≤ 32×32 pixels.
    tilt
        For 5D data: one tilt index, or ``None`` for every tilt (labels ``(n_tilts, sy, sx)``).
    mean_patterns
        Also compute each grain's mean pattern at full detector resolution (a second pass).
    track
        For a whole series, make ids consistent across tilts with :func:`track_grains`.
    client
        Optional ``dask.distributed`` client.
    progress
        ``progress(done, total)`` callable.
    cancel
        Cancel token (``.cancelled``/``is_set()``/callable); raises when set.

    Returns
    -------
    GrainProposal
    """
    _check_params(min_size, threshold, n_components)
    if not isinstance(min_confidence, (int, float)) or not 0.0 <= float(min_confidence) < 1.0:
        raise ValueError(f"min_confidence must be within 0…1, got {min_confidence!r}")
    ds = as_dataset(dataset, name="dataset")
    b = check_bin(binning, ds.detector_shape)
    if ds.is_tilt_series and tilt is None:
        tilts = list(range(ds.n_tilts))
    else:
        tilt_array(ds, 0 if tilt is None else tilt)  # validates the tilt index
        tilts = [0 if tilt is None else int(tilt) % ds.n_tilts]
    from threadpoolctl import threadpool_limits

    # one BLAS thread for the whole proposal: its matrix products are small and latency-bound;
    # multi-threaded OpenBLAS spinning against dask's threads (or other processes) made the SVD
    # step 16× slower (0.88 s instead of 0.054 s per 576×1024 tilt on a busy 2-core machine)
    with threadpool_limits(limits=1, user_api="blas"):
        return _propose(
            ds,
            tilts,
            tilt,
            b,
            min_size=min_size,
            threshold=threshold,
            n_components=n_components,
            min_confidence=min_confidence,
            mean_patterns=mean_patterns,
            track=track,
            client=client,
            progress=progress,
            cancel=cancel,
        )


def _read_tilt(arr: da.Array, client: Any) -> np.ndarray | None:
    """The tilt's data in memory when it is small enough (so it is read once, not per stage)."""
    if client is not None or arr.nbytes > IN_MEMORY_TILT_BYTES:
        return None
    return np.asarray(arr.compute())


def _blockwise_features(mem: np.ndarray, chunks, b: int, cm: np.ndarray, cancel) -> np.ndarray:
    """:func:`feature_array` of an in-memory tilt, block by block as dask would (same numbers)."""
    ry, rx = (np.cumsum((0,) + c) for c in chunks[:2])
    out = np.empty(mem.shape[:2] + (mem.shape[2] // b, mem.shape[3] // b), np.float32)
    for y0, y1 in itertools.pairwise(ry):
        check_cancel(cancel)
        for x0, x1 in itertools.pairwise(rx):
            out[y0:y1, x0:x1] = spot_features(mem[y0:y1, x0:x1], b, cm)
    return out


def _propose(
    ds,
    tilts: list[int],
    tilt,
    b: int,
    *,
    min_size,
    threshold,
    n_components,
    min_confidence,
    mean_patterns: bool,
    track: bool,
    client,
    progress,
    cancel,
) -> GrainProposal:
    series = ds.is_tilt_series and tilt is None
    tracking = track and series and len(tilts) > 1
    sy = ds.scan_shape[0]
    passes = 2 if (mean_patterns or tracking) else 1
    total = len(tilts) * (sy + 1) * passes
    all_labels, confs, sizes, patterns, spots, adf = [], [], [], [], [], []
    adf_mask = None
    done = 0
    for t in tilts:
        arr = tilt_array(ds, t)
        mem = _read_tilt(arr, client)
        src = arr if mem is None else mem
        cm = central_mask(src, b, center=ds.calibration.center, rows=arr.chunks[0][0])
        if mem is None:
            feats = compute_rows(
                feature_array(arr, b, cm),
                client=client,
                progress=progress,
                cancel=cancel,
                offset=done,
                total=total,
            )
        else:
            feats = _blockwise_features(mem, arr.chunks, b, cm, cancel)
        done += sy
        f = feats.reshape(feats.shape[0], feats.shape[1], -1)
        labels, conf, size = segment_features(
            f,
            min_size=min_size,
            threshold=threshold,
            n_components=n_components,
            min_confidence=min_confidence,
        )
        done += 1
        report(progress, done, total)
        if mean_patterns or tracking:
            means = _mean_patterns(src, labels, client, cancel)
            if mean_patterns:
                patterns.append(means)
            done += sy + 1
            report(progress, done, total)
        if tracking and mem is not None:  # what tracking needs, from the tilt already in memory
            from ..compute import virtual_image
            from ..compute.detectors import annular_dark_field
            from .tracking import grain_spot_patterns

            spots.append(
                grain_spot_patterns(
                    mem, labels, center=ds.calibration.center, means=means, rows=arr.chunks[0][0]
                )
            )
            if adf_mask is None:
                adf_mask = annular_dark_field(ds)  # as estimate_drift
            adf.append(virtual_image(mem, adf_mask))
        all_labels.append(labels)
        confs.append(conf)
        sizes.append(size)
    check_cancel(cancel)
    if not series:
        return GrainProposal(all_labels[0], confs, sizes, patterns, tilts)
    stack = np.stack(all_labels)
    proposal = GrainProposal(stack, confs, sizes, patterns, tilts)
    if tracking:
        from .tracking import drift_from_images, track_grains

        complete = len(spots) == len(tilts)
        tracks = track_grains(
            stack,
            ds,
            drift=drift_from_images(np.stack(adf)) if complete else None,
            patterns=spots if complete else None,
            cancel=cancel,
        )
        proposal = tracks.apply_to(proposal)
    return proposal
