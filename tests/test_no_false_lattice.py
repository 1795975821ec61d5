"""No false lattices: every indexing solution is validated (crystal.validation) and refused with
"cannot index: <reason>" on noise, on powder-like data and on two equal overlapping lattices;
true lattices of the independent generator pass with a high confidence."""

import numpy as np
import pytest
from generators import kinematic as K

import virtual_aperture as va
from virtual_aperture.crystal.indexing import IndexingError
from virtual_aperture.crystal.peaks import PeakList
from virtual_aperture.crystal.validation import reduce_supercell

TILTS = (-30, 30, 2)


def _cal(S):
    return va.Calibration(
        pixel_size=S.pixel_size,
        beam_energy_kv=S.kv,
        tilt_angles_deg=tuple(S.tilts_deg),
        tilt_axis_deg=S.tilt_axis_deg,
        center=S.center,
    )


def _peaks(S, pats, seed=0):
    pats = np.random.default_rng(seed).poisson(pats * 1e4 / pats.max() + 0.5).astype(float)
    return va.find_bragg_peaks(pats, calibration=_cal(S), exclude_center_radius=4, threshold=6, center="beam")


@pytest.mark.parametrize("min_indexed", [0.5, 0.05])
def test_refuses_random_peaks(min_indexed):
    S = K.tilt_series([K.CRYSTALS["cF"]], tilts=TILTS, seed=0)
    rng = np.random.default_rng(1)
    lists = []
    for t in range(len(S.tilts_deg)):
        r, a = rng.uniform(6, 30, 15), rng.uniform(0, 2 * np.pi, 15)
        pos = np.c_[S.center[0] + r * np.sin(a), S.center[1] + r * np.cos(a)]
        lists.append(PeakList.from_positions(pos, calibration=_cal(S), tilt=t))
    # even when the fraction threshold is lowered, the validation refuses what was found
    with pytest.raises(IndexingError, match="^cannot index: "):
        va.index_tilt_series(lists, calibration=_cal(S), min_indexed=min_indexed)


def test_refuses_powder_like_data():
    S = K.tilt_series([K.CRYSTALS["cF"]] * 12, tilts=TILTS, seed=4)  # 12 crystals in random orientations
    peaks = _peaks(S, sum(S.patterns))
    assert sum(len(p) for p in peaks) > 100
    with pytest.raises(IndexingError, match="^cannot index: "):
        va.index_tilt_series(peaks, calibration=_cal(S))


@pytest.mark.parametrize("seed", [0, 1])
def test_refuses_two_equal_overlapping_lattices(seed):
    S = K.tilt_series([K.CRYSTALS["mC"]] * 2, tilts=TILTS, seed=seed)
    peaks = _peaks(S, S.patterns[0] / S.patterns[0].max() + S.patterns[1] / S.patterns[1].max())
    with pytest.raises(IndexingError, match="^cannot index: "):
        va.index_tilt_series(peaks, calibration=_cal(S))


def test_true_lattice_passes_every_check_with_confidence():
    S = K.tilt_series([K.CRYSTALS["aP"]], tilts=TILTS, seed=2)
    r = va.index_tilt_series(_peaks(S, S.patterns[0]), calibration=_cal(S))
    v = r.info["validation"]
    assert v["accepted"] and all(c["passed"] for c in v["checks"].values())
    assert 0.7 < r.confidence <= 1.0
    assert r.to_dict()["confidence"] == r.confidence
    assert K.cell_matches(r.UB, S.UB[0], found_centring=r.centring)[0] == "right"


def test_a_supercell_of_a_smaller_lattice_loses():
    B = np.diag([0.2, 0.25, 0.15])
    rng = np.random.default_rng(0)
    H = rng.integers(-4, 5, size=(200, 3))
    G = H @ B.T
    doubled = B @ np.diag([1.0, 1.0, 0.5])  # c doubled in real space: the odd l never observed
    Bs = reduce_supercell(G, doubled, 0.01)
    assert abs(np.linalg.det(Bs)) == pytest.approx(abs(np.linalg.det(B)), rel=1e-9)
    # genuine lattice: unchanged
    assert np.allclose(reduce_supercell(G, B, 0.01), B)


@pytest.mark.parametrize(
    "every, overlap, sigma_bg", [(1, 0.0, 4.0), (1, 0.25, 8.0), (2, 0.0, 4.0), (2, 0.25, 4.0)]
)
def test_sparse_multislice_series_no_false_cell(every, overlap, sigma_bg):
    """abTEM mC nanocrystal (tests/data/abtem_series.npz) at a low dose: 1–2 spots per pattern.
    These four cases of benchmarks/bench_indexing.py presented a false (sub)cell before the
    evidence check (≥ 2 indexed spots per pattern); now refused, or right."""
    from generators import abtem_series as A

    series = A.load()
    s, other = series[3], series[2]
    sel = slice(None, None, every)
    cal = va.Calibration(**A.calibration_kwargs(s, every=every))
    clean = s["patterns"][sel] + overlap * other["patterns"][sel]
    pats = np.random.default_rng(1003).poisson(clean * 1e6 + 10.0).astype(float)
    peaks = va.find_bragg_peaks(
        pats, calibration=cal, exclude_center_radius=4, threshold=6, center="beam", sigma_background=sigma_bg
    )
    try:
        r = va.index_tilt_series(peaks, calibration=cal)
    except IndexingError as exc:
        assert str(exc).startswith("cannot index: ")
        return
    verdict, why = K.cell_matches(r.UB, s["UB"], found_centring=r.centring, true_centring=s["centring"])
    assert verdict != "false", f"{why}: {r.lattice} {r.cell}"
