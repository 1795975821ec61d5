"""Keep grain sums in step with a painted label image (no Qt, no napari).

The GUI thread calls :meth:`GrainTracker.diff` after every edit of the grains layer: it
compares the label array with a private shadow copy and returns the changed positions grouped
by (tilt, old label, new label), updating the shadow. A single worker thread then calls
:meth:`GrainTracker.apply` with those changes, which moves the changed positions between the
:class:`~virtual_aperture.compute.ApertureSum` accumulators (``remove`` from the old label,
``add`` to the new one), so the summed pattern of a grain is always exact and costs only the
changed positions, never a full re-sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Change", "GrainTracker", "ShiftedApertureSum", "as_tilt_stack", "descan_map", "warm_up"]


def descan_map(dataset: Any) -> np.ndarray | None:
    """The ``(scan_y, scan_x, 2)`` descan shifts of the dataset's calibration, or None if uncalibrated."""
    from virtual_aperture.crystal.descan import descan_shifts

    if dataset is None:
        return None
    return descan_shifts(dataset.calibration, tuple(dataset.scan_shape))


class ShiftedApertureSum:
    """:class:`~virtual_aperture.compute.ApertureSum` with descan compensation.

    Every added/removed group of positions is summed by
    :func:`virtual_aperture.compute.aperture_sums` with ``shifts=`` (bilinear re-centring of
    each pattern), so the running sum equals ``aperture_sums(..., shifts=shifts)`` of the mask.
    """

    def __init__(self, data: Any, *, mask: np.ndarray | None, tilt: int, shifts: np.ndarray) -> None:
        self._data = data.tilt(int(tilt)) if getattr(data, "is_tilt_series", False) else data
        self._shifts = np.asarray(shifts, dtype=np.float64)
        sy, sx = self._shifts.shape[:2]
        self._mask = np.zeros((sy, sx), bool)
        self._sum = np.zeros(tuple(self._data.detector_shape), np.float64)
        if mask is not None:
            self.add(np.argwhere(np.asarray(mask, bool)))

    def _delta(self, positions: Any, *, present: bool) -> tuple[np.ndarray, np.ndarray]:
        pos = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
        keep = self._mask[pos[:, 0], pos[:, 1]] == present
        pos = np.unique(pos[keep], axis=0)
        if not len(pos):
            return pos, np.zeros_like(self._sum)
        from virtual_aperture.compute import aperture_sums

        lab = np.zeros(self._mask.shape, np.int32)
        lab[pos[:, 0], pos[:, 1]] = 1
        res = aperture_sums(self._data, lab, shifts=self._shifts)
        return pos, np.asarray(res[1].sum, dtype=np.float64)

    def add(self, positions: Any) -> ShiftedApertureSum:
        pos, s = self._delta(positions, present=False)
        self._sum += s
        self._mask[pos[:, 0], pos[:, 1]] = True
        return self

    def remove(self, positions: Any) -> ShiftedApertureSum:
        pos, s = self._delta(positions, present=True)
        self._sum -= s
        self._mask[pos[:, 0], pos[:, 1]] = False
        if not self._mask.any():
            self._sum[...] = 0.0  # no rounding residue on an empty aperture
        return self

    @property
    def sum(self) -> np.ndarray:
        return self._sum.copy()

    @property
    def count(self) -> int:
        return int(self._mask.sum())


