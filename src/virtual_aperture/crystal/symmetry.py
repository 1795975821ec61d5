"""Laue class and space-group suggestions from merging statistics and systematic absences.

Laue class: the data are merged in each Laue group allowed by the cell metric (P lattice,
gemmi ASU mapping). A group is accepted when its Rint stays within
``max(1.5·Rint(-1), Rint(-1) + 0.05)`` of the triclinic value (Friedel pairs only) and its CC½
is ≥ 0.8 of the triclinic one, or — because dynamical scattering inflates Rint of electron data
while equivalent reflections stay correlated — when the correlation of intensities related by the
group's extra symmetry (normalised per resolution shell, as POINTLESS scores symmetry elements)
is ≥ ``CC_SYM_ACCEPT`` over at least 20 pairs. The accepted group of highest order is suggested.

Space groups: the lattice centring is the one (P, A, B, C, I, F, R) whose forbidden reflections
are weakest among those with ≤ 3 % strong violations; then every space group in every ITA
setting listed by gemmi (``spacegroup_table_itb``; the indexed cell's axes need not be in the
reference order) with that Laue class and centring is scored
by the reflections it declares systematically absent (``GroupOps.systematic_absences``): a group
is consistent when those have mean I/σ < 3, and consistent groups explaining more absences rank
first.
"""

from __future__ import annotations

import numpy as np

from .merge import merge_reflections
from .reflections import Reflections, check_cell_matches_space_group

__all__ = ["suggest_laue_class", "suggest_space_groups", "lattice_centring", "symmetry_pair_correlation"]

_LAUE_REPR = {
    "-1": "P -1",
    "2/m": "P 1 2/m 1",
    "mmm": "P m m m",
    "4/m": "P 4/m",
    "4/mmm": "P 4/m m m",
    "-3": "P -3",
    "-3m": "P -3 m 1",
    "6/m": "P 6/m",
    "6/mmm": "P 6/m m m",
    "m-3": "P m -3",
    "m-3m": "P m -3 m",
}

_CENTRING = {
    "A": [(0, 0.5, 0.5)],
    "B": [(0.5, 0, 0.5)],
    "C": [(0.5, 0.5, 0)],
    "I": [(0.5, 0.5, 0.5)],
    "F": [(0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)],
    "R": [(2 / 3, 1 / 3, 1 / 3), (1 / 3, 2 / 3, 2 / 3)],
}


CC_SYM_ACCEPT = 0.5


def _normalised(r: Reflections, n_shells: int = 8) -> np.ndarray:
    """Intensities divided by their resolution shell's mean (removes the fall-off shared by any pair)."""
    s2 = 1.0 / r.d**2
    edges = np.quantile(s2, np.linspace(0, 1, n_shells + 1))
    shell = np.clip(np.searchsorted(edges, s2, side="right") - 1, 0, n_shells - 1)
    mean = np.bincount(shell, weights=r.intensity, minlength=n_shells) / np.maximum(
        np.bincount(shell, minlength=n_shells), 1
    )
    return r.intensity / np.where(np.abs(mean[shell]) > 0, mean[shell], 1.0)


