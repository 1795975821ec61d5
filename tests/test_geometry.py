import gemmi
import numpy as np
import pytest

from virtual_aperture.crystal import geometry as geo


@pytest.mark.parametrize(
    "cell", [(20.7, 20.7, 20.7, 90, 90, 90), (5.1, 7.3, 9.2, 80, 95, 110), (4.9, 4.9, 5.4, 90, 90, 120)]
)
def test_reciprocal_basis_matches_gemmi(cell):
    B = geo.reciprocal_basis(cell)
    uc = gemmi.UnitCell(*cell)
    for hkl in [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, -2, 3)]:
        assert np.linalg.norm(B @ hkl) == pytest.approx(1 / uc.calculate_d(list(hkl)), rel=1e-9)
    # gemmi's fractionalisation matrix is the transpose of B
    frac = np.array(uc.frac.mat.tolist())
    np.testing.assert_allclose(B, frac.T, atol=1e-12)
    np.testing.assert_allclose(geo.cell_from_basis(geo.direct_basis(cell)), cell, atol=1e-9)


def test_rotation_and_tilt():
    R = geo.tilt_rotation(90, 0)  # about +x
    np.testing.assert_allclose(R @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    U = geo.random_rotation(np.random.default_rng(1))
    np.testing.assert_allclose(U @ U.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(U) == pytest.approx(1)


def test_predict_then_map_back_round_trip():
    rng = np.random.default_rng(0)
    cell = (8.0, 9.0, 11.0, 90, 100, 90)
    UB = geo.random_rotation(rng) @ geo.reciprocal_basis(cell)
    lam = 0.02508
    hkl = geo.miller_indices_within(cell, 0.8)
    kw = dict(
        tilt_axis_deg=23.0, wavelength=lam, pixel_size=0.01, center=(63.2, 64.7), ellipticity=(1.03, 30.0)
    )
    for tilt in (-20.0, 0.0, 17.5):
        pos, s, g_lab = geo.predict_reflections(UB, hkl, tilt_deg=tilt, **kw)
        on = np.abs(s) < 1e-3
        assert on.sum() > 5
        back = geo.detector_to_crystal_frame(pos[on], tilt_deg=tilt, **kw)
        expected = (UB @ hkl[on].T).T
        np.testing.assert_allclose(back, expected, atol=1.5e-3)  # error ≈ |s| off the sphere


def test_excitation_error_sign_and_curvature():
    lam = 0.01969
    g = np.array([[1.0, 0.0, 0.0]])
    s = geo.excitation_error(g, lam)
    # a vector in the zero-layer plane lies outside the sphere by ≈ g²λ/2
    assert s[0] == pytest.approx(-(1.0**2) * lam / 2, rel=1e-3)


def test_miller_indices_complete():
    cell = (5.0, 6.0, 7.0, 90, 90, 90)
    hkl = geo.miller_indices_within(cell, 1.0)
    d = 1 / np.linalg.norm(hkl @ geo.reciprocal_basis(cell).T, axis=1)
    assert d.min() >= 1.0 - 1e-12
    assert (5, 0, 0) in set(map(tuple, hkl)) and (6, 0, 0) not in set(map(tuple, hkl))
    with pytest.raises(ValueError):
        geo.miller_indices_within(cell, 0)
    with pytest.raises(ValueError, match="invalid unit cell"):
        geo.reciprocal_basis((1, 1, -1, 90, 90, 90))
