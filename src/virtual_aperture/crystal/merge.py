"""Merging symmetry equivalents: weighted means, Rint, CC½ and completeness per resolution shell."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import miller_indices_within
from .reflections import Reflections, parse_space_group

__all__ = ["merge_reflections", "MergeStats", "to_asu"]


def to_asu(hkl: np.ndarray, space_group) -> np.ndarray:
    """Miller indices mapped to gemmi's reciprocal asymmetric unit (Friedel mates merged)."""
    import gemmi

    sg = parse_space_group(space_group)
    ops = sg.operations()
    asu = gemmi.ReciprocalAsu(sg)
    h = np.asarray(hkl, dtype=np.int64)
    if h.size == 0:
        return h.reshape(0, 3)
    uniq, inv = np.unique(h, axis=0, return_inverse=True)
    mapped = np.array([asu.to_asu([int(v) for v in row], ops)[0] for row in uniq], dtype=np.int64)
    return mapped[inv.reshape(-1)]


@dataclass
class MergeStats:
    """Merging statistics: ``overall`` and one dict per resolution shell (low → high resolution)."""

    overall: dict
    shells: list[dict] = field(default_factory=list)

    def table(self) -> str:
        """The shells as a fixed-width text table."""
        head = (
            f"{'d_max':>7} {'d_min':>6} {'n_obs':>7} {'n_uniq':>7} "
            f"{'compl':>6} {'mult':>5} {'I/sig':>6} {'Rint':>6} {'CC1/2':>6}"
        )
        rows = [head]
        for s in [*self.shells, {**self.overall, "d_max": self.overall["d_max"]}]:
            rows.append(
                f"{s['d_max']:7.2f} {s['d_min']:6.2f} {s['n_obs']:7d} "
                f"{s['n_unique']:7d} {s['completeness']:6.3f} "
                f"{s['multiplicity']:5.2f} {s['i_over_sigma']:6.1f} {_f(s['r_int'])} {_f(s['cc_half'])}"
            )
        return "\n".join(rows)

    def as_dict(self) -> dict:
        return {"overall": self.overall, "shells": self.shells}


def _f(v) -> str:
    return f"{v:6.3f}" if v is not None and np.isfinite(v) else "     -"


def _stats(idx: np.ndarray, I: np.ndarray, S: np.ndarray, n_groups: int, rng) -> dict:
    counts = np.bincount(idx, minlength=n_groups)
    w = 1.0 / np.maximum(S, 1e-12) ** 2
    mean = np.bincount(idx, weights=w * I, minlength=n_groups) / np.maximum(
        np.bincount(idx, weights=w, minlength=n_groups), 1e-300
    )
    multi = counts[idx] >= 2
    num = np.abs(I - mean[idx])[multi].sum()
    den = np.abs(I[multi]).sum()
    r_int = float(num / den) if den > 0 else float("nan")
    # CC½: each group's observations split at random into two halves
    perm = rng.permutation(len(idx))
    order = perm[np.argsort(idx[perm], kind="stable")]
    rank = np.empty(len(idx), np.int64)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    rank[order] = np.arange(len(idx)) - np.repeat(starts, counts)
    half = rank % 2
    cc = float("nan")
    groups = np.flatnonzero(counts >= 2)
    if len(groups) >= 3:
        m = [
            np.bincount(idx[half == k], weights=I[half == k], minlength=n_groups)
            / np.maximum(np.bincount(idx[half == k], minlength=n_groups), 1)
            for k in (0, 1)
        ]
        a, b = m[0][groups], m[1][groups]
        if a.std() > 0 and b.std() > 0:
            cc = float(np.corrcoef(a, b)[0, 1])
    return {"r_int": r_int, "cc_half": cc, "mean": mean, "counts": counts}