def symmetry_pair_correlation(reflections: Reflections, space_group) -> tuple[float, int]:
    """Correlation of the (shell-normalised) intensities of Friedel-merged reflections related by
    the symmetry of ``space_group`` but not by inversion alone, and the number of such pairs."""
    from .merge import to_asu

    fried, _ = merge_reflections(reflections.replace(space_group="P 1"), space_group="P -1", n_shells=1)
    if len(fried) < 2:
        return float("nan"), 0
    e = _normalised(fried)
    keys = to_asu(fried.hkl, space_group)
    _, grp = np.unique(keys, axis=0, return_inverse=True)
    grp = grp.reshape(-1)
    order = np.argsort(grp, kind="stable")
    g_sorted = grp[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    ends = np.r_[starts[1:], len(order)]
    a, b = [], []
    for s0, s1 in zip(starts, ends):
        if s1 - s0 < 2:
            continue
        m = order[s0:s1]
        i, j = np.triu_indices(len(m), 1)
        a.append(e[m[i]])
        b.append(e[m[j]])
    if not a:
        return float("nan"), 0
    a, b = np.concatenate(a), np.concatenate(b)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan"), int(len(a))
    # symmetric correlation (the pair order is arbitrary)
    x, y = np.r_[a, b], np.r_[b, a]
    return float(np.corrcoef(x, y)[0, 1]), int(len(a))


def _ios(r: Reflections) -> np.ndarray:
    return r.intensity / np.maximum(r.sigma, 1e-12)


def suggest_laue_class(reflections: Reflections) -> tuple[str, list[dict]]:
    """The suggested Laue class and a table of every candidate.

    Parameters
    ----------
    reflections
        Unmerged reflections with a cell.

    Returns
    -------
    laue : str
        The suggested Laue class.
    table : list of dict
        One dict per candidate: ``laue, r_int, cc_half, order, accepted``.
    """
    import gemmi

    rows = []
    for laue, symbol in _LAUE_REPR.items():
        try:
            check_cell_matches_space_group(reflections.cell, symbol)
        except ValueError:
            continue
        _, st = merge_reflections(reflections.replace(space_group="P 1"), space_group=symbol, n_shells=1)
        order = len(gemmi.SpaceGroup(symbol).operations().sym_ops)
        cc, n_pairs = symmetry_pair_correlation(reflections, symbol) if laue != "-1" else (float("nan"), 0)
        rows.append(
            {
                "laue": laue,
                "r_int": st.overall["r_int"],
                "cc_half": st.overall["cc_half"],
                "order": order,
                "cc_sym": cc,
                "n_pairs": n_pairs,
            }
        )
    base = next(r for r in rows if r["laue"] == "-1")
    r0 = base["r_int"] if np.isfinite(base["r_int"]) else 0.0
    c0 = base["cc_half"] if np.isfinite(base["cc_half"]) else 1.0
    for r in rows:
        ok_r = np.isfinite(r["r_int"]) and r["r_int"] <= max(1.5 * r0, r0 + 0.05)
        ok_c = not np.isfinite(r["cc_half"]) or r["cc_half"] >= 0.8 * c0
        ok_sym = r["n_pairs"] >= 20 and np.isfinite(r["cc_sym"]) and r["cc_sym"] >= CC_SYM_ACCEPT
        r["accepted"] = bool(r["laue"] == "-1" or (ok_r and ok_c) or ok_sym)
    best = max((r for r in rows if r["accepted"]), key=lambda r: r["order"])
    return best["laue"], rows


def lattice_centring(reflections: Reflections) -> tuple[str, dict]:
    """The lattice centring suggested by the absences, and per type the mean I/σ of forbidden reflections.

    Parameters
    ----------
    reflections
        Merged or unmerged reflections with a cell.

    Returns
    -------
    centring : str
        The suggested lattice centring (``"P"``, ``"I"``, ``"F"``, ...).
    table : dict
        Per centring type, the mean I/σ of the reflections it forbids.
    """
    h = reflections.hkl.astype(float)
    ios = _ios(reflections)
    strong = ios > 3
    stats = {}
    for c, vecs in _CENTRING.items():
        bad = np.zeros(len(h), bool)
        for t in vecs:
            x = h @ np.array(t)
            bad |= np.abs(x - np.round(x)) > 1e-6
        if bad.sum() < 5:
            continue
        stats[c] = {
            "n_forbidden": int(bad.sum()),
            "mean_i_over_sigma": float(ios[bad].mean()),
            "strong_fraction": float((bad & strong).sum() / max(bad.sum(), 1)),
        }
    ok = [c for c, s in stats.items() if s["strong_fraction"] <= 0.03]
    if not ok:
        return "P", stats
    # the centring forbidding the most reflections while they stay weak
    return max(ok, key=lambda c: stats[c]["n_forbidden"]), stats


def suggest_space_groups(
    reflections: Reflections, *, laue: str | None = None, max_results: int = 10
) -> list[dict]:
    """Ranked space-group suggestions (dicts: space_group, number, laue, centring, n_absent,
    absent_mean_i_over_sigma, consistent).

    ``n_absent`` and ``absent_mean_i_over_sigma`` count only the reflections a candidate's screw
    axes and glide planes forbid (not those its lattice centring forbids); consistent when their
    mean I/σ is below 3.

    Parameters
    ----------
    reflections
        Merged or unmerged reflections with a cell.
    laue
        Restrict to this Laue class (default: :func:`suggest_laue_class`).
    max_results
        At most this many suggestions.

    Returns
    -------
    list of dict
        Best first; keys ``space_group, number, laue, centring, n_absent,
        absent_mean_i_over_sigma, consistent``.
    """
    import gemmi

    if len(reflections) < 10:
        raise ValueError(f"too few reflections ({len(reflections)}) to suggest a space group")
    if laue is None:
        laue, _ = suggest_laue_class(reflections)
    centring, _ = lattice_centring(reflections)
    hkl = reflections.hkl.astype(np.int32)
    ios = _ios(reflections)
    # the lattice absences are common to every candidate (and already tested by lattice_centring):
    # only the extra ones of screw axes and glides tell candidates apart. Kept in, the many weak
    # centring-forbidden reflections of a centred lattice dilute the mean I/σ of the glide
    # classes until strong "absent" reflections pass as absent (UiO-66, F-43m chosen as Fd-3c).
    lattice_absent = gemmi.symops_from_hall(f"{centring} 1").systematic_absences(hkl)
    out = []
    for sg in gemmi.spacegroup_table_itb():
        if (
            sg.laue_str() != laue
            or sg.centring_type() != centring
            or sg.ext == "R"
            or (sg.ext in ("1", "2") and not sg.is_reference_setting())
        ):
            continue
        try:
            check_cell_matches_space_group(reflections.cell, sg)
        except ValueError:
            continue
        absent = sg.operations().systematic_absences(hkl) & ~lattice_absent
        m = float(ios[absent].mean()) if absent.any() else 0.0
        out.append(
            {
                "space_group": sg.hm,
                "number": sg.number,
                "laue": laue,
                "centring": centring,
                "n_absent": int(absent.sum()),
                "absent_mean_i_over_sigma": m,
                "consistent": m < 3.0,
                "reference_setting": bool(sg.is_reference_setting()),
            }
        )
    # every setting is tried (the indexed cell's axis order need not be the reference one); ties go
    # to the reference setting
    out.sort(key=lambda d: (not d["consistent"], -d["n_absent"], d["number"], not d["reference_setting"]))
    return out[:max_results]
