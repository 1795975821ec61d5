"""Small synthetic crowded samples with ground truth for the grain tests (no tests here).

Independent of ``virtual_aperture.sample`` so the grain tools are checked against a second,
simple forward model: blob-shaped grains (some overlapping in projection), each with its own 2D
reciprocal lattice of Gaussian spots, a bright central disk, vacuum, and Poisson noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class SynthTruth:
    labels: np.ndarray  # (n_tilts, sy, sx) thicker grain at overlaps, 0 = vacuum
    footprints: np.ndarray  # (n_grains, n_tilts, sy, sx) bool
    reflections: list  # per grain: (n_refl, 2) detector positions (k_y, k_x)
    drift: np.ndarray  # (n_tilts, 2) scan pixels


def _footprints(rng, n_grains, sy, sx, overlap_pairs):
    seeds = rng.uniform([3, 3], [sy - 3, sx - 3], size=(n_grains, 2))
    yy, xx = np.mgrid[0:sy, 0:sx]
    d = np.stack([np.hypot(yy - s[0], xx - s[1]) for s in seeds])
    owner = d.argmin(0)
    radius = 0.6 * np.sqrt(sy * sx / n_grains)
    fp = np.stack([(owner == g) & (d[g] < radius) for g in range(n_grains)])
    # erode a little so grains are separated by thin vacuum/boundaries, keep them connected
    fp = np.stack([ndimage.binary_opening(f, iterations=1) for f in fp])
    for a, b in overlap_pairs:  # grow a into b: a region of overlap in projection
        grown = ndimage.binary_dilation(fp[a], iterations=4) & (fp[b] | fp[a])
        fp[a] = grown
    return fp


def make_sample(
    *,
    n_grains=5,
    scan=(40, 40),
    det=(32, 32),
    dose=60.0,
    n_tilts=1,
    drift_step=(0.0, 0.0),
    overlap_pairs=(),
    seed=0,
):
    """Return ``(data, truth)``: data ``(sy, sx, ky, kx)`` or ``(n_tilts, sy, sx, ky, kx)`` float32."""
    rng = np.random.default_rng(seed)
    sy, sx = scan
    ky, kx = det
    fp0 = _footprints(rng, n_grains, sy, sx, overlap_pairs)
    thickness = rng.uniform(0.6, 1.0, n_grains)
    c = np.array([(ky - 1) / 2, (kx - 1) / 2])
    kyy, kxx = np.mgrid[0:ky, 0:kx]
    central = 6.0 * np.exp(-0.5 * (np.hypot(kyy - c[0], kxx - c[1]) / 2.0) ** 8)
    refl, spots_int = [], []
    for _g in range(n_grains):
        ang = rng.uniform(0, np.pi)
        la, lb = rng.uniform(0.17, 0.28, 2) * min(ky, kx)
        gam = rng.uniform(np.pi / 3, 2 * np.pi / 3)
        a = la * np.array([np.sin(ang), np.cos(ang)])
        b = lb * np.array([np.sin(ang + gam), np.cos(ang + gam)])
        pts = []
        for h in range(-4, 5):
            for k in range(-4, 5):
                if h == 0 and k == 0:
                    continue
                p = c + h * a + k * b
                if 2 <= p[0] <= ky - 3 and 2 <= p[1] <= kx - 3 and np.hypot(*(p - c)) > 5:
                    pts.append(p)
        pts = np.array(pts)
        refl.append(pts)
        spots_int.append(rng.uniform(0.5, 1.0, len(pts)))
    n_t = n_tilts
    drift = np.cumsum(np.array([[0.0, 0.0]] + [list(drift_step)] * (n_t - 1)), axis=0)
    frames = np.zeros((n_t, sy, sx, ky, kx), np.float32)
    labels = np.zeros((n_t, sy, sx), np.int32)
    fps = np.zeros((n_grains, n_t, sy, sx), bool)
    for t in range(n_t):
        thick_map = np.zeros((sy, sx))
        for g in range(n_grains):
            f = ndimage.shift(fp0[g].astype(float), drift[t], order=0) > 0.5
            fps[g, t] = f
            # excitation changes with tilt: each spot's intensity varies smoothly
            mod = 0.6 + 0.4 * np.cos(0.15 * t + np.arange(len(refl[g])))
            pat = np.zeros((ky, kx))
            for p, i in zip(refl[g], spots_int[g] * mod):
                pat += i * np.exp(-0.5 * ((kyy - p[0]) ** 2 + (kxx - p[1]) ** 2) / 0.8**2)
            frames[t][f] += (thickness[g] * pat).astype(np.float32)
            better = f & (thickness[g] > thick_map)
            labels[t][better] = g + 1
            thick_map[better] = thickness[g]
        frames[t] += central.astype(np.float32)
    data = rng.poisson(frames * dose / 6.0).astype(np.float32)
    truth = SynthTruth(labels=labels, footprints=fps, reflections=refl, drift=drift)
    if n_tilts == 1:
        data = data[0]
    return data, truth
