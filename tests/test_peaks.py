"""Bragg peak finding: sub-pixel accuracy, thresholds, calibration, stacks, CSV, bad input."""

import numpy as np
import pytest

from virtual_aperture import Calibration, find_bragg_peaks
from virtual_aperture.crystal.peaks import PeakList, beam_center, disk_template


def render_disks(shape, positions, radius, amplitudes, ss=8):
    """Anti-aliased disks (8× supersampled): exact reference images for sub-pixel tests."""
    h, w = shape
    yy, xx = np.mgrid[0 : h * ss, 0 : w * ss] / ss + (0.5 / ss - 0.5)
    img = np.zeros((h * ss, w * ss))
    for (py, px), a in zip(positions, amplitudes):
        img += a * ((yy - py) ** 2 + (xx - px) ** 2 <= radius * radius)
    return img.reshape(h, ss, w, ss).mean(axis=(1, 3))


@pytest.fixture(scope="module")
def grid_pattern():
    rng = np.random.default_rng(0)
    g = np.arange(16, 120, 14.3)
    pos = np.array([(a + rng.uniform(-0.5, 0.5), b + rng.uniform(-0.5, 0.5)) for a in g for b in g])
    img = render_disks((128, 128), pos, 3.0, rng.uniform(50, 100, len(pos)))
    return img, pos


def _match(found, truth):
    d = np.linalg.norm(truth[:, None] - found[None], axis=-1)
    return d.min(axis=1)


@pytest.mark.parametrize("template", [None, 3.0])
@pytest.mark.parametrize("subpixel", [True, "parabolic"])
def test_subpixel_accuracy_on_noiseless_disks(grid_pattern, template, subpixel):
    img, pos = grid_pattern
    p = find_bragg_peaks(img, template=template, subpixel=subpixel, threshold=3, sigma_background=12)
    assert len(p) == len(pos)
    err = _match(p.positions, pos)
    assert err.max() < 0.1, err.max()


def test_probe_image_template_and_integer_positions(grid_pattern):
    img, pos = grid_pattern
    probe = render_disks((15, 15), [(7.3, 6.8)], 3.0, [1.0])
    p = find_bragg_peaks(img, template=probe, threshold=3, sigma_background=12)
    assert len(p) == len(pos) and _match(p.positions, pos).max() < 0.1
    q = find_bragg_peaks(img, template=3.0, subpixel=False, threshold=3, sigma_background=12)
    assert np.all(q.y == np.round(q.y)) and _match(q.positions, pos).max() < 0.75


def test_noise_threshold_and_snr():
    rng = np.random.default_rng(1)
    pos = np.array([[30.2, 40.7], [80.5, 90.1], [100.0, 30.0]])
    clean = render_disks((128, 128), pos, 2.5, [40, 40, 40])
    img = rng.poisson(clean + 5.0).astype(float)
    p = find_bragg_peaks(img, template=2.5, threshold=8)
    assert len(p) == 3
    assert _match(p.positions, pos).max() < 0.3
    assert np.all(p.snr > 8) and np.all(p.intensity > 0) and np.all(p.sigma > 0)
    noise_only = rng.poisson(np.full((128, 128), 5.0)).astype(float)
    assert len(find_bragg_peaks(noise_only, template=2.5, threshold=8)) == 0


def test_exclude_center_max_peaks_and_min_distance(grid_pattern):
    img, pos = grid_pattern
    c = (63.5, 63.5)
    p = find_bragg_peaks(
        img, template=3.0, threshold=3, exclude_center_radius=30, center=c, sigma_background=12
    )
    assert np.all(np.hypot(p.y - c[0], p.x - c[1]) > 30)
    r = np.hypot(pos[:, 0] - c[0], pos[:, 1] - c[1])
    assert int(np.sum(r > 31)) <= len(p) <= int(np.sum(r > 29))
    q = find_bragg_peaks(img, template=3.0, threshold=3, max_peaks=5, sigma_background=12)
    assert len(q) == 5 and np.all(np.diff(q.snr) <= 1e-9)


def test_calibrated_reciprocal_coordinates():
    cal = Calibration(pixel_size=0.01, center=(64.0, 64.0), beam_energy_kv=200.0)
    img = render_disks((128, 128), [(64.0, 94.0), (34.0, 64.0)], 2.0, [50, 50])
    p = find_bragg_peaks(img, template=2.0, threshold=3, calibration=cal)
    order = np.argsort(p.x)
    assert p.g_x[order][-1] == pytest.approx(0.30, abs=1e-3)
    assert p.g_y[order][0] == pytest.approx(-0.30, abs=1e-3)
    assert np.allclose(p.g, 0.30, atol=1e-3)
    # without a pixel size the reciprocal columns are NaN
    assert np.isnan(find_bragg_peaks(img, template=2.0, threshold=3).g).all()


def test_stack_progress_and_beam_center():
    pats = np.stack(
        [render_disks((64, 64), [(32.3, 31.6), (12.0 + t, 50.0)], 2.0, [200, 30]) for t in range(3)]
    )
    seen = []
    out = find_bragg_peaks(
        pats,
        template=2.0,
        threshold=3,
        exclude_center_radius=5,
        center="beam",
        progress=lambda d, t: seen.append((d, t)),
    )
    assert len(out) == 3 and seen[-1] == (3, 3)
    for t, pl in enumerate(out):
        assert np.all(pl.tilt == t) and len(pl) == 1
        assert pl.center == pytest.approx((32.3, 31.6), abs=0.05)
        assert pl.y[0] == pytest.approx(12.0 + t, abs=0.1)
    assert beam_center(pats[0]) == pytest.approx((32.3, 31.6), abs=0.05)


def test_csv_roundtrip(tmp_path, grid_pattern):
    img, _ = grid_pattern
    p = find_bragg_peaks(img, template=3.0, threshold=3, sigma_background=12)
    f = tmp_path / "peaks.csv"
    p.to_csv(f)
    q = PeakList.from_csv(f)
    assert len(q) == len(p) and np.allclose(q.positions, p.positions, atol=1e-4)
    both = PeakList.concatenate([p, q])
    assert len(both) == 2 * len(p) and len(both.for_tilt(0)) == 2 * len(p)


def test_bad_input():
    with pytest.raises(ValueError, match="2D"):
        find_bragg_peaks(np.zeros((4, 4, 4, 4)))
    with pytest.raises(ValueError, match="at least 8"):
        find_bragg_peaks(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        find_bragg_peaks(np.full((16, 16), np.nan))
    with pytest.raises(ValueError, match="threshold"):
        find_bragg_peaks(np.zeros((16, 16)), threshold=0)
    with pytest.raises(ValueError, match="radius"):
        disk_template(-1)
    with pytest.raises(ValueError, match="subpixel"):
        find_bragg_peaks(np.random.default_rng(0).random((32, 32)), subpixel="magic", threshold=1)
    with pytest.raises(ValueError, match="center"):
        find_bragg_peaks(np.zeros((16, 16)), center="middle")
