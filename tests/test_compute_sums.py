"""aperture_sums, ApertureSum and VirtualImageUpdater against numpy references; bad input."""

import dask.array as da
import numpy as np
import pytest

from virtual_aperture.compute import (
    ApertureSum,
    ApertureSumResult,
    VirtualImageUpdater,
    aperture_sums,
    pattern_at,
    region_mean,
)

from builders import streamed


@pytest.fixture
def rng():
    return np.random.default_rng(3)


@pytest.mark.parametrize("kind", ["numpy", "numpy-dask", "streamed"])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_sums_match_numpy_4d(rng, kind, dtype):
    a = (rng.random((9, 7, 5, 6)) * 1000).astype(dtype)
    lab = rng.integers(0, 5, (9, 7))
    lab[lab == 3] = 0  # label 3 absent
    lab[0, 0] = 40
    data = {
        "numpy": a,
        "numpy-dask": da.from_array(a, chunks=(4, 3, 5, 6)),
        "streamed": streamed(a, (4, 3, 5, 6)),
    }[kind]
    res = aperture_sums(data, lab)
    assert list(res) == [1, 2, 4, 40]
    for k, r in res.items():
        assert isinstance(r, ApertureSumResult) and r.label == k
        want = a[lab == k].astype(np.float64).sum(0)
        assert r.count == int((lab == k).sum())
        assert r.sum.dtype == np.float64 and r.sum.shape == (5, 6)
        if dtype == np.uint16:
            np.testing.assert_array_equal(r.sum, want)
        else:
            np.testing.assert_allclose(r.sum, want, rtol=1e-12)
        np.testing.assert_allclose(r.mean, want / r.count, rtol=1e-12)


def test_sums_5d_with_labels_per_tilt(rng):
    a = rng.integers(0, 1000, (3, 6, 5, 4, 4), dtype=np.uint16)
    lab = rng.integers(0, 3, (3, 6, 5))
    lab[1][lab[1] == 2] = 0  # label 2 missing on tilt 1
    for data in (a, streamed(a, (1, 2, 5, 4, 4))):
        res = aperture_sums(data, lab)
        r2 = res[2]
        assert r2.sum.shape == (3, 4, 4) and list(r2.count) == [int((lab[t] == 2).sum()) for t in range(3)]
        for t in range(3):
            np.testing.assert_array_equal(r2.sum[t], a[t][lab[t] == 2].astype(float).sum(0))
        assert np.isnan(r2.mean[1]).all() and np.isfinite(r2.mean[0]).all()
    shared = aperture_sums(a, lab[0])  # one labels image for every tilt
    np.testing.assert_array_equal(shared[1].sum[2], a[2][lab[0] == 1].astype(float).sum(0))


def test_uint16_sums_do_not_overflow():
    a = np.full((40, 40, 3, 3), 65535, np.uint16)
    r = aperture_sums(a, np.ones((40, 40), int))[1]
    assert r.sum[0, 0] == 65535 * 1600
    big = np.full((300, 300, 2, 2), 65535, np.uint16)  # 90000 frames > one uint32 run: flushed
    r = aperture_sums(big, np.ones((300, 300), int))[1]
    assert r.sum[1, 1] == 65535 * 90000 and r.count == 90000
    s = ApertureSum(big, mask=np.ones((300, 300), bool))
    assert s.sum[0, 0] == 65535 * 90000


def test_no_labels_gives_empty_dict():
    assert aperture_sums(np.zeros((2, 2, 3, 3)), np.zeros((2, 2), int)) == {}


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.full((4, 5), -1), ">= 0"),
        (np.ones((4, 5)) * 1.5, "integer"),
        (np.ones((4, 5)), "integer dtype"),
        (np.ones((5, 5), int), "does not match the scan"),
        (np.ones((2, 4, 5), int), "does not match the scan"),
        (np.array(["a"] * 20).reshape(4, 5), "integer"),
    ],
)
def test_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        aperture_sums(np.zeros((4, 5, 3, 3), np.uint16), labels)


def test_aperture_sum_incremental_is_exact(rng):
    a = rng.integers(0, 65535, (10, 12, 6, 7), dtype=np.uint16)
    for data in (a, da.from_array(a, chunks=(3, 5, 6, 7)), streamed(a, (3, 5, 6, 7))):
        s = ApertureSum(data)
        assert s.count == 0 and np.isnan(s.mean).all()
        mask = np.zeros((10, 12), bool)
        for _ in range(5):
            pos = np.stack([rng.integers(0, 10, 30), rng.integers(0, 12, 30)], 1)
            if rng.random() < 0.6:
                s.add(pos)
                mask[pos[:, 0], pos[:, 1]] = True
            else:
                s.remove(pos)
                mask[pos[:, 0], pos[:, 1]] = False
            np.testing.assert_array_equal(s.sum, a[mask].astype(float).sum(0))
            assert s.count == mask.sum()
            np.testing.assert_array_equal(s.mask, mask)
        new = rng.random((10, 12)) > 0.5
        s.set_mask(new)
        np.testing.assert_array_equal(s.sum, a[new].astype(float).sum(0))
        np.testing.assert_allclose(s.mean, a[new].mean(0), rtol=1e-12)
    with pytest.raises(ValueError, match="outside the scan"):
        s.add([[10, 0]])
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        s.add(np.zeros((3, 3), int))
    with pytest.raises(ValueError, match="does not match the scan"):
        s.set_mask(np.ones((3, 3), bool))


