"""Ab initio phasing by charge flipping (Oszlányi & Sütő, Acta Cryst. A60 (2004) 134; A61 (2005) 147).

The merged data are expanded to P1 (gemmi's symmetry operations plus Friedel mates) and phased
from random starts, each one iterating

1. ρ = FT⁻¹[F]  on a grid sized for the space group (gemmi rules, spacing ``d_min/grid_factor``);
2. δ = k·σ(ρ); every point with ρ < δ has its sign flipped (the "charge flip");
3. G = FT[ρ']; strong observed reflections get |E_obs|·G/|G|; weak ones (the lowest
   ``weak_fraction`` of |E_obs|) keep |G| with the phase shifted by π/2 (Oszlányi & Sütő 2005);
   unobserved reflections inside the resolution sphere evolve freely (or are held at 0);
   everything beyond it is set to 0; F(000) evolves freely.

The agreement ``R_CF = Σ| |E_obs| − c|G| | / Σ|E_obs|`` (c a scale) over the strong reflections
first stays on a plateau, then drops and settles when the phases lock in. A start is *converged*
when the mean R_CF over the last 30 iterations is below ``(1 − drop)`` × its random-phase plateau
(the larger median of iterations 2–8 and 5–35) and
its spread over that window is < 5 % of the mean, or, for a start whose R_CF has not dropped (small
structures lock in within the first iterations), when its map's symmetry agreement (below)
reaches 0.6 at the checks of iterations 40, 60, 80 (two in a row, and again after polishing)
or 100, 150, …. Starts run in pairs as dask tasks on threads (all at once on a
``dask.distributed`` client when given); no further pair is started once one has converged, and
once a start's polished map fits the space group the others stop (only starts finished by then
are used: the result does not depend on thread timing). The best start is the converged one with
the lowest final R_CF. Its origin is then located by the symmetry agreement of the P1 map
(Palatinus & van der Lee 2008 / Palatinus & Chapuis 2007): for every operation (R, τ) the
correlation c(u) = Σ ρ(y)ρ(Ry + u) is one FFT of Φ(k)·Φ*(Rᵀk), and the origin shift t maximising
the mean of c(τ + (I−R)t)/c(0) over the operations is chosen; the shifted map is averaged over the
space group (gemmi ``symmetrize_avg``). Origin search and grid live in :mod:`.origin`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.fft as sfft

from ..compute.executor import check_cancel, is_cancelled
from .geometry import reciprocal_basis
from .origin import locate_origin, phasing_grid, symmetrise
from .reflections import Reflections, parse_space_group

__all__ = ["charge_flip", "PhasingResult", "expand_to_p1", "phasing_grid"]

POLISH = 20  # iterations run after convergence is detected
SYMMETRY_CONVERGED = 0.6  # symmetry agreement that marks a start as converged
BATCH = 2  # starts run side by side (threads); later batches only while none has converged
#: iterations at which a start whose R_CF has not dropped has its symmetry agreement checked:
#: every 20 at first (small structures lock in within a few tens of iterations), then every 50.
#: Before SYMMETRY_TRUSTED iterations two consecutive checks must pass (a map can fit the group
#: briefly at iteration 40 and leave it again: brookite, 0.33 after 20 more iterations)
SYMMETRY_CHECKS = (40, 60, 80)
SYMMETRY_CHECK = 50
SYMMETRY_TRUSTED = 100
CHECK_REFLECTIONS = 6000  # strongest P1 reflections used by the in-loop symmetry test


@dataclass
class PhasingResult:
    """Outcome of :func:`charge_flip`.

    ``potential`` is the symmetrised electrostatic-potential map on the unit cell (grid axes along
    a, b, c, origin at index 0, in units of its r.m.s.), computed from |F_obs| with the solution's
    phases. ``hkl``/``phases`` (radians, crystallographic sign, e^{+2πi h·x} convention) are the
    P1-expanded reflections used.
    """

    converged: bool
    potential: np.ndarray
    cell: tuple
    space_group: str
    r_cf: float
    symmetry_agreement: float | None
    origin_shift: tuple[float, float, float]
    delta_factor: float
    grid: tuple[int, int, int]
    d_min: float
    hkl: np.ndarray
    amplitudes: np.ndarray
    phases: np.ndarray
    best_start: int | None
    starts: list[dict] = field(default_factory=list)
    r_history: list[float] = field(default_factory=list)
    flipped_charge: float = float("nan")
    message: str = ""

    def figures_of_merit(self) -> dict:
        """Every figure of merit as plain JSON-able values."""
        return {
            "converged": bool(self.converged),
            "r_cf": float(self.r_cf),
            "symmetry_agreement": None if self.symmetry_agreement is None else float(self.symmetry_agreement),
            "origin_shift": [float(v) for v in self.origin_shift],
            "delta_factor": float(self.delta_factor),
            "grid": list(self.grid),
            "d_min": float(self.d_min),
            "best_start": self.best_start,
            "n_starts": len(self.starts),
            "n_converged_starts": int(sum(s["converged"] for s in self.starts)),
            "starts": self.starts,
            "flipped_charge": float(self.flipped_charge),
            "message": self.message,
        }


def expand_to_p1(hkl: np.ndarray, values: np.ndarray, space_group) -> tuple[np.ndarray, np.ndarray]:
    """All symmetry equivalents and Friedel mates of ``hkl`` with their ``values`` (unique rows)."""
    sg = parse_space_group(space_group)
    h = np.asarray(hkl, dtype=np.int64)
    rots = [np.array(op.rot, dtype=np.int64) // op.DEN for op in sg.operations().sym_ops]
    all_h = np.concatenate([h @ r for r in rots] + [-(h @ r) for r in rots])
    all_v = np.concatenate([np.asarray(values)] * (2 * len(rots)))
    uniq, idx = np.unique(all_h, axis=0, return_index=True)
    keep = np.any(uniq != 0, axis=1)
    return uniq[keep], all_v[idx][keep]


def _normalise(hkl: np.ndarray, amp: np.ndarray, cell, sg, n_shells: int = 12) -> np.ndarray:
    """Quasi-normalised |E| = |F| / sqrt(ε <|F|²>_shell) in shells of equal count in s²."""
    s2 = np.sum((hkl @ reciprocal_basis(cell).T) ** 2, axis=1)
    eps = sg.operations().epsilon_factor_without_centering_array(hkl.astype(np.int32)).astype(float)
    order = np.argsort(s2)
    e = np.empty_like(amp, dtype=float)
    for chunk in np.array_split(order, max(1, min(n_shells, len(order) // 20))):
        mean = np.mean(amp[chunk] ** 2 / eps[chunk])
        e[chunk] = amp[chunk] / np.sqrt(eps[chunk] * max(mean, 1e-30))
    return e


class _Problem:
    """Arrays shared by all starts: grid indices of observed reflections and the resolution mask."""

    def __init__(self, hkl_p1, e_p1, f_p1, cell, shape, d_min, weak_fraction, unobserved):
        self.shape = shape
        self.cell = cell
        self.hall: str | None = None  # space group (Hall symbol) for in-loop symmetry checks; None in P1
        nx, ny, nz = shape
        keep = hkl_p1[:, 2] >= 0
        h = hkl_p1[keep]
        self.hkl = h
        self.e = e_p1[keep].astype(np.float32)
        self.f = f_p1[keep]
        self.idx = (h[:, 0] % nx, h[:, 1] % ny, h[:, 2])
        # +1 for the canonical member of a Friedel pair, −1 for its mate (both stored when l = 0)
        canon = (h[:, 2] > 0) | ((h[:, 2] == 0) & ((h[:, 1] > 0) | ((h[:, 1] == 0) & (h[:, 0] > 0))))
        self.sign = np.where(canon, 1.0, -1.0).astype(np.float32)
        cut = np.quantile(self.e, weak_fraction) if weak_fraction > 0 else -1.0
        self.weak = self.e <= cut
        self.strong = ~self.weak
        fx = np.fft.fftfreq(nx, 1.0 / nx)
        fy = np.fft.fftfreq(ny, 1.0 / ny)
        fz = np.arange(nz // 2 + 1)
        B = reciprocal_basis(cell)
        H = np.stack(np.meshgrid(fx, fy, fz, indexing="ij"), axis=-1)
        s = np.linalg.norm(H @ B.T, axis=-1)
        self.free = s <= 1.0 / d_min + 1e-9  # evolve freely (unobserved inside the sphere)
        if unobserved == "zero":
            self.free[:] = False
        self.free[0, 0, 0] = True  # F(000) free
        self.free[self.idx] = False


def _noop() -> None:
    return None


def _plateau(hist: list[float]) -> float:
    """R_CF of the random-phase stage: the larger of the medians of iterations 2–8 and 5–35
    (small structures can lock in within the first 30 iterations)."""
    return max(float(np.median(hist[2:8])), float(np.median(hist[5:35])))


def _agreement(p: _Problem, phases: np.ndarray) -> float:
    import gemmi

    sg = gemmi.find_spacegroup_by_ops(gemmi.symops_from_hall(p.hall))
    # the in-loop test only decides "fits the group or not": the strongest reflections suffice
    return float(locate_origin(p, phases, p.shape, sg, p.cell, n_max=CHECK_REFLECTIONS)[1])


class _Solved:
    """The earliest iteration at which some start converged with a map that fits the space group.

    Other starts that have not converged stop once they pass it; whatever they did after it is
    not used (``charge_flip`` keeps only starts converged by then), so the result does not depend
    on how fast each thread ran, and is the same on a distributed client, where nothing stops.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.at: int | None = None

    def report(self, it: int) -> None:
        with self._lock:
            self.at = it if self.at is None else min(self.at, it)