def merge_reflections(
    reflections: Reflections,
    *,
    space_group=None,
    n_shells: int = 10,
    seed: int = 0,
) -> tuple[Reflections, MergeStats]:
    """Merge symmetry-equivalent observations (Friedel mates merged, as in kinematic ED).

    Parameters
    ----------
    reflections
        Unmerged observations.
    space_group
        Merge in this space group instead of ``reflections.space_group``.
    n_shells
        Resolution shells of equal reciprocal volume for the statistics table.
    seed
        Seed of the random half-dataset split for CC½.

    Returns
    -------
    merged, stats
        Merged reflections (weighted means, σ = max(1/√Σw, spread/√n)) in gemmi's reciprocal ASU,
        systematic absences removed; :class:`MergeStats` with Rint = Σ|I − ⟨I⟩| / Σ I over
        reflections measured ≥ 2 times, CC½ and completeness (against all non-absent unique
        reflections to the data's resolution) overall and per shell.
    """
    if not isinstance(reflections, Reflections):
        raise ValueError(f"reflections must be a Reflections table, got {type(reflections).__name__}")
    if len(reflections) == 0:
        raise ValueError("no reflections to merge")
    sg = parse_space_group(space_group or reflections.space_group)
    refl = reflections.replace(space_group=sg.hm)
    ops = sg.operations()
    keep = ~ops.systematic_absences(refl.hkl.astype(np.int32)) & np.any(refl.hkl != 0, axis=1)
    n_absent_obs = int((~keep).sum())
    absent_ios = (
        float(np.mean(refl.intensity[~keep] / np.maximum(refl.sigma[~keep], 1e-12))) if n_absent_obs else None
    )
    refl = refl.select(keep)
    if len(refl) == 0:
        raise ValueError(f"every reflection is systematically absent in {sg.hm}")
    asu = to_asu(refl.hkl, sg)
    uniq, idx = np.unique(asu, axis=0, return_inverse=True)
    idx = idx.reshape(-1)
    I, S = refl.intensity, refl.sigma
    rng = np.random.default_rng(seed)
    st = _stats(idx, I, S, len(uniq), rng)
    counts = st["counts"]
    w = 1.0 / np.maximum(S, 1e-12) ** 2
    sig_w = 1.0 / np.sqrt(np.bincount(idx, weights=w, minlength=len(uniq)))
    spread = np.sqrt(
        np.bincount(idx, weights=(I - st["mean"][idx]) ** 2, minlength=len(uniq)) / np.maximum(counts - 1, 1)
    ) / np.sqrt(counts)
    sigma = np.where(counts >= 2, np.maximum(sig_w, spread), sig_w)
    tilt = np.bincount(idx, weights=np.nan_to_num(refl.tilt_deg), minlength=len(uniq)) / counts
    merged = Reflections(
        uniq,
        st["mean"],
        sigma,
        cell=refl.cell,
        space_group=sg.hm,
        multiplicity=counts,
        tilt_deg=tilt,
        wavelength=refl.wavelength,
        merged=True,
    )
    # completeness against all unique, non-absent reflections to the data's resolution
    d = merged.d
    d_min, d_max = float(d.min()), float(d.max())
    full = miller_indices_within(refl.cell, d_min * 0.9999)
    full = full[~ops.systematic_absences(full.astype(np.int32))]
    full_u = np.unique(to_asu(full, sg), axis=0)
    from .geometry import reciprocal_basis

    d_full = 1.0 / np.linalg.norm(full_u @ reciprocal_basis(refl.cell).T, axis=1)
    edges = (np.linspace((1 / d_max) ** 3 * 0.999, (1 / d_min) ** 3 * 1.0001, n_shells + 1)) ** (1 / 3)
    shells = []
    obs_d = refl.d
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel_u = (1 / d >= lo) & (1 / d < hi)
        sel_o = (1 / obs_d >= lo) & (1 / obs_d < hi)
        n_exp = int(((1 / d_full >= lo) & (1 / d_full < hi)).sum())
        sub = np.flatnonzero(sel_o)
        if len(sub):
            u2, i2 = np.unique(idx[sub], return_inverse=True)
            s2 = _stats(i2.reshape(-1), I[sub], S[sub], len(u2), rng)
        else:
            s2 = {"r_int": float("nan"), "cc_half": float("nan")}
        shells.append(
            {
                "d_max": float(1 / lo),
                "d_min": float(1 / hi),
                "n_obs": int(sel_o.sum()),
                "n_unique": int(sel_u.sum()),
                "completeness": float(sel_u.sum() / n_exp) if n_exp else float("nan"),
                "multiplicity": float(counts[sel_u].mean()) if sel_u.any() else 0.0,
                "i_over_sigma": float(np.mean(merged.intensity[sel_u] / np.maximum(sigma[sel_u], 1e-12)))
                if sel_u.any()
                else 0.0,
                "r_int": s2["r_int"],
                "cc_half": s2["cc_half"],
            }
        )
    overall = {
        "d_max": d_max,
        "d_min": d_min,
        "n_obs": len(refl),
        "n_unique": len(uniq),
        "completeness": float(len(uniq) / max(len(full_u), 1)),
        "multiplicity": float(counts.mean()),
        "i_over_sigma": float(np.mean(merged.intensity / np.maximum(sigma, 1e-12))),
        "r_int": st["r_int"],
        "cc_half": st["cc_half"],
        "space_group": sg.hm,
        "n_absent_observations": n_absent_obs,
        "absent_mean_i_over_sigma": absent_ios,
    }
    return merged, MergeStats(overall, shells)
