"""Regenerate tests/data/dynamical_<name>.npz: merged electron intensities from abTEM multislice.

Independent of virtual_aperture (ase, gemmi, abTEM, numpy only). For each of ``N_ORIENT`` random
orientations a nanocrystal slab (``LATERAL`` Å wide, ``THICK`` Å thick) is cut from the
published structure, rotated, put in vacuum and propagated by abTEM's multislice (plane wave,
200 kV, Lobato potentials, 1 Å slices). Every reflection within ``S_MAX`` of the Ewald sphere is
read off the diffraction pattern (summed disk minus the median of an annulus), and observations
of symmetry-equivalent reflections are averaged. These intensities carry multiple scattering,
partiality and the finite-crystal shape: they are not |F|².

    python tests/data/make_dynamical.py brookite     # ~4 min on 2 cores (THICK=60 N_ORIENT=60 env vars)
    python tests/data/make_dynamical.py azo          # ~10 min on 2 shared cores
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
STRUCTURES = HERE.parents[1] / "src" / "virtual_aperture" / "sample" / "structures"
CIFS = {"brookite": STRUCTURES / "brookite.cif", "azo": HERE / "azo_1854329.cif"}
N_ORIENT = int(os.environ.get("N_ORIENT", "60"))
LATERAL, THICK, BOX, SAMPLING = 30.0, float(os.environ.get("THICK", "30")), 40.0, 0.05
OUT = Path(os.environ.get("OUT_DIR", str(HERE)))
D_MIN, S_MAX, R_DISK = 0.8, 0.012, 0.04
ENERGY = 200e3


def random_rotation(rng):
    q = rng.normal(size=4)
    a, b, c, d = q / np.linalg.norm(q)
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
        ]
    )


def main(name: str, seed: int = 0) -> None:
    import abtem
    import gemmi
    from ase import Atoms

    abtem.config.set({"device": "cpu", "fft": "numpy"})
    st = gemmi.read_small_structure(str(CIFS[name]))
    st.remove_hydrogens()
    st.setup_cell_images()
    sites = st.get_all_unit_cell_sites()
    frac = np.array([[s.fract.x, s.fract.y, s.fract.z] for s in sites]) % 1.0
    symbols = [s.element.name for s in sites]
    A = np.array(st.cell.orth.mat)  # columns a, b, c (Å)
    Bstar = np.linalg.inv(A).T  # reciprocal basis, columns a*, b*, c*
    abc = np.array([st.cell.a, st.cell.b, st.cell.c])
    reach = np.ceil((np.hypot(LATERAL, THICK) / 2 + 2) / abc).astype(int)
    grid = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij"), -1).reshape(-1, 3)
    pos_all = ((grid[:, None, :] + frac[None]) @ A.T).reshape(-1, 3)
    sym_all = symbols * len(grid)
    lam = 0.025079  # Å, relativistic electron wavelength at 200 kV
    hmax = np.ceil(abc / D_MIN).astype(int)
    H = np.stack(np.meshgrid(*[np.arange(-m, m + 1) for m in hmax], indexing="ij"), -1).reshape(-1, 3)
    g_cryst = H @ Bstar.T
    keep = (np.linalg.norm(g_cryst, axis=1) <= 1 / D_MIN) & np.any(H != 0, axis=1)
    ops = st.spacegroup.operations()
    keep &= ~ops.systematic_absences(H.astype(np.int32))
    H, g_cryst = H[keep], g_cryst[keep]
    rng = np.random.default_rng(seed)
    obs_h, obs_i = [], []
    for n in range(N_ORIENT):
        U = random_rotation(rng)
        p = pos_all @ U.T
        inside = np.all(np.abs(p) < np.array([LATERAL, LATERAL, THICK]) / 2, axis=1)
        atoms = Atoms(
            [s for s, k in zip(sym_all, inside) if k],
            cell=[BOX, BOX, THICK + 2],
            pbc=True,
            positions=p[inside] + [BOX / 2, BOX / 2, THICK / 2 + 1],
        )
        pot = abtem.Potential(
            atoms, sampling=SAMPLING, slice_thickness=1.0, projection="infinite", parametrization="lobato"
        )
        wave = abtem.PlaneWave(energy=ENERGY)
        exit_wave = wave.multislice(pot, lazy=False)
        dp = exit_wave.diffraction_patterns(max_angle=None, block_direct=False, fftshift=True)
        img = np.asarray(dp.array, float)
        img = img / img.sum()
        dk = np.array(dp.sampling)
        centre = np.array(img.shape) // 2
        g = g_cryst @ U.T  # lab frame (beam along +z)
        s_exc = g[:, 2] + lam * np.sum(g * g, axis=1) / 2
        sel = np.abs(s_exc) < S_MAX
        kx = np.arange(img.shape[0])[:, None] - centre[0]
        ky = np.arange(img.shape[1])[None, :] - centre[1]
        for h, gg in zip(H[sel], g[sel]):
            c = gg[:2] / dk
            r2 = ((kx - c[0]) * dk[0]) ** 2 + ((ky - c[1]) * dk[1]) ** 2
            disk, ring = r2 <= R_DISK**2, (r2 > (1.5 * R_DISK) ** 2) & (r2 <= (2.5 * R_DISK) ** 2)
            if not disk.any() or not ring.any():
                continue
            obs_h.append(h)
            obs_i.append(img[disk].sum() - np.median(img[ring]) * disk.sum())
        print(f"orientation {n + 1}/{N_ORIENT}: {int(sel.sum())} reflections on the Ewald sphere", flush=True)
    obs_h, obs_i = np.array(obs_h), np.array(obs_i)
    asu = gemmi.ReciprocalAsu(st.spacegroup)
    keys = np.array([asu.to_asu([int(v) for v in h], ops)[0] for h in obs_h])
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.ravel()
    mean = np.bincount(inv, obs_i) / np.bincount(inv)
    var = np.bincount(inv, obs_i**2) / np.bincount(inv) - mean**2
    n_obs = np.bincount(inv)
    sigma = np.sqrt(np.maximum(var, 0) / n_obs) + 0.05 * np.abs(mean) + 1e-9
    np.savez_compressed(
        OUT / f"dynamical_{name}.npz",
        hkl=uniq.astype(np.int16),
        intensity=mean,
        sigma=sigma,
        n_obs=n_obs,
        cell=np.array(st.cell.parameters),
        space_group=st.spacegroup.hm,
        settings=np.array([N_ORIENT, LATERAL, THICK, SAMPLING, D_MIN, S_MAX, ENERGY, seed]),
    )
    print(f"{len(uniq)} unique reflections from {len(obs_i)} observations -> dynamical_{name}.npz")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "brookite")
