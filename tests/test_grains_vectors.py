"""Vector clustering separates grains that overlap in projection (simulated agglomerates)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from virtual_aperture.grains import cluster_vectors, find_vectors, vector_selective_sum
from virtual_aperture.grains._grain_kernels import find_peaks_kernel
from virtual_aperture.model import Dataset
from virtual_aperture.sample import simulate_agglomerate


def _sample(seed):
    ds, tr = simulate_agglomerate(
        n_grains=4, scan_shape=(40, 40), detector_shape=(64, 64), seed=seed, dose=1e5
    )
    return Dataset(ds.data.compute(), ds.calibration), tr


@pytest.fixture(scope="module", params=[0, 4])
def clustered(request):
    ds, tr = _sample(request.param)
    v = find_vectors(ds)
    return ds, tr, v, cluster_vectors(v, scan_shape=ds.scan_shape)


def _match(vc, tr):
    m = np.array([[(f & t).sum() / max((f | t).sum(), 1) for f in vc.footprints] for t in tr.footprints])
    r, c = linear_sum_assignment(-m)
    return dict(zip(r, c)), m


def test_overlapping_grains_get_their_own_reflections(clustered):
    ds, tr, v, vc = clustered
    assert v.shape[1] == 5 and len(v) > 1000
    match, iou = _match(vc, tr)
    assert len(vc) == tr.n_grains
    assert min(iou[g, c] for g, c in match.items()) > 0.6
    fp = tr.footprints
    overlapping = {
        g
        for i in range(len(fp))
        for g in (i,)
        for j in range(len(fp))
        if i != j and (fp[i] & fp[j]).sum() > 5
    }
    assert overlapping, "the sample must contain grains overlapping in projection"
    refl = np.concatenate([c.reflections for c in vc.crystals])
    owner = np.concatenate([[k] * len(c.reflections) for k, c in enumerate(vc.crystals)])
    for g in overlapping:
        pos = tr.grain_reflections(int(g), 0)["positions"][:15]  # the 15 strongest
        found = right = 0
        for p in pos:
            near = np.hypot(*(refl - p).T) < 2.0
            found += near.any()
            right += near.any() and (owner[near] == match[g]).any()
        assert found >= 6
        assert right / found >= 0.8, (g, right, found)


def test_selective_sum_keeps_only_own_reflections(clustered):
    ds, tr, v, vc = clustered
    match, _ = _match(vc, tr)
    g, c = next(iter(match.items()))
    crystal = vc.crystals[c]
    s = vector_selective_sum(ds, crystal.footprint, crystal.reflections, radius=2.5)
    full = ds.data.compute()[crystal.footprint].sum(0, dtype=np.float64)
    kept = s > 0
    np.testing.assert_allclose(s[kept], full[kept])
    # every other crystal's reflections that are not also this crystal's are blanked out
    other = np.concatenate([x.reflections for i, x in enumerate(vc.crystals) if i != c])
    mine = crystal.reflections
    for p in other:
        if np.hypot(*(mine - p).T).min() > 6 and np.hypot(p[0] - 31.5, p[1] - 31.5) > 8:
            assert s[int(round(p[0])), int(round(p[1]))] == 0


def test_bad_input():
    with pytest.raises(ValueError, match="vectors"):
        cluster_vectors(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="eps"):
        cluster_vectors(np.zeros((5, 5)), eps=0)
    with pytest.raises(ValueError, match="r_out"):
        find_vectors(np.zeros((2, 2, 16, 16), np.float32), r_out=9)
    with pytest.raises(ValueError, match="footprint"):
        vector_selective_sum(np.zeros((2, 2, 8, 8)), np.ones((3, 3), bool), [(1, 1)])
    with pytest.raises(ValueError, match="empty"):
        vector_selective_sum(np.zeros((2, 2, 8, 8)), np.zeros((2, 2), bool), [(1, 1)])
    assert len(cluster_vectors(np.zeros((0, 5)), scan_shape=(4, 4))) == 0


def _peaks_reference(frame, cmask, r_in, r_out, thr):
    ky, kx = frame.shape
    sig = np.full((ky, kx), -1e30)
    snr = np.zeros((ky, kx))
    a_in, a_out = (2 * r_in + 1) ** 2, (2 * r_out + 1) ** 2 - (2 * r_in + 1) ** 2
    for y in range(r_out, ky - r_out):
        for x in range(r_out, kx - r_out):
            s_in = frame[y - r_in : y + r_in + 1, x - r_in : x + r_in + 1].sum()
            s_out = frame[y - r_out : y + r_out + 1, x - r_out : x + r_out + 1].sum()
            bg = max((s_out - s_in) / a_out, 0)
            sig[y, x] = s_in - a_in * bg
            snr[y, x] = sig[y, x] / np.sqrt(a_in * bg + 1)
    out = set()
    for y in range(r_out, ky - r_out):
        for x in range(r_out, kx - r_out):
            v = sig[y, x]
            nb = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
            # strict maximum; on a plateau the first pixel in raster order wins
            beaten = any(
                sig[y + dy, x + dx] > v or (sig[y + dy, x + dx] == v and (dy < 0 or (dy == 0 and dx < 0)))
                for dy, dx in nb
            )
            if not cmask[y, x] and snr[y, x] >= thr and not beaten:
                out.add((y, x))
    return out


def test_peak_kernel_matches_numpy_reference():
    rng = np.random.default_rng(0)
    frames = rng.poisson(2.0, size=(3, 24, 24)).astype(np.float32)
    frames[0, 10, 12] += 40
    frames[1, 6, 6] += 25
    cm = np.zeros((24, 24), bool)
    peaks, counts = find_peaks_kernel(frames, cm, 1, 3, 4.0, 32)
    for i in range(3):
        ref = sorted(_peaks_reference(frames[i], cm, 1, 3, 4.0))
        got = peaks[i, : counts[i], :2]
        assert len(got) == len(ref)
        for y, x in ref:  # sub-pixel centroid within one pixel of the integer maximum
            assert np.hypot(got[:, 0] - y, got[:, 1] - x).min() <= 1.0
    assert counts[0] >= 1 and counts[2] == len(_peaks_reference(frames[2], cm, 1, 3, 4.0))
