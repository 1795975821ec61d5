"""napari sample data: the built-in crowded agglomerate (4D), a 5D tilt series of it, and a
brookite tilt series that the Index and Solve tabs can index and solve in under a minute."""

from __future__ import annotations

from .reader import META_KEY, navigator_layers

#: the indexable sample: two brookite (TiO2) grains side by side, ±60° in 2° steps
BROOKITE = dict(
    structure="brookite",
    n_grains=2,
    scan_shape=(16, 16),
    detector_shape=(128, 128),
    tilts=(-60, 60, 2.0),
    seed=3,
    overlap=False,
    thickness_nm=(8, 12),
    pixel_size=0.02,
)


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


def brookite_tilt_series() -> list:
    """Two brookite grains, 61 tilts ±60°, 16×16 scan × 128×128 detector, descan calibrated.

    Comes with a ``grains`` layer holding the two grains' apertures (the simulation's truth), so
    the workspace can hand grain 1 to the Index and Solve tabs at once.
    """
    from virtual_aperture.crystal.descan import calibrate_descan
    from virtual_aperture.sample import simulate_agglomerate

    ds, truth = simulate_agglomerate(**BROOKITE)
    cal, _fit = calibrate_descan(ds)
    ds = ds.with_calibration(center=cal.center, extra=cal.extra)
    layers = navigator_layers(ds, name="brookite tilt series")
    nav_meta = layers[0][1]
    names = {k: f"brookite {k}" for k in range(1, BROOKITE["n_grains"] + 1)}
    grains = (
        truth.exclusive_labels().astype("int32"),
        {
            "name": "grains",
            "scale": nav_meta["scale"],
            "units": nav_meta["units"],
            "axis_labels": nav_meta["axis_labels"],
            "opacity": 0.5,
            "metadata": {META_KEY: {"role": "grains", "dataset": ds, "grain_names": names}},
        },
        "labels",
    )
    return [*layers, grains]