def _symmetry_check_due(it: int) -> bool:
    return it in SYMMETRY_CHECKS or (it > SYMMETRY_CHECKS[-1] and it % SYMMETRY_CHECK == 0)


def _one_start(
    p: _Problem,
    seed: int,
    delta_factor: float,
    max_iter: int,
    drop: float,
    tick: Callable[[], None],
    cancel: Any,
    solved: _Solved | None = None,
) -> dict:
    rng = np.random.default_rng(seed)
    shape = p.shape
    F = np.zeros((shape[0], shape[1], shape[2] // 2 + 1), np.complex64)
    # random start: random phases via the transform of a random map (Friedel-consistent)
    G0 = sfft.rfftn(rng.random(shape).astype(np.float32))
    ph = G0[p.idx] / np.maximum(np.abs(G0[p.idx]), 1e-30)
    F[p.idx] = p.e * ph
    hist: list[float] = []
    converged_at, by_symmetry = None, False
    rot = np.exp(0.5j * np.pi * p.sign).astype(np.complex64)
    win = 30
    stopped, passed, signalled, finished_at = False, False, None, None
    for it in range(max_iter):
        if is_cancelled(cancel):
            break
        if converged_at is None and solved is not None and solved.at is not None and it > solved.at:
            stopped = True  # another start had a solution that fits the space group by now
            break
        rho = sfft.irfftn(F, s=shape, workers=1)
        delta = delta_factor * rho.std()
        flipped = np.where(rho < delta, -rho, rho)
        G = sfft.rfftn(flipped, workers=1)
        g = G[p.idx]
        ag = np.abs(g)
        st = p.strong
        c = float(p.e[st] @ ag[st]) / max(float(ag[st] @ ag[st]), 1e-30)
        hist.append(float(np.abs(p.e[st] - c * ag[st]).sum() / p.e[st].sum()))
        Fn = np.where(p.free, G, 0).astype(np.complex64)
        unit = g / np.maximum(ag, 1e-30)
        Fn[p.idx] = np.where(p.weak, g * rot, p.e * unit)
        F = Fn
        tick()
        if converged_at is None:
            if it >= 60:
                plateau = _plateau(hist)
                w = np.asarray(hist[-win:])
                if w.mean() < (1 - drop) * plateau and (w.max() - w.min()) < 0.05 * w.mean():
                    converged_at = it
            if converged_at is None and p.hall is not None and _symmetry_check_due(it):
                # locked in from the first iterations (small structures): no R drop to see, but
                # a map that already fits the space group is a solution
                fits = _agreement(p, np.angle(F[p.idx])) >= SYMMETRY_CONVERGED
                if fits and (passed or it >= SYMMETRY_TRUSTED):
                    converged_at, by_symmetry = it, True
                passed = fits
        if converged_at is not None and it >= converged_at + POLISH:
            # tell the other starts only when the polished map fits the space group; an early
            # (< SYMMETRY_TRUSTED) lock-in that has left the group again was a transient: go on
            fits = p.hall is None or _agreement(p, np.angle(F[p.idx])) >= SYMMETRY_CONVERGED
            if by_symmetry and converged_at < SYMMETRY_TRUSTED and not fits:
                converged_at, by_symmetry, passed = None, False, False
                continue
            finished_at = it
            if fits and solved is not None:
                solved.report(it)
            signalled = it if fits else None
            break
    rho = sfft.irfftn(F, s=shape, workers=1)
    delta = delta_factor * rho.std()
    below = rho < delta
    flipped_charge = float(np.abs(rho[below]).sum() / max(np.abs(rho).sum(), 1e-30))
    return {
        "seed": int(seed),
        "converged": converged_at is not None,
        "iterations": len(hist),
        "converged_at": converged_at,
        "by_symmetry": by_symmetry,
        "stopped": stopped,
        "solution_at": signalled,
        "finished_at": finished_at,
        "r_cf": float(np.mean(hist[-10:])) if hist else float("nan"),
        "r_plateau": _plateau(hist) if len(hist) > 35 else float("nan"),
        "flipped_charge": flipped_charge,
        "history": hist,
        "phases": np.angle(F[p.idx]),
    }


def charge_flip(
    reflections: Reflections,
    *,
    d_min: float | None = None,
    starts: int = 4,
    delta_factor: float = 1.2,
    weak_fraction: float = 0.2,
    unobserved: str = "free",
    max_iterations: int = 1500,
    drop: float = 0.10,
    grid_factor: float = 2.5,
    seed: int | None = None,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Any = None,
) -> PhasingResult:
    """Phase merged reflections ab initio by charge flipping (see the module docstring).

    Parameters
    ----------
    reflections
        :class:`Reflections` with the cell and space group; merged (unique reflections, any
        scale) or not (then merged here with :func:`~virtual_aperture.crystal.merge.merge_reflections`).
    d_min
        Resolution cut in Å (default: all data).
    starts
        Maximum number of random starts: run two at a time in parallel (all at once on a
        ``client``); no further pair is started once a start has converged, and the other start
        of a pair stops once one has a polished map that fits the space group.
    delta_factor
        k in δ = k·σ(ρ) (1.0–1.3 typical).
    weak_fraction
        Fraction of the weakest observed reflections whose phases are shifted by π/2.
    unobserved
        ``"free"`` (evolve with the flipped map) or ``"zero"`` for unobserved reflections inside
        the resolution sphere (e.g. the missing wedge).
    max_iterations
        Per start.
    drop
        Relative R_CF drop from its early plateau that counts as convergence.
    seed
        Seed of the random starts (start i uses ``seed + i``).
    client
        A ``dask.distributed.Client`` to run the starts on; default: dask threads.
    progress, cancel
        ``progress(done, total)`` in iterations; a cancel token (raises ``Cancelled``).

    Returns
    -------
    PhasingResult
        The best start: potential map, phases, R_CF, convergence and symmetry agreement.
    """
    import dask

    if not isinstance(reflections, Reflections):
        raise ValueError(f"reflections must be a Reflections table, got {type(reflections).__name__}")
    if not (0.5 <= delta_factor <= 2.0):
        raise ValueError(f"delta_factor must be in [0.5, 2.0], got {delta_factor}")
    if not (0 <= weak_fraction < 0.6):
        raise ValueError(f"weak_fraction must be in [0, 0.6), got {weak_fraction}")
    if unobserved not in ("free", "zero"):
        raise ValueError(f"unobserved must be 'free' or 'zero', got {unobserved!r}")
    if int(starts) < 1:
        raise ValueError(f"starts must be ≥ 1, got {starts}")
    refl = reflections if d_min is None else reflections.resolution_cut(d_min)
    if not refl.merged and len(refl):
        from .merge import merge_reflections

        refl, _ = merge_reflections(refl)  # unmerged or unknown: merge equivalents first
    sg = parse_space_group(refl.space_group)
    absent = (
        sg.operations().systematic_absences(refl.hkl.astype(np.int32)) if len(refl) else np.zeros(0, bool)
    )
    refl = refl.select(~absent)
    if len(refl) < 20:
        raise ValueError(f"too few reflections to phase ({len(refl)}; need at least 20)")
    dmin = float(refl.d.min())
    amp = np.sqrt(np.clip(refl.intensity, 0, None))
    e = _normalise(refl.hkl, amp, refl.cell, sg)
    hkl_p1, vals = expand_to_p1(refl.hkl, np.stack([e, amp], 1), sg)
    shape = phasing_grid(refl.cell, sg, dmin, grid_factor)
    hmax = np.abs(hkl_p1).max(axis=0)
    if np.any(2 * hmax >= np.array(shape)):
        raise ValueError(f"grid {shape} too small for indices up to {tuple(hmax)}")
    p = _Problem(hkl_p1, vals[:, 0], vals[:, 1], refl.cell, shape, dmin, weak_fraction, unobserved)
    p.hall = sg.hall if len(sg.operations().sym_ops) > 1 else None
    base = int(np.random.SeedSequence(seed).generate_state(1)[0]) if seed is None else int(seed)
    total = int(starts) * max_iterations
    done = [0]
    lock = threading.Lock()

    def tick() -> None:
        with lock:
            done[0] += 1
            if progress is not None and done[0] % 10 == 0:
                progress(min(done[0], total), total)

    if client is not None:
        # remote workers: tasks must pickle, so progress and cancel are handled per finished start
        from distributed import as_completed

        p_remote = client.scatter(p, broadcast=True)
        futures = [
            client.submit(
                _one_start, p_remote, base + i, delta_factor, max_iterations, drop, _noop, None, pure=False
            )
            for i in range(int(starts))
        ]
        for n_done, _ in enumerate(as_completed(futures), 1):
            if is_cancelled(cancel):
                client.cancel(futures)
                break
            if progress is not None:
                progress(n_done * max_iterations, total)
        check_cancel(cancel)
        runs = client.gather(futures)
    else:
        # batches of BATCH starts in parallel; no further batch once a start has converged
        runs = []
        solved = _Solved()  # the first start whose map fits the space group
        for first in range(0, int(starts), BATCH):
            tasks = [
                dask.delayed(_one_start)(
                    p, base + i, delta_factor, max_iterations, drop, tick, cancel, solved
                )
                for i in range(first, min(first + BATCH, int(starts)))
            ]
            runs.extend(dask.compute(*tasks, scheduler="threads"))
            if any(r["converged"] for r in runs):
                break
    check_cancel(cancel)
    if progress is not None:
        progress(total, total)
    summary = [{k: v for k, v in r.items() if k not in ("history", "phases")} for r in runs]
    # symmetry agreement of every start's P1 map at its best origin (Palatinus & van der Lee 2008)
    n_sym = len(sg.operations().sym_ops)
    # starts converged after the first solution are not used: threads may have stopped them
    first = min((r["solution_at"] for r in runs if r["solution_at"] is not None), default=None)
    origins = []
    for r, summ in zip(runs, summary):
        check_cancel(cancel)
        late = first is not None and (r["finished_at"] is None or r["finished_at"] > first)
        if late:
            origins.append((np.zeros(3), float("nan"), []))
            summ.update(symmetry_agreement=None, converged_by=None, converged=False, after_solution=True)
            continue
        origins.append(locate_origin(p, r["phases"], shape, sg, refl.cell))
        summ["symmetry_agreement"] = origins[-1][1] if n_sym > 1 else None
        # a start whose map fits the space group well has converged even without a marked R drop
        # (tiny structures lock in within the first iterations)
        summ["converged_by"] = (
            ("symmetry" if r["by_symmetry"] else "r_drop")
            if r["converged"]
            else "symmetry"
            if n_sym > 1 and origins[-1][1] >= SYMMETRY_CONVERGED
            else None
        )
        summ["converged"] = summ["converged_by"] is not None
    conv = [i for i, s_ in enumerate(summary) if s_["converged"]]
    if n_sym > 1:  # best: highest symmetry agreement among converged starts
        pick = max(conv or range(len(runs)), key=lambda i: summary[i]["symmetry_agreement"])
    else:  # P1: lowest R_CF
        pick = min(conv or range(len(runs)), key=lambda i: runs[i]["r_cf"])
    best = runs[pick]
    shift, agreement, per_op = origins[pick]
    # potential from |F_obs| with the solution's phases, shifted to the found origin, symmetrised
    Ff = np.zeros((shape[0], shape[1], shape[2] // 2 + 1), complex)
    Ff[p.idx] = p.f * np.exp(1j * (best["phases"] + 2 * np.pi * (p.hkl @ shift)))
    rho = sfft.irfftn(Ff, s=shape)
    rho = symmetrise(rho, refl.cell, sg)
    rho = (rho - rho.mean()) / max(float(rho.std()), 1e-30)
    # phases of the final map in the crystallographic convention (F = Σρ e^{+2πi h·x})
    G = sfft.rfftn(rho)
    phases = -np.angle(G[p.idx])
    converged = bool(conv)
    sym_ok = agreement is None or len(per_op) == 0 or agreement >= 0.5
    msg = ""
    if not converged:
        msg = (
            f"charge flipping did not converge in {len(runs)} start(s) of up to {max_iterations} "
            f"iterations (R_CF stayed at {best['r_cf']:.3f})"
        )
    elif not sym_ok:
        msg = f"the P1 solution does not fit the symmetry of {sg.hm} (agreement {agreement:.2f} < 0.5)"
        converged = False
    return PhasingResult(
        converged=converged,
        potential=rho.astype(np.float32),
        cell=refl.cell,
        space_group=sg.hm,
        r_cf=best["r_cf"],
        symmetry_agreement=None if not per_op else agreement,
        origin_shift=tuple(float(v) for v in shift),
        delta_factor=float(delta_factor),
        grid=shape,
        d_min=dmin,
        hkl=p.hkl,
        amplitudes=p.f,
        phases=phases,
        best_start=pick,
        starts=summary,
        r_history=best["history"],
        flipped_charge=best["flipped_charge"],
        message=msg,
    )
