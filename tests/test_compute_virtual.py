"""virtual_image against a plain numpy reference: masks, stacks, 4D/5D, shifts, bad input."""

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage

import virtual_aperture as va
from virtual_aperture.compute import virtual_image
from virtual_aperture.model import Calibration, Dataset

from builders import streamed


def ref_vi(data, masks):
    """numpy reference: (..., ky, kx) x (n, ky, kx) -> (n, ...)."""
    return np.einsum("...ab,nab->n...", data.astype(np.float64), np.asarray(masks, dtype=np.float64))


def ref_shifted(data4, mask, shifts):
    """Reference with scipy: mask'(k) = mask(k - s), bilinear, zero outside."""
    sy, sx, ky, kx = data4.shape
    out = np.zeros((sy, sx))
    yy, xx = np.mgrid[:ky, :kx].astype(float)
    for y in range(sy):
        for x in range(sx):
            s = shifts[y, x]
            m = ndimage.map_coordinates(
                mask.astype(float), [yy - s[0], xx - s[1]], order=1, mode="grid-constant", cval=0.0
            )
            out[y, x] = (data4[y, x].astype(float) * m).sum()
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.int16, np.uint32, np.float32, np.float64])
@pytest.mark.parametrize("kind", ["numpy", "numpy-dask", "streamed"])
def test_random_float_and_bool_masks_match_numpy(rng, dtype, kind):
    a = (rng.random((5, 7, 9, 13)) * 200).astype(dtype)
    data = {
        "numpy": a,
        "numpy-dask": da.from_array(a, chunks=(2, 3, 9, 13)),
        "streamed": streamed(a, (2, 3, 9, 13)),
    }[kind]
    fmask = rng.random((9, 13))
    bmask = rng.random((9, 13)) > 0.6
    np.testing.assert_allclose(virtual_image(data, fmask), ref_vi(a, [fmask])[0], rtol=1e-12)
    vb = virtual_image(data, bmask)
    assert vb.dtype == np.float64 and vb.shape == (5, 7)
    if np.issubdtype(dtype, np.integer):
        np.testing.assert_array_equal(vb, ref_vi(a, [bmask])[0])  # exact for integer data
    else:
        np.testing.assert_allclose(vb, ref_vi(a, [bmask])[0], rtol=1e-6)


def test_mask_stack_and_5d_layout(rng):
    a = rng.integers(0, 1000, (3, 4, 5, 6, 8), dtype=np.uint16)
    masks = rng.random((4, 6, 8))
    masks[1] = masks[1] > 0.5
    ds = Dataset(da.from_array(a, chunks=(1, 2, 5, 6, 8)), Calibration(tilt_angles_deg=(0.0, 10.0, 20.0)))
    out = virtual_image(ds, masks)
    assert out.shape == (4, 3, 4, 5)
    np.testing.assert_allclose(out, ref_vi(a, masks), rtol=1e-12)
    single = virtual_image(ds, masks[2])
    assert single.shape == (3, 4, 5)
    np.testing.assert_allclose(single, out[2], rtol=1e-12)
    np.testing.assert_allclose(virtual_image(streamed(a, (1, 3, 2, 6, 8)), masks), out, rtol=1e-12)


def test_odd_shapes_and_mask_touching_edges(rng):
    a = rng.integers(0, 60000, (1, 11, 3, 17), dtype=np.uint16)
    m = np.zeros((3, 17), bool)
    m[0, 0] = m[2, 16] = True  # corners only: bounding box = whole detector
    np.testing.assert_array_equal(virtual_image(a, m), ref_vi(a, [m])[0])
    m2 = np.zeros((3, 17))
    m2[1, 16] = 0.25
    np.testing.assert_allclose(virtual_image(a, m2), ref_vi(a, [m2])[0], rtol=1e-14)


def test_large_counts_do_not_overflow():
    a = np.full((2, 2, 64, 64), 65535, dtype=np.uint16)
    out = virtual_image(a, np.ones((64, 64), bool))
    assert out[0, 0] == 65535 * 64 * 64


@pytest.mark.parametrize("kind", ["numpy", "streamed"])
def test_shifted_masks_match_scipy_bilinear(rng, kind):
    a = rng.integers(0, 500, (4, 5, 12, 14), dtype=np.uint16)
    mask = rng.random((12, 14))
    mask[:2] = 0
    shifts = rng.normal(0, 2.5, (4, 5, 2))
    shifts[0, 0] = (20.0, -30.0)  # moved completely off the detector
    shifts[0, 1] = (1.0, -2.0)  # integer shift
    data = a if kind == "numpy" else streamed(a, (2, 2, 12, 14))
    got = virtual_image(data, mask, shifts=shifts)
    np.testing.assert_allclose(got, ref_shifted(a, mask, shifts), rtol=1e-10, atol=1e-9)
    assert got[0, 0] == 0.0


