"""Integration: simulated spots with known intensities over a tilt series."""

import numpy as np
import pytest

from virtual_aperture.crystal.geometry import (
    miller_indices_within,
    predict_reflections,
    random_rotation,
    reciprocal_basis,
)
from virtual_aperture.crystal.integrate import integrate_reflections

CELL = (7.0, 8.0, 9.0, 90, 90, 90)
LAM, PIX, CEN, AXIS = 0.0251, 0.012, (96.0, 96.0), 20.0
SIG_S = 0.003  # rocking-curve width (Å⁻¹)


def _simulate(
    tilts, *, cell=CELL, d_min=1.1, bg=2.0, seed=0, shape=(192, 192), psf=1.0, noise=True, scale=1.0
):
    rng = np.random.default_rng(seed)
    UB = random_rotation(np.random.default_rng(3)) @ reciprocal_basis(cell)
    hkl = miller_indices_within(cell, d_min)
    i_kin = scale * rng.uniform(2e3, 2e4, len(hkl))
    truth = {tuple(h): v for h, v in zip(hkl.tolist(), i_kin)}
    pats = np.full((len(tilts), *shape), bg)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for t_i, t in enumerate(tilts):
        pos, s, _ = predict_reflections(
            UB, hkl, tilt_deg=t, tilt_axis_deg=AXIS, wavelength=LAM, pixel_size=PIX, center=CEN
        )
        amp = i_kin * np.exp(-0.5 * (s / SIG_S) ** 2) / (np.sqrt(2 * np.pi) * SIG_S)
        for (py, px), a in zip(pos, amp):
            if a < 1e-3 or not (0 <= py < shape[0] and 0 <= px < shape[1]):
                continue
            y0, y1, x0, x1 = (
                max(int(py) - 5, 0),
                min(int(py) + 6, shape[0]),
                max(int(px) - 5, 0),
                min(int(px) + 6, shape[1]),
            )
            g = np.exp(-((yy[y0:y1, x0:x1] - py) ** 2 + (xx[y0:y1, x0:x1] - px) ** 2) / (2 * psf**2))
            pats[t_i, y0:y1, x0:x1] += a * g / (2 * np.pi * psf**2)
    if noise:
        pats = rng.poisson(pats).astype(float)
    return pats, UB, truth


def _run(pats, UB, tilts, excitation_width=4 * SIG_S, **kw):
    return integrate_reflections(
        pats,
        UB=UB,
        tilt_angles_deg=tilts,
        tilt_axis_deg=AXIS,
        wavelength=LAM,
        pixel_size=PIX,
        center=CEN,
        d_min=1.1,
        radius_px=4.0,
        background_annulus=(6.0, 9.0),
        excitation_width=excitation_width,
        **kw,
    )


def test_integrated_intensities_match_truth_for_strong_spots():
    tilts = np.arange(-15, 15.01, 0.25)
    pats, UB, truth = _simulate(tilts)
    r = _run(pats, UB, tilts)
    assert len(r) > 30
    ratio = np.array([i / truth[tuple(h)] for h, i in zip(r.hkl.tolist(), r.intensity)])
    strong = r.intensity / r.sigma > 20
    assert strong.sum() > 20
    # within a few % for strong spots (median), and the bulk within 10 %
    assert abs(np.median(ratio[strong]) - 1) < 0.03
    assert np.mean(np.abs(ratio[strong] - 1) < 0.10) > 0.8
    # partials were combined: most reflections span several tilts yet appear once
    assert len({tuple(h) for h in r.hkl.tolist()}) == len(r)
    assert np.all(np.isfinite(r.tilt_deg))


def test_sigma_tracks_scatter():
    tilts = np.arange(-10, 10.01, 0.25)
    pats, UB, truth = _simulate(tilts, seed=1, bg=20.0, scale=0.1)
    r = _run(pats, UB, tilts)
    t = np.array([truth[tuple(h)] for h in r.hkl.tolist()])
    k = np.median(r.intensity / t)  # remove the few-% systematic bias of the discrete rocking sum
    z = (r.intensity / k - t) / (r.sigma / k)
    assert 0.5 < np.median(np.abs(z)) / 0.674 < 2.0


def test_overlaps_and_saturation_rejected():
    tilts = np.arange(-6, 6.01, 0.25)
    pats, UB, truth = _simulate(tilts, cell=(7.0, 8.0, 30.0, 90, 90, 90), noise=False)
    r = _run(pats, UB, tilts, excitation_width=0.03)
    assert r.meta["n_overlapped_observations"] > 0
    pats, UB, truth = _simulate(tilts, noise=False)
    r1 = _run(pats, UB, tilts)
    r2 = _run(pats, UB, tilts, saturation=float(np.percentile(pats, 99.9)))
    assert r2.meta["n_saturated_observations"] > 0
    assert len(r2) < len(r1)


def test_bad_input_raises():
    tilts = np.arange(3.0)
    pats = np.zeros((3, 32, 32))
    UB = reciprocal_basis(CELL)
    with pytest.raises(ValueError, match="tilt angles"):
        integrate_reflections(
            pats,
            UB=UB,
            tilt_angles_deg=[0, 1],
            tilt_axis_deg=0,
            wavelength=LAM,
            pixel_size=PIX,
            center=(16, 16),
            d_min=1.0,
        )
    with pytest.raises(ValueError, match="shape"):
        integrate_reflections(
            pats[0],
            UB=UB,
            tilt_angles_deg=tilts,
            tilt_axis_deg=0,
            wavelength=LAM,
            pixel_size=PIX,
            center=(16, 16),
            d_min=1.0,
        )
    with pytest.raises(ValueError, match="annulus"):
        integrate_reflections(
            pats,
            UB=UB,
            tilt_angles_deg=tilts,
            tilt_axis_deg=0,
            wavelength=LAM,
            pixel_size=PIX,
            center=(16, 16),
            d_min=1.0,
            radius_px=5,
            background_annulus=(4, 8),
        )
