"""The solution figure of a grain report: the charge-flipping potential projected along a, b and c
over one unit cell (axes in nm, oblique cells drawn oblique) with every symmetry copy of the atoms
found."""

from __future__ import annotations

import numpy as np

from ._plot import add_scale_bar, new_figure

#: atom marker colours, in the order elements first appear (strongest first): they must stand out
#: on the viridis map
ATOM_COLOURS = ("#ff3030", "#ffffff", "#ff66ff", "#00e5ff", "#ff9900")


def element_colours(atoms) -> dict[str, str]:
    out: dict[str, str] = {}
    for a in atoms:
        if a.element not in out:
            out[a.element] = ATOM_COLOURS[len(out) % len(ATOM_COLOURS)]
    return out


def symmetry_copies(atoms, space_group: str) -> list[tuple[str, str, np.ndarray]]:
    """``(label, element, fractional xyz in [0, 1))`` of every symmetry copy of every atom."""
    import gemmi

    try:
        ops = list(gemmi.SpaceGroup(space_group).operations())
    except (ValueError, RuntimeError):
        ops = [gemmi.Op("x,y,z")]
    out = []
    for a in atoms:
        seen: list[np.ndarray] = []
        for op in ops:
            p = np.mod(np.array(op.apply_to_xyz([float(a.x), float(a.y), float(a.z)])), 1.0)
            if not any(np.abs((p - q + 0.5) % 1.0 - 0.5).max() < 1e-3 for q in seen):
                seen.append(p)
                out.append((a.label, a.element, p))
    return out


def _plane(cell, axis: int):
    """Indices of the two in-plane axes, their lengths (nm) and the angle between them (rad)."""
    i, j = [k for k in range(3) if k != axis]
    lengths = np.asarray(cell[:3], float) / 10.0
    angle = np.radians(float(cell[3 + axis]))  # alpha between b,c; beta a,c; gamma a,b
    return i, j, lengths[i], lengths[j], angle


def solution_figure(solution):
    """Projected potential along a, b, c with the atoms (every symmetry copy), in nm."""
    pot = np.asarray(solution.potential, dtype=float)
    cell = solution.cell
    names = "abc"
    fig = new_figure(11.0, 4.0)
    axes = fig.subplots(1, 3)
    copies = symmetry_copies(solution.atoms, solution.space_group) if solution.atoms else []
    colours = element_colours(solution.atoms)
    for axis, ax in enumerate(axes):
        i, j, li, lj, ang = _plane(cell, axis)
        proj = pot.sum(axis=axis) / pot.shape[axis]
        ni, nj = proj.shape
        u, v = np.meshgrid(np.arange(ni + 1) / ni, np.arange(nj + 1) / nj, indexing="ij")
        X = u * li + v * lj * np.cos(ang)
        Y = v * lj * np.sin(ang)
        m = ax.pcolormesh(X, Y, proj, cmap="viridis", shading="flat")
        cb = fig.colorbar(m, ax=ax, shrink=0.8)
        cb.set_label("projected potential (r.m.s. units)", fontsize=7)
        cb.ax.tick_params(labelsize=6)
        done = set()
        for label, element, p in copies:
            x = p[i] * li + p[j] * lj * np.cos(ang)
            y = p[j] * lj * np.sin(ang)
            ax.scatter(
                [x],
                [y],
                s=34,
                facecolors="none",
                edgecolors=colours[element],
                linewidths=1.4,
                label=element if element not in done else None,
            )
            done.add(element)
            if label not in done:
                ax.text(x, y, f" {label}", fontsize=6, color="white", va="bottom")
                done.add(label)
        ax.set_aspect("equal")
        ax.set_title(f"projected along {names[axis]}", fontsize=9)
        ax.set_xlabel(f"along {names[i]} (nm)", fontsize=8)
        ax.set_ylabel(f"⊥ {names[i]}, towards {names[j]} (nm)", fontsize=8)
        ax.tick_params(labelsize=7)
        add_scale_bar(ax, float(X.max() - X.min()), "nm")
    if copies:
        axes[0].legend(fontsize=7, loc="upper right", framealpha=0.6)
    r1 = "n/a" if solution.r1 is None else f"{solution.r1:.3f}"
    state = "solved" if solution.converged else "not solved"
    fig.suptitle(
        f"Charge-flipping potential over one cell in {solution.space_group}, {state} "
        f"(R1 {r1}); circles: atoms and their symmetry copies",
        fontsize=9,
    )
    return fig