def test_zero_shift_equals_unshifted_and_5d_shifts(rng):
    a = rng.integers(0, 500, (2, 3, 4, 10, 10), dtype=np.uint16)
    m = rng.random((10, 10)) > 0.3
    np.testing.assert_array_equal(virtual_image(a, m, shifts=np.zeros((3, 4, 2))), virtual_image(a, m))
    sh = rng.normal(0, 1, (2, 3, 4, 2))
    got = virtual_image(a, m, shifts=sh)
    for t in range(2):
        np.testing.assert_allclose(got[t], ref_shifted(a[t], m, sh[t]), rtol=1e-10, atol=1e-9)


def test_progress_reported(rng):
    a = rng.integers(0, 10, (8, 8, 4, 4), dtype=np.uint16)
    calls = []
    virtual_image(streamed(a, (2, 8, 4, 4)), np.ones((4, 4)), progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)
    calls.clear()
    virtual_image(a, np.ones((4, 4)), progress=lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1] >= 1


def test_public_names():
    assert va.virtual_image is virtual_image
    assert va.detectors.disk((4, 4), (1, 1), 1).dtype == bool


@pytest.mark.parametrize(
    "mask, match",
    [
        (np.ones((5, 5)), "does not match the detector"),
        (np.ones((2, 6, 9)), "does not match the detector"),
        (np.zeros((6, 8)), "empty"),
        (np.stack([np.ones((6, 8)), np.zeros((6, 8))]), "mask 1 of the stack is empty"),
        (np.full((6, 8), np.nan), "NaN or infinite"),
        (np.where(np.eye(6, 8) > 0, np.inf, 1.0), "NaN or infinite"),
        (np.ones((6, 8), complex), "bool or real"),
        (np.ones(8), "must be"),
    ],
)
def test_bad_masks(mask, match):
    a = np.zeros((3, 4, 6, 8), np.uint16)
    with pytest.raises(ValueError, match=match):
        virtual_image(a, mask)


def test_bad_shifts_and_data():
    a = np.zeros((3, 4, 6, 8), np.uint16)
    m = np.ones((6, 8))
    with pytest.raises(ValueError, match="shifts shape"):
        virtual_image(a, m, shifts=np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        virtual_image(a, m, shifts=np.full((3, 4, 2), np.nan))
    with pytest.raises(ValueError, match="4D"):
        virtual_image(np.zeros((3, 4, 5)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="integer or float"):
        virtual_image(np.zeros((3, 4, 6, 8), bool), m)
    with pytest.raises(ValueError, match="memory budget"):
        virtual_image(a, m, memory_budget="lots")


def test_zarr_and_h5py_arrays_are_streamed(tmp_path, rng):
    import h5py
    import zarr

    a = rng.integers(0, 1000, (6, 5, 8, 9), dtype=np.uint16)
    z = zarr.create_array(store=str(tmp_path / "a.zarr"), shape=a.shape, chunks=(2, 5, 8, 9), dtype=a.dtype)
    z[:] = a
    m = rng.random((8, 9))
    np.testing.assert_allclose(virtual_image(z, m), ref_vi(a, [m])[0], rtol=1e-12)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["d"] = a
    with h5py.File(tmp_path / "a.h5", "r") as f:
        np.testing.assert_allclose(virtual_image(f["d"], m), ref_vi(a, [m])[0], rtol=1e-12)


@pytest.mark.parametrize("kind", ["numpy", "streamed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_in_weight_zero_pixels_never_reach_the_image(rng, kind, dtype):
    """Dead pixels (NaN/inf) in the hole of an annulus, inside its bounding box: weight 0 adds 0."""
    from virtual_aperture.compute import detectors

    a = rng.random((4, 5, 17, 17)).astype(dtype)
    a[..., 8, 8] = np.nan
    a[..., 7, 9] = np.inf
    a[1, 2, 8, 7] = -np.inf
    data = a if kind == "numpy" else streamed(a, (2, 3, 17, 17))
    ring = detectors.annulus((17, 17), (8, 8), 3, 7)
    ref = ref_vi(np.where(ring, a, 0), [ring])[0]
    for mask in (ring, ring * rng.random((17, 17))):
        img = virtual_image(data, mask)
        assert np.isfinite(img).all()
    np.testing.assert_allclose(virtual_image(data, ring), ref, rtol=1e-6)
    shifted = virtual_image(data, ring, shifts=np.full((4, 5, 2), 0.25))
    assert np.isfinite(shifted).all()
    # a NaN pixel inside the mask is data: it shows
    assert np.isnan(virtual_image(data, detectors.disk((17, 17), (8, 8), 2))).all()


def test_incremental_mask_edit_drops_nan_pixel_removed_from_mask(rng):
    from virtual_aperture.compute import VirtualImageUpdater

    a = rng.random((3, 4, 9, 9))
    a[..., 4, 4] = np.nan
    m = np.zeros((9, 9), bool)
    m[3:6, 3:6] = True
    upd = VirtualImageUpdater(a, m)
    assert np.isnan(upd.image).all()
    m[4, 4] = False
    np.testing.assert_allclose(upd.set_mask(m), ref_vi(np.where(m, a, 0), [m])[0], rtol=1e-12)
