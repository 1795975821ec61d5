"""Tilt angles from what a user types: one angle per pattern, or ``START STOP STEP``.

Shared by the command line (``--tilts``) and the napari widgets (the tilt-angles field).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def parse_tilt_angles(
    values: Iterable[float | str], n: int, *, name: str = "tilt angles"
) -> tuple[float, ...]:
    """Tilt angles in degrees for ``n`` patterns.

    Parameters
    ----------
    values
        ``n`` angles, one per pattern, or three numbers ``(start, stop, step)`` with the stop
        included.
    n
        Number of patterns (tilts) the angles are for.
    name
        How the error messages name the input (e.g. ``"--tilts"`` on the command line).

    Returns
    -------
    tuple of float
        ``n`` angles in degrees.

    Raises
    ------
    ValueError
        The values are not numbers, or do not give exactly ``n`` angles.
    """
    try:
        v = [float(x) for x in values]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected numbers, got {values!r}") from exc
    if len(v) == n:
        return tuple(v)
    if len(v) == 3 and v[2] != 0:
        start, stop, step = v
        angles = start + step * np.arange(int(np.floor((stop - start) / step + 1e-9)) + 1)
        if len(angles) == n:
            return tuple(float(a) for a in angles)
        raise ValueError(f"{name} {start:g} {stop:g} {step:g} gives {len(angles)} angles for {n} patterns")
    raise ValueError(
        f"{name} has {len(v)} value(s) for {n} patterns (give one per pattern or START STOP STEP)"
    )


__all__ = ["parse_tilt_angles"]
