"""Builders shared by several test modules (import them: ``tests/`` is on ``sys.path`` through
``pythonpath`` in pyproject.toml; the fixtures of ``conftest.py`` are built on them).

* :func:`streamed` – a dask array that is not numpy-backed (forces the streamed compute path);
* ``P212121_*`` and :func:`make_structure` – the small organic-like test structure (8 atoms,
  S, 2 O, N, 4 C in P 2₁2₁2₁, all distances ≥ 1.3 Å; generated once with a fixed seed, the
  coordinates frozen here) and a gemmi builder for it and its variants;
* :func:`render_spot_series` – summed patterns of a tilt series rendered from the shared geometry
  (Gaussian spots on a central beam, Poisson noise) for the indexing CLI and widget tests;
* ``BROOKITE_SERIES`` – options of ``simulate_agglomerate`` for a small brookite tilt series that
  the whole chain solves (workflow and Solve-dock tests).
"""

from __future__ import annotations

import dask.array as da
import gemmi
import numpy as np

P212121_CELL = (7.1, 9.3, 11.2, 90, 90, 90)
P212121_SITES = [
    ("S1", "S", (0.511822, 0.950464, 0.144160)),
    ("O2", "O", (0.948649, 0.311831, 0.423326)),
    ("O3", "O", (0.827703, 0.409199, 0.549594)),
    ("N4", "N", (0.027559, 0.753513, 0.538143)),
    ("C5", "C", (0.329732, 0.788429, 0.303195)),
    ("C6", "C", (0.280409, 0.485191, 0.980737)),
    ("C7", "C", (0.276891, 0.160652, 0.969925)),
    ("C8", "C", (0.776683, 0.613003, 0.917298)),
]

BROOKITE_SERIES = dict(
    structure="brookite",
    n_grains=2,
    scan_shape=(24, 24),
    detector_shape=(128, 128),
    tilts=(-60, 60, 1.0),
    seed=3,
    overlap=False,
    thickness_nm=(8, 12),
    pixel_size=0.02,
)


def make_structure(cell, sg, sites, b=1.0, *, u_iso=None) -> gemmi.SmallStructure:
    """A ``gemmi.SmallStructure`` of ``sites`` ``(label, element, fractional xyz)`` in ``cell``/``sg``
    with isotropic B = ``b`` Å² (or ``u_iso`` Å² when given)."""
    st = gemmi.SmallStructure()
    st.cell = gemmi.UnitCell(*cell)
    st.spacegroup = gemmi.SpaceGroup(sg)
    st.spacegroup_hm = st.spacegroup.hm
    for label, el, xyz in sites:
        s = gemmi.SmallStructure.Site()
        s.label, s.element, s.occ = label, gemmi.Element(el), 1.0
        s.fract = gemmi.Fractional(*xyz)
        s.u_iso = b / (8 * np.pi**2) if u_iso is None else u_iso
        st.add_site(s)
    st.setup_cell_images()
    return st


SPOT_CELL = (5.2, 5.5, 9.2, 90, 90, 90)
SPOT_TILTS = np.arange(-30, 30.1, 2.0)


def render_spot_series(seed: int = 2, tilts=SPOT_TILTS, cell=SPOT_CELL) -> np.ndarray:
    """``(n_tilts, 128, 128)`` float32 patterns of one crystal of ``cell`` (300 kV, 0.015 Å⁻¹/px,
    tilt axis 15°, centre (63.7, 64.2)); the orientation is random with ``seed``."""
    from virtual_aperture.crystal import geometry as geo
    from virtual_aperture.model.calibration import electron_wavelength

    rng = np.random.default_rng(seed)
    UB = geo.random_rotation(rng) @ geo.reciprocal_basis(cell)
    hkl = geo.miller_indices_within(cell, 0.8)
    yy, xx = np.mgrid[0:128, 0:128]
    center = (63.7, 64.2)
    frames = []
    for t in tilts:
        pos, s, _ = geo.predict_reflections(
            UB,
            hkl,
            tilt_deg=t,
            tilt_axis_deg=15.0,
            wavelength=electron_wavelength(300),
            pixel_size=0.015,
            center=center,
        )
        img = 2000 * np.exp(-((yy - center[0]) ** 2 + (xx - center[1]) ** 2) / 4.0) + 5.0
        for (py, px), si in zip(pos, s):
            if abs(si) < 0.008:
                img += 400 * np.exp(-((si / 0.004) ** 2)) * np.exp(-((yy - py) ** 2 + (xx - px) ** 2) / 3.0)
        frames.append(rng.poisson(img).astype(np.float32))
    return np.stack(frames)


def streamed(a: np.ndarray, chunks) -> da.Array:
    """A dask array that is not numpy-backed (forces the streamed dask path)."""
    return da.from_array(a, chunks=chunks).map_blocks(lambda b: b.copy(), dtype=a.dtype)
