"""Indexing on tilt series made by an independent kinematic generator (tests/generators/kinematic.py,
which does not import virtual_aperture): its own rotations, Ewald sphere and detector mapping in
the project's documented conventions; P (triclinic), C (monoclinic), I and F (cubic) lattices."""

import math

import gemmi
import numpy as np
import pytest
from generators import kinematic as K

import virtual_aperture as va


def test_generator_is_self_consistent():
    # right-handed: +90° about z takes +x to +y
    assert K.quaternion_rotation([0, 0, 1], 90) @ [1, 0, 0] == pytest.approx([0, 1, 0], abs=1e-12)
    # reciprocal metric agrees with gemmi's reciprocal cell
    for cr in K.CRYSTALS.values():
        R = K.reciprocal_vectors(cr.cell)
        rc = gemmi.UnitCell(*cr.cell).reciprocal()
        assert [np.linalg.norm(v) for v in R] == pytest.approx([rc.a, rc.b, rc.c], rel=1e-9)
    # centring absences come out of the atoms
    hkl, _, _ = K.reflections(K.CRYSTALS["cF"], 1.0)
    assert np.all((hkl % 2 == hkl[:, :1] % 2).all(axis=1))
    hkl, _, _ = K.reflections(K.CRYSTALS["cI"], 1.0)
    assert np.all(hkl.sum(axis=1) % 2 == 0)
    hkl, _, _ = K.reflections(K.CRYSTALS["mC"], 1.0)
    assert np.all((hkl[:, 0] + hkl[:, 1]) % 2 == 0)
    assert K.wavelength_A(200) == pytest.approx(0.02508, abs=2e-5)


def _index(name, step, seed=1, span=30):
    cr = K.CRYSTALS[name]
    S = K.tilt_series([cr], tilts=(-span, span, step), seed=seed)
    pats = np.random.default_rng(seed).poisson(S.patterns[0] * 1e4 / S.patterns[0].max() + 0.5).astype(float)
    cal = va.Calibration(
        pixel_size=S.pixel_size,
        beam_energy_kv=S.kv,
        tilt_angles_deg=tuple(S.tilts_deg),
        tilt_axis_deg=S.tilt_axis_deg,
        center=S.center,
    )
    peaks = va.find_bragg_peaks(pats, calibration=cal, exclude_center_radius=4, threshold=6, center="beam")
    return S, va.index_tilt_series(peaks, calibration=cal)


@pytest.mark.parametrize("name", ["aP", "mC", "cI", "cF"])
def test_index_independent_fine_series(name):
    S, r = _index(name, 1)
    verdict, why = K.cell_matches(
        r.UB, S.UB[0], found_centring=r.centring, true_centring=S.crystals[0].centring
    )
    assert verdict == "right", why
    assert r.lattice == name
    assert r.indexed_fraction > 0.95
    assert abs(r.tilt_axis_deg - S.tilt_axis_deg) < 0.5
    # Miller indices: the found UB maps them onto the true reciprocal vectors (no sign error)
    g_true = np.asarray(S.UB[0]).T
    M = np.rint(np.linalg.solve(g_true, r.UB))
    assert abs(round(abs(np.linalg.det(M)))) >= 1 and np.allclose(g_true @ M, r.UB, atol=0.01)
    assert math.isfinite(r.rmsd_px) and r.rmsd_px < 0.3


def test_cif_crystal_structure_factors_and_rotation_frames():
    from pathlib import Path

    cif = Path(__file__).parents[1] / "src" / "virtual_aperture" / "sample" / "structures" / "uio66.cif"
    cr = K.CifCrystal(cif)
    assert cr.centring == "F" and len(cr.elements) == 456  # Zr24 O128 C192 H112
    st = gemmi.read_small_structure(str(cif))
    st.change_occupancies_to_crystallographic()  # gemmi sums every operation's image of a site
    calc = gemmi.StructureFactorCalculatorE(st.cell)
    hkl = np.array([[1, 1, 1], [2, 0, 0], [4, 2, 0], [6, 6, 2], [13, 5, 3], [1, 0, 0]])
    g = np.linalg.norm(hkl @ K.reciprocal_vectors(cr.cell), axis=1)
    ours = np.abs(cr.structure_factors(hkl, g))
    theirs = [abs(calc.calculate_sf_from_small_structure(st, list(map(int, h)))) for h in hkl]
    assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-6)  # 100 is F-forbidden: both 0
    # continuous rotation: a reflection's weight summed over its frames is σ√(2π)/(|ds/dφ|·Δφ)
    S = K.tilt_series(
        [K.CRYSTALS["cI"]], tilts=(-20, 20, 1), rocking_sigma=0.004, rotation=True, seed=3, d_min=1.5
    )
    perp = np.cross([0, 0, 1.0], [math.cos(math.radians(20)), math.sin(math.radians(20)), 0])
    total: dict = {}
    for t, sp in zip(S.tilts_deg, S.spots[0], strict=True):
        for h, w, f2 in zip(map(tuple, sp["hkl"]), sp["intensity"], sp["F2"], strict=True):
            total.setdefault(h, []).append((t, w / f2))
    checked = 0
    for h, obs in total.items():
        ts = [t for t, _ in obs]
        if min(ts) <= -19 or max(ts) >= 19 or len(obs) < 2:
            continue  # cut by the ends of the series
        t0 = ts[int(np.argmax([w for _, w in obs]))]
        g_lab = (
            np.asarray(h)
            @ S.UB[0]
            @ K.quaternion_rotation([math.cos(math.radians(20)), math.sin(math.radians(20)), 0], t0).T
        )
        rate = abs(g_lab @ perp)
        if rate < 0.3 * np.linalg.norm(g_lab):
            continue
        expect = 0.004 * math.sqrt(2 * math.pi) / (rate * math.radians(1.0))
        assert sum(w for _, w in obs) == pytest.approx(expect, rel=0.05), h
        checked += 1
    assert checked > 20
