"""Separating grains that overlap in projection, by their diffraction vectors.

Two crystals stacked along the beam add their patterns, so no real-space mask separates them;
their *reflections* do. Workflow (after Francis et al., pyxem; re-implemented here):

1. :func:`find_vectors` – Bragg peaks at every scan position (numba kernel, dask over chunks)
   → vectors ``(scan_y, scan_x, k_y, k_x, intensity)``;
2. :func:`cluster_vectors` – DBSCAN on scaled ``(scan_y, scan_x, k_y, k_x)``: each cluster is
   one reflection seen over one crystal's footprint; reflections whose footprints coincide
   (Ochiai similarity, average linkage) are grouped into one crystal;
3. :func:`vector_selective_sum` – sum a crystal's patterns over its footprint but keep only the
   detector disks around its own reflections (plus the central disk), so the pattern of each of
   two overlapping crystals is recovered separately.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage, sparse

from ._common import as_dataset, tilt_array
from .scan_peaks import find_vectors  # noqa: F401  (re-exported: part of the vector workflow)

#: a crystal is present where at least this fraction of its reflection families is detected
CORE_FRACTION = 0.25
#: a reflection family belongs to every crystal whose footprint holds this fraction of its own
SHARED_COVER = 0.4
#: … or that lights up at least this fraction of the crystal's footprint
SHARED_FILL = 0.6
#: families of one crystal closer than this (detector pixels) are one reflection
MERGE_PX = 1.5


@dataclass
class Crystal:
    """One crystal found by vector clustering.

    Attributes
    ----------
    reflections
        ``(n, 2)`` detector positions ``(k_y, k_x)``, strongest first (intensity-weighted mean of
        the vector families within 1.5 px of each other).
    intensities
        ``(n,)`` summed vector intensity of each reflection.
    footprint
        bool ``(scan_y, scan_x)``: where the crystal diffracts (may overlap other crystals).
    """

    reflections: np.ndarray
    intensities: np.ndarray
    footprint: np.ndarray


@dataclass
class VectorClusters:
    """Result of :func:`cluster_vectors`: crystals ordered by footprint size (largest first)."""

    crystals: list[Crystal]
    vector_labels: np.ndarray  # per input vector: crystal index, −1 = noise/ungrouped
    family_labels: np.ndarray  # per input vector: reflection-family index, −1 = noise
    scan_shape: tuple[int, int] = field(default=(0, 0))

    def __len__(self) -> int:
        return len(self.crystals)

    @property
    def footprints(self) -> np.ndarray:
        """bool ``(n_crystals, scan_y, scan_x)``."""
        if not self.crystals:
            return np.zeros((0,) + tuple(self.scan_shape), bool)
        return np.stack([c.footprint for c in self.crystals])


def _check_vectors(vectors: Any) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] < 4:
        raise ValueError(
            f"vectors must be an (n, 5) array (scan_y, scan_x, k_y, k_x, intensity), got shape {v.shape}"
        )
    if not np.isfinite(v[:, :4]).all():
        raise ValueError("vectors contain NaN or infinite coordinates")
    return v


def _merge_close(k: np.ndarray, w: np.ndarray, dist: float) -> tuple[np.ndarray, np.ndarray]:
    """One reflection per spot: families closer than ``dist`` pixels (pieces of one reflection
    split by DBSCAN gaps) are merged into their intensity-weighted mean."""
    if len(k) < 2:
        return k, w
    from scipy.cluster.hierarchy import fcluster, linkage

    lab = fcluster(linkage(k, "single"), dist, "distance")
    ws = np.bincount(lab, weights=w)[1:]
    ky = np.bincount(lab, weights=w * k[:, 0])[1:] / np.maximum(ws, 1e-30)
    kx = np.bincount(lab, weights=w * k[:, 1])[1:] / np.maximum(ws, 1e-30)
    order = np.argsort(-ws, kind="stable")
    return np.column_stack([ky, kx])[order], ws[order]


def _dilate_rows(fp: sparse.csr_matrix, sy: int, sx: int, grow: int) -> sparse.csr_matrix:
    """Dilate every row (a flattened ``sy×sx`` footprint) by ``grow`` 4-connected steps."""
    out = fp.tocoo()
    rows, cols = out.row, out.col
    for _ in range(grow):
        y, x = cols // sx, cols % sx
        rr, cc = [rows], [cols]
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            ok = (y + dy >= 0) & (y + dy < sy) & (x + dx >= 0) & (x + dx < sx)
            rr.append(rows[ok])
            cc.append((y[ok] + dy) * sx + x[ok] + dx)
        m = sparse.coo_matrix(
            (np.ones(sum(len(r) for r in rr), np.float32), (np.concatenate(rr), np.concatenate(cc))),
            shape=fp.shape,
        ).tocsr()
        m.data[:] = 1.0
        m.sum_duplicates()
        m.data[:] = 1.0
        out = m.tocoo()
        rows, cols = out.row, out.col
    res = out.tocsr().astype(np.float32)
    res.sum_duplicates()
    res.data[:] = 1.0
    return res


def _absorb_round(groups, dense, min_reflections, nested):
    """One round of :func:`_absorb_fragments`; returns (new groups, changed?)."""
    ids, inverse, counts = np.unique(groups[groups >= 0], return_inverse=True, return_counts=True)
    n = len(ids)
    if n == 0:
        return groups, False
    valid = np.flatnonzero(groups >= 0)
    member = sparse.csr_matrix((np.ones(len(valid)), (inverse, valid)), shape=(n, len(groups)))
    frac = (member @ dense).multiply(1.0 / counts[:, None]).tocsr()  # share of families seen
    frac.data = (frac.data >= CORE_FRACTION).astype(np.float32)
    frac.eliminate_zeros()
    area = np.asarray(frac.sum(axis=1)).ravel()
    cover = (frac @ frac.T).toarray() / np.maximum(area[:, None], 1)  # cover[a, b]: share of a in b
    np.fill_diagonal(cover, 0)
    major = counts >= min_reflections
    target = np.arange(n)
    for a in range(n):
        # the holder must be larger and richer (a fragment has fewer reflections than its crystal;
        # a broad group of shared reflections must not swallow a real crystal)
        cand = (area >= area[a]) & major & (counts >= counts[a])
        cand[a] = False
        need = 0.6 if not major[a] else nested
        b = int(np.argmax(np.where(cand, cover[a], -1))) if cand.any() else -1
        if b >= 0 and cover[a, b] >= need:
            target[a] = b
        elif not major[a]:
            target[a] = -1
    # apply only merges into groups that stay themselves this round (no chains), smallest first
    out = groups.copy()
    changed = False
    for a in np.argsort(area, kind="stable"):
        b = target[a]
        if b == a or (b >= 0 and target[b] != b):
            continue
        out[groups == ids[a]] = ids[b] if b >= 0 else -1
        changed = True
    return out, changed


def _absorb_fragments(
    groups: np.ndarray, dense: sparse.csr_matrix, min_reflections: int, nested: float
) -> np.ndarray:
    """Merge fragment groups into the crystal whose footprint holds them.

    A group with fewer than ``min_reflections`` families joins the major group covering ≥ 60 %
    of its core footprint (else it is dropped, −1); a group whose core lies ≥ ``nested``
    inside a larger group's core joins it (reflections seen over part of a crystal only, e.g.
    a thickness step; set ``nested > 1`` to keep nested crystals apart). Repeated in rounds,
    with the cores recomputed after each round, until nothing changes.
    """
    out = groups.copy()
    for _ in range(50):
        out, changed = _absorb_round(out, dense, min_reflections, nested)
        if not changed:
            break
    return out


def cluster_vectors(
    vectors: Any,
    *,
    eps: float = 1.5,
    min_samples: int = 5,
    scale: tuple[float, float] = (1.0, 1.0),
    min_footprint: int = 8,
    similarity: float = 0.5,
    grow: int = 1,
    min_reflections: int = 3,
    nested: float = 0.8,
    linkage_method: str = "complete",
    scan_shape: tuple[int, int] | None = None,
) -> VectorClusters:
    """Group diffraction vectors into crystals, each with its own real-space footprint.

    Parameters
    ----------
    vectors
        ``(n, 5)`` from :func:`find_vectors` (an intensity column is optional).
    eps, min_samples
        DBSCAN neighbourhood radius (in scaled units) and core-point count.
    scale
        ``(scan, k)``: scan pixels and detector pixels are divided by these before DBSCAN, so with
        the defaults neighbouring scan positions (distance 1) whose peaks lie within ~1 detector
        pixel are linked.
    min_footprint
        Reflection families seen at fewer scan positions are discarded.
    similarity
        Families whose footprints have an Ochiai similarity ``|A∩B| / sqrt(|A||B|)`` above this
        (average linkage) belong to the same crystal.
    grow
        Footprints are dilated by this many scan pixels before they are compared (bridges the
        gaps of reflections detected at only some positions, as at low dose).
    min_reflections
        Groups with fewer reflection families are fragments of a crystal (reflections seen over
        part of its footprint only): they join the crystal whose footprint covers ≥ 60 % of
        theirs, or are dropped.
    nested
        A crystal whose core footprint lies at least this fraction inside a larger crystal's is
        taken as part of it (set > 1 to keep crystals fully on top of others apart).
    linkage_method
        scipy linkage for grouping families: ``"complete"`` (default; a family shared by two
        touching crystals cannot chain them together) or ``"average"``.
    scan_shape
        ``(scan_y, scan_x)``; default the extent of the vectors (pass it: the last rows or
        columns may hold no peaks).

    Returns
    -------
    VectorClusters
    """
    from sklearn.cluster import DBSCAN

    v = _check_vectors(vectors)
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    if not isinstance(min_samples, (int, np.integer)) or min_samples < 1:
        raise ValueError(f"min_samples must be a positive integer, got {min_samples!r}")
    if len(scale) != 2 or not all(s > 0 for s in scale):
        raise ValueError(f"scale must be two positive numbers (scan, k), got {scale!r}")
    if not 0 < similarity < 1:
        raise ValueError(f"similarity must be between 0 and 1, got {similarity!r}")
    if scan_shape is None:
        scan_shape = (int(v[:, 0].max()) + 1, int(v[:, 1].max()) + 1) if len(v) else (0, 0)
    sy, sx = (int(s) for s in scan_shape)
    n = len(v)
    fam = np.full(n, -1, np.int64)
    lab = np.full(n, -1, np.int64)
    if n == 0:
        return VectorClusters([], lab, fam, (sy, sx))
    x = np.column_stack([v[:, 0] / scale[0], v[:, 1] / scale[0], v[:, 2] / scale[1], v[:, 3] / scale[1]])
    raw = DBSCAN(eps=eps, min_samples=min_samples, algorithm="kd_tree").fit_predict(x)
    pos = v[:, 0].astype(np.int64) * sx + v[:, 1].astype(np.int64)
    ok = raw >= 0
    # footprint of each family: unique scan positions
    fp = sparse.coo_matrix((np.ones(ok.sum()), (raw[ok], pos[ok])), shape=(raw.max() + 1, sy * sx)).tocsr()
    fp.data[:] = 1.0
    fp.sum_duplicates()
    fp.data[:] = 1.0
    sizes = np.asarray(fp.sum(axis=1)).ravel()
    keep = np.flatnonzero(sizes >= min_footprint)
    remap = np.full(raw.max() + 1, -1)
    remap[keep] = np.arange(len(keep))
    fam[ok] = remap[raw[ok]]
    if len(keep) == 0:
        return VectorClusters([], lab, fam, (sy, sx))
    fpk = fp[keep]
    # at low dose a reflection is detected at only some positions of its crystal: compare
    # footprints after closing the gaps (dilate by ``grow`` scan pixels); kept sparse
    dm = _dilate_rows(fpk, sy, sx, int(grow))
    inter = (dm @ dm.T).toarray()
    sz = np.diag(inter).copy()
    sim = inter / np.sqrt(np.outer(sz, sz))
    if len(keep) > 1:
        from scipy.cluster.hierarchy import fcluster, linkage
        from scipy.spatial.distance import squareform

        dist = np.clip(1.0 - sim, 0, None)
        np.fill_diagonal(dist, 0)
        groups = (
            fcluster(linkage(squareform(dist, checks=False), linkage_method), 1.0 - similarity, "distance")
            - 1
        )
    else:
        groups = np.zeros(1, np.int64)
    groups = _absorb_fragments(groups, dm, min_reflections, nested)
    gids = np.unique(groups[groups >= 0])
    if len(gids) == 0:
        return VectorClusters([], lab, fam, (sy, sx))
    # footprints from the grouped families, then every family (also dropped fragments) joins
    # each crystal holding ≥ SHARED_COVER of its footprint: a reflection shared by two crystals
    # (coinciding spots) belongs to both; vector_labels keep the best one
    feet = []
    for g in gids:
        members = np.flatnonzero(groups == g)
        count = np.asarray(fpk[members].sum(axis=0)).reshape(sy, sx)
        core = count >= max(1.0, CORE_FRACTION * len(members))
        feet.append(ndimage.binary_fill_holes(ndimage.binary_closing(core, iterations=1) | core))
    feet_arr = np.stack(feet)
    fsp = sparse.csr_matrix(feet_arr.reshape(len(feet), -1).astype(np.float32))
    inter = (dm @ fsp.T).toarray()
    cover = inter / np.maximum(np.asarray(dm.sum(axis=1)).ravel(), 1)[:, None]  # share of the family in C
    fills = inter / np.maximum(feet_arr.sum(axis=(1, 2)), 1)[None]  # share of C lit by the family
    # a reflection seen over most of a crystal is that crystal's, even when it coincides with
    # a reflection of a bigger neighbour (so most of the family lies outside)
    cover = np.where(fills >= SHARED_FILL, np.maximum(cover, SHARED_COVER), cover)
    order = np.argsort(-feet_arr.sum(axis=(1, 2)), kind="stable")
    cover = cover[:, order]
    out = []
    # intensity-weighted mean detector position of every family, in one pass
    okf = fam >= 0
    wv = np.maximum(v[okf, 4], 1e-9) if v.shape[1] > 4 else np.ones(okf.sum())
    nf = len(keep)
    f_w = np.bincount(fam[okf], weights=wv, minlength=nf)
    f_ky = np.bincount(fam[okf], weights=wv * v[okf, 2], minlength=nf) / np.maximum(f_w, 1e-30)
    f_kx = np.bincount(fam[okf], weights=wv * v[okf, 3], minlength=nf) / np.maximum(f_w, 1e-30)
    for new, gi in enumerate(order):
        members = np.flatnonzero((cover[:, new] >= SHARED_COVER) | (groups == gids[gi]))
        k, w = _merge_close(np.column_stack([f_ky[members], f_kx[members]]), f_w[members], MERGE_PX)
        out.append(Crystal(k, w, feet_arr[gi]))
    best = np.where(cover.max(axis=1) >= SHARED_COVER, np.argmax(cover, axis=1), -1)
    lab[fam >= 0] = best[fam[fam >= 0]]
    return VectorClusters(out, lab, fam, (sy, sx))


def vector_selective_sum(
    dataset: Any,
    footprint: Any,
    k_positions: Any,
    *,
    radius: float = 3.0,
    tilt: int = 0,
    central_radius: float | None = None,
    client: Any = None,
) -> np.ndarray:
    """Sum one crystal's patterns over its footprint, keeping only its own reflections.

    Parameters
    ----------
    dataset
        :class:`~virtual_aperture.Dataset` or 4D/5D array.
    footprint
        bool ``(scan_y, scan_x)`` real-space footprint (e.g. ``clusters.crystals[i].footprint``).
    k_positions
        ``(n, 2)`` detector positions ``(k_y, k_x)`` of the crystal's reflections (pixels).
    radius
        Radius in detector pixels of the disk kept around each reflection.
    tilt
        Tilt index for 5D data.
    central_radius
        Radius of the central disk kept (pixels); ``None`` estimates it from the summed pattern.

    Returns
    -------
    ``(k_y, k_x)`` float64: the summed pattern, zero outside the kept disks.
    """
    ds = as_dataset(dataset, name="dataset")
    arr = tilt_array(ds, tilt)
    fp = np.asarray(footprint)
    if fp.shape != ds.scan_shape:
        raise ValueError(f"footprint has shape {fp.shape}, expected the scan shape {ds.scan_shape}")
    fp = fp.astype(bool)
    if not fp.any():
        raise ValueError("footprint is empty")
    k = np.asarray(k_positions, dtype=np.float64).reshape(-1, 2) if np.size(k_positions) else np.zeros((0, 2))
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    from ..compute import aperture_sums

    s = aperture_sums(arr, fp.astype(np.int32), client=client)[1].sum
    ky, kx = s.shape
    yy, xx = np.mgrid[0:ky, 0:kx]
    keep = np.zeros((ky, kx), bool)
    for py, px in k:
        keep |= (yy - py) ** 2 + (xx - px) ** 2 <= radius**2
    if ds.calibration.center is not None:
        cy, cx = ds.calibration.center
    else:
        cy, cx = np.unravel_index(int(np.argmax(ndimage.uniform_filter(s, 3))), s.shape)
    if central_radius is None:
        bright = s > 0.5 * s[int(round(cy)), int(round(cx))]
        lab, _ = ndimage.label(bright)
        area = (
            (lab == lab[int(round(cy)), int(round(cx))]).sum() if lab[int(round(cy)), int(round(cx))] else 1
        )
        central_radius = float(np.sqrt(area / np.pi)) + 1.5
    keep |= (yy - cy) ** 2 + (xx - cx) ** 2 <= central_radius**2
    return np.where(keep, s, 0.0)
