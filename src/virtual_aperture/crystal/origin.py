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
    Re Σ_k Φ(k) Φ*(kR) e^{2πi k·(τ + t − Rt)} / Σ|Φ|² (L-BFGS with the analytic gradient).
    """
    from scipy.optimize import minimize

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
    norm = float(np.sum(np.abs(phi) ** 2))
    terms = []
    for op in ops:
        R = np.array(op.rot, np.int64) // op.DEN
        kr = h @ R
        pos = np.searchsorted(keys[order], key(kr))
        pos = np.clip(pos, 0, len(keys) - 1)
        found = keys[order][pos] == key(kr)
        partner = order[pos]
        a = np.where(found, phi * np.conj(phi[partner]), 0)
        tau = np.array(op.tran) / op.DEN
        terms.append((a, h @ tau, (h - kr).astype(float)))

    def fun(t: np.ndarray) -> tuple[float, np.ndarray]:
        val, grad = 0.0, np.zeros(3)
        for a, ht, dk in terms:
            z = a * np.exp(2j * np.pi * (ht + dk @ t))
            val += float(z.real.sum())
            grad += -2 * np.pi * (z.imag @ dk)
        return -val / (norm * len(terms)), -grad / (norm * len(terms))

    res = minimize(fun, np.asarray(t0, float), jac=True, method="L-BFGS-B")
    t = res.x % 1.0
    per_op = [float(np.real(a * np.exp(2j * np.pi * (ht + dk @ t))).sum() / norm) for a, ht, dk in terms]
    return t, float(np.mean(per_op)), per_op


def locate_origin(p, phases: np.ndarray, shape, sg, cell) -> tuple[np.ndarray, float, list[float]]:
    """Origin shift of one start: grid search on a coarse (≈ 2 Å) |E| map, then off-grid
    refinement with all reflections and |F| weights."""
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
    top = np.argsort(f_full)[::-1][:40000]
    return _refine_origin(full_h[top], (f_full * np.exp(1j * ph_full))[top], sg, shift0 / np.array(coarse))


def symmetrise(rho: np.ndarray, cell, sg) -> np.ndarray:
    import gemmi

    g = gemmi.FloatGrid(np.ascontiguousarray(rho, dtype=np.float32), gemmi.UnitCell(*cell), sg)
    g.symmetrize_avg()
    return np.array(g, copy=True)
