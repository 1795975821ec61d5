"""Least-squares refinement of an atom model against merged intensities: scale, per-atom B, positions.

The model is the one exported (SHELX .res, CIF) and the one scored: each atom carries its total
isotropic B (Å², no hidden overall B), its occupancy and its coordinates. Structure factors are
kinematic electron structure factors with the scattering factors of ITC Vol. C Table 4.3.2.2
(gemmi ``Element.c4322``, the table cctbx calls ``"electron"``)::

    F(h) = Σ_j occ_j · (m_j / n_ops) · f_j(s) · exp(−B_j s²/4) · Σ_ops exp(2πi h·(R x_j + t))

summed over all ``n_ops`` operations of the space group including centring; ``m_j`` is the
atom's multiplicity in the cell, so an atom on a special position is counted once per distinct
image. The target is Σ w (I_obs − K |F|²)² with w = 1/(σ² + (g·I_obs)²) (SHELXL-like weights,
``g`` = ``weight_g``). B is bounded to [0, ``b_max``] and each coordinate to ± ``max_shift`` Å of
its start; atoms on special positions keep their coordinates.

R1 is defined as cctbx's ``miller.array.r1_factor`` with its automatic scale:
``R1 = Σ||Fo| − k|Fc|| / Σ|Fo|``, ``|Fo| = sqrt(max(I_obs, 0))``, ``k = Σ|Fo||Fc| / Σ|Fc|²``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .atoms import Atom, _fe, all_ops
from .geometry import reciprocal_basis
from .reflections import Reflections

__all__ = ["RefinementResult", "model_structure_factors", "r1_factor_of", "refine_structure"]


@dataclass(frozen=True)
class RefinementResult:
    """The refined model and its figures of merit (R1 of exactly ``atoms`` with ``scale``)."""

    atoms: list[Atom]
    scale: float  # k in |Fo| ≈ k |Fc|
    r1: float
    wr2: float
    r1_start: float
    n_reflections: int
    n_parameters: int
    iterations: int
    refined: bool  # False: the starting model scored better and was kept

    def as_dict(self) -> dict:
        return {
            "r1": float(self.r1),
            "r1_start": float(self.r1_start),
            "wr2": float(self.wr2),
            "scale": float(self.scale),
            "n_reflections": int(self.n_reflections),
            "n_parameters": int(self.n_parameters),
            "iterations": int(self.iterations),
            "refined": bool(self.refined),
        }


class _Model:
    """Precomputed geometry for fast structure factors and their derivatives."""

    def __init__(self, atoms: Sequence[Atom], hkl: np.ndarray, cell, space_group):
        rot, tran = all_ops(space_group)
        self.n_ops = len(rot)
        h = np.asarray(hkl, float)
        self.hR = np.einsum("ni,oij->onj", h, rot)  # (ops, n, 3): h·(R x) = (hR)·x
        self.ht = tran @ h.T  # (ops, n)
        self.s2 = np.sum((h @ reciprocal_basis(cell).T) ** 2, axis=1)
        self.f = {el: _fe(el, self.s2) for el in {a.element for a in atoms}}
        self.w = np.array([a.occupancy * a.multiplicity / self.n_ops for a in atoms])
        self.elements = [a.element for a in atoms]

    def terms(self, xyz: np.ndarray, b: np.ndarray, *, derivatives: bool):
        n_at = len(self.elements)
        n = self.s2.size
        F = np.zeros(n, complex)
        parts, dparts = [], []
        for j in range(n_at):
            ph = np.exp(2j * np.pi * (self.hR @ xyz[j] + self.ht))  # (ops, n)
            g = self.w[j] * self.f[self.elements[j]] * np.exp(-b[j] * self.s2 / 4)
            Fj = g * ph.sum(axis=0)
            F += Fj
            parts.append(Fj)
            if derivatives:
                dparts.append(g[:, None] * 2j * np.pi * np.einsum("on,onk->nk", ph, self.hR))
        return F, parts, dparts


def model_structure_factors(atoms: Sequence[Atom], hkl: np.ndarray, *, cell, space_group) -> np.ndarray:
    """Complex F of ``atoms`` (their own B, occupancy, multiplicity) as the refinement computes it."""
    atoms = list(atoms)
    if not atoms:
        return np.zeros(len(hkl), complex)
    m = _Model(atoms, hkl, cell, space_group)
    xyz = np.array([a.xyz for a in atoms])
    return m.terms(xyz, np.array([a.b_iso for a in atoms], float), derivatives=False)[0]


def r1_factor_of(f_obs: np.ndarray, f_calc_abs: np.ndarray) -> tuple[float, float]:
    """``(R1, k)`` with cctbx's automatic scale ``k = Σ Fo·Fc / Σ Fc²``."""
    fo = np.asarray(f_obs, float)
    fc = np.asarray(f_calc_abs, float)
    den = float(fc @ fc)
    k = float(fo @ fc) / den if den > 0 else 1.0
    return float(np.abs(fo - k * fc).sum() / max(float(fo.sum()), 1e-30)), k


