"""Bragg peaks as napari Points and back (the Index tab's hand edits), Qt-free."""

import numpy as np
import pytest

from virtual_aperture._napari.peak_points import peaks_to_points, points_to_peaks
from virtual_aperture.crystal.peaks import PeakList


def _peaks():
    rng = np.random.default_rng(3)
    out = []
    for t in range(3):
        pl = PeakList.from_positions(rng.uniform(5, 60, (4, 2)), tilt=t, center=(32.0, 31.0))
        pl.intensity[:] = rng.uniform(10, 100, 4)
        out.append(pl)
    return out


def test_round_trip_keeps_measurements_and_edits_are_seen():
    peaks = _peaks()
    pts = peaks_to_points(peaks)
    assert pts.shape == (12, 3) and set(pts[:, 0]) == {0.0, 1.0, 2.0}
    edited = np.concatenate([pts[1:], [[2, 10.0, 11.0]]])  # one deleted, one added on pattern 2
    before = edited.copy()
    back = points_to_peaks(edited, peaks)
    np.testing.assert_array_equal(edited, before)  # the layer data is not changed
    assert [len(p) for p in back] == [3, 4, 5]
    np.testing.assert_allclose(back[1].intensity, peaks[1].intensity)  # not moved: measured values kept
    assert back[2].center == peaks[2].center
    one = peaks_to_points(peaks[:1], ndim=2)
    assert one.shape == (4, 2)
    assert len(points_to_peaks(one, peaks[:1])[0]) == 4


def test_bad_points_are_a_clear_error():
    with pytest.raises(ValueError, match=r"peak points must be \(n, 2\) or \(n, 3\)"):
        points_to_peaks(np.zeros((3, 4)), _peaks())
