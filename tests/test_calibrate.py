"""Calibration: ellipse fit, pixel size from gold rings, descan map, scan rotation, Friedel centre."""

from pathlib import Path

import numpy as np
import pytest

from virtual_aperture import Calibration, Dataset
from virtual_aperture.crystal import calibrate as C
from virtual_aperture.crystal.descan import _rotate
from virtual_aperture.crystal.geometry import distortion_matrix

GOLD_CIF = """data_Au
_cell_length_a 4.0782
_cell_length_b 4.0782
_cell_length_c 4.0782
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'F m -3 m'
_space_group_IT_number 225
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Au1 Au 0 0 0
"""


@pytest.fixture(scope="module")
def gold_cif(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("std") / "gold.cif"
    p.write_text(GOLD_CIF)
    return p


def ring_pattern(d, w, *, ps, center, ell, shape=(256, 256), seed=0):
    yy, xx = np.indices(shape).astype(float)
    off = np.stack([yy - center[0], xx - center[1]], -1) @ np.linalg.inv(distortion_matrix(ell)).T
    r = np.hypot(off[..., 0], off[..., 1])
    img = 200 * np.exp(-r / 15)
    for di, wi in zip(d, w):
        img += 100 * wi * np.exp(-((r - 1 / di / ps) ** 2) / 2.0)
    return np.random.default_rng(seed).poisson(img + 5).astype(float)


def test_fit_ellipse_recovers_known_ellipse():
    t = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    a, b, th, c = 40.0, 36.0, np.radians(25.0), (60.3, 70.8)
    x = c[1] + a * np.cos(t) * np.cos(th) - b * np.sin(t) * np.sin(th)
    y = c[0] + a * np.cos(t) * np.sin(th) + b * np.sin(t) * np.cos(th)
    e = C.fit_ellipse(np.stack([y, x], 1))
    assert e.center == pytest.approx(c, abs=1e-6)
    assert (e.a, e.b) == pytest.approx((a, b), abs=1e-6)
    assert e.angle_deg == pytest.approx(25.0, abs=1e-4)
    assert e.ellipticity == pytest.approx((a / b, 25.0), abs=1e-4)


def test_ring_calibration_gold(gold_cif):
    d, w = C.standard_rings(gold_cif)
    assert d[:4] == pytest.approx([2.3545, 2.0391, 1.4419, 1.2296], abs=1e-3)  # 111, 200, 220, 311
    img = ring_pattern(d, w, ps=0.012, center=(127.3, 129.8), ell=(1.04, 30.0))
    ell = C.ellipse_from_ring(img, center=(128, 128), r_min=1 / d[0] / 0.012 - 8, r_max=1 / d[0] / 0.012 + 8)
    assert ell.center == pytest.approx((127.3, 129.8), abs=0.1)
    assert ell.ellipticity[0] == pytest.approx(1.04, abs=0.005)
    assert ell.ellipticity[1] == pytest.approx(30.0, abs=1.0)
    cal0 = Calibration(beam_energy_kv=200.0, center=ell.center, ellipticity=ell.ellipticity)
    cal, res = C.calibrate_pixel_size(img, gold_cif, calibration=cal0, detector_pixel_um=55.0)
    assert res.pixel_size == pytest.approx(0.012, rel=2e-3)
    assert cal.pixel_size == res.pixel_size and cal0.pixel_size is None  # new object, input unchanged
    assert res.n_matched >= 5
    assert res.camera_length_mm == pytest.approx(55e-3 / (cal.wavelength * 0.012), rel=3e-3)
    # the same from d-spacings given as numbers
    _, res2 = C.calibrate_pixel_size(img, [2.3545, 2.0391, 1.4419, 1.2296], calibration=cal0)
    assert res2.pixel_size == pytest.approx(0.012, rel=3e-3)


def test_pixel_size_from_rings_matches_subset():
    g = 1 / np.array([2.3545, 2.0391, 1.4419, 1.2296, 1.1773])
    radii = g[[0, 2, 3]] / 0.02  # rings 200 and 222 missing
    res = C.pixel_size_from_rings(radii, 1 / g)
    assert res.pixel_size == pytest.approx(0.02, rel=1e-9) and res.n_matched == 3
    with pytest.raises(ValueError, match="at least 2"):
        C.pixel_size_from_rings([10.0], [2.0, 1.0])


def test_scan_rotation_from_synthetic_com():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:48, 0:56]
    phi = sum(
        np.exp(-((yy - rng.uniform(0, 48)) ** 2 + (xx - rng.uniform(0, 56)) ** 2) / 8.0) for _ in range(30)
    )
    gy, gx = np.gradient(phi)
    for angle in (25.0, -110.0, 170.0):
        dy, dx = _rotate(gy, gx, angle)
        r = C.scan_rotation_from_com(dy + 0.01 * rng.normal(size=dy.shape), dx)
        assert r["rotation_deg"] == pytest.approx(angle, abs=0.5)
        assert not r["flip"]
    r = C.scan_rotation_from_com(*_rotate(gx, gy, 40.0))  # transposed scan
    assert r["flip"] and r["curl"] < 1e-6
    with pytest.raises(ValueError, match="NaN"):
        C.scan_rotation_from_com(np.full((8, 8), np.nan), np.zeros((8, 8)))