def _bounded_step(A, g, d, lam, p, lo, hi, held):
    """One damped Gauss–Newton step in the box: a parameter the step would carry across its bound
    is put on the bound and held, and the step is solved again for the others (at most 5 times)."""
    held = held.copy()
    target = p.copy()
    for _ in range(5):
        free = np.flatnonzero(~held)
        if free.size == 0:
            return target
        fixed = np.flatnonzero(held)
        rhs = -g[free] - A[np.ix_(free, fixed)] @ (target[fixed] - p[fixed])
        try:
            step = np.linalg.solve(A[np.ix_(free, free)] + lam * np.diag(d[free]), rhs)
        except np.linalg.LinAlgError:
            return None
        trial = target.copy()
        trial[free] = p[free] + step
        out = (trial < lo) | (trial > hi)
        if not out.any():
            return trial
        target[out] = np.clip(trial[out], lo[out], hi[out])
        held |= out
    return np.clip(trial, lo, hi)


def _levenberg_marquardt(resid, jac, p0, lo, hi, max_iterations: int, tol: float = 1e-7):
    """Minimise ½|resid(p)|² within the box [lo, hi] (Levenberg–Marquardt, Marquardt's scaling).

    Parameters at a bound whose gradient points out of the box are held there for the step
    (an active set, re-chosen every iteration), and every trial point is clipped into the box.
    Near-zero B of static (simulated) atoms sit on the lower bound: scipy's ``trf`` crawled along
    it (40 evaluations, still moving), an active set converges in a few. Stops when a step lowers
    the cost by less than ``tol`` (relative) or moves no parameter by more than ``tol`` (relative),
    or after ``max_iterations`` Jacobians. Returns ``(p, resid(p), n_evaluations)``.
    """
    p = np.clip(np.asarray(p0, float), lo, hi)
    r = resid(p)
    cost = 0.5 * float(r @ r)
    lam, nu, nfev = 1e-3, 2.0, 1
    for _ in range(max_iterations):
        J = jac(p)
        g = J.T @ r
        A = J.T @ J
        d = np.maximum(np.diag(A), 1e-30)
        held = ((p <= lo) & (g > 0)) | ((p >= hi) & (g < 0))
        if held.all():
            break
        improved = False
        for _ in range(20):
            trial = _bounded_step(A, g, d, lam, p, lo, hi, held)
            if trial is not None:
                r_new = resid(trial)
                nfev += 1
                c_new = 0.5 * float(r_new @ r_new)
                dp = trial - p
                predicted = -(g @ dp + 0.5 * dp @ A @ dp)
                if c_new < cost and predicted > 0:
                    improved = True
                    # Nielsen's damping update from the gain ratio (actual / predicted decrease)
                    rho = (cost - c_new) / predicted
                    lam *= max(1 / 3, 1 - (2 * rho - 1) ** 3)
                    nu = 2.0
                    break
            lam *= nu
            nu *= 2
        if not improved:
            break
        small_step = np.all(np.abs(trial - p) <= tol * (np.abs(p) + tol))
        small_drop = cost - c_new <= tol * cost
        p, r, cost = trial, r_new, c_new
        if small_step or small_drop:
            break
    return p, r, nfev


