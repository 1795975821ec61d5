"""napari sample data: the built-in crowded agglomerate (4D) and a 5D tilt series of it."""

from __future__ import annotations

from .reader import navigator_layers


def agglomerate_4d() -> list:
    """Crowded nanocrystal agglomerate, 64×64 scan × 128×128 detector (simulated)."""
    from virtual_aperture.sample import simulate_agglomerate

    ds, _truth = simulate_agglomerate(n_grains=6, scan_shape=(64, 64), detector_shape=(128, 128), seed=0)
    return navigator_layers(ds, name="agglomerate 4D")


def tilt_series_5d() -> list:
    """The agglomerate tilted from −20° to +20° in 10° steps, 48×48 scan × 96×96 detector."""
    from virtual_aperture.sample import simulate_agglomerate

    ds, _truth = simulate_agglomerate(
        n_grains=5, scan_shape=(48, 48), detector_shape=(96, 96), tilts=(-20.0, 20.1, 10.0), seed=1
    )
    return navigator_layers(ds, name="agglomerate 5D tilt series")
