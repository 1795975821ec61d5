"""Origin of a P1 charge-flipping solution and the phasing grid.

The origin is located by the symmetry agreement of the P1 map (Palatinus & van der Lee 2008 /
Palatinus & Chapuis 2007): for every operation (R, τ) the correlation c(u) = Σ ρ(y)ρ(Ry + u) is one
FFT of Φ(k)·Φ*(Rᵀk); the origin shift t maximising the mean of c(τ + (I−R)t)/c(0) over the
operations is found on a coarse grid and refined off it; the shifted map is averaged over the
space group (gemmi ``symmetrize_avg``).
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from .reflections import parse_space_group

__all__ = ["phasing_grid", "locate_origin", "symmetrise"]


def phasing_grid(cell, space_group, d_min: float, grid_factor: float = 2.5) -> tuple[int, int, int]:
    """Grid for the cell: spacing ≈ d_min/grid_factor, sizes FFT-friendly and symmetry-compatible."""
    import gemmi

    g = gemmi.FloatGrid()
    g.spacegroup = parse_space_group(space_group)
    g.set_unit_cell(gemmi.UnitCell(*cell))
    g.set_size_from_spacing(d_min / grid_factor, gemmi.GridSizeRounding.Up)
    return tuple(int(v) for v in g.shape)


def _symmetry_agreement(rho: np.ndarray, sg) -> tuple[np.ndarray, float, list[float]]:
    """Origin shift (grid index) maximising the mean symmetry correlation, its value, per-op values."""
    shape = np.array(rho.shape)
    ops = [op for op in sg.operations().sym_ops]
    if len(ops) <= 1:
        return np.zeros(3, int), 1.0, []
    r = rho - rho.mean()
    phi = np.fft.fftn(r)
    c0 = float((r * r).sum())
    k = np.stack(
        np.meshgrid(*[np.fft.fftfreq(n, 1.0 / n).astype(np.int64) for n in shape], indexing="ij"), -1
    )
    j = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    total = np.zeros(j.shape[0])
    corr_maps = []
    for op in ops:
        R = np.array(op.rot) // op.DEN
        if np.array_equal(R, np.eye(3, dtype=int)) and not any(op.tran):
            continue
        kr = (k @ R) % shape  # Rᵀk as row vectors
        a = phi * np.conj(phi[kr[..., 0], kr[..., 1], kr[..., 2]])
        c = np.real(np.fft.ifftn(a)) / c0
        tau = np.array(op.tran) / op.DEN
        # u = τ + (I − R) t, in grid units
        t = j / shape
        u = tau + t - t @ R.T
        ui = np.rint(u * shape).astype(np.int64) % shape
        vals = c[ui[:, 0], ui[:, 1], ui[:, 2]]
        total += vals
        corr_maps.append(vals)
    best = int(np.argmax(total))
    per_op = [float(v[best]) for v in corr_maps]
    return j[best], float(total[best] / len(corr_maps)), per_op


def _refine_origin(
    hkl: np.ndarray, phi: np.ndarray, sg, t0: np.ndarray
) -> tuple[np.ndarray, float, list[float]]:
    """Refine the origin shift t off the grid by maximising the mean symmetry correlation.

    ``hkl`` (n, 3) is a P1 set closed under the point group and Friedel, ``phi`` its complex
    (numpy-convention) coefficients. S(t) = mean over operations of
    Re Σ_k Φ(k) Φ*(kR) e^{2πi k·(τ + t − Rt)} / Σ|Φ|², maximised by Newton steps with the
    analytic gradient and Hessian (a 3-parameter trigonometric sum: a handful of evaluations from
    the coarse-grid start; no BLAS, whose idle threads spin on a busy machine — L-BFGS-B took
    3 ms per step there). A step that does not raise S is halved; a direction of non-negative
    curvature is replaced by gradient ascent.
    """
    ops = [
        op
        for op in sg.operations().sym_ops
        if not (np.array_equal(np.array(op.rot) // op.DEN, np.eye(3, dtype=int)) and not any(op.tran))
    ]
    if not ops:
        return np.zeros(3), 1.0, []
    h = np.asarray(hkl, np.int64)
    span = int(np.abs(h).max()) + 1
    m = 2 * span + 1

    def key(x: np.ndarray) -> np.ndarray:
        return ((x[:, 0] + span) * m + (x[:, 1] + span)) * m + (x[:, 2] + span)

    keys = key(h)
    order = np.argsort(keys)
    sorted_keys = keys[order]
    norm = float(np.sum(np.abs(phi) ** 2)) * len(ops)
    a_all, ht_all, dk_all = [], [], []
    for op in ops:
        R = np.array(op.rot, np.int64) // op.DEN
        kr = h @ R
        kk = key(kr)
        pos = np.clip(np.searchsorted(sorted_keys, kk), 0, len(keys) - 1)
        found = sorted_keys[pos] == kk
        a = phi[found] * np.conj(phi[order[pos[found]]])
        a_all.append(a / norm)
        ht_all.append(h[found] @ (np.array(op.tran) / op.DEN))
        dk_all.append((h[found] - kr[found]).astype(float))
    n_per = [len(a) for a in a_all]
    a, ht, dk = np.concatenate(a_all), np.concatenate(ht_all), np.concatenate(dk_all)
    two_pi = 2 * np.pi

    def value(t: np.ndarray) -> tuple[float, np.ndarray]:
        z = a * np.exp(1j * two_pi * (ht + dk[:, 0] * t[0] + dk[:, 1] * t[1] + dk[:, 2] * t[2]))
        return float(z.real.sum()), z

    def derivatives(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # element-wise sums (einsum), not BLAS products: see the docstring
        grad = -two_pi * np.einsum("n,nk->k", z.imag, dk)
        return grad, -(two_pi**2) * np.einsum("n,nk,nl->kl", z.real, dk, dk)

    t = np.asarray(t0, float).copy()
    val, z = value(t)
    for _ in range(50):
        grad, hess = derivatives(z)
        w, v = np.linalg.eigh(hess)
        if np.all(w < 0):
            step = -v @ ((v.T @ grad) / w)
        else:  # not in a maximum's basin yet: gradient ascent with a curvature-sized step
            step = grad / max(float(np.abs(w).max()), 1e-12)
        for _ in range(30):
            new_val, new_z = value(t + step)
            if new_val >= val:
                break
            step = step / 2
        else:
            break
        t, val, z = t + step, new_val, new_z
        if float(np.abs(step).max()) < 1e-6:  # 1e-6 of a cell edge: far below any coordinate error
            break
    t = t % 1.0
    per_op = [float(c.real.sum()) * len(ops) for c in np.split(z, np.cumsum(n_per)[:-1])]
    return t, float(np.mean(per_op)), per_op


def locate_origin(
    p, phases: np.ndarray, shape, sg, cell, n_max: int = 40000
) -> tuple[np.ndarray, float, list[float]]:
    """Origin shift of one start: grid search on a coarse (≈ 2 Å) |E| map, then off-grid
    refinement with the ``n_max`` strongest reflections (|F| weights)."""
    coarse = phasing_grid(cell, sg, 2.0, 2.5)
    coarse = tuple(min(c, s_) for c, s_ in zip(coarse, shape))
    lim = (np.array(coarse) - 1) // 2
    sel = np.all(np.abs(p.hkl) <= lim, axis=1)
    h = p.hkl[sel]
    Fe = np.zeros((coarse[0], coarse[1], coarse[2] // 2 + 1), complex)
    Fe[h[:, 0] % coarse[0], h[:, 1] % coarse[1], h[:, 2]] = p.e[sel] * np.exp(1j * phases[sel])
    shift0, _, _ = _symmetry_agreement(sfft.irfftn(Fe, s=coarse), sg)
    pos = p.hkl[:, 2] > 0
    full_h = np.concatenate([p.hkl, -p.hkl[pos]])
    ph_full = np.concatenate([phases, -phases[pos]])
    f_full = np.concatenate([p.f, p.f[pos]])
    top = np.argsort(f_full)[::-1][:n_max]
    return _refine_origin(full_h[top], (f_full * np.exp(1j * ph_full))[top], sg, shift0 / np.array(coarse))


def symmetrise(rho: np.ndarray, cell, sg) -> np.ndarray:
    import gemmi

    g = gemmi.FloatGrid(np.ascontiguousarray(rho, dtype=np.float32), gemmi.UnitCell(*cell), sg)
    g.symmetrize_avg()
    return np.array(g, copy=True)