def refine_structure(
    atoms: Sequence[Atom],
    reflections: Reflections,
    *,
    refine_xyz: bool = True,
    b_max: float = 30.0,
    max_shift: float = 0.3,
    weight_g: float = 0.1,
    max_iterations: int = 40,
) -> RefinementResult:
    """Refine the intensity scale, every atom's B and (general-position) coordinates.

    ``atoms`` start from their own ``b_iso`` (total B, clipped to [0, ``b_max``]). The result's
    atoms carry the refined total B and coordinates; ``scale`` and ``r1`` are those of exactly
    that model against ``reflections`` (see the module docstring). If the refined model has a
    higher R1 than the start, the start is returned (``refined=False``), still exactly scored.
    """
    atoms = list(atoms)
    if not atoms:
        raise ValueError("no atoms to refine")
    if len(reflections) == 0:
        raise ValueError("no reflections to refine against")
    io = np.asarray(reflections.intensity, float)
    sig = np.asarray(reflections.sigma, float)
    fo = np.sqrt(np.clip(io, 0, None))
    m = _Model(atoms, reflections.hkl, reflections.cell, reflections.space_group)
    n_at = len(atoms)
    xyz0 = np.array([a.xyz for a in atoms])
    b0 = np.clip([a.b_iso for a in atoms], 0.0, b_max)
    general = np.array([a.multiplicity == m.n_ops for a in atoms])  # special positions stay put
    movable = np.flatnonzero(general) if refine_xyz else np.array([], int)
    floor = 1e-6 * max(float(np.mean(np.abs(io))), 1e-30)
    sw = 1.0 / np.sqrt(sig**2 + (weight_g * np.clip(io, 0, None)) ** 2 + floor**2)

    F0 = m.terms(xyz0, b0, derivatives=False)[0]
    ic0 = np.abs(F0) ** 2
    r1_start, k_start = r1_factor_of(fo, np.abs(F0))
    K0 = float((sw**2 * io) @ ic0) / max(float((sw**2 * ic0) @ ic0), 1e-30)
    cell_len = np.asarray(reflections.cell[:3], float)

    def unpack(p):
        K, b = p[0], p[1 : 1 + n_at]
        xyz = xyz0.copy()
        if movable.size:
            xyz[movable] = p[1 + n_at :].reshape(-1, 3)
        return K, b, xyz

    def resid(p):
        K, b, xyz = unpack(p)
        F = m.terms(xyz, b, derivatives=False)[0]
        return sw * (io - K * np.abs(F) ** 2)

    def jac(p):
        K, b, xyz = unpack(p)
        F, parts, dparts = m.terms(xyz, b, derivatives=True)
        cols = [-sw * np.abs(F) ** 2]
        for j in range(n_at):
            cols.append(-sw * K * 2 * np.real(np.conj(F) * parts[j]) * (-m.s2 / 4))
        for j in movable:
            d = 2 * np.real(np.conj(F)[:, None] * dparts[j])
            cols.extend(-sw * K * d[:, c] for c in range(3))
        return np.stack(cols, axis=1)

    p0 = np.r_[K0, b0, xyz0[movable].ravel()]
    span = np.tile(max_shift / cell_len, movable.size)
    lo = np.r_[0.0, np.zeros(n_at), xyz0[movable].ravel() - span]
    hi = np.r_[np.inf, np.full(n_at, b_max), xyz0[movable].ravel() + span]
    p0 = np.clip(p0, lo + 1e-12, np.where(np.isfinite(hi), hi - 1e-12, np.inf))
    p0[0] = max(p0[0], 1e-30)
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the normal equations are small, and a multithreaded OpenBLAS on a busy
    # machine spins (azobenzene's SVDs took 2.2 s with 2 threads, 0.2 s with 1)
    with threadpool_limits(limits=1, user_api="blas"):
        x, fun, nfev = _levenberg_marquardt(resid, jac, p0, lo, hi, max_iterations)
    _, b, xyz = unpack(x)
    new = [
        dataclasses.replace(a, x=float(xyz[j, 0]), y=float(xyz[j, 1]), z=float(xyz[j, 2]), b_iso=float(b[j]))
        for j, a in enumerate(atoms)
    ]
    F = m.terms(xyz, b, derivatives=False)[0]
    r1, k = r1_factor_of(fo, np.abs(F))
    wr2 = float(np.sqrt(np.sum(fun**2) / max(np.sum((sw * io) ** 2), 1e-30)))
    n_par = p0.size
    if r1 > r1_start:
        start = [dataclasses.replace(a, b_iso=float(b0[j])) for j, a in enumerate(atoms)]
        wr2_0 = float(
            np.sqrt(
                np.sum(resid(np.r_[K0, b0, xyz0[movable].ravel()]) ** 2) / max(np.sum((sw * io) ** 2), 1e-30)
            )
        )
        return RefinementResult(start, k_start, r1_start, wr2_0, r1_start, len(io), n_par, nfev, False)
    return RefinementResult(new, k, r1, wr2, r1_start, len(io), n_par, nfev, True)
