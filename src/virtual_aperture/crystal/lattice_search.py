"""Finding a reciprocal lattice in a cloud of 3D reciprocal-space points with no prior cell.

Difference-vector search (in the spirit of DIALS/XDS IDXREF): every difference between two
observed reflections is a reciprocal-lattice vector, so differences pile up on the lattice while
noise spreads out. Dense clusters of short difference vectors are found with a k-d tree, the
triplet of cluster vectors that indexes the most points is kept and refined by linear least
squares. The result is a primitive reciprocal basis (columns), not yet reduced.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.spatial import cKDTree

_HALF = np.array([0.31, 0.53, 0.79])  # generic direction splitting ±v


def merge_duplicates(G: np.ndarray, tolerance: float) -> np.ndarray:
    """Average points closer than ``tolerance`` (a reflection seen at neighbouring tilts)."""
    tree = cKDTree(G)
    pairs = tree.query_pairs(tolerance, output_type="ndarray")
    parent = np.arange(len(G))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[rj] = ri
    roots = np.array([root(i) for i in range(len(G))])
    _, lab = np.unique(roots, return_inverse=True)
    out = np.zeros((lab.max() + 1, 3))
    np.add.at(out, lab, G)
    return out / np.bincount(lab)[:, None]


def _encode(keys: np.ndarray) -> np.ndarray:
    k = keys + (1 << 20)
    return (k[:, 0] << 42) | (k[:, 1] << 21) | k[:, 2]


_NEIGH = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=np.int64)


def difference_vector_clusters(
    G: np.ndarray, *, max_length: float, tolerance: float, max_clusters: int = 40
) -> tuple[np.ndarray, np.ndarray, float]:
    """Cluster centres (m, 3) of short difference vectors, their counts, and the noise level.

    Differences are binned on a grid of ``tolerance`` voxels; voxels whose 3×3×3 neighbourhood
    holds many more differences than randomly placed points would give (Poisson, 6σ) are cluster
    seeds, refined to the mean of the differences within ``tolerance``. Strongest first.
    """
    tree = cKDTree(G)
    pairs = tree.query_pairs(max_length, output_type="ndarray")
    if len(pairs) < 10:
        return np.zeros((0, 3)), np.zeros(0, int), 0.0
    D = G[pairs[:, 1]] - G[pairs[:, 0]]
    D[D @ _HALF < 0] *= -1
    D = np.concatenate([D, -D])  # symmetric histogram, so clusters near the split plane are whole
    # expected count of random differences in a ball of radius `tolerance` (sphere of max_length)
    expected = len(D) * (tolerance / max_length) ** 3
    min_count = max(6.0, expected + 6.0 * math.sqrt(expected) + 3.0)
    keys = np.floor(D / tolerance).astype(np.int64)
    code = _encode(keys)
    uc, first, cnt = np.unique(code, return_index=True, return_counts=True)
    ukeys = keys[first]
    top = np.argsort(-cnt)[:4000]
    nsum = np.zeros(len(top))
    for off in _NEIGH:
        nc = _encode(ukeys[top] + off)
        pos = np.clip(np.searchsorted(uc, nc), 0, len(uc) - 1)
        nsum += np.where(uc[pos] == nc, cnt[pos], 0)
    order = np.argsort(-nsum, kind="stable")
    dtree = cKDTree(D)
    centres, cnts = [], []
    for i in order:
        if nsum[i] < min_count or len(centres) >= 2 * max_clusters:
            break
        c = (ukeys[top[i]] + 0.5) * tolerance
        for _ in range(2):
            members = dtree.query_ball_point(c, tolerance)
            if not members:
                break
            c = D[members].mean(axis=0)
        if len(members) < min_count or any(np.linalg.norm(c - q) < 2 * tolerance for q in centres):
            continue
        centres.append(c)
        cnts.append(len(members))
    C = np.array(centres).reshape(-1, 3)
    keep = C @ _HALF >= 0
    return C[keep][:max_clusters], np.array(cnts, dtype=int)[keep][:max_clusters], expected


def indexed_mask(G: np.ndarray, B: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer indices of ``G`` in the reciprocal basis ``B`` (columns) and which are within tolerance."""
    H = np.rint(G @ np.linalg.inv(B).T)
    r = np.linalg.norm(G - H @ B.T, axis=1)
    return H.astype(int), r <= tolerance


def fit_basis(G: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Least-squares reciprocal basis B (columns) with ``G ≈ H @ B.T``."""
    Bt, *_ = np.linalg.lstsq(H.astype(float), G, rcond=None)
    return Bt.T


def search_lattice(
    G: np.ndarray, *, tolerance: float, max_length: float, n_shortest: int = 14, max_points: int = 800
) -> tuple[np.ndarray, float, dict]:
    """Primitive reciprocal basis (3×3, columns) that indexes the most points of ``G``.

    Returns ``(B, fraction indexed, info)``; ``B`` is ``None`` when no three non-coplanar
    significant difference-vector clusters exist.
    """
    G = merge_duplicates(G, 0.5 * tolerance)
    if len(G) > max_points:  # the lowest-resolution reflections suffice to find the lattice
        G = G[np.argsort(np.linalg.norm(G, axis=1))[:max_points]]
    centres, counts, expected = difference_vector_clusters(G, max_length=max_length, tolerance=tolerance)
    info = {
        "n_clusters": int(len(centres)),
        "noise_count": float(expected),
        "cluster_counts": counts[:10].tolist(),
    }
    if len(centres) < 3:
        return None, 0.0, info
    lens = np.linalg.norm(centres, axis=1)
    pick = np.argsort(lens)[:n_shortest]
    best = None
    for i, j, k in itertools.combinations(pick, 3):
        B = np.stack([centres[i], centres[j], centres[k]], axis=1)
        vol = abs(np.linalg.det(B))
        if vol < 0.05 * lens[i] * lens[j] * lens[k]:
            continue  # (nearly) coplanar
        # a cell smaller than the tolerance ball indexes anything: not a lattice
        if vol < 8 * (4 / 3) * math.pi * tolerance**3:
            continue
        _, ok = indexed_mask(G, B, tolerance)
        key = (round(float(ok.mean()), 2), vol)
        if best is None or key > best[0]:
            best = (key, B)
    if best is None:
        return None, 0.0, info
    B = best[1]
    for _ in range(4):
        H, ok = indexed_mask(G, B, tolerance)
        if ok.sum() < 6:
            break
        B = fit_basis(G[ok], H[ok])
    H, ok = indexed_mask(G, B, tolerance)
    return B, float(ok.mean()), info
