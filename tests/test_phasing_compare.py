"""The comparison with a reference uses only the permitted origin shifts and the hand, element by element."""

import numpy as np
import pytest

from virtual_aperture.crystal.compare import match_to_reference, permitted_placements

pytest.importorskip("cctbx")

CELL = (7.1, 9.3, 11.2, 90, 90, 90)
SITES = [
    ("S", (0.511822, 0.950464, 0.144160)),
    ("O", (0.948649, 0.311831, 0.423326)),
    ("O", (0.827703, 0.409199, 0.549594)),
    ("N", (0.027559, 0.753513, 0.538143)),
    ("C", (0.329732, 0.788429, 0.303195)),
    ("C", (0.280409, 0.485191, 0.980737)),
]


def _moved(sites, R, t, cell=CELL, off_atom=None, off=0.0):
    out = []
    for i, (e, x) in enumerate(sites):
        y = (R @ np.array(x) + t) % 1.0
        if i == off_atom:
            y = y + np.array([off / cell[0], 0.0, 0.0])
        out.append((e, y))
    return out


def test_atom_0126_off_is_reported_0126_off_under_hand_and_origin_change():
    # the other hand and a permitted origin (½, 0, ½) of P 21 21 21; one atom 0.126 Å off along a
    found = _moved(SITES, -np.eye(3), np.array([0.5, 0.0, 0.5]), off_atom=1, off=0.126)
    dist = match_to_reference(found, SITES, CELL, "P 21 21 21")
    assert dist[1] == pytest.approx(0.126, abs=1e-6)
    np.testing.assert_allclose(np.delete(dist, 1), 0.0, atol=1e-9)


def test_no_continuous_translation_in_a_non_polar_group():
    found = _moved(SITES, np.eye(3), np.array([0.03, 0.0, 0.0]))  # 0.213 Å: not a permitted shift
    dist = match_to_reference(found, SITES, CELL, "P 21 21 21")
    assert np.all(dist > 0.2)


def test_polar_axis_is_free_but_only_along_it():
    # P 21: origin free along b; a shift there is no error, an atom off along a still is
    cell = (6.0, 7.0, 8.0, 90, 101.0, 90)
    found = _moved(SITES, np.eye(3), np.array([0.0, 0.37, 0.0]), cell=cell, off_atom=2, off=0.126)
    dist = match_to_reference(found, SITES, cell, "P 1 21 1")
    assert dist[2] == pytest.approx(0.126, abs=1e-3)
    np.testing.assert_allclose(np.delete(dist, 2), 0.0, atol=1e-6)
    _, cont = permitted_placements("P 1 21 1")
    np.testing.assert_allclose(np.abs(cont), [[0, 1, 0]])


def test_elements_are_matched_element_by_element():
    found = [(("N" if e == "C" else e), x) for e, x in SITES]  # carbons called nitrogen
    dist = match_to_reference(found, SITES, CELL, "P 21 21 21")
    elements = [e for e, _ in SITES]
    assert all(np.isinf(d) for d, e in zip(dist, elements) if e == "C")
    # the nitrogen site is matched by a (wrongly named) nitrogen only if one is on it
    assert dist[elements.index("N")] == pytest.approx(0.0, abs=1e-9)
    loose = match_to_reference(found, SITES, CELL, "P 21 21 21", by_element=False)
    np.testing.assert_allclose(loose, 0.0, atol=1e-9)


def test_uio66_origins_are_the_normalizer_shifts():
    placements, cont = permitted_placements("F -4 3 m")
    assert len(cont) == 0
    assert len(placements) == 8  # 4 origins × 2 hands
    centring = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    proper = [t for R, t in placements if np.allclose(R, np.eye(3))]
    for k in range(4):  # origin shifts k/4 (1, 1, 1) along the body diagonal, modulo the F centring
        d = (np.array(proper)[:, None, :] - k / 4 - centring[None]) % 1.0
        assert np.any(np.all(np.isclose(d, 0) | np.isclose(d, 1), axis=2)), k
    assert len(proper) == 4
