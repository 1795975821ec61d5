"""The phase and orientation maps of a batch as one matplotlib figure (``maps.png``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["maps_figure"]


def _scale_bar(ax, width_px: int, step_nm: float) -> None:
    """A white scale bar of a round length near a fifth of the image width."""
    target = width_px * step_nm / 5.0
    nice = min(
        (v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)), key=lambda v: abs(v - target)
    )
    length_px = nice / step_nm
    y = 0.93
    ax.plot(
        [0.05 * width_px, 0.05 * width_px + length_px],
        [y, y],
        transform=ax.get_xaxis_transform(),
        color="white",
        lw=3,
        solid_capstyle="butt",
    )
    ax.text(
        0.05 * width_px + length_px / 2,
        0.86,
        f"{nice:g} nm",
        transform=ax.get_xaxis_transform(),
        color="white",
        ha="center",
        va="top",
        fontsize=8,
    )


def maps_figure(
    phase_map: np.ndarray,
    orientation_map: np.ndarray,
    phases: Sequence,
    *,
    scan_step_nm: float,
    out: str | os.PathLike,
    title: str = "",
    tilt: int | None = None,
    labels: np.ndarray | None = None,
) -> Path:
    """Save the phase map (discrete colours, legend with each phase's reduced cell; 'rare' marked)
    and the orientation map (IPF colours) side by side, axes in nm with scale bars.

    ``tilt`` picks the image of per-tilt maps (default: the middle one); with ``labels`` every grain
    is marked with its number at its centre."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    pm, om = np.asarray(phase_map), np.asarray(orientation_map)
    lab = None if labels is None else np.asarray(labels)
    if pm.ndim == 3:
        tilt = pm.shape[0] // 2 if tilt is None else int(tilt)
        pm, om = pm[tilt], om[tilt]
        lab = None if lab is None else (lab[tilt] if lab.ndim == 3 else lab)
    sy, sx = pm.shape
    extent = (0, sx * scan_step_nm, sy * scan_step_nm, 0)
    n = max([int(pm.max(initial=0))] + [p.number for p in phases])
    base = plt.get_cmap("tab10")
    cmap = ListedColormap([(0, 0, 0, 1)] + [base(i % 10) for i in range(n)])
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.4), constrained_layout=True)
    axes[0].imshow(pm, cmap=cmap, vmin=-0.5, vmax=n + 0.5, interpolation="nearest", extent=extent)
    axes[0].set_title("phase map" + (f" (tilt {tilt + 1})" if tilt is not None else ""))
    handles = [
        Patch(
            color=cmap(p.number),
            label=f"phase {p.number}: "
            + " ".join(f"{v:.2f}" for v in p.reduced_cell[:3])
            + " Å"
            + (" (rare)" if p.rare else ""),
        )
        for p in phases
    ]
    handles.append(Patch(color="black", label="no grain"))
    axes[0].legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=7, frameon=False, ncol=2
    )
    axes[1].imshow(np.clip(om, 0, 1), interpolation="nearest", extent=extent)
    axes[1].set_title("orientation: IPF colour of the beam direction")
    if lab is not None:
        for g in (int(v) for v in np.unique(lab) if v > 0):
            yy, xx = np.nonzero(lab == g)
            for ax in axes:
                ax.text(
                    (xx.mean() + 0.5) * scan_step_nm,
                    (yy.mean() + 0.5) * scan_step_nm,
                    str(g),
                    color="white",
                    ha="center",
                    va="center",
                    fontsize=9,
                    fontweight="bold",
                )
    for ax in axes:
        ax.set_xlabel("x (nm)")
        ax.set_ylabel("y (nm)")
        _scale_bar(ax, sx, scan_step_nm)
        ax.set_xlim(0, sx * scan_step_nm)
    if title:
        fig.suptitle(title)
    out = Path(out)
    fig.savefig(out, dpi=120, format="png")
    plt.close(fig)
    return out
