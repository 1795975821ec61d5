"""The result type of grain proposals, :class:`GrainProposal` (a leaf module: the proposer and the
tracker both build it, neither imports the other for it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GrainProposal:
    """Proposed grains of one scan or of every tilt of a series.

    Attributes
    ----------
    labels
        int32 ``(scan_y, scan_x)`` or ``(n_tilts, scan_y, scan_x)``; 0 = no grain.
    confidence
        Per tilt, ``{grain id: mean correlation (0…1) of member patterns with the grain mean}``.
    sizes
        Per tilt, ``{grain id: number of scan positions}``.
    mean_patterns
        Per tilt, ``{grain id: mean diffraction pattern (k_y, k_x) float64}`` (empty when
        ``mean_patterns=False`` was asked for).
    tilts
        The tilt index of each entry of the per-tilt lists.
    """

    labels: np.ndarray
    confidence: list[dict[int, float]]
    sizes: list[dict[int, int]]
    mean_patterns: list[dict[int, np.ndarray]] = field(default_factory=list)
    tilts: list[int] = field(default_factory=list)

    @property
    def n_grains(self) -> int:
        return int(len(np.unique(self.labels[self.labels > 0])))

    def table(self) -> list[tuple[int, int, int, float]]:
        """Rows ``(tilt, grain id, size, confidence)`` sorted by tilt then id."""
        rows = []
        for t, conf, size in zip(self.tilts, self.confidence, self.sizes):
            for gid in sorted(conf):
                rows.append((t, gid, size[gid], conf[gid]))
        return rows
