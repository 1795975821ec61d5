"""Indexing on synthetic spot lists built with crystal.geometry: lattice search, Niggli,
Bravais candidates, refinement, zone axis, refusals."""

import numpy as np
import pytest

from virtual_aperture import Calibration, index_tilt_series, index_zone_axis
from virtual_aperture.crystal import geometry as geo
from virtual_aperture.crystal.indexing import IndexingError
from virtual_aperture.crystal.lattice import (
    bravais_candidates,
    centring_allowed,
    niggli_cell,
    niggli_reduce_basis,
)
from virtual_aperture.crystal.peaks import PeakList
from virtual_aperture.crystal.refine import nearest_rotation

TILTS = np.arange(-30, 30.1, 1.5)


def spot_series(
    cell,
    centring="P",
    *,
    seed=0,
    tilts=TILTS,
    axis=12.0,
    ps=0.008,
    s_max=0.006,
    noise=0.1,
    n_spurious=0,
    shape=(256, 256),
    center=(127.6, 128.3),
    ell=(1.02, 20.0),
    d_min=0.7,
):
    rng = np.random.default_rng(seed)
    U = geo.random_rotation(rng)
    UB = U @ geo.reciprocal_basis(cell)
    cal = Calibration(
        pixel_size=ps, tilt_angles_deg=tuple(tilts), tilt_axis_deg=axis, center=center, ellipticity=ell
    )
    hkl = geo.miller_indices_within(cell, d_min)
    hkl = hkl[centring_allowed(hkl, centring)]
    lists = []
    for t, ang in enumerate(tilts):
        pos, s, _ = geo.predict_reflections(
            UB,
            hkl,
            tilt_deg=ang,
            tilt_axis_deg=axis,
            wavelength=cal.wavelength,
            pixel_size=ps,
            center=center,
            ellipticity=ell,
        )
        k = (np.abs(s) < s_max) & (pos.min(1) > 5) & (pos[:, 0] < shape[0] - 5) & (pos[:, 1] < shape[1] - 5)
        p = pos[k] + rng.normal(0, noise, (int(k.sum()), 2))
        if n_spurious:
            p = np.concatenate([p, rng.uniform(10, shape[0] - 10, (n_spurious, 2))])
        lists.append(PeakList.from_positions(p, tilt=t, calibration=cal))
    return lists, cal, UB


def orientation_error_deg(UB_true, UB_found):
    """Rotation angle between two UBs of the same lattice in (possibly) different settings."""
    M = np.rint(np.linalg.inv(UB_true) @ UB_found)
    assert abs(abs(np.linalg.det(M)) - 1) < 1e-6 or abs(np.linalg.det(M)) > 0.5
    R = nearest_rotation(UB_found @ np.linalg.inv(UB_true @ M))
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))))


def test_niggli_of_known_non_reduced_cell():
    A = geo.direct_basis((5, 6, 7, 80, 100, 95))
    M = np.array([[1, 1, 0], [0, 1, 0], [2, 0, 1]])
    scrambled = geo.cell_from_basis(A @ M)
    assert max(scrambled[:3]) > 13  # clearly not reduced
    R, T = niggli_reduce_basis(A @ M)
    assert geo.cell_from_basis(R) == pytest.approx((5, 6, 7, 80, 80, 85), abs=1e-6)
    assert np.allclose(A @ M @ T, R)
    assert niggli_cell((4.0782,) * 3 + (90,) * 3, centring="F") == pytest.approx(
        (2.8837,) * 3 + (60,) * 3, abs=1e-3
    )


@pytest.mark.parametrize(
    "cell,centring,best,conv",
    [
        ((4.0782,) * 3 + (90,) * 3, "F", "cF", (4.0782,) * 3 + (90,) * 3),
        ((5.1, 6.2, 7.3, 90, 103, 90), "C", "mC", (5.1, 6.2, 7.3, 90, 103, 90)),
        ((6, 6, 9, 90, 90, 90), "I", "tI", (6, 6, 9, 90, 90, 90)),
        ((5, 5, 12, 90, 90, 120), "R", "hR", (5, 5, 12, 90, 90, 120)),
    ],
)
def test_bravais_candidates(cell, centring, best, conv):
    R, _ = niggli_reduce_basis(geo.direct_basis(cell), centring=centring)
    cands = bravais_candidates(R @ np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1]]))
    good = [c for c in cands if c.score < 0.5]  # how index_tilt_series picks (most symmetric good fit)
    assert good[0].lattice == best and good[0].score < 1e-6
    assert good[0].cell == pytest.approx(conv, abs=1e-6)
    assert cands[-1].lattice == "aP"


