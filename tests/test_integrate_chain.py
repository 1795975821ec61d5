"""Chain: simulated tilt series of brookite → integrate_reflections → merge_reflections → solve_structure."""

from pathlib import Path

import gemmi
import numpy as np

from virtual_aperture.crystal.geometry import (
    miller_indices_within,
    predict_reflections,
    random_rotation,
    reciprocal_basis,
)
from virtual_aperture.crystal.integrate import integrate_reflections
from virtual_aperture.crystal.merge import merge_reflections
from virtual_aperture.crystal.solve import solve_structure

CIF = Path(__file__).parents[1] / "src" / "virtual_aperture" / "sample" / "structures" / "brookite.cif"
LAM, PIX, AXIS, SIG_S = 0.0251, 0.0095, 30.0, 0.003


def test_tilt_series_to_structure():
    st = gemmi.read_small_structure(str(CIF))
    cell = st.cell.parameters
    UB = random_rotation(np.random.default_rng(11)) @ reciprocal_basis(cell)
    hkl = miller_indices_within(cell, 0.8)
    calc = gemmi.StructureFactorCalculatorE(st.cell)
    i_kin = np.array([abs(calc.calculate_sf_from_small_structure(st, list(map(int, h)))) ** 2 for h in hkl])
    i_kin *= 2e4 / i_kin.max()
    tilts = np.arange(-40, 40.01, 0.5)
    shape, cen = (288, 288), (144.0, 144.0)
    rng = np.random.default_rng(0)
    pats = np.full((len(tilts), *shape), 1.0)
    yy, xx = np.mgrid[-4:5, -4:5]
    for t_i, t in enumerate(tilts):
        pos, s, _ = predict_reflections(
            UB, hkl, tilt_deg=t, tilt_axis_deg=AXIS, wavelength=LAM, pixel_size=PIX, center=cen
        )
        amp = i_kin * np.exp(-0.5 * (s / SIG_S) ** 2) / (np.sqrt(2 * np.pi) * SIG_S)
        on = (amp > 1e-2) & np.all((pos > 5) & (pos < np.array(shape) - 6), axis=1)
        for (py, px), a in zip(pos[on], amp[on]):
            iy, ix = int(py), int(px)
            g = np.exp(-((yy + iy - py) ** 2 + (xx + ix - px) ** 2) / 2.0)
            pats[t_i, iy - 4 : iy + 5, ix - 4 : ix + 5] += a * g / (2 * np.pi)
    pats = rng.poisson(pats).astype(np.float32)
    refl = integrate_reflections(
        pats,
        UB=UB,
        tilt_angles_deg=tilts,
        tilt_axis_deg=AXIS,
        wavelength=LAM,
        pixel_size=PIX,
        center=cen,
        d_min=0.8,
        radius_px=3.5,
        background_annulus=(5, 7),
        excitation_width=4 * SIG_S,
        space_group="P b c a",
    )
    assert len(refl) > 300
    merged, stats = merge_reflections(refl)
    assert stats.overall["completeness"] > 0.6
    assert stats.overall["cc_half"] > 0.9
    sol = solve_structure(merged, composition="TiO2", starts=4, seed=0)
    assert sol.converged, sol.message
    assert sol.r1 < 0.25
    assert sorted(a.element for a in sol.atoms) == ["O", "O", "Ti"]
    from test_phasing import match_distances

    truth = [(x.element.name, (x.fract.x, x.fract.y, x.fract.z)) for x in st.sites]
    dist = match_distances([(a.element, a.xyz) for a in sol.atoms], truth, cell, st.spacegroup.hm)
    assert dist[0] < 0.2 and np.all(dist[1:] < 0.3), dist
