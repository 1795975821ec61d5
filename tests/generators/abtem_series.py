"""Dynamical (multislice) tilt series of few-nm nanocrystals with abTEM; cached under tests/data/.

Regenerate (≈ 5 s per pattern on one core; the cache holds 4 series of 31 patterns)::

    python tests/generators/abtem_series.py            # writes tests/data/abtem_series.npz

A spherical nanocrystal (ase ``Atoms``, radius ``radius_A``) cut from a crystal of
:mod:`generators.kinematic` is rotated per tilt — right-handed by the tilt angle about an in-plane
axis at ``tilt_axis_deg`` from +x towards +y, the project's documented convention — and a 200 kV
``PlaneWave`` is propagated through its ``Potential`` (Lobato parametrisation, 2 Å slices). The
diffraction intensities (abTEM arrays are indexed ``[x, y]``; transposed here to ``(k_y, k_x)``)
are cropped to 64×64 pixels around k = 0. Nothing from ``virtual_aperture`` is imported.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from generators.kinematic import CRYSTALS, direct_vectors, random_orientation  # noqa: E402

OUT = HERE.parent / "data" / "abtem_series.npz"
ELEMENTS = {14.0: "Si", 12.0: "Mg", 11.0: "Na", 17.0: "Cl", 8.0: "O", 6.0: "C", 22.0: "Ti"}
BOX_A = 43.0  # lateral box: reciprocal sampling 1/43 Å⁻¹ per pixel
DET = 64

#: (name, crystal key, seed) of the cached series
SERIES = (("cF", "cFd", 11), ("cF", "cFd", 12), ("mC", "mC", 13), ("mC", "mC", 14))


def nanocrystal(crystal, U: np.ndarray, radius_A: float):
    """ase Atoms of a sphere cut from the crystal, oriented by U (crystal frame → lab)."""
    from ase import Atoms

    A = direct_vectors(crystal.cell)  # rows a, b, c
    frac = crystal.all_atoms()
    n = int(math.ceil(radius_A / min(np.linalg.norm(A, axis=1)))) + 2
    rng = np.arange(-n, n + 1)
    cells = np.stack(np.meshgrid(rng, rng, rng, indexing="ij"), -1).reshape(-1, 3)
    pos = ((cells[:, None, :] + frac[None, :, :3]).reshape(-1, 3)) @ A
    sym = np.tile([ELEMENTS[f] for f in frac[:, 3]], len(cells))
    keep = np.linalg.norm(pos, axis=1) <= radius_A
    return Atoms(symbols=list(sym[keep]), positions=pos[keep] @ U.T)


def one_pattern(atoms, tilt_deg: float, tilt_axis_deg: float, kv: float = 200.0) -> tuple[np.ndarray, float]:
    import abtem

    a = atoms.copy()
    p = math.radians(tilt_axis_deg)
    a.rotate(tilt_deg, (math.cos(p), math.sin(p), 0.0), center=(0, 0, 0))  # right-handed (ase)
    a.set_cell([BOX_A, BOX_A, BOX_A])
    a.positions += BOX_A / 2
    pot = abtem.Potential(
        a, sampling=0.12, slice_thickness=2.0, projection="infinite", parametrization="lobato"
    )
    dp = abtem.PlaneWave(energy=kv * 1e3).multislice(pot).diffraction_patterns(max_angle=None)
    arr = np.asarray(dp.compute(progress_bar=False).array).T  # [x, y] → (k_y, k_x)
    n = arr.shape[0]
    c = n // 2  # k = 0 after fftshift
    h = DET // 2
    return arr[c - h : c + h, c - h : c + h].astype(np.float32), float(dp.sampling[0])


def main() -> None:
    from generators.kinematic import Crystal

    crystals = dict(CRYSTALS)
    # a larger face-centred cell than the kinematic tests' rock salt (fluorite type, a = 8 Å)
    crystals["cFd"] = Crystal(
        "cF",
        (8.0, 8.0, 8.0, 90.0, 90.0, 90.0),
        "F",
        ((0, 0, 0, 22.0), (0.25, 0.25, 0.25, 8.0), (0.75, 0.75, 0.75, 8.0)),
    )
    tilts = np.arange(-30.0, 30.0 + 1e-9, 2.0)
    axis = 20.0
    out: dict[str, np.ndarray] = {"tilts_deg": tilts, "tilt_axis_deg": np.array(axis), "kv": np.array(200.0)}
    for i, (name, key, seed) in enumerate(SERIES):
        cr = crystals[key]
        U = random_orientation(np.random.default_rng(seed))
        atoms = nanocrystal(cr, U, radius_A=17.0)
        t0 = time.time()
        stack = []
        for t in tilts:
            img, pix = one_pattern(atoms, float(t), axis)
            stack.append(img)
        print(
            f"{name} seed {seed}: {len(atoms)} atoms, {len(tilts)} patterns in {time.time() - t0:.0f} s",
            flush=True,
        )
        out[f"s{i}_patterns"] = np.array(stack)
        out[f"s{i}_U"] = U
        out[f"s{i}_cell"] = np.array(cr.cell)
        out[f"s{i}_centring"] = np.array(cr.centring)
        out[f"s{i}_lattice"] = np.array(name)
        out["pixel_size"] = np.array(pix)
        out["center"] = np.array([DET // 2, DET // 2], float)
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


def calibration_kwargs(s: dict, *, every: int = 1, axis_offset_deg: float = 0.0) -> dict:
    """Keyword arguments of a ``Calibration`` (given, not imported: this generator stays
    independent of virtual_aperture) for series ``s`` of :func:`load`, every ``every``-th tilt."""
    return {
        "pixel_size": s["pixel_size"],
        "beam_energy_kv": s["kv"],
        "tilt_angles_deg": tuple(float(a) for a in s["tilts_deg"][::every]),
        "tilt_axis_deg": s["tilt_axis_deg"] + axis_offset_deg,
        "center": s["center"],
    }


def load(path: Path = OUT, *, probe_sigma_px: float = 0.8) -> list[dict]:
    """The cached series: dicts with patterns, tilts_deg, tilt_axis_deg, kv, pixel_size, center,
    UB (rows a*, b*, c* in the lab at zero tilt), cell, centring, lattice. The plane-wave patterns
    are blurred by a Gaussian of ``probe_sigma_px`` (a convergent probe's disk, ~0.5 mrad)."""
    from scipy.ndimage import gaussian_filter

    from generators.kinematic import reciprocal_vectors

    z = np.load(path)
    series = []
    i = 0
    while f"s{i}_patterns" in z:
        cell = tuple(float(v) for v in z[f"s{i}_cell"])
        pats = z[f"s{i}_patterns"].astype(float)
        if probe_sigma_px:
            pats = gaussian_filter(pats, (0, probe_sigma_px, probe_sigma_px))
        series.append(
            {
                "patterns": pats,
                "tilts_deg": z["tilts_deg"],
                "tilt_axis_deg": float(z["tilt_axis_deg"]),
                "kv": float(z["kv"]),
                "pixel_size": float(z["pixel_size"]),
                "center": tuple(z["center"]),
                "UB": reciprocal_vectors(cell) @ z[f"s{i}_U"].T,
                "cell": cell,
                "centring": str(z[f"s{i}_centring"]),
                "lattice": str(z[f"s{i}_lattice"]),
            }
        )
        i += 1
    return series


if __name__ == "__main__":
    main()
