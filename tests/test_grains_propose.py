"""Grain proposals and boundary checks on synthetic crowded samples with ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from test_grains_support import make_sample

import virtual_aperture as va
from virtual_aperture.grains import grain_coherence, neighbour_dissimilarity, propose_grains
from virtual_aperture.grains._grain_kernels import grow_regions, seed_scores
from virtual_aperture.model import Dataset


def matched_ious(pred: np.ndarray, truth_labels: np.ndarray, footprints: np.ndarray) -> np.ndarray:
    """IoU of each true grain with its Hungarian-matched proposal, on single-grain positions."""
    single = footprints.sum(0) == 1
    tids = [g for g in np.unique(truth_labels) if g > 0]
    pids = [g for g in np.unique(pred) if g > 0]
    m = np.zeros((len(tids), max(len(pids), 1)))
    for a, g in enumerate(tids):
        ta = (truth_labels == g) & single
        for b, h in enumerate(pids):
            pb = (pred == h) & single
            m[a, b] = (ta & pb).sum() / max((ta | pb).sum(), 1)
    r, c = linear_sum_assignment(-m)
    ious = np.zeros(len(tids))
    ious[r] = m[r, c]
    return ious


@pytest.fixture(scope="module")
def sample():
    return make_sample(n_grains=6, scan=(40, 40), det=(32, 32), dose=12, overlap_pairs=[(0, 1)], seed=1)


def test_propose_matches_truth(sample):
    data, truth = sample
    prop = propose_grains(Dataset(data), min_size=10, threshold=0.5, binning=1)
    assert prop.labels.shape == (40, 40) and prop.labels.dtype == np.int32
    ious = matched_ious(prop.labels, truth.labels[0], truth.footprints[:, 0])
    assert ious.mean() >= 0.9, ious
    # vacuum stays 0
    vacuum = truth.footprints[:, 0].sum(0) == 0
    assert (prop.labels[ndimage.binary_erosion(vacuum, iterations=2)] == 0).mean() > 0.95
    # confidence and mean patterns for every grain
    assert set(prop.confidence[0]) == set(range(1, prop.n_grains + 1))
    assert all(0.2 < c <= 1 for c in prop.confidence[0].values())
    pat = prop.mean_patterns[0][1]
    assert pat.shape == (32, 32)
    np.testing.assert_allclose(pat, data[prop.labels == 1].astype(np.float64).mean(0), rtol=1e-9)
    assert prop.table()[0][:3] == (0, 1, prop.sizes[0][1])


def test_propose_public_name_and_progress_and_cancel(sample):
    data, _ = sample
    calls = []
    prop = va.propose_grains(
        data, min_size=10, binning=2, mean_patterns=False, progress=lambda d, t: calls.append((d, t))
    )
    assert prop.n_grains >= 5
    assert calls and calls[-1][0] == calls[-1][1]
    with pytest.raises(RuntimeError, match="cancel"):
        propose_grains(data, cancel=lambda: True)


def test_propose_min_size_removes_small(sample):
    data, _ = sample
    prop = propose_grains(data, min_size=200, binning=2, mean_patterns=False)
    sizes = np.bincount(prop.labels.ravel())[1:]
    assert (sizes >= 200).all() and len(sizes) < 6


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"min_size": 0}, "min_size"),
        ({"threshold": 1.5}, "threshold"),
        ({"n_components": 0}, "n_components"),
        ({"binning": 0}, "binning"),
        ({"tilt": 3}, "tilt"),
    ],
)
def test_propose_bad_parameters(sample, kw, match):
    data, _ = sample
    with pytest.raises(ValueError, match=match):
        propose_grains(data, **kw)


def test_bad_data_shapes():
    with pytest.raises(ValueError, match="4D"):
        propose_grains(np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="empty"):
        propose_grains(np.zeros((0, 4, 4, 4)))
    with pytest.raises(ValueError, match="None"):
        neighbour_dissimilarity(None)
    with pytest.raises(ValueError, match="mask"):
        grain_coherence(np.zeros((4, 4, 8, 8)), np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="empty"):
        grain_coherence(np.zeros((4, 4, 8, 8)), np.zeros((4, 4), bool))


def test_coherence_one_grain_vs_straddling(sample):
    data, truth = sample
    lab = truth.labels[0]
    single = truth.footprints[:, 0].sum(0) == 1
    one = (lab == 3) & single
    score1, corr = grain_coherence(data, one)
    two = ((lab == 3) | (lab == 4)) & single
    score2, _ = grain_coherence(data, two)
    assert score1 > 0.9 and score1 > score2 + 0.15, (score1, score2)
    raw1, raw2 = grain_coherence(data, one, denoise=0)[0], grain_coherence(data, two, denoise=0)[0]
    assert raw1 > raw2
    assert np.isnan(corr[~one]).all() and np.isfinite(corr[one]).all()


def test_dissimilarity_high_on_boundaries(sample):
    data, truth = sample
    lab = truth.labels[0]
    d = neighbour_dissimilarity(Dataset(data))
    assert d.shape == lab.shape and d.dtype == np.float32
    edge = np.zeros(lab.shape, bool)
    diff_v = (lab[1:] != lab[:-1]) & (lab[1:] > 0) & (lab[:-1] > 0)
    edge[1:] |= diff_v
    edge[:-1] |= diff_v
    diff_h = (lab[:, 1:] != lab[:, :-1]) & (lab[:, 1:] > 0) & (lab[:, :-1] > 0)
    edge[:, 1:] |= diff_h
    edge[:, :-1] |= diff_h
    interior = ndimage.binary_erosion(lab > 0, iterations=2) & ~ndimage.binary_dilation(edge, iterations=2)
    assert d[edge].mean() > d[interior].mean() + 0.15
    assert np.corrcoef(d[lab > 0], edge[lab > 0])[0, 1] > 0.3


def test_dissimilarity_chunk_borders_agree(sample):
    """Overlapped dask blocks give the same map as one block."""
    import dask.array as da

    data, _ = sample
    one = neighbour_dissimilarity(Dataset(da.from_array(data, chunks=(40, 40, 32, 32))), binning=2)
    many = neighbour_dissimilarity(Dataset(da.from_array(data, chunks=(7, 9, 32, 32))), binning=2)
    np.testing.assert_allclose(one, many, atol=1e-5)


def _grow_reference(u, order, scores, threshold):
    sy, sx, _ = u.shape
    labels = np.zeros((sy, sx), np.int32)
    cur = 0
    for idx in order:
        y0, x0 = divmod(int(idx), sx)
        if labels[y0, x0]:
            continue
        if scores[y0, x0] < threshold:
            break
        cur += 1
        labels[y0, x0] = cur
        r = u[y0, x0].astype(np.float64).copy()
        queue = [(y0, x0)]
        while queue:
            py, px = queue.pop(0)
            nr = np.linalg.norm(r)
            for qy, qx in ((py - 1, px), (py + 1, px), (py, px - 1), (py, px + 1)):
                if 0 <= qy < sy and 0 <= qx < sx and labels[qy, qx] == 0 and u[qy, qx] @ r / nr >= threshold:
                    labels[qy, qx] = cur
                    r += u[qy, qx]
                    queue.append((qy, qx))
    return labels


def test_kernels_match_numpy_reference():
    rng = np.random.default_rng(3)
    u = rng.normal(size=(9, 11, 4)).astype(np.float32)
    u[:5, :6] += 3.0  # one coherent patch
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    scores = seed_scores(u)
    ref = np.zeros((9, 11))
    for y in range(9):
        for x in range(11):
            nb = [
                u[q]
                for q in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1))
                if 0 <= q[0] < 9 and 0 <= q[1] < 11
            ]
            ref[y, x] = np.mean([u[y, x] @ v for v in nb])
    np.testing.assert_allclose(scores, ref, atol=1e-5)
    order = np.argsort(-scores, axis=None, kind="stable").astype(np.int64)
    np.testing.assert_array_equal(grow_regions(u, order, scores, 0.6), _grow_reference(u, order, scores, 0.6))


def test_inputs_not_mutated(sample):
    data, _ = sample
    before = data.copy()
    propose_grains(data, min_size=10, binning=1, mean_patterns=False)
    neighbour_dissimilarity(data, binning=1)
    grain_coherence(data, np.ones((40, 40), bool), binning=1)
    np.testing.assert_array_equal(data, before)


def test_bin_kernel_matches_numpy():
    from virtual_aperture.grains._common import bin_frames

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 1000, size=(5, 4, 18, 21)).astype(np.uint16)
    got = bin_frames(frames, 4)
    ref = frames[..., :16, :20].reshape(5, 4, 4, 4, 5, 4).sum(axis=(-3, -1)).astype(np.float32)
    assert got.shape == (5, 4, 4, 5) and got.dtype == np.float32
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("seed, dose, n, det", [(1, 1e4, 48, 64), (5, 5e4, 64, 128)])
def test_propose_on_simulated_agglomerate(seed, dose, n, det):
    """Built-in simulator (real structure, thickness, descan, amorphous support, Poisson noise)."""
    from virtual_aperture.sample import simulate_agglomerate

    lazy, tr = simulate_agglomerate(
        n_grains=8, scan_shape=(n, n), detector_shape=(det, det), seed=seed, dose=dose
    )
    ds = Dataset(lazy.data.compute(), lazy.calibration)
    prop = propose_grains(ds, min_size=15, mean_patterns=False)
    ious = matched_ious(prop.labels, tr.labels, tr.footprints)
    assert ious.mean() >= 0.9, ious
    for g in range(1, prop.n_grains + 1):  # no proposal sits on vacuum/support
        assert (tr.labels[prop.labels == g] > 0).mean() > 0.8
