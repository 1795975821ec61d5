"""Small data-model helpers: tilt angles from user input, the wavelength and its inverse."""

import pytest

from virtual_aperture.model.calibration import beam_energy_from_wavelength, electron_wavelength
from virtual_aperture.model.tilts import parse_tilt_angles


@pytest.mark.parametrize("kv", [60.0, 200.0, 300.0])
def test_beam_energy_inverts_the_wavelength(kv):
    assert beam_energy_from_wavelength(electron_wavelength(kv)) == pytest.approx(kv, rel=1e-12)


def test_beam_energy_rejects_bad_wavelength():
    with pytest.raises(ValueError, match="wavelength"):
        beam_energy_from_wavelength(-0.02)


def test_tilt_angles_one_per_pattern_or_start_stop_step():
    assert parse_tilt_angles(["-1", "0", "1.5"], 3) == (-1.0, 0.0, 1.5)
    assert parse_tilt_angles([-30, 30, 15], 5) == (-30.0, -15.0, 0.0, 15.0, 30.0)


@pytest.mark.parametrize(
    "values, n, match",
    [
        ([-30, 30, 15], 4, "gives 5 angles for 4 patterns"),
        ([1, 2], 3, "has 2 value"),
        (["a", "b", "c"], 3, "expected numbers"),
    ],
)
def test_tilt_angles_refuse_clearly(values, n, match):
    with pytest.raises(ValueError, match=match):
        parse_tilt_angles(values, n, name="--tilts")
