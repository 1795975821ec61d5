"""The figures of a grain report, each a Matplotlib Figure with physical axes, scale bars, colour
bars and titles. They read a :class:`~virtual_aperture.workflow.GrainResult` (duck-typed: this
module sits below the workflow) and, for the scan strip, virtual images and labels."""

from __future__ import annotations

import numpy as np

from ._plot import COLOURS, add_scale_bar, display_limits, image_panel, new_figure


def lattices_of(result) -> list:
    """Every lattice the result holds: ``result.lattices`` when present (multi-lattice indexing),
    else the one ``result.indexing``."""
    extra = getattr(result, "lattices", None)
    if extra:
        return list(extra)
    return [result.indexing] if getattr(result, "indexing", None) is not None else []


def pick(n: int, k: int) -> np.ndarray:
    """``k`` indices spread evenly over ``range(n)`` (all of them when n ≤ k)."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


def scan_strip(
    images: np.ndarray,
    labels: np.ndarray,
    tilts,
    angles,
    grain: int,
    *,
    scan_step_nm: float,
    max_panels: int = 6,
):
    """Virtual images of the tilts used, the grain's aperture outlined (thick, orange) and the
    other grains (thin, blue)."""
    sel = pick(len(tilts), max_panels)
    n = len(sel)
    fig = new_figure(2.35 * n + 0.8, 2.9)
    axes = fig.subplots(1, n, squeeze=False)[0]
    lo = float(np.nanpercentile(images[[tilts[i] for i in sel]], 0.5))
    hi = float(np.nanpercentile(images[[tilts[i] for i in sel]], 99.8))
    im = None
    for ax, i in zip(axes, sel):
        t = int(tilts[i])
        img = images[t]
        lab = labels[t] if labels.ndim == 3 else labels
        sy, sx = img.shape
        ext = (-0.5 * scan_step_nm, (sx - 0.5) * scan_step_nm, (sy - 0.5) * scan_step_nm, -0.5 * scan_step_nm)
        im = ax.imshow(
            img, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, extent=ext, interpolation="nearest"
        )
        yy = np.arange(sy) * scan_step_nm
        xx = np.arange(sx) * scan_step_nm
        for g in np.unique(lab[lab > 0]):
            mine = int(g) == int(grain)
            ax.contour(
                xx,
                yy,
                (lab == g).astype(float),
                levels=[0.5],
                colors=[COLOURS[0] if mine else COLOURS[1]],
                linewidths=2.0 if mine else 0.8,
            )
        ax.set_title(f"tilt {angles[i]:+.1f}° (#{t})", fontsize=8)
        ax.set_xlabel("x (nm)", fontsize=7)
        ax.tick_params(labelsize=6)
        add_scale_bar(ax, sx * scan_step_nm, "nm")
    axes[0].set_ylabel("y (nm)", fontsize=7)
    cb = fig.colorbar(im, ax=list(axes), shrink=0.8)
    cb.set_label("ADF signal (counts)", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    fig.suptitle(
        f"Grain {grain}: virtual ADF images over the tilts used — grain {grain} in orange, "
        "other grains in blue",
        fontsize=9,
    )
    return fig


def _predicted(lat, tilt: int, shape, d_min: float):
    try:
        return lat.predict(tilt, d_min=d_min, detector_shape=shape)["positions"]
    except (ValueError, IndexError, KeyError):
        return np.zeros((0, 2))


def patterns_figure(result, *, max_panels: int = 4):
    """Summed patterns (log scale) of a few tilts with the peaks found (white circles) and the
    spots each lattice predicts (one colour per lattice); axes in Å⁻¹ from the beam centre."""
    pats = np.asarray(result.patterns)
    lats = lattices_of(result)
    cal = result.indexing.calibration
    px = float(cal.pixel_size)
    sel = pick(len(pats), max_panels)
    fig = new_figure(3.3 * len(sel) + 0.6, 3.6)
    axes = fig.subplots(1, len(sel), squeeze=False)[0]
    d_min = float(result.merge_stats.overall.get("d_min", 1.0)) if result.merge_stats is not None else 1.0
    limits = display_limits(pats[sel], log=True)  # one colour scale for every panel
    for ax, i in zip(axes, sel):
        pk = result.peaks[i]
        cy, cx = (float(v) for v in pk.center)
        image_panel(
            fig,
            ax,
            pats[i],
            pixel=px,
            unit="Å⁻¹",
            title=f"tilt {result.tilt_angles_deg[i]:+.1f}°: {len(pk)} peaks",
            label="counts (log scale)",
            log=True,
            center=(cy, cx),
            cmap="magma",
            colourbar=ax is axes[-1],
            limits=limits,
        )
        ax.scatter(
            (pk.x - cx) * px,
            (pk.y - cy) * px,
            s=40,
            facecolors="none",
            edgecolors="white",
            linewidths=0.8,
            label="peaks found",
        )
        for j, lat in enumerate(lats):
            pos = _predicted(lat, i, pats[i].shape, d_min)
            ax.scatter(
                (pos[:, 1] - cx) * px,
                (pos[:, 0] - cy) * px,
                s=14,
                marker="x",
                color=COLOURS[j % len(COLOURS)],
                linewidths=0.9,
                label=f"predicted, lattice {j + 1}",
            )
        ax.set_xlim((-cx - 0.5) * px, (pats.shape[2] - 0.5 - cx) * px)
        ax.set_ylim((pats.shape[1] - 0.5 - cy) * px, (-cy - 0.5) * px)
    axes[0].legend(fontsize=6, loc="upper right", framealpha=0.6)
    fig.suptitle(
        f"Grain {result.grain}: summed patterns, peaks found and spots predicted "
        f"({len(lats)} lattice{'s' if len(lats) != 1 else ''})",
        fontsize=9,
    )
    return fig


def _peak_vectors(result, lat) -> np.ndarray:
    """All peaks of the series as reciprocal vectors (Å⁻¹) in the specimen frame at zero tilt."""
    from ..crystal.geometry import detector_to_crystal_frame

    peaks = lat.peaks
    cal = lat.calibration
    centers = np.array([p.center for p in result.peaks], dtype=float)
    out = np.zeros((len(peaks), 3))
    for t in np.unique(peaks.tilt):
        m = peaks.tilt == t
        out[m] = detector_to_crystal_frame(
            peaks.positions[m],
            tilt_deg=float(cal.tilt_angles_deg[t]),
            tilt_axis_deg=float(lat.tilt_axis_deg),
            wavelength=float(cal.wavelength),
            pixel_size=float(cal.pixel_size),
            center=tuple(centers[t]),
            ellipticity=tuple(cal.ellipticity),
        )
    return out


def reciprocal_figure(result):
    """The peaks of every tilt in 3D reciprocal space, seen along the tilt axis and along the beam
    (zero tilt), indexed peaks coloured by lattice, with the indexed cell's a*, b*, c*."""
    lats = lattices_of(result)
    lat0 = lats[0]
    phi = np.radians(float(lat0.tilt_axis_deg))
    t_axis = np.array([np.cos(phi), np.sin(phi), 0.0])
    across = np.array([-np.sin(phi), np.cos(phi), 0.0])
    beam = np.array([0.0, 0.0, 1.0])
    views = (
        (across, beam, "along the tilt axis", "⊥ tilt axis, in detector plane", "beam direction (z)"),
        (t_axis, across, "along the beam (zero tilt)", "tilt axis", "⊥ tilt axis"),
    )
    fig = new_figure(9.6, 4.6)
    axes = fig.subplots(1, 2)
    for ax, (e1, e2, name, l1, l2) in zip(axes, views):
        for j, lat in enumerate(lats):
            g = _peak_vectors(result, lat)
            ok = np.asarray(lat.indexed, bool)
            if j == 0:
                ax.scatter(g[~ok] @ e1, g[~ok] @ e2, s=4, color="0.6", label="not indexed")
            ax.scatter(
                g[ok] @ e1,
                g[ok] @ e2,
                s=5,
                color=COLOURS[j % len(COLOURS)],
                label=f"indexed, lattice {j + 1}",
            )
            ub = np.asarray(lat.UB, dtype=float)
            for k, name_k in enumerate(("a*", "b*", "c*")):
                v = ub[:, k]
                ax.annotate(
                    "",
                    xy=(v @ e1, v @ e2),
                    xytext=(0, 0),
                    arrowprops=dict(arrowstyle="->", color="black" if j == 0 else COLOURS[j], lw=1.4),
                )
                ax.text(
                    1.25 * (v @ e1),
                    1.25 * (v @ e2),
                    name_k,
                    fontsize=8,
                    ha="center",
                    va="center",
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8),
                )
        ax.set_aspect("equal")
        ax.set_title(f"reciprocal space seen {name}", fontsize=9)
        ax.set_xlabel(f"{l1} (Å⁻¹)", fontsize=8)
        ax.set_ylabel(f"{l2} (Å⁻¹)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.axhline(0, color="0.85", lw=0.5, zorder=0)
        ax.axvline(0, color="0.85", lw=0.5, zorder=0)
        xl = ax.get_xlim()
        add_scale_bar(ax, xl[1] - xl[0], "Å⁻¹", colour="black")
    axes[0].legend(fontsize=7, loc="upper right", markerscale=2)
    c = lat0.cell
    fig.suptitle(
        f"Grain {result.grain}: indexed cell a={c[0]:.3f} b={c[1]:.3f} c={c[2]:.3f} Å, "
        f"α={c[3]:.2f} β={c[4]:.2f} γ={c[5]:.2f}° ({lat0.lattice}), "
        f"{100 * lat0.indexed_fraction:.1f} % of {len(lat0.peaks)} peaks indexed",
        fontsize=9,
    )
    return fig


def merging_figure(stats):
    """I/σ, completeness, Rint and CC½ per resolution shell against resolution."""
    shells = list(stats.shells)
    fig = new_figure(9.6, 5.0)
    axes = fig.subplots(2, 2).ravel()
    if not shells:
        fig.suptitle("no resolution shells", fontsize=9)
        return fig
    d = np.array([0.5 * (s["d_max"] + s["d_min"]) for s in shells])
    x = 1.0 / d
    rows = (
        ("i_over_sigma", "⟨I/σ(I)⟩", 1.0),
        ("completeness", "completeness (%)", 100.0),
        ("r_int", "R_int", 1.0),
        ("cc_half", "CC½", 1.0),
    )
    o = stats.overall
    for ax, (key, name, scale) in zip(axes, rows):
        y = (
            np.array([s.get(key, np.nan) if s.get(key) is not None else np.nan for s in shells], float)
            * scale
        )
        ax.plot(x, y, "o-", color=COLOURS[4], ms=4)
        ov = o.get(key)
        if ov is not None and np.isfinite(ov):
            ax.axhline(ov * scale, color=COLOURS[5], ls="--", lw=0.8, label=f"overall {ov * scale:.3g}")
            ax.legend(fontsize=7)
        ax.set_ylabel(name, fontsize=8)
        ax.set_xlabel("resolution 1/d (Å⁻¹)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title(f"{name} per shell", fontsize=9)
        top = ax.secondary_xaxis(
            "top", functions=(lambda v: 1 / np.maximum(v, 1e-9), lambda v: 1 / np.maximum(v, 1e-9))
        )
        top.set_xticks(
            [
                v
                for v in (5.0, 3.0, 2.0, 1.5, 1.2, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
                if 0.9 * x.min() <= 1 / v <= 1.1 * x.max()
            ]
        )
        top.set_xlabel("d (Å)", fontsize=7)
        top.tick_params(labelsize=6)
    fig.suptitle(
        f"Merging statistics in {o.get('space_group', '?')}: {o['n_obs']} observations → {o['n_unique']} "
        f"unique reflections to {o['d_min']:.2f} Å",
        fontsize=9,
    )
    return fig
