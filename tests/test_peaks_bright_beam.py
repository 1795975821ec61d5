"""A direct beam ~10³× brighter than any Bragg spot (abTEM multislice, tests/data/abtem_series.npz,
made without virtual_aperture) must not bury the spots under the default background subtraction
(found by the benchmark of issue 11, docs/indexing.md); a faint beam is left as it was."""

import numpy as np
import pytest
from generators import abtem_series as A
from generators import kinematic as K

import virtual_aperture as va
from virtual_aperture.crystal import peaks as peaks_module


def _ratio(img, center):
    """brightest pixel within 4 px of the centre / brightest pixel outside"""
    r = np.hypot(*(np.indices(img.shape[-2:]) - np.reshape(center, (2, 1, 1))))
    return img[..., r <= 4].max() / img[..., r > 4].max()


@pytest.fixture(scope="module")
def series():
    return A.load()


@pytest.mark.parametrize("i", [0, 2])  # a cF and an mC nanocrystal
def test_default_peak_finding_indexes_multislice_series(series, i, monkeypatch):
    s = series[i]
    pats = np.random.default_rng(i).poisson(s["patterns"] * 1e7 + 10.0).astype(float)
    assert _ratio(pats[0], s["center"]) > 100 * peaks_module.BEAM_CAP
    cal = va.Calibration(
        pixel_size=s["pixel_size"],
        beam_energy_kv=s["kv"],
        tilt_angles_deg=tuple(float(a) for a in s["tilts_deg"]),
        tilt_axis_deg=s["tilt_axis_deg"],
        center=s["center"],
    )
    kw = dict(calibration=cal, exclude_center_radius=4, threshold=6, center="beam")
    peaks = va.find_bragg_peaks(pats, **kw)
    assert sum(len(p) for p in peaks) > 100
    r = va.index_tilt_series(peaks, calibration=cal)
    verdict, why = K.cell_matches(r.UB, s["UB"], found_centring=r.centring, true_centring=s["centring"])
    assert verdict == "right", why
    monkeypatch.setattr(peaks_module, "BEAM_CAP", np.inf)  # the beam blurred into the background
    assert sum(len(p) for p in va.find_bragg_peaks(pats, **kw)) < 10


def test_faint_beam_left_alone(monkeypatch):
    """The kinematic generator's beam (3–5× the brightest spot) is below the cap: same peaks."""
    S = K.tilt_series([K.CRYSTALS["aP"]], tilts=(-4, 4, 1), seed=1)
    pats = np.random.default_rng(1).poisson(S.patterns[0] * 1e4 / S.patterns[0].max() + 0.5).astype(float)
    assert max(_ratio(p, S.center) for p in pats) < peaks_module.BEAM_CAP
    kw = dict(exclude_center_radius=4, threshold=6, center="beam")
    capped = va.find_bragg_peaks(pats, **kw)
    monkeypatch.setattr(peaks_module, "BEAM_CAP", np.inf)
    plain = va.find_bragg_peaks(pats, **kw)
    assert sum(len(p) for p in capped) > 50
    for a, b in zip(capped, plain):
        assert np.array_equal(a.positions, b.positions)