def test_aperture_sum_tilt(rng):
    a = rng.integers(0, 100, (2, 4, 4, 3, 3), dtype=np.uint16)
    s = ApertureSum(a, tilt=1, mask=np.eye(4, dtype=bool))
    np.testing.assert_array_equal(s.sum, a[1][np.eye(4, dtype=bool)].astype(float).sum(0))
    with pytest.raises(ValueError, match="tilt 2 out of range"):
        ApertureSum(a, tilt=2)


@pytest.mark.parametrize("budget", [None, 1])
def test_virtual_image_updater(rng, budget):
    a = rng.integers(0, 1000, (9, 10, 8, 8), dtype=np.uint16)
    for data in (a, streamed(a, (4, 10, 8, 8))):
        m = rng.random((8, 8)) > 0.5
        u = VirtualImageUpdater(data, m, memory_budget=budget)
        assert u.uses_copy == (budget is None)
        np.testing.assert_array_equal(u.image, np.einsum("yxab,ab->yx", a.astype(float), m))
        for _ in range(4):  # paint a few pixels, then float weights
            m = m.copy()
            m[rng.integers(0, 8), rng.integers(0, 8)] ^= True
            np.testing.assert_array_equal(u.set_mask(m), np.einsum("yxab,ab->yx", a.astype(float), m))
        w = rng.random((8, 8))
        np.testing.assert_allclose(u.set_mask(w), np.einsum("yxab,ab->yx", a.astype(float), w), rtol=1e-12)
        w[3, 4] += 0.5
        np.testing.assert_allclose(u.set_mask(w), np.einsum("yxab,ab->yx", a.astype(float), w), rtol=1e-12)
        np.testing.assert_array_equal(u.set_mask(np.zeros((8, 8))), np.zeros((9, 10)))
    with pytest.raises(ValueError, match="does not match the detector"):
        u.set_mask(np.ones((3, 3)))


def test_pattern_and_region_mean(rng):
    a = rng.integers(0, 1000, (2, 5, 6, 4, 3), dtype=np.uint16)
    for data in (a, streamed(a, (1, 2, 3, 4, 3))):
        p = pattern_at(data, 4, 5, tilt=1)
        assert p.dtype == np.uint16
        np.testing.assert_array_equal(p, a[1, 4, 5])
        np.testing.assert_allclose(
            region_mean(data, [[0, 0], [1, 1], [1, 1]], tilt=0), a[0, [0, 1], [0, 1]].mean(0)
        )
        m = np.zeros((5, 6), bool)
        m[2:4, 1:3] = True
        np.testing.assert_allclose(region_mean(data, m, tilt=1), a[1][m].mean(0))
    with pytest.raises(ValueError, match="outside the scan"):
        pattern_at(a, 5, 0)
    with pytest.raises(ValueError, match="empty"):
        region_mean(a, np.zeros((5, 6), bool))


def ref_aligned(pattern, s):
    from scipy import ndimage

    ky, kx = pattern.shape
    yy, xx = np.mgrid[:ky, :kx].astype(float)
    return ndimage.map_coordinates(
        pattern.astype(float), [yy + s[0], xx + s[1]], order=1, mode="grid-constant"
    )


@pytest.mark.parametrize("kind", ["numpy", "streamed"])
def test_shifted_sums_match_scipy_and_virtual_image(rng, kind):
    from virtual_aperture.compute import virtual_image

    a = rng.integers(0, 1000, (6, 5, 9, 11), dtype=np.uint16)
    lab = rng.integers(0, 3, (6, 5))
    sh = rng.normal(0, 2, (6, 5, 2))
    sh[0, 0] = (0.0, 3.0)
    sh[1, 1] = (40.0, 0.5)  # entirely off the detector
    data = a if kind == "numpy" else streamed(a, (2, 5, 9, 11))
    res = aperture_sums(data, lab, shifts=sh)
    for k, r in res.items():
        want = sum(ref_aligned(a[y, x], sh[y, x]) for y, x in zip(*np.nonzero(lab == k)))
        np.testing.assert_allclose(r.sum, want, rtol=1e-12, atol=1e-9)
    m = rng.random((9, 11))
    vi = virtual_image(a, m, shifts=sh)
    np.testing.assert_allclose((res[1].sum * m).sum(), vi[lab == 1].sum(), rtol=1e-10)
    with pytest.raises(ValueError, match="shifts shape"):
        aperture_sums(a, lab, shifts=np.zeros((5, 6, 2)))
