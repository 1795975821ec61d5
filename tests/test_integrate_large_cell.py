"""Integration of a large face-centred cell (UiO-66, a = 20.7 Å) on patterns of the independent
kinematic generator (tests/generators/kinematic.py): the centring-forbidden predictions must not
reject their allowed neighbours as overlapped, and the low-order reflections a few pixels from the
unscattered beam must not take the beam's flank for their background."""

from pathlib import Path

import numpy as np
import pytest
from generators import kinematic as K

from virtual_aperture.crystal.integrate import integrate_reflections

CIF = Path(__file__).parents[1] / "src" / "virtual_aperture" / "sample" / "structures" / "uio66.cif"


@pytest.fixture(scope="module")
def uio_series():
    cr = K.CifCrystal(CIF, name="uio66")
    S = K.tilt_series(
        [cr],
        tilts=(-15, 15, 1),
        pixel_size=0.01,
        detector_shape=(128, 128),
        rocking_sigma=0.003,
        seed=2,
        rotation=True,
        spot_sigma_px=1.0,
    )
    pats = np.random.default_rng(0).poisson(S.patterns[0] * 2e5 / S.patterns[0].max() + 2.0).astype(float)
    return cr, S, pats


def _integrate(S, pats, **kw):
    return integrate_reflections(
        pats,
        UB=S.UB[0].T,  # the project's UB: columns a*, b*, c*
        tilt_angles_deg=S.tilts_deg,
        tilt_axis_deg=S.tilt_axis_deg,
        wavelength=K.wavelength_A(S.kv),
        pixel_size=S.pixel_size,
        center=S.center,
        d_min=1.7,
        radius_px=3.4,
        background_annulus=(5.4, 7.4),
        **kw,
    )


def _r_vs_truth(cr, refl):
    h = np.asarray(refl.hkl)
    g = np.linalg.norm(h @ K.reciprocal_vectors(cr.cell), axis=1)
    allowed = ~((h % 2 != h[:, :1] % 2).any(axis=1))
    h, g, i = h[allowed], g[allowed], np.asarray(refl.intensity)[allowed]
    fc = np.abs(cr.structure_factors(h, g))
    fo = np.sqrt(np.clip(i, 0, None))
    k = (fo * fc).sum() / (fc * fc).sum()
    return float(np.abs(fo - k * fc).sum() / fo.sum()), g


def test_forbidden_predictions_do_not_reject_allowed_neighbours(uio_series):
    cr, S, pats = uio_series
    p = _integrate(S, pats, centring="P", beam_radius_px=7.5)
    f = _integrate(S, pats, centring="F", beam_radius_px=7.5)
    n_allowed = [int((~((r.hkl % 2 != r.hkl[:, :1] % 2).any(axis=1))).sum()) for r in (p, f)]
    assert n_allowed[1] > 1.5 * n_allowed[0], n_allowed
    assert _r_vs_truth(cr, f)[0] < 0.05


def test_low_order_reflections_next_to_the_beam(uio_series):
    cr, S, pats = uio_series

    def low_order(refl):
        h = np.asarray(refl.hkl)
        g = np.linalg.norm(h @ K.reciprocal_vectors(cr.cell), axis=1)
        fc2 = np.abs(cr.structure_factors(h, g)) ** 2
        strong = (g > 0.2) & (fc2 > 0.01 * fc2.max())
        k = np.median(refl.intensity[strong] / fc2[strong])  # scale from the reflections far out
        lo = g < 0.1
        return h[lo], refl.intensity[lo] / (k * fc2[lo])

    h_bare, ratio_bare = low_order(_integrate(S, pats, centring="F"))
    h, ratio = low_order(_integrate(S, pats, centring="F", beam_radius_px=7.5))
    assert len(h) == 2 and set(map(abs, h.sum(axis=1))) == {2}  # ±200, 9.7 px from the beam
    assert np.all(np.abs(ratio - 1) < 0.02), ratio
    assert np.all(ratio_bare < 0.8), ratio_bare  # the beam's flank taken for their background
