"""Shipped crystal structures: readable, right symmetry and cell, sane chemistry."""

from __future__ import annotations

from pathlib import Path

import gemmi
import numpy as np
import pytest

from virtual_aperture import builtin_structures, load_structure
from virtual_aperture.sample.scattering import gemmi_structure_factor, structure_factor_table
from virtual_aperture.sample.structures import STRUCTURE_DIR, crystallographic_copy, structure_source


def neighbour_distances(st: gemmi.SmallStructure, cutoff: float = 3.8) -> dict[str, list[tuple[float, str]]]:
    """For every independent site: sorted (distance, element) of all atoms within ``cutoff`` Å."""
    sites = st.get_all_unit_cell_sites()
    frac = np.array([s.fract.tolist() for s in sites])
    elem = [s.element.name for s in sites]
    A = np.array(st.cell.orth.mat)
    shifts = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1])).reshape(3, -1).T
    out = {}
    for s in st.sites:
        d = frac - np.array(s.fract.tolist())
        d -= np.round(d)
        found = []
        for sh in shifts:
            r = np.linalg.norm((d + sh) @ A.T, axis=1)
            found += [(float(x), e) for x, e in zip(r, elem) if 0.05 < x < cutoff]
        out[s.label] = sorted(found)
    return out


def nearest(nb: dict, label: str, element: str, k: int = 1) -> list[float]:
    return [d for d, e in nb[label] if e == element][:k]


def test_builtin_structures_listed_and_readable():
    names = builtin_structures()
    assert {"uio66", "gold", "brookite"} <= set(names)
    for name in names:
        st = load_structure(name)
        assert isinstance(st, gemmi.SmallStructure) and len(st.sites) > 0
        # every shipped CIF names its published source, and SOURCES.md lists it
        assert structure_source(name), name
    sources = (STRUCTURE_DIR / "SOURCES.md").read_text()
    for cif in STRUCTURE_DIR.glob("*.cif"):
        assert cif.name in sources, f"{cif.name} missing from SOURCES.md"


def test_uio66_symmetry_cell_and_composition():
    st = load_structure("UiO66")
    assert st.spacegroup.number == 216  # F-43m, the ordered mu3-O/mu3-OH cluster (see the CIF)
    assert st.cell.a == pytest.approx(20.72, abs=0.02) and st.cell.alpha == 90
    assert len(st.sites) >= 6 and {s.element.name for s in st.sites} == {"Zr", "O", "C", "H"}
    counts: dict[str, int] = {}
    for s in st.get_all_unit_cell_sites():
        counts[s.element.name] = counts.get(s.element.name, 0) + 1
    # 4 x Zr6O4(OH)4(C8H4O4)6 per cell
    assert counts == {"Zr": 24, "O": 128, "C": 192, "H": 112}


def test_uio66_bond_lengths():
    st = load_structure("uio66")
    nb = neighbour_distances(st)
    zr_o = nearest(nb, "Zr1", "O", 8)
    assert len(zr_o) == 8 and all(2.0 <= d <= 2.3 for d in zr_o)  # square antiprism
    assert 1.24 <= nearest(nb, "O3", "C")[0] <= 1.30  # carboxylate C-O
    assert all(1.35 <= d <= 1.52 for d in nearest(nb, "C1", "C", 3))  # ring + ring-carboxylate
    assert 1.35 <= nearest(nb, "C2", "C")[0] <= 1.42
    assert 0.93 <= nearest(nb, "C2", "H")[0] <= 1.10
    assert 0.90 <= nearest(nb, "O2", "H")[0] <= 1.00  # mu3-OH
    # Zr6 octahedron edge ~3.5 A
    assert 3.4 <= nearest(nb, "Zr1", "Zr")[0] <= 3.6


def test_bond_check_catches_a_mistranscribed_coordinate():
    st = load_structure("uio66")
    f = st.sites[4].fract  # C1, moved by 0.2 A within the linker plane
    st.sites[4].fract = gemmi.Fractional(f.x, f.y + 0.01, f.z)
    nb = neighbour_distances(st)
    assert not all(1.35 <= d <= 1.52 for d in nearest(nb, "C1", "C", 3))


def test_gold_and_brookite():
    au = load_structure("gold")
    assert au.spacegroup.number == 225 and au.cell.a == pytest.approx(4.0782)
    nb = neighbour_distances(au)
    au_au = nearest(nb, "Au1", "Au", 12)
    assert len(au_au) == 12 and all(d == pytest.approx(2.8837, abs=1e-3) for d in au_au)
    tio2 = load_structure("brookite")
    assert tio2.spacegroup.number == 61 and tio2.spacegroup.hm == "P b c a"
    assert (tio2.cell.a, tio2.cell.b, tio2.cell.c) == pytest.approx((9.174, 5.449, 5.138))
    nb = neighbour_distances(tio2)
    ti_o = nearest(nb, "Ti1", "O", 7)
    assert all(1.85 <= d <= 2.06 for d in ti_o[:6]) and ti_o[6] > 2.6  # TiO6 octahedron
    assert np.mean(ti_o[:6]) == pytest.approx(1.96, abs=0.02)


def test_load_structure_paths_and_objects(tmp_path: Path):
    src = STRUCTURE_DIR / "brookite.cif"
    p = tmp_path / "my.cif"
    p.write_text(src.read_text())
    assert load_structure(p).spacegroup.number == 61
    st = load_structure("gold")
    assert load_structure(st) is st


@pytest.mark.parametrize(
    "bad, match",
    [
        ("unobtainium", "unknown structure 'unobtainium'"),
        (42, "structure must be"),
        ("/nonexistent/x.cif", "unknown structure"),
    ],
)
def test_load_structure_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        load_structure(bad)


def test_load_structure_unreadable_file(tmp_path: Path):
    p = tmp_path / "broken.cif"
    p.write_text("data_x\n_cell_length_a 5\nloop_\n_atom_site_label\n")
    with pytest.raises(ValueError, match="broken.cif"):
        load_structure(p)


def test_structure_factor_table_matches_gemmi_on_every_reflection_sampled():
    st = load_structure("brookite")
    hkl, f = structure_factor_table(st, 1.0)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(hkl), 25, replace=False)
    np.testing.assert_allclose(f[idx], gemmi_structure_factor(st, hkl[idx]), rtol=1e-6)
    # Pbca extinction: 0kl with k odd is absent
    assert not np.any((hkl[:, 0] == 0) & (hkl[:, 1] % 2 == 1))
    # special positions handled: F(111) of gold = 4 f_Au(111) e^{-B s^2}
    au = load_structure("gold")
    s2 = 3 / (4 * 4.0782**2)
    f_au = gemmi.Element("Au").c4322.calculate_sf(s2) * np.exp(-8 * np.pi**2 * 0.0076 * s2)
    assert gemmi_structure_factor(au, [[1, 1, 1]])[0] == pytest.approx(4 * f_au, rel=1e-4)
    assert crystallographic_copy(au).sites[0].occ == pytest.approx(1 / 48)