@pytest.mark.parametrize(
    "cell,centring,lattice",
    [
        ((8.0, 9.0, 11.0, 90, 90, 90), "P", "oP"),
        ((5.1, 6.2, 7.3, 90, 103, 90), "C", "mC"),
        ((7.5, 7.5, 14, 90, 90, 120), "P", "hP"),
        ((6, 7, 8, 80, 95, 100), "P", "aP"),
    ],
)
def test_index_tilt_series_synthetic(cell, centring, lattice):
    lists, cal, UB = spot_series(cell, centring, n_spurious=2)
    r = index_tilt_series(lists, calibration=cal)
    assert r.lattice == lattice
    true_red = geo.cell_from_basis(niggli_reduce_basis(geo.direct_basis(cell), centring=centring)[0])
    assert sorted(r.reduced_cell[:3]) == pytest.approx(sorted(true_red[:3]), rel=5e-3)
    if lattice != "aP":
        assert sorted(r.cell[:3]) == pytest.approx(sorted(cell[:3]), rel=3e-3)
    assert orientation_error_deg(UB, r.UB) < 0.3
    assert r.tilt_axis_deg == pytest.approx(12.0, abs=0.3)
    n_real = len(r.peaks) - 2 * len(lists)
    assert r.indexed.sum() >= 0.95 * n_real
    assert r.rmsd_px < 1.0
    d = r.to_dict()
    assert d["lattice"] == lattice and len(d["bravais_candidates"]) >= 1
    # predicted spots at a tilt land on the observed ones
    pred = r.predict(10, d_min=0.6, s_max=0.01)
    obs = r.peaks.positions[(r.peaks.tilt == 10) & r.indexed]
    assert len(obs) >= 3
    dist = np.linalg.norm(obs[:, None] - pred["positions"][None], axis=-1).min(1)
    assert np.all(dist < 1.5)


def test_known_cell_and_forced_lattice():
    cell = (8.0, 9.0, 11.0, 90, 90, 90)
    lists, cal, UB = spot_series(cell, seed=4, d_min=0.9, tilts=np.arange(-30, 30.1, 3.0))
    r = index_tilt_series(lists, calibration=cal, known_cell=(9.0, 8.0, 11.0, 90, 90, 90))
    assert r.cell == pytest.approx((9.0, 8.0, 11.0, 90, 90, 90), rel=3e-3)
    assert orientation_error_deg(UB, r.UB) < 0.3
    r2 = index_tilt_series(lists, calibration=cal, lattice="mP")
    assert r2.lattice == "mP"
    with pytest.raises(IndexingError, match="do not fit"):
        index_tilt_series(lists, calibration=cal, known_cell=(10.0, 12.0, 13.0, 90, 90, 90))


def test_refusals():
    lists, cal, _ = spot_series((8.0, 9.0, 11.0, 90, 90, 90))
    with pytest.raises(IndexingError, match="cannot index: peaks from one tilt"):
        index_tilt_series([lists[3]], calibration=cal.replace(tilt_angles_deg=(0.0,)))
    few = [PeakList.from_positions(lists[t].positions[:2], tilt=t) for t in range(3)]
    with pytest.raises(IndexingError, match="too few peaks"):
        index_tilt_series(few, calibration=cal)
    rng = np.random.default_rng(9)
    noise = [PeakList.from_positions(rng.uniform(10, 246, (25, 2)), tilt=t) for t in range(len(lists))]
    with pytest.raises(IndexingError, match="cannot index"):
        index_tilt_series(noise, calibration=cal)
    with pytest.raises(IndexingError, match="pixel size"):
        index_tilt_series(lists, calibration=cal.replace(pixel_size=None))
    assert issubclass(IndexingError, ValueError)


