"""What the Index tab shows of a result (no Qt): the report text and the status line."""

from __future__ import annotations

from typing import Any

__all__ = ["indexing_text"]


def indexing_text(result: Any) -> tuple[str, str]:
    """The report and status texts of an indexing result.

    Parameters
    ----------
    result
        An :class:`~virtual_aperture.crystal.indexing_result.IndexingResult` (a tilt series) or a
        zone-axis result of :func:`~virtual_aperture.index_zone_axis` (one pattern).

    Returns
    -------
    tuple of str
        ``(report, status)``: the cell, every lattice found and the Bravais candidates; one line.
    """
    if hasattr(result, "summary"):
        ratio, angle = result.calibration.ellipticity
        lines = [
            result.summary(),
            f"ellipticity {ratio:.4f} at {angle:.1f}°",
            "",
            "Bravais candidates (misfit °):",
        ]
        lines += [
            f"  {c.lattice}  {' '.join(f'{v:.3f}' for v in c.cell)}  {c.score:.2f}"
            for c in result.bravais_candidates
        ]
        status = f"{result.lattice}: indexed {100 * result.indexed_fraction:.1f}% of the peaks"
        if len(result.lattices) > 1:
            status += f"; {len(result.lattices)} lattices found (the first is used)"
        return "\n".join(lines), status
    text = (
        f"2D lattice {result.lengths[0]:.4f}, {result.lengths[1]:.4f} {result.units}, "
        f"{result.angle_deg:.2f}°; indexed {100 * result.indexed_fraction:.1f}%"
    )
    if result.zone_axis is not None:
        text += (
            f"\nzone axis {list(result.zone_axis)}, in-plane "
            f"rotation {result.in_plane_rotation_deg:.2f}°, "
            f"score {result.fit_score:.3f}"
        )
    return text, ("zone axis indexed" if result.zone_axis else "2D lattice found")
