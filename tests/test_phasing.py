"""Charge flipping and structure solution on known structures (kinematic data, ~70 % complete, noisy)."""

from pathlib import Path

import gemmi
import numpy as np
import pytest

from virtual_aperture.crystal.atoms import Atom, structure_factors
from virtual_aperture.crystal.compare import match_to_reference
from virtual_aperture.crystal.phasing import charge_flip, expand_to_p1
from virtual_aperture.crystal.reflections import Reflections
from virtual_aperture.crystal.solve import simulate_reflections, solve_structure

from builders import P212121_CELL, P212121_SITES, make_structure

STRUCTURES = Path(__file__).parents[1] / "src" / "virtual_aperture" / "sample" / "structures"


def match_distances(found, truth, cell, sg):
    """Distance (Å) of each true atom to the nearest found atom under the best origin shift and hand."""
    return match_to_reference(found, truth, cell, sg)


def check_solution(sol, truth, cell, sg):
    assert sol.converged, sol.message
    assert sol.r1 <= 0.25
    dist = match_distances([(a.element, a.xyz) for a in sol.atoms], truth, cell, sg)
    heavy = np.array([gemmi.Element(e).atomic_number > 10 for e, _ in truth])
    assert np.all(dist[heavy] < 0.2), dist
    assert np.mean(dist[~heavy] < 0.3) >= 0.85, dist
    return dist


def test_solves_p212121_organic_like_structure():
    st = make_structure(P212121_CELL, "P 21 21 21", P212121_SITES)
    refl = simulate_reflections(st, d_min=0.8, tilt_range_deg=35, noise=0.05, seed=2)
    assert 0.6 < refl.meta["completeness"] < 0.8
    sol = solve_structure(refl, composition="S O2 N C4", starts=4, seed=0)
    check_solution(sol, [(e, x) for _, e, x in P212121_SITES], P212121_CELL, "P 21 21 21")
    assert {a.element for a in sol.atoms} == {"S", "O", "N", "C"}
    fom = sol.report()["phasing"]
    assert fom["n_converged_starts"] >= 1 and fom["symmetry_agreement"] > 0.5


def test_solves_shipped_brookite():
    st = gemmi.read_small_structure(str(STRUCTURES / "brookite.cif"))
    refl = simulate_reflections(st, d_min=0.8, tilt_range_deg=40, noise=0.05, seed=1)
    sol = solve_structure(refl, composition="TiO2", starts=4, seed=1)
    truth = [(s.element.name, (s.fract.x, s.fract.y, s.fract.z)) for s in st.sites]
    check_solution(sol, truth, st.cell.parameters, st.spacegroup.hm)


def test_low_resolution_gives_honest_no_solution():
    st = make_structure(P212121_CELL, "P 21 21 21", P212121_SITES)
    refl = simulate_reflections(st, d_min=2.2, tilt_range_deg=35, seed=2)
    sol = solve_structure(refl, composition="S O2 N C4", starts=2, seed=0, max_iterations=300)
    assert not sol.converged and sol.atoms == [] and "resolution" in sol.message


def test_pure_noise_gives_no_solution():
    st = make_structure(P212121_CELL, "P 21 21 21", P212121_SITES)
    refl = simulate_reflections(st, d_min=0.9, tilt_range_deg=35, seed=2)
    rng = np.random.default_rng(5)
    noise = refl.replace(intensity=rng.exponential(100.0, len(refl)), sigma=np.full(len(refl), 10.0))
    sol = solve_structure(noise, composition="S O2 N C4", starts=2, seed=0, max_iterations=400)
    assert not sol.converged
    assert sol.atoms == []
    assert sol.message


def test_structure_factors_match_gemmi_and_p1_expansion_is_closed():
    st = make_structure(P212121_CELL, "P 21 21 21", P212121_SITES, b=1.5)
    hkl = np.array([[1, 2, 3], [0, 4, 1], [2, 0, 5], [3, 3, 3], [5, 1, 0]])
    calc = gemmi.StructureFactorCalculatorE(st.cell)
    ref = np.array([calc.calculate_sf_from_small_structure(st, list(map(int, h))) for h in hkl])
    atoms = [Atom(l, e, *x, 1.0, b_iso=1.5) for l, e, x in P212121_SITES]
    ours = structure_factors(atoms, hkl, cell=P212121_CELL, space_group="P 21 21 21")
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)
    h1, v = expand_to_p1(hkl, np.arange(5.0), "P 21 21 21")
    assert len(h1) == 8 + 4 + 4 + 8 + 4  # general reflections have 8 mates, zone reflections 4
    assert {tuple(x) for x in (-h1).tolist()} == {tuple(x) for x in h1.tolist()}


def test_charge_flip_rejects_bad_input():
    r = Reflections(np.array([[1, 0, 0]] * 5), np.ones(5), np.ones(5), cell=(5, 5, 5, 90, 90, 90))
    with pytest.raises(ValueError, match="too few"):
        charge_flip(r)
    with pytest.raises(ValueError, match="delta_factor"):
        charge_flip(r, delta_factor=5)
    with pytest.raises(ValueError, match="Reflections"):
        charge_flip(np.zeros((3, 4)))