def _descan_dataset(shift_fn, shape=(12, 14), det=(48, 48)):
    sy, sx = shape
    data = np.zeros((sy, sx) + det, dtype=np.float32)
    yy, xx = np.indices(det)
    truth = np.zeros((sy, sx, 2))
    for y in range(sy):
        for x in range(sx):
            dy, dx = shift_fn(y / (sy - 1) * 2 - 1, x / (sx - 1) * 2 - 1)
            truth[y, x] = dy, dx
            c = (23.5 + dy, 23.5 + dx)
            r = np.hypot(yy - c[0], xx - c[1])
            data[y, x] = 1000 * np.clip(3.5 - r, 0, 1)  # flat probe disk, radius 3 px, soft edge
            data[y, x] += 300 * np.exp(-((yy - c[0] - 12) ** 2 + (xx - c[1] + 5) ** 2) / 2.0)  # a Bragg spot
    cal = Calibration(center=(23.5, 23.5), pixel_size=0.02)
    return Dataset(data, cal), truth


def test_descan_map_and_fit():
    ds, truth = _descan_dataset(lambda v, u: (1.2 * u - 0.5 * v + 0.3 * u * v, 0.8 * v + 0.4 * u * u))
    centers = C.beam_centers(ds)
    assert np.abs(centers - 23.5 - truth).max() < 0.05
    cal, fit = C.calibrate_descan(ds, order=2)
    assert np.abs(fit.shifts - truth).max() < 0.05
    assert cal.center == (23.5, 23.5) and "descan" in cal.extra and ds.calibration.extra == {}
    rebuilt = C.descan_shifts(cal, ds.scan_shape)
    assert np.abs(rebuilt - truth).max() < 0.06
    plane = C.fit_descan(centers, order=1, smooth_sigma=None)
    assert plane.coef_y.size == 3 and plane.rms > 0.01  # a plane cannot follow u·v and u²


def test_fit_descan_rejects_outliers_and_bad_input():
    yy, xx = np.mgrid[0:10, 0:10]
    c = np.stack([30 + 0.1 * yy, 31 - 0.05 * xx], -1).astype(float)
    c[3, 4] += 5.0
    c[7, 1] = np.nan
    fit = C.fit_descan(c, order=1, smooth_sigma=None)
    assert abs(fit.fitted[3, 4, 0] - (30 + 0.3)) < 1e-6
    with pytest.raises(ValueError, match="shape"):
        C.fit_descan(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="order"):
        C.fit_descan(c, order=9)


def test_center_from_friedel_pairs():
    rng = np.random.default_rng(3)
    c = np.array([61.3, 66.9])
    v = rng.uniform(-40, 40, (8, 2))
    pts = np.concatenate([c + v, c - v]) + rng.normal(0, 0.05, (16, 2))
    found, n = C.center_from_friedel_pairs(pts, center=(63.0, 64.0))
    assert found == pytest.approx(tuple(c), abs=0.05) and n == 8
    with pytest.raises(ValueError, match="Friedel"):
        C.center_from_friedel_pairs(c + v, center=(63.0, 64.0))


def test_radial_profile_and_bad_ring():
    img = ring_pattern([2.0], [1.0], ps=0.02, center=(64, 64), ell=(1.0, 0.0), shape=(128, 128))
    r, p = C.radial_profile(img, center=(64, 64))
    assert abs(r[np.argmax(np.where(r > 10, p, 0))] - 25.0) <= 0.5
    with pytest.raises(ValueError, match="r_min"):
        C.ring_points(img, center=(64, 64), r_min=10, r_max=5)
    with pytest.raises(ValueError, match="5"):
        C.fit_ellipse(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="not found"):
        C.standard_rings("/nonexistent/gold.cif")


def test_descan_shifts_compensate_virtual_images():
    """The fitted shifts plug into the engine's shift-compensated virtual image."""
    from virtual_aperture import virtual_image

    ds, truth = _descan_dataset(lambda v, u: (1.5 * u, -1.2 * v))
    _, fit = C.calibrate_descan(ds, order=1)
    yy, xx = np.indices(ds.detector_shape)
    bf = np.hypot(yy - 23.5, xx - 23.5) <= 4.5
    raw = virtual_image(ds, bf)
    fixed = virtual_image(ds, bf, shifts=fit.shifts)
    assert np.ptp(fixed) < 0.35 * np.ptp(raw) and np.ptp(fixed) < 0.03 * fixed.mean()
