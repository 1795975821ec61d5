"""The built-in sample: truth consistent with data, physics, noise, determinism, errors."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
from scipy import ndimage

from virtual_aperture import simulate_agglomerate
from virtual_aperture.crystal.geometry import predict_reflections, rotation_about
from virtual_aperture.model.calibration import electron_wavelength
from virtual_aperture.sample import NOISELESS_DOSE, Truth
from virtual_aperture.sample.frame_kernels import frames_kernel, position_seeds
from virtual_aperture.sample.scattering import gemmi_structure_factor, lorentz_factor
from virtual_aperture.sample.structures import load_structure

SMALL = dict(n_grains=4, scan_shape=(32, 32), detector_shape=(64, 64), pixel_size=0.03, seed=2)


def zone_axis_u(direction, spin_deg: float = 0.0) -> np.ndarray:
    """U bringing the cubic crystal direction ``direction`` onto the beam (+z)."""
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    z = np.array([0.0, 0.0, 1.0])
    ax = np.cross(d, z)
    r = rotation_about(ax, math.degrees(math.acos(d @ z))) if np.linalg.norm(ax) > 1e-12 else np.eye(3)
    return rotation_about(z, spin_deg) @ r


def disk_sum(frame: np.ndarray, pos, radius: float) -> float:
    yy, xx = np.indices(frame.shape)
    return float(frame[np.hypot(yy - pos[0], xx - pos[1]) <= radius].sum())


@pytest.fixture(scope="module")
def noiseless():
    return simulate_agglomerate(
        **{**SMALL, "pixel_size": 0.015}, dose=None, dtype=np.float32, descan_shift_px=0.0
    )


# ---- shapes, calibration, truth bookkeeping ---------------------------------------------------
def test_4d_shape_calibration_and_truth_fields(noiseless):
    ds, truth = noiseless
    assert ds.shape == (32, 32, 64, 64) and ds.dtype == np.float32 and not ds.is_tilt_series
    cal = ds.calibration
    assert cal.pixel_size == 0.015 and cal.beam_energy_kv == 300.0 and cal.tilt_angles_deg is None
    assert cal.center == (31.5, 31.5) and cal.extra["probe_semiangle_mrad"] == 0.5
    assert truth.labels.shape == (32, 32) and truth.labels.dtype == np.int32
    assert truth.footprints.shape == truth.thickness.shape == (4, 32, 32)
    U = truth.orientations
    np.testing.assert_allclose(U @ U.transpose(0, 2, 1), np.broadcast_to(np.eye(3), U.shape), atol=1e-9)
    assert truth.space_group == "F -4 3 m" and truth.cell[0] == pytest.approx(20.7212)
    assert {a["element"] for a in truth.atoms} == {"Zr", "O", "C", "H"} and len(truth.atoms) == 9
    assert "Redfern" in truth.source and truth.structure_name == "uio66"
    assert truth.descan_shift.shape == (32, 32, 2) and truth.drift.shape == (1, 2)
    assert repr(truth).startswith(
        "Truth(structure='uio66', space_group='F -4 3 m', n_grains=4, n_tilts=1, scan=(32, 32)"
    )


def test_labels_match_footprints_and_grains_overlap(noiseless):
    _, truth = noiseless
    fp, th, lab = truth.footprints, truth.thickness, truth.labels
    np.testing.assert_array_equal(lab > 0, fp.any(axis=0))
    np.testing.assert_array_equal(fp, th > 0)
    inside = lab > 0
    picked = np.take_along_axis(th, (lab - 1).clip(0)[None], axis=0)[0]
    np.testing.assert_array_equal(picked[inside], th.max(axis=0)[inside])
    assert (fp.sum(axis=0) >= 2).sum() > 5  # overlapping in projection
    assert all(fp[g].sum() > 20 for g in range(truth.n_grains))
    _, apart = simulate_agglomerate(**SMALL, dose=None, overlap=False)
    assert apart.footprints.sum(axis=0).max() == 1


def test_truth_reflections_are_where_the_data_has_intensity(noiseless):
    ds, truth = noiseless
    data = ds.data.compute()
    r_disk = ds.calibration.extra["probe_semiangle_mrad"] * 1e-3 / (ds.calibration.wavelength * 0.015)
    centre = np.array(ds.calibration.center)
    yy, xx = np.indices(ds.detector_shape)
    radius = np.hypot(yy - centre[0], xx - centre[1])
    for g in range(truth.n_grains):
        alone = (truth.labels == g + 1) & (truth.footprints.sum(axis=0) == 1)
        summed = data[alone].sum(axis=0)
        refl = truth.grain_reflections(g, min_intensity=1e-4)
        assert len(refl["hkl"]) >= 5
        # predicted -> data: the strongest predicted reflections are bright, and pixels far
        # from every predicted reflection are dark
        allpos = truth.grain_reflections(g, min_intensity=1e-7)["positions"]
        near_any = np.zeros(summed.shape, bool)
        for p in allpos:
            near_any |= np.hypot(yy - p[0], xx - p[1]) <= r_disk + 1.5
        dark = ~near_any & (radius > r_disk + 2)
        assert dark.sum() > 50
        for pos in refl["positions"][:6]:
            at_spot = summed[np.hypot(yy - pos[0], xx - pos[1]) <= 1.0].mean()
            assert at_spot > 5 * summed[dark].mean()
        # data -> predicted: the brightest spots outside the central disk are predicted reflections
        bg = ndimage.median_filter(summed, size=9)
        peaks = ndimage.maximum_filter(summed - bg, size=5) == summed - bg
        inner = np.zeros(summed.shape, bool)
        inner[3:-3, 3:-3] = True  # filters are unreliable at the detector edge
        cand = np.argwhere(peaks & (radius > r_disk + 2) & inner)
        cand = cand[np.argsort(-(summed - bg)[tuple(cand.T)])][:5]
        for c in cand:
            assert np.min(np.hypot(*(allpos - c).T)) < 1.5, (g, c)


# ---- physics -----------------------------------------------------------------------------------
def test_thin_crystal_intensities_are_kinematic_gemmi_f_squared():
    U = zone_axis_u([0, 1, 1], 17.0)
    kw = dict(
        structure="gold",
        n_grains=1,
        scan_shape=(16, 16),
        detector_shape=(128, 128),
        pixel_size=0.015,
        grain_size_nm=20.0,
        thickness_nm=1.0,
        dose=None,
        dtype=np.float64,
        background=0.0,
        descan_shift_px=0.0,
        orientations=U[None],
    )
    ds, truth = simulate_agglomerate(**kw)
    y, x = np.unravel_index(np.argmax(truth.thickness[0]), truth.thickness[0].shape)
    assert truth.thickness[0, y, x] == pytest.approx(1.0)
    frame = ds.pattern(int(y), int(x)) / NOISELESS_DOSE
    allr = truth.grain_reflections(0, thickness_nm=1.0, min_intensity=0.0)
    r_disk = 0.5e-3 / (ds.calibration.wavelength * 0.015)
    # strong, well separated disks (coincident HOLZ rods at the same spot are added up)
    p, inten = allr["positions"], allr["intensity"]
    d = np.hypot(*(p[:, None, :] - p[None, :, :]).transpose(2, 0, 1))
    partial = (d > 0.5) & (d < 2 * r_disk + 4) & (inten[None, :] > 1e-3 * inten[:, None])
    ok = (inten > 1e-3) & ~partial.any(axis=1) & (np.hypot(*(p - 63.5).T) > 2 * r_disk + 4)
    ok &= np.all((p > r_disk + 3) & (p < 127 - r_disk - 3), axis=1)  # whole disk on the detector
    refl = {k: v[ok] for k, v in allr.items()}
    expected = np.array([inten[d[i] <= 0.5].sum() for i in np.flatnonzero(ok)])
    au = load_structure("gold")
    lam, gam, vol, t = ds.calibration.wavelength, lorentz_factor(300.0), au.cell.volume, 10.0
    f = gemmi_structure_factor(au, refl["hkl"])
    kin = (lam * gam * f * t / vol) ** 2 * np.sinc(t * refl["s"]) ** 2  # np.sinc(x) = sin(pi x)/(pi x)
    measured = np.array([disk_sum(frame, p, r_disk + 1.5) for p in refl["positions"]])
    assert len(refl["hkl"]) >= 12
    np.testing.assert_allclose(measured, expected, rtol=0.01)
    np.testing.assert_allclose(refl["kinematic"], kin, rtol=0.02)
    ratio = refl["intensity"] / refl["kinematic"]  # one beam-depletion factor for the whole pattern
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
    assert ratio[0] == 1.0  # thin crystal: exactly kinematic, no depletion
    np.testing.assert_allclose(refl["f_squared"], f**2, rtol=1e-9)


def test_overlapping_grains_add_with_their_local_thickness():
    ds, truth = simulate_agglomerate(
        structure="gold",
        n_grains=2,
        scan_shape=(24, 24),
        detector_shape=(128, 128),
        grain_size_nm=(26.0, 30.0),
        thickness_nm=(8.0, 12.0),
        zone_axis_fraction=1.0,
        dose=None,
        dtype=np.float64,
        background=0.0,
        descan_shift_px=0.0,
        seed=5,
    )
    both = np.argwhere(truth.footprints.all(axis=0) & (truth.thickness.min(axis=0) > 3.0))
    assert len(both) > 0
    y, x = both[len(both) // 2]
    frame = ds.pattern(int(y), int(x)) / NOISELESS_DOSE
    r_disk = 0.5e-3 / (ds.calibration.wavelength * 0.015)
    local = [truth.grain_reflections(g, scan_position=(y, x), min_intensity=0.0) for g in (0, 1)]
    pos = np.concatenate([r["positions"] for r in local])
    inten = np.concatenate([r["intensity"] for r in local])
    checked = set()
    for g in (0, 1):
        for p, i in zip(local[g]["positions"][:6], local[g]["intensity"][:6]):
            d = np.hypot(*(pos - p).T)
            if np.any((d > 0.5) & (d < 2 * r_disk + 4) & (inten > 1e-3 * i)) or np.any((p < 6) | (p > 121)):
                continue  # overlapping another disk or cut by the detector edge
            expected = inten[d <= 0.5].sum()
            assert disk_sum(frame, p, r_disk + 1.5) == pytest.approx(expected, rel=0.01)
            checked.add(g)
    assert checked == {0, 1}  # both grains' reflections, each at its own local thickness


def test_zone_axis_pattern_has_friedel_symmetry_and_tilting_breaks_it():
    kw = dict(
        n_grains=1,
        scan_shape=(12, 12),
        detector_shape=(64, 64),
        pixel_size=0.02,
        grain_size_nm=20.0,
        thickness_nm=25.0,
        dose=None,
        dtype=np.float64,
        descan_shift_px=0.0,
    )
    for u, symmetric in ((np.eye(3), True), (rotation_about([1, 0.3, 0], 1.5), False)):
        ds, truth = simulate_agglomerate(**kw, orientations=u[None])
        y, x = np.unravel_index(np.argmax(truth.thickness[0]), (12, 12))
        f = ds.pattern(int(y), int(x))
        bragg = f.copy()
        bragg[26:38, 26:38] = 0  # leave out the central disk
        diff = np.abs(bragg - bragg[::-1, ::-1]).max() / bragg.max()
        assert (diff < 1e-6) if symmetric else (diff > 0.05)


def test_far_from_ewald_sphere_is_weak_and_wavelength_matters():
    kw = dict(
        n_grains=1,
        scan_shape=(8, 8),
        detector_shape=(128, 128),
        grain_size_nm=12.0,
        thickness_nm=30.0,
        dose=None,
        orientations=np.eye(3)[None],
    )
    _, tr300 = simulate_agglomerate(**kw)
    allr = tr300.grain_reflections(0, min_intensity=0.0)
    t = 300.0
    near = allr["intensity"][np.abs(allr["s"]) < 0.2 / t]
    far = allr["intensity"][np.abs(allr["s"]) > 6.0 / t]
    assert near.size >= 10 and far.size >= 10 and far.max() < 1e-2 * near.max()
    _, tr60 = simulate_agglomerate(**kw, beam_energy_kv=60.0)

    def n_outer(tr):  # reflections beyond 0.4 1/A that are close to the Ewald sphere
        r = tr.grain_reflections(0, min_intensity=0.0)
        g = np.hypot(*(r["positions"] - 63.5).T) * tr.calibration.pixel_size
        return int(np.sum((g > 0.4) & (np.abs(r["s"]) < 0.5 / t)))

    assert electron_wavelength(60.0) > 2 * electron_wavelength(300.0)
    assert n_outer(tr300) > 2 * n_outer(tr60)  # stronger Ewald-sphere curvature at 60 kV


def test_electrons_are_conserved_for_thick_strongly_diffracting_crystals():
    ds, truth = simulate_agglomerate(
        structure="gold",
        n_grains=3,
        scan_shape=(16, 16),
        detector_shape=(96, 96),
        thickness_nm=(30.0, 40.0),
        zone_axis_fraction=1.0,
        dose=None,
        dtype=np.float64,
        descan_shift_px=0.0,
        pixel_size=0.02,
        seed=1,
    )
    totals = ds.data.sum(axis=(2, 3)).compute() / NOISELESS_DOSE
    assert totals.max() <= 1.0 + 1e-4  # never more electrons than the beam brought
    crystal = truth.labels > 0
    assert totals[crystal].min() > 0.5  # most scattered beams land on the detector
    assert totals.min() > 0.9
    r = truth.grain_reflections(0, min_intensity=0.0, on_detector=False)
    assert r["kinematic"].sum() > 1.0  # where two-beam intensities alone would exceed the beam
    assert r["intensity"].sum() == pytest.approx(1 - 0.05)  # capped at the beam left after the support


def test_descan_shift_moves_the_central_disk():
    ds, truth = simulate_agglomerate(**SMALL, dose=None, dtype=np.float64, descan_shift_px=2.5)
    sh = truth.descan_shift
    assert np.hypot(sh[..., 0], sh[..., 1]).max() == pytest.approx(2.5)
    assert np.abs(np.diff(sh, axis=0)).max() < 0.5 and np.abs(np.diff(sh, axis=1)).max() < 0.5  # smooth
    data = ds.data.compute()
    c = np.array(ds.calibration.center)
    yy, xx = np.indices(ds.detector_shape)
    win = np.hypot(yy - c[0], xx - c[1]) <= 6.0
    free = np.argwhere(truth.labels == 0)[::7]
    for y, x in free:
        f = data[y, x] * win
        com = np.array([(f * yy).sum(), (f * xx).sum()]) / f.sum()
        np.testing.assert_allclose(com - c, sh[y, x], atol=0.06)


def _moments_ratio_angle(frame, centre):
    yy, xx = np.indices(frame.shape)
    dy, dx = yy - centre[0], xx - centre[1]
    ann = (np.hypot(dy, dx) > 12) & (np.hypot(dy, dx) < 45)
    w = frame * ann
    cxx, cyy, cxy = (w * dx * dx).sum(), (w * dy * dy).sum(), (w * dx * dy).sum()
    ev, vec = np.linalg.eigh(np.array([[cxx, cxy], [cxy, cyy]]))
    ang = math.degrees(math.atan2(vec[1, 1], vec[0, 1])) % 180
    return math.sqrt(ev[1] / ev[0]), ang


def test_ellipticity_stretches_the_amorphous_ring():
    kw = dict(
        n_grains=1,
        scan_shape=(16, 16),
        detector_shape=(128, 128),
        grain_size_nm=8.0,
        dose=None,
        dtype=np.float64,
        descan_shift_px=0.0,
        background=0.3,
    )
    for ell, expect in (((1.0, 0.0), None), ((1.15, 30.0), 30.0)):
        ds, truth = simulate_agglomerate(**kw, ellipticity=ell)
        y, x = np.argwhere(truth.labels == 0)[0]
        ratio, ang = _moments_ratio_angle(ds.pattern(int(y), int(x)), ds.calibration.center)
        if expect is None:
            assert ratio < 1.01
        else:
            assert ratio > 1.08 and abs(ang - expect) < 3.0


def test_poisson_noise_mean_and_variance():
    kw = dict(
        n_grains=2,
        scan_shape=(16, 16),
        detector_shape=(64, 64),
        pixel_size=0.03,
        dtype=np.float32,
        descan_shift_px=1.3,
    )
    ds0, _ = simulate_agglomerate(**kw, dose=None)
    ds1, _ = simulate_agglomerate(**kw, dose=NOISELESS_DOSE)
    lam = ds0.data.compute().astype(np.float64)
    n = ds1.data.compute().astype(np.float64)
    assert np.array_equal(n, np.rint(n))
    tot_l, tot_n = lam.sum(axis=(2, 3)), n.sum(axis=(2, 3))
    z = (tot_n - tot_l) / np.sqrt(tot_l)
    assert abs(z.mean()) < 0.25 and 0.8 < z.std() < 1.2
    bright = lam > 2.0
    zz = (n[bright] - lam[bright]) / np.sqrt(lam[bright])
    assert abs(zz.mean()) < 0.05 and 0.95 < zz.std() < 1.05
    dim = (lam > 0.05) & (lam < 0.5)
    assert n[dim].mean() == pytest.approx(lam[dim].mean(), rel=0.05)
    assert n[dim].var() == pytest.approx(lam[dim].mean(), rel=0.08)


def test_frames_kernel_matches_numpy_reference():
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    pad, ky, kx = 4, 20, 24
    H, W = ky + 2 * pad, kx + 2 * pad
    npos, nref = 6, 9
    stamps = sp.random(nref, H * W, density=0.05, format="csr", random_state=3, dtype=np.float32)
    weights = rng.random((npos, nref)).astype(np.float32)
    weights[:, ::3] = 0.0
    central = rng.random(H * W).astype(np.float32)
    bg = rng.random(H * W).astype(np.float32)
    cw = rng.random(npos).astype(np.float32)
    shifts = rng.uniform(-2.4, 2.4, (npos, 2))
    seeds = position_seeds(0, 1, 0, np.arange(npos), np.zeros(npos, int))
    cidx = np.flatnonzero(central).astype(np.int64)
    out = frames_kernel(
        weights,
        stamps.indptr.astype(np.int64),
        stamps.indices.astype(np.int64),
        stamps.data,
        cw,
        cidx,
        central[cidx],
        bg,
        np.float32(0.2),
        np.float32(3.0),
        shifts,
        pad,
        W,
        ky,
        kx,
        seeds,
        False,
        False,
        np.inf,
        np.empty((npos, ky, kx), np.float32),
    )
    for p in range(npos):
        canvas = (stamps.T @ weights[p] + cw[p] * central + 0.2 * bg).reshape(H, W).astype(np.float64) * 3.0
        ref = ndimage.shift(canvas, shifts[p], order=1)[pad : pad + ky, pad : pad + kx]
        np.testing.assert_allclose(out[p], ref, rtol=1e-5, atol=1e-5)


def test_renderer_matches_its_numpy_reference(monkeypatch):
    import virtual_aperture.sample.simulate as sim

    made = []

    class Recording(sim.FrameRenderer):
        def __init__(self, **kw):
            super().__init__(**kw)
            made.append(self)

    monkeypatch.setattr(sim, "FrameRenderer", Recording)
    ds, truth = simulate_agglomerate(**SMALL, dose=None, dtype=np.float32, descan_shift_px=1.7)
    (r,) = made
    ys, xs = slice(8, 16), slice(0, 32)
    ref = r.shift_crop(r.expected_canvas(0, ys, xs), truth.descan_shift[ys, xs].reshape(-1, 2))
    np.testing.assert_allclose(ds.data[ys, xs].compute().reshape(ref.shape), ref, rtol=1e-4, atol=1e-3)


# ---- determinism, 5D, dtype -------------------------------------------------------------------
def test_deterministic_and_independent_of_chunking():
    a, _ = simulate_agglomerate(**SMALL)
    b, _ = simulate_agglomerate(**SMALL)
    c, _ = simulate_agglomerate(**{**SMALL, "seed": 3})
    x1 = a.data[10:14].compute()
    np.testing.assert_array_equal(x1, a.data[10:14].compute())  # same chunk twice
    np.testing.assert_array_equal(x1, b.data[10:14].compute())  # same seed
    np.testing.assert_array_equal(x1[1:3, 5:9], a.data[11:13, 5:9].compute())  # other slicing
    np.testing.assert_array_equal(a.data.rechunk((5, 7, 64, 64))[10:14].compute(), x1)
    assert not np.array_equal(x1, c.data[10:14].compute())


def test_frames_do_not_depend_on_the_render_block(monkeypatch):
    import virtual_aperture.sample.simulate as sim

    made = []

    class Recording(sim.FrameRenderer):
        def __init__(self, **kw):
            super().__init__(**kw)
            made.append(self)

    monkeypatch.setattr(sim, "FrameRenderer", Recording)
    ds, _ = simulate_agglomerate(**SMALL)
    (r,) = made
    big = r.render(0, slice(10, 14), slice(0, 32))
    small = r.render(0, slice(11, 13), slice(5, 9))
    np.testing.assert_array_equal(big[1:3, 5:9], small)
    np.testing.assert_array_equal(big, ds.data[10:14].compute())


def test_tilt_series_5d():
    ds, truth = simulate_agglomerate(
        n_grains=3,
        scan_shape=(24, 24),
        detector_shape=(32, 32),
        pixel_size=0.05,
        tilts=(-20, 20, 10),
        tilt_axis_deg=35.0,
        dose=None,
        seed=4,
    )
    assert ds.shape == (5, 24, 24, 32, 32) and ds.is_tilt_series
    assert ds.calibration.tilt_angles_deg == (-20.0, -10.0, 0.0, 10.0, 20.0)
    assert ds.calibration.tilt_axis_deg == 35.0
    assert truth.labels.shape == (5, 24, 24) and truth.footprints.shape == (3, 5, 24, 24)
    assert truth.drift.shape == (5, 2) and np.all(truth.drift[2] == 0) and np.any(truth.drift != 0)
    assert ds.tilt(4).shape == (24, 24, 32, 32)
    lam = ds.calibration.wavelength
    for g in range(3):
        # thicker projected path when tilted, reflections where geometry.predict_reflections puts them
        t0, t20 = truth.thickness[g, 2].max(), truth.thickness[g, 4].max()
        assert t20 == pytest.approx(t0 / math.cos(math.radians(20)), rel=0.03)
        tab = truth.reflection_tables[(g, 4)]
        pos, s, _ = predict_reflections(
            truth.UB[g],
            tab["hkl"],
            tilt_deg=20.0,
            tilt_axis_deg=35.0,
            wavelength=lam,
            pixel_size=0.05,
            center=(15.5, 15.5),
        )
        np.testing.assert_allclose(pos, tab["positions"]) and np.testing.assert_allclose(s, tab["s"])
    data = ds.data[:, 12].compute()
    assert data.shape == (5, 24, 32, 32) and data.sum() > 0
    ds2, _ = simulate_agglomerate(n_grains=1, scan_shape=(16, 16), detector_shape=(32, 32), tilts=[-5, 5])
    assert ds2.calibration.tilt_angles_deg == (-5.0, 5.0)
    ds3, _ = simulate_agglomerate(
        n_grains=1, scan_shape=(16, 16), detector_shape=(32, 32), tilts=(-30, 30, 2)
    )
    assert ds3.n_tilts == 31


def test_uint16_default_fits_and_overflow_is_clipped_with_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds, truth = simulate_agglomerate(**SMALL)
    d = ds.data[8:16].compute()
    assert d.dtype == np.uint16 and 0 < d.max() < 65535 and not truth.clipped
    with pytest.warns(UserWarning, match="clipped"):
        ds, truth = simulate_agglomerate(**SMALL, dose=1e7)
    assert truth.clipped and ds.data[8:16].compute().max() == 65535
    with pytest.warns(UserWarning, match="uint8"):
        simulate_agglomerate(**SMALL, dtype=np.uint8)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(n_grains=0), "n_grains"),
        (dict(n_grains=2.5), "n_grains"),
        (dict(scan_shape=(0, 10)), "scan_shape"),
        (dict(detector_shape=(8, 8)), "detector_shape"),
        (dict(grain_size_nm=(-5, 10)), "grain_size_nm"),
        (dict(grain_size_nm=(20, 10)), "grain_size_nm"),
        (dict(thickness_nm=-3), "thickness_nm"),
        (dict(structure="kryptonite"), "unknown structure 'kryptonite'"),
        (dict(tilts=(-85, 85, 5)), "±80"),
        (dict(tilts=[0, 90]), "±80"),
        (dict(tilts=(30, -30, 2)), "step"),
        (dict(tilts=[]), "at least one"),
        (dict(dose=-1.0), "dose"),
        (dict(background=1.5), "background"),
        (dict(pixel_size=0), "pixel_size"),
        (dict(probe_semiangle_mrad=-0.5), "probe_semiangle_mrad"),
        (dict(ellipticity=(0.0, 10.0)), "ellipticity"),
        (dict(descan_shift_px=-1), "descan_shift_px"),
        (dict(dtype="U8"), "dtype"),
        (dict(orientations=np.ones((4, 3, 3))), "rotation"),
        (dict(n_grains=40, grain_size_nm=(60, 80)), "cannot place"),
        (dict(d_min=0.1), "too many"),
        (dict(seed=-1), "seed"),
        (dict(background="lots"), "background"),
        (dict(tilt_axis_deg=None), "tilt_axis_deg"),
    ],
)
def test_bad_parameters_raise_clear_value_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        simulate_agglomerate(**{**SMALL, **kw})


def test_truth_pickles_and_checks_indices(noiseless):
    _, truth = noiseless
    back = pickle.loads(pickle.dumps(truth))
    assert isinstance(back, Truth)
    np.testing.assert_array_equal(back.labels, truth.labels)
    r1, r2 = truth.grain_reflections(1), back.grain_reflections(1)
    np.testing.assert_array_equal(r1["hkl"], r2["hkl"])
    with pytest.raises(ValueError, match="grain 9"):
        truth.grain_reflections(9)
    with pytest.raises(ValueError, match="tilt 1"):
        truth.grain_reflections(0, 1)
    with pytest.raises(ValueError, match="scan position"):
        truth.grain_reflections(0, scan_position=(40, 0))


def test_reflections_at_a_scan_position_include_descan_and_local_thickness():
    ds, truth = simulate_agglomerate(**SMALL, dose=None, dtype=np.float64, descan_shift_px=2.0)
    g = 1
    excl = truth.exclusive_footprint(g)
    np.testing.assert_array_equal(excl, truth.footprints[g] & (truth.footprints.sum(axis=0) == 1))
    lab = truth.exclusive_labels()
    assert lab.dtype == np.int32 and lab.shape == truth.footprints.shape[1:]
    for i in range(truth.n_grains):
        np.testing.assert_array_equal(lab == i + 1, truth.exclusive_footprint(i))
    assert np.all((lab == 0) == (truth.footprints.sum(axis=0) != 1))
    y, x = np.argwhere(excl)[len(np.argwhere(excl)) // 2]
    here = truth.grain_reflections(g, scan_position=(y, x), min_intensity=0.0, on_detector=False)
    plain = truth.grain_reflections(
        g, thickness_nm=float(truth.thickness[g, y, x]), min_intensity=0.0, on_detector=False
    )
    np.testing.assert_allclose(here["positions"], plain["positions"] + truth.descan_shift[y, x])
    np.testing.assert_allclose(here["intensity"], plain["intensity"])