def test_index_zone_axis():
    cell = (5.0, 6.0, 7.0, 90, 90, 90)
    B = geo.reciprocal_basis(cell)
    U = geo.rotation_about((0, 0, 1), 30.0) @ geo.rotation_about((1, 0, 0), -90.0)  # [010] along the beam
    UB = U @ B
    cal = Calibration(pixel_size=0.01, center=(128.0, 128.0))
    hkl = geo.miller_indices_within(cell, 0.9)
    pos, s, _ = geo.predict_reflections(
        UB,
        hkl,
        tilt_deg=0.0,
        tilt_axis_deg=0.0,
        wavelength=cal.wavelength,
        pixel_size=0.01,
        center=(128.0, 128.0),
    )
    k = (np.abs(s) < 0.003) & (pos.min(1) > 2) & (pos.max(1) < 254)
    peaks = PeakList.from_positions(
        pos[k] + np.random.default_rng(0).normal(0, 0.1, (int(k.sum()), 2)), calibration=cal
    )
    r2d = index_zone_axis(peaks, calibration=cal)
    assert sorted(r2d.lengths) == pytest.approx([1 / 7.0, 1 / 5.0], rel=5e-3)
    assert r2d.angle_deg == pytest.approx(90.0, abs=0.5) and r2d.indexed_fraction > 0.95
    r = index_zone_axis(peaks, calibration=cal, cell=cell)
    assert tuple(abs(v) for v in r.zone_axis) == (0, 1, 0)
    assert r.indexed_fraction > 0.95 and r.fit_score > 0.8
    # same crystal up to the mmm symmetry: predicted spots coincide with the observed ones
    pred = r.predict(calibration=cal, d_min=0.9, s_max=0.003)["positions"]
    d = np.linalg.norm(peaks.positions[:, None] - pred[None], axis=-1).min(1)
    assert np.all(d < 0.5)
    with pytest.raises(IndexingError, match="too few"):
        index_zone_axis(peaks.select(np.arange(3)), calibration=cal)
    with pytest.raises(IndexingError, match="no zone axis"):
        index_zone_axis(peaks, calibration=cal, cell=(11.0, 13.0, 17.0, 90, 90, 90), max_index=1)


def test_refine_ellipticity_from_the_tilt_series():
    """An uncalibrated detector ellipticity is recovered from the indexed peaks themselves."""
    cell = (8.0, 9.0, 11.0, 90, 90, 90)
    lists, cal, UB = spot_series(cell, ell=(1.03, 40.0), seed=5, d_min=0.9, tilts=np.arange(-30, 30.1, 3.0))
    cal0 = cal.replace(ellipticity=(1.0, 0.0))
    r = index_tilt_series(lists, calibration=cal0, refine_ellipticity=True)
    ratio, angle = r.calibration.ellipticity
    assert ratio == pytest.approx(1.03, abs=0.002) and angle == pytest.approx(40.0, abs=2.0)
    assert r.lattice == "oP" and sorted(r.cell[:3]) == pytest.approx(sorted(cell[:3]), rel=2e-3)
    assert r.rmsd_px < 0.2  # the noise level (0.1 px per axis)
    assert orientation_error_deg(UB, r.UB) < 0.1


def test_indexing_stops_when_cancelled_and_reports_progress():
    from virtual_aperture import find_bragg_peaks
    from virtual_aperture.compute import Cancelled, CancelToken

    from builders import SPOT_TILTS, render_spot_series

    pats = render_spot_series(2, SPOT_TILTS, (5.2, 5.5, 9.2, 90, 90, 90))
    cal = Calibration(pixel_size=0.015, tilt_angles_deg=tuple(SPOT_TILTS), tilt_axis_deg=14.0)
    peaks = find_bragg_peaks(pats, calibration=cal, center="beam")
    seen = []
    index_tilt_series(peaks, calibration=cal, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 5), (1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    token = CancelToken()

    def cancel_at_2(d, t):
        if d == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        index_tilt_series(peaks, calibration=cal, progress=cancel_at_2, cancel=token)
