"""Refinement of the exported model (scale, per-atom B, positions) against merged intensities."""

import dataclasses

import gemmi
import numpy as np
import pytest

from virtual_aperture.crystal.atoms import Atom, _fe, structure_factors
from virtual_aperture.crystal.geometry import miller_indices_within
from virtual_aperture.crystal.refinement import (
    model_structure_factors,
    r1_factor_of,
    refine_structure,
)
from virtual_aperture.crystal.reflections import Reflections

CELL = (7.1, 9.3, 11.2, 90, 90, 90)
TRUE = [
    Atom("S1", "S", 0.511822, 0.950464, 0.144160, 1.0, 4, 1.0, 0.8),
    Atom("O2", "O", 0.948649, 0.311831, 0.423326, 1.0, 4, 1.0, 1.6),
    Atom("N4", "N", 0.027559, 0.753513, 0.538143, 1.0, 4, 1.0, 2.4),
    Atom("C5", "C", 0.329732, 0.788429, 0.303195, 1.0, 4, 1.0, 1.2),
]


def _gemmi_f(atoms, hkl, cell, sg):
    st = gemmi.SmallStructure()
    st.cell = gemmi.UnitCell(*cell)
    st.spacegroup_hm = gemmi.SpaceGroup(sg).xhm()
    st.spacegroup = gemmi.SpaceGroup(sg)
    for a in atoms:
        s = gemmi.SmallStructure.Site()
        s.label, s.element, s.occ = a.label, gemmi.Element(a.element), a.occupancy
        s.u_iso = a.b_iso / (8 * np.pi**2)
        s.fract = gemmi.Fractional(a.x, a.y, a.z)
        st.add_site(s)
    st.setup_cell_images()
    calc = gemmi.StructureFactorCalculatorE(st.cell)
    return np.array([abs(calc.calculate_sf_from_small_structure(st, [int(v) for v in h])) for h in hkl])


def test_model_structure_factors_on_special_positions():
    # Fm-3m, Zr on 4a (m-3m) and O on 8c (-43m): F = 4 [f_Zr T_Zr + 2 f_O T_O cos(π(h+k+l)/2)]
    cell = (8.0,) * 3 + (90,) * 3
    atoms = [
        Atom("Zr1", "Zr", 0, 0, 0, 1.0, 4, 1.0, 0.7),
        Atom("O1", "O", 0.25, 0.25, 0.25, 1.0, 8, 1.0, 1.1),
    ]
    hkl = miller_indices_within(cell, 1.0)
    hkl = hkl[np.all(hkl % 2 == hkl[:, :1] % 2, axis=1)]  # F centring: unmixed parity
    s2 = (hkl**2).sum(1) / 64.0
    expect = 4 * (
        _fe("Zr", s2) * np.exp(-0.7 * s2 / 4)
        + 2 * _fe("O", s2) * np.exp(-1.1 * s2 / 4) * np.cos(np.pi * hkl.sum(1) / 2)
    )
    ours = model_structure_factors(atoms, hkl, cell=cell, space_group="F m -3 m")
    np.testing.assert_allclose(ours.real, expect, atol=1e-9 * np.abs(expect).max())
    # and the unique-image sum of crystal/atoms.py (also with a half-occupied 24e site)
    atoms.append(Atom("C1", "C", 0.21, 0, 0, 1.0, 24, 0.5, 1.9))
    np.testing.assert_allclose(
        model_structure_factors(atoms, hkl, cell=cell, space_group="F m -3 m"),
        structure_factors(atoms, hkl, cell=cell, space_group="F m -3 m"),
        atol=1e-9,
    )


def test_refinement_recovers_b_and_positions_and_scores_the_returned_model():
    hkl = miller_indices_within(CELL, 0.9)
    hkl = hkl[(hkl[:, 0] >= 0) & (hkl[:, 1] >= 0) & (hkl[:, 2] >= 0)]
    i_true = 3.0 * _gemmi_f(TRUE, hkl, CELL, "P 21 21 21") ** 2
    refl = Reflections(hkl, i_true, 0.01 * i_true + 1e-3, cell=CELL, space_group="P 21 21 21", merged=True)
    rng = np.random.default_rng(0)
    start = [
        dataclasses.replace(a, x=a.x + rng.normal(0, 0.006), y=a.y + rng.normal(0, 0.005), b_iso=1.0)
        for a in TRUE
    ]
    res = refine_structure(start, refl)
    assert res.refined and res.r1 < 0.005 < res.r1_start
    np.testing.assert_allclose([a.b_iso for a in res.atoms], [a.b_iso for a in TRUE], atol=0.05)
    for a, t in zip(res.atoms, TRUE):
        assert np.linalg.norm((a.xyz - t.xyz) * CELL[:3]) < 0.005
    # R1 and scale belong to exactly the returned atoms (cctbx's r1_factor definition)
    fc = np.abs(structure_factors(res.atoms, hkl, cell=CELL, space_group="P 21 21 21"))
    r1, k = r1_factor_of(np.sqrt(i_true), fc)
    assert r1 == pytest.approx(res.r1, abs=1e-9) and k == pytest.approx(res.scale, rel=1e-9)
    assert k == pytest.approx(np.sqrt(3.0), rel=1e-3)


def test_refinement_refuses_empty_input():
    refl = Reflections(np.array([[1, 0, 0]]), [1.0], [0.1], cell=CELL)
    with pytest.raises(ValueError, match="no atoms"):
        refine_structure([], refl)
    with pytest.raises(ValueError, match="no reflections"):
        refine_structure(TRUE, refl.select(np.zeros(1, bool)))
