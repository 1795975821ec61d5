"""Tracking grains through a tilt series (stage drift, changing contrast, user corrections).

Consecutive tilts are matched by position (intersection-over-union of the drift-corrected grain
masks) and, when the dataset is given, pattern continuity (correlation of the grains' summed
spot patterns on a binned detector), with a Hungarian assignment. A grain missing for up to
``max_gap`` tilts keeps its id when it reappears. Users correct the result with
:meth:`Tracks.relink` and :meth:`Tracks.split`; :meth:`Tracks.relabel` gives consistent labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from ..compute.executor import check_cancel
from ._common import as_dataset, central_mask, spot_features, tilt_array
from .proposal import GrainProposal


def estimate_drift(dataset: Any, *, upsample: int = 10, client: Any = None, cancel: Any = None) -> np.ndarray:
    """Stage drift of every tilt relative to the first, from virtual dark-field images.

    Each tilt's ADF image (annulus outside the central disk) is registered to the previous
    tilt's by phase cross-correlation (``skimage.registration.phase_cross_correlation``,
    sub-pixel ``1/upsample``); the steps are accumulated.

    Returns
    -------
    numpy.ndarray
        ``(n_tilts, 2)`` float: ``(dy, dx)`` in scan pixels; an object at ``p`` on tilt 0 is at
        ``p + drift[t]`` on tilt ``t``. Zeros for 4D data.

    Parameters
    ----------
    dataset
        A 5D :class:`~virtual_aperture.Dataset` or array (4D gives zeros).
    upsample
        Sub-pixel precision of the registration, ``1/upsample`` scan pixels.
    client, cancel
        Optional dask.distributed client; a cancel token (raises ``Cancelled``).
    """

    from ..compute import virtual_image
    from ..compute.detectors import annular_dark_field

    ds = as_dataset(dataset, name="dataset")
    if not ds.is_tilt_series:
        return np.zeros((1, 2))
    images = virtual_image(ds, annular_dark_field(ds), client=client, cancel=cancel)
    return drift_from_images(images, upsample=upsample)


def drift_from_images(images: np.ndarray, *, upsample: int = 10) -> np.ndarray:
    """Cumulative drift ``(n, 2)`` of a stack of images ``(n, sy, sx)`` relative to the first."""
    from skimage.registration import phase_cross_correlation

    images = np.asarray(images, dtype=np.float64)
    drift = np.zeros((len(images), 2))
    for t in range(1, len(images)):
        a, b = images[t - 1], images[t]
        if a.std() == 0 or b.std() == 0:
            drift[t] = drift[t - 1]
            continue
        shift, _, _ = phase_cross_correlation(a - a.mean(), b - b.mean(), upsample_factor=upsample)
        drift[t] = drift[t - 1] - shift
    return drift


def _shift_mask(mask: np.ndarray, d: np.ndarray) -> np.ndarray:
    dy, dx = int(round(d[0])), int(round(d[1]))
    if dy == 0 and dx == 0:
        return mask
    return ndimage.shift(mask, (dy, dx), order=0, mode="constant", cval=False)


@dataclass
class Tracks:
    """Grain identities through a tilt series.

    Attributes
    ----------
    labels
        The per-tilt labels that were tracked, int32 ``(n_tilts, sy, sx)`` (not modified).
    ids
        Per tilt, ``{label in that tilt: track id}``.
    scores
        ``{(tilt, track id): link score 0…1}`` of the link from the previous sighting.
    drift
        ``(n_tilts, 2)`` drift used, scan pixels.
    """

    labels: np.ndarray
    ids: list[dict[int, int]]
    scores: dict[tuple[int, int], float] = field(default_factory=dict)
    drift: np.ndarray | None = None

    @property
    def n_tilts(self) -> int:
        return len(self.ids)

    @property
    def track_ids(self) -> list[int]:
        return sorted({tid for m in self.ids for tid in m.values()})

    def _check_tilt(self, tilt: int) -> int:
        if not isinstance(tilt, (int, np.integer)) or not 0 <= tilt < self.n_tilts:
            raise ValueError(f"tilt {tilt!r} out of range for {self.n_tilts} tilts")
        return int(tilt)

    def tilts_of(self, track_id: int) -> list[int]:
        """Tilts on which a track is seen."""
        return [t for t, m in enumerate(self.ids) if track_id in m.values()]

    def relink(self, tilt: int, old_id: int, new_id: int) -> None:
        """From ``tilt`` on, the grain tracked as ``old_id`` is ``new_id`` (ids are swapped on
        every later tilt where both occur, so ids stay unique)."""
        t0 = self._check_tilt(tilt)
        if old_id not in self.ids[t0].values():
            raise ValueError(f"track {old_id} is not present on tilt {t0}")
        if not isinstance(new_id, (int, np.integer)) or new_id < 1:
            raise ValueError(f"new_id must be a positive integer, got {new_id!r}")
        for t in range(t0, self.n_tilts):
            self.ids[t] = {
                lab: (new_id if tid == old_id else old_id if tid == new_id else tid)
                for lab, tid in self.ids[t].items()
            }

    def split(self, tilt: int, grain_id: int) -> int:
        """Start a new track for ``grain_id`` from ``tilt`` on; returns the new id."""
        t0 = self._check_tilt(tilt)
        if grain_id not in self.ids[t0].values():
            raise ValueError(f"track {grain_id} is not present on tilt {t0}")
        new = max(self.track_ids) + 1
        for t in range(t0, self.n_tilts):
            self.ids[t] = {lab: (new if tid == grain_id else tid) for lab, tid in self.ids[t].items()}
        return new

    def relabel(self) -> np.ndarray:
        """Labels ``(n_tilts, sy, sx)`` int32 with the track id of every grain on every tilt."""
        out = np.zeros_like(self.labels, dtype=np.int32)
        for t, m in enumerate(self.ids):
            if not m:
                continue
            lut = np.zeros(int(self.labels[t].max()) + 1, np.int32)
            for lab, tid in m.items():
                lut[lab] = tid
            out[t] = lut[self.labels[t]]
        return out

    def apply_to(self, proposal: GrainProposal) -> GrainProposal:
        """A copy of a :class:`GrainProposal` of the whole series with track ids."""

        def remap(per_tilt: list[dict]) -> list[dict]:
            return [
                {self.ids[t][k]: v for k, v in d.items() if k in self.ids[t]} for t, d in enumerate(per_tilt)
            ]

        return GrainProposal(
            self.relabel(),
            remap(proposal.confidence),
            remap(proposal.sizes),
            remap(proposal.mean_patterns) if proposal.mean_patterns else [],
            list(proposal.tilts),
        )


#: detector binning of the pattern-continuity term of the tracking
TRACK_BIN = 2


def grain_spot_patterns(
    data4d: Any,
    labels: np.ndarray,
    *,
    binning: int = TRACK_BIN,
    center: Any = None,
    means: dict | None = None,
    rows: int | None = None,
) -> dict[int, np.ndarray]:
    """Unit-norm mean spot pattern (binned detector) of every grain of one tilt.

    ``data4d`` is that tilt's ``(scan_y, scan_x, k_y, k_x)`` array; ``means`` the grains' mean
    full-resolution patterns when already known (as :func:`propose_grains` has them), otherwise
    one pass over the tilt sums them. ``center``/``rows`` as :func:`central_mask`.
    """
    from ..compute import aperture_sums

    if not labels.any():
        return {}
    cm = central_mask(data4d, binning, center=center, rows=rows)
    if means is None:
        means = {gid: r.mean for gid, r in aperture_sums(data4d, labels).items()}
    out = {}
    for gid, mean in means.items():
        f = spot_features(np.asarray(mean)[None], binning, cm)[0].ravel()
        f = f - f.mean()
        n = np.linalg.norm(f)
        out[gid] = f / n if n > 0 else f
    return out


def track_grains(
    labels_per_tilt: Any,
    dataset: Any = None,
    *,
    drift: Any = None,
    min_iou: float = 0.2,
    pattern_weight: float = 0.3,
    max_gap: int = 2,
    binning: int = TRACK_BIN,
    patterns: Any = None,
    cancel: Any = None,
) -> Tracks:
    """Give each grain one id through a tilt series.

    Parameters
    ----------
    labels_per_tilt
        int ``(n_tilts, sy, sx)``: grain labels of each tilt (independent ids per tilt, 0 = none).
    dataset
        Optional 5D :class:`~virtual_aperture.Dataset`: adds pattern continuity to the matching
        and gives the drift (from ADF images) when ``drift`` is not given.
    drift
        ``(n_tilts, 2)`` drift in scan pixels (as from :func:`estimate_drift`); default from the
        dataset, else from the labels' foreground.
    min_iou
        Smallest drift-corrected IoU for two grains to be the same one.
    pattern_weight
        Weight (0…1) of the pattern correlation in the matching score (the rest is IoU).
    max_gap
        A track missing on up to this many tilts can still be continued.
    binning
        Detector binning of the spot patterns compared between tilts (``TRACK_BIN``).
    patterns
        Optional, per tilt, ``{label: unit spot pattern}`` of every grain as
        :func:`grain_spot_patterns` gives them (with the same ``binning``): used instead of reading
        the dataset again (:func:`propose_grains` passes the ones it computed on the way).

    Returns
    -------
    Tracks
    """
    lab = np.asarray(labels_per_tilt)
    if lab.ndim != 3 or 0 in lab.shape:
        raise ValueError(f"labels_per_tilt must be (n_tilts, scan_y, scan_x), got shape {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer) or (lab < 0).any():
        raise ValueError("labels_per_tilt must hold non-negative integer labels")
    if not 0 <= pattern_weight <= 1:
        raise ValueError(f"pattern_weight must be within 0…1, got {pattern_weight!r}")
    n_t = lab.shape[0]
    ds = None
    if dataset is not None:
        ds = as_dataset(dataset, name="dataset")
        if ds.n_tilts != n_t or ds.scan_shape != lab.shape[1:]:
            raise ValueError(
                f"labels {lab.shape} do not match the dataset ({ds.n_tilts} tilts, scan {ds.scan_shape})"
            )
    if patterns is not None:
        patterns = list(patterns)
        if len(patterns) != n_t:
            raise ValueError(f"patterns must hold one dict per tilt ({n_t}), got {len(patterns)}")
        for t, m in enumerate(patterns):
            missing = {int(g) for g in np.unique(lab[t]) if g > 0} - {int(g) for g in m}
            if missing:
                raise ValueError(f"patterns of tilt {t} lack grain(s) {sorted(missing)}")
    if drift is None:
        drift = (
            estimate_drift(ds, cancel=cancel)
            if ds is not None
            else drift_from_images((lab > 0).astype(float))
        )
    drift = np.asarray(drift, dtype=np.float64)
    if drift.shape != (n_t, 2):
        raise ValueError(f"drift must have shape ({n_t}, 2), got {drift.shape}")

    ids: list[dict[int, int]] = []
    scores: dict[tuple[int, int], float] = {}
    last: dict[int, tuple[int, np.ndarray, np.ndarray | None]] = {}  # track -> (tilt, mask, pattern)
    next_id = 1
    for t in range(n_t):
        check_cancel(cancel)
        grains = [int(g) for g in np.unique(lab[t]) if g > 0]
        if pattern_weight == 0:
            pats = {}
        elif patterns is not None:
            pats = patterns[t]
        elif ds is not None:
            pats = grain_spot_patterns(
                tilt_array(ds, t), lab[t], binning=binning, center=ds.calibration.center
            )
        else:
            pats = {}
        cands = [tid for tid, (lt, _, _) in last.items() if t - lt <= max_gap + 1]
        mapping: dict[int, int] = {}
        if grains and cands:
            score = np.zeros((len(grains), len(cands)))
            iou = np.zeros_like(score)
            for j, tid in enumerate(cands):
                lt, m, p = last[tid]
                shifted = _shift_mask(m, drift[t] - drift[lt])
                area_m = shifted.sum()
                for i, g in enumerate(grains):
                    gm = lab[t] == g
                    inter = np.count_nonzero(gm & shifted)
                    iou[i, j] = inter / max(area_m + gm.sum() - inter, 1)
                    corr = float(max(pats[g] @ p, 0.0)) if (p is not None and g in pats) else None
                    s = (
                        iou[i, j]
                        if corr is None
                        else (1 - pattern_weight) * iou[i, j] + pattern_weight * corr
                    )
                    score[i, j] = s - 0.05 * (t - lt - 1)  # prefer the most recent sighting
            rows, cols = linear_sum_assignment(-score)
            for i, j in zip(rows, cols):
                if iou[i, j] >= min_iou:
                    mapping[grains[i]] = cands[j]
                    scores[(t, cands[j])] = float(score[i, j])
        for g in grains:
            if g not in mapping:
                mapping[g] = next_id
                next_id += 1
            tid = mapping[g]
            last[tid] = (t, lab[t] == g, pats.get(g))
        ids.append(mapping)
        next_id = max(next_id, max(mapping.values(), default=0) + 1)
    return Tracks(lab.astype(np.int32, copy=False), ids, scores, drift)