def as_tilt_stack(labels: np.ndarray) -> np.ndarray:
    """View a 2D ``(y, x)`` label image as ``(1, y, x)``; 3D is returned as is."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return labels[None]
    if labels.ndim == 3:
        return labels
    raise ValueError(f"grain labels must be (y, x) or (tilt, y, x), got shape {labels.shape}")


@dataclass(frozen=True)
class Change:
    """Positions ``(N, 2)`` of one tilt that went from label ``old`` to label ``new``."""

    tilt: int
    old: int
    new: int
    positions: np.ndarray


class GrainTracker:
    """Incremental per-grain, per-tilt summed patterns for an edited label image.

    Parameters
    ----------
    dataset
        The :class:`~virtual_aperture.Dataset` the grains are drawn on.
    labels
        The current grain labels, ``(scan_y, scan_x)`` or ``(tilt, scan_y, scan_x)``.
    """

    def __init__(self, dataset: Any, labels: np.ndarray, *, shifts: np.ndarray | None = None) -> None:
        stack = as_tilt_stack(labels)
        if stack.shape[1:] != tuple(dataset.scan_shape) or stack.shape[0] != dataset.n_tilts:
            raise ValueError(
                f"grain labels of shape {np.shape(labels)} do not match the scan "
                f"{dataset.n_tilts}×{dataset.scan_shape} of {dataset!r}"
            )
        self.dataset = dataset
        #: descan shifts ``(sy, sx, 2)`` applied to every sum (None = no compensation)
        self.shifts = shifts
        self._shadow = stack.copy()
        self._acc: dict[tuple[int, int], Any] = {}

    # ---- GUI thread -----------------------------------------------------------------------
    def diff(self, labels: np.ndarray, *, tilt: int | None = None) -> list[Change]:
        """Changes since the last call; only tilt ``tilt`` is compared when given."""
        stack = as_tilt_stack(labels)
        tilts = range(stack.shape[0]) if tilt is None else [int(tilt)]
        changes: list[Change] = []
        for t in tilts:
            cur, old = stack[t], self._shadow[t]
            ys, xs = np.nonzero(cur != old)
            if ys.size == 0:
                continue
            before, after = old[ys, xs], cur[ys, xs]
            # group by (before, after) with one 1D key: a stable sort keeps scan order in a group
            key = before.astype(np.int64) * (1 << 32) + after.astype(np.int64)
            order = np.argsort(key, kind="stable")
            ks = key[order]
            starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
            ends = np.r_[starts[1:], ks.size]
            for s0, s1 in zip(starts, ends):
                sel = order[s0:s1]
                b, a = int(before[sel[0]]), int(after[sel[0]])
                changes.append(Change(t, b, a, np.stack([ys[sel], xs[sel]], axis=1)))
            old[ys, xs] = after
        return changes

    def mask(self, tilt: int, label: int) -> np.ndarray:
        """Snapshot of the current aperture of ``label`` at ``tilt`` (a new bool array)."""
        return self._shadow[tilt] == label

    def pixel_counts(self, tilt: int) -> dict[int, int]:
        """Number of scan positions of every label > 0 at ``tilt``."""
        counts = np.bincount(self._shadow[tilt].ravel().astype(np.int64))
        return {int(k): int(v) for k, v in enumerate(counts) if k > 0 and v > 0}

    # ---- worker thread ------------------------------------------------------------------------
    def tracked(self, tilt: int, label: int) -> bool:
        return (tilt, label) in self._acc

    def ensure(self, tilt: int, label: int, mask: np.ndarray) -> Any:
        """The accumulator of (tilt, label), created from ``mask`` (a :meth:`mask` snapshot) if new."""
        from virtual_aperture.compute import ApertureSum

        key = (int(tilt), int(label))
        acc = self._acc.get(key)
        if acc is None and self.shifts is not None:
            acc = self._acc[key] = ShiftedApertureSum(
                self.dataset, mask=mask, tilt=int(tilt), shifts=self.shifts
            )
        elif acc is None:
            acc = self._acc[key] = ApertureSum(self.dataset.data, mask=mask, tilt=int(tilt))
        return acc

    def apply(self, changes: list[Change]) -> set[tuple[int, int]]:
        """Move changed positions between tracked accumulators; returns the keys touched."""
        touched: set[tuple[int, int]] = set()
        for ch in changes:
            old_acc = self._acc.get((ch.tilt, ch.old)) if ch.old > 0 else None
            if old_acc is not None:
                old_acc.remove(ch.positions)
                touched.add((ch.tilt, ch.old))
            new_acc = self._acc.get((ch.tilt, ch.new)) if ch.new > 0 else None
            if new_acc is not None:
                new_acc.add(ch.positions)
                touched.add((ch.tilt, ch.new))
        return touched

    def keep_only(self, keys: list[tuple[int, int]]) -> None:
        """Forget every accumulator whose (tilt, label) is not in ``keys`` (bounds memory and work)."""
        wanted = {(int(t), int(k)) for t, k in keys}
        for key in [k for k in self._acc if k not in wanted]:
            del self._acc[key]

    def drop(self, label: int | None = None) -> None:
        """Forget the accumulators of ``label`` (all when None)."""
        if label is None:
            self._acc.clear()
        else:
            for key in [k for k in self._acc if k[1] == label]:
                del self._acc[key]


def warm_up(ds: Any) -> None:
    """Load the engine's numba kernels for this dtype on one frame, off the GUI thread.

    Loading compiled kernels holds the GIL for up to a second; doing it when the dataset is
    attached keeps that pause out of the first "sum all grains" and the first brush stroke.
    """
    from virtual_aperture.compute import ApertureSum, aperture_sums

    one = ds.data[:1, :1, :1] if ds.is_tilt_series else ds.data[:1, :1]
    labels = np.ones((1, 1, 1) if ds.is_tilt_series else (1, 1), np.int32)
    aperture_sums(one, labels)
    ApertureSum(one, mask=np.ones((1, 1), bool))
