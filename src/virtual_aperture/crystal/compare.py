"""Compare a solved structure with a reference (e.g. a published CIF), as a validation step.

Charge flipping fixes the origin only up to the space group's allowed shifts and, without
anomalous signal, not the hand; :func:`match_to_reference` therefore tries every placement that
puts a found atom on a symmetry image of the heaviest reference atom, for both hands, and keeps
the one that matches most reference atoms.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = ["match_to_reference", "reference_sites"]


def reference_sites(cif: str | os.PathLike) -> tuple[list[tuple[str, tuple[float, float, float]]], tuple, str]:
    """``(sites, cell, space_group)`` of a small-molecule CIF: sites as ``(element, (x, y, z))``."""
    import gemmi

    st = gemmi.read_small_structure(str(cif))
    sites = [(s.element.name, (s.fract.x, s.fract.y, s.fract.z)) for s in st.sites]
    return sites, tuple(st.cell.parameters), st.spacegroup.hm if st.spacegroup else "P 1"


def match_to_reference(
    found: Sequence[tuple[str, Sequence[float]]],
    reference: Sequence[tuple[str, Sequence[float]]],
    cell: Sequence[float],
    space_group: str,
    *,
    tolerance: float = 0.3,
    tries: int = 6,
) -> np.ndarray:
    """Distance (Å) from each reference atom to the nearest found atom, under the best origin
    shift and hand.

    ``found`` and ``reference`` are ``(element, fractional xyz)`` pairs in the same cell setting.
    The placement maximising the number of reference atoms within ``tolerance`` Å wins (ties: the
    smaller summed distance); the ``tries`` heaviest found atoms are tried as anchors. The winning
    translation is then refined by least squares over the matched atoms, so the anchor atom's
    own error is measured too rather than being zero by construction.

    Parameters
    ----------
    found, reference
        ``(element, fractional xyz)`` pairs, in the same cell setting.
    cell
        ``(a, b, c, α, β, γ)`` in Å and degrees.
    space_group
        Hermann–Mauguin symbol; its allowed origin shifts and the hand are tried.
    tolerance
        Distance (Å) within which a reference atom counts as found.
    tries
        Number of the heaviest found atoms tried as anchors.

    Returns
    -------
    numpy.ndarray
        One distance (Å) per reference atom to its nearest found atom under the best placement.
    """
    import gemmi

    if not len(found) or not len(reference):
        return np.full(len(reference), np.inf)
    A = np.array(gemmi.UnitCell(*cell).orth.mat)
    ops = gemmi.SpaceGroup(space_group).operations()

    def images(x):
        return np.array([op.apply_to_xyz([float(v) for v in x]) for op in ops]) % 1.0

    ref_images = [images(x) for _, x in reference]
    heavy = max(range(len(reference)), key=lambda i: gemmi.Element(reference[i][0]).atomic_number)
    fx = np.array([x for _, x in found], dtype=float)

    def distances(y):
        dist = np.empty(len(reference))
        offset = np.zeros((len(reference), 3))
        for i, imgs in enumerate(ref_images):
            d = y[:, None, :] - imgs[None]
            d -= np.round(d)
            n = np.linalg.norm(d @ A.T, axis=2)
            j = np.unravel_index(np.argmin(n), n.shape)
            dist[i], offset[i] = n[j], d[j]
        return dist, offset

    best = None
    for hand in (1, -1):
        for y0 in fx[:tries]:
            for img in ref_images[heavy]:
                y = (hand * fx + img - hand * y0) % 1.0
                dist, offset = distances(y)
                score = (dist < tolerance).sum() - 1e-3 * dist.sum()
                if best is None or score > best[0]:
                    best = (score, dist, y, offset)
    _, dist, y, offset = best
    matched = dist < tolerance
    if matched.sum() >= 2:  # refine the translation on the matched atoms
        refined, _ = distances((y - offset[matched].mean(axis=0)) % 1.0)
        if (refined < tolerance).sum() >= matched.sum():
            dist = refined
    return dist
