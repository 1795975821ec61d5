"""The workspace state: a small evented model with no Qt and no napari in it.

The Qt widgets in :mod:`virtual_aperture._napari._qt` listen to this model (psygnal signals)
and write to it; other widgets (indexing, solving) read from it. One model per napari viewer:

>>> ws = workspace_for(viewer)            # doctest: +SKIP
>>> grain = ws.handed_grain               # the grain last handed to indexing/solving
>>> grain.patterns.shape                  # (n_tilts, k_y, k_x) summed patterns

``workspace_for`` only keys a registry by the viewer object; nothing here imports napari.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from psygnal import Signal

__all__ = [
    "DisplaySettings",
    "HandedGrain",
    "WorkspaceModel",
    "forget_workspace",
    "handed_grain",
    "workspace_for",
]


@dataclass(frozen=True)
class DisplaySettings:
    """How diffraction patterns are displayed (never changes the data)."""

    log: bool = True
    gamma: float = 1.0
    percentile_low: float = 1.0
    percentile_high: float = 99.5

    def transform(self, pattern: np.ndarray) -> np.ndarray:
        """The array to show for ``pattern`` (float32; log1p of non-negative values when ``log``)."""
        p = np.asarray(pattern, dtype=np.float32)
        if self.log:
            p = np.log1p(np.clip(p, 0, None))
        return p

    def contrast_limits(self, shown: np.ndarray) -> tuple[float, float]:
        """Contrast limits from the percentiles of the shown image (always lo < hi)."""
        finite = shown[np.isfinite(shown)]
        if finite.size == 0:
            return (0.0, 1.0)
        lo, hi = np.percentile(finite, [self.percentile_low, self.percentile_high])
        lo, hi = float(lo), float(hi)
        if not hi > lo:
            hi = lo + max(abs(lo) * 1e-6, 1e-6)
        return (lo, hi)


@dataclass
class HandedGrain:
    """A grain handed from the workspace to indexing/solving.

    ``patterns`` holds the grain's summed diffraction pattern per tilt, shape
    ``(n_tilts, k_y, k_x)`` (float64 counts); ``counts`` the number of scan positions summed per
    tilt; ``tilt_angles_deg`` the specimen tilt of each pattern (``(0.0,)`` for 4D data).
    """

    label: int
    name: str
    patterns: np.ndarray
    counts: np.ndarray
    tilt_angles_deg: tuple[float, ...]
    calibration: Any
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class WorkspaceModel:
    """Evented state of one virtual-aperture workspace.

    Signals carry no Qt objects; the GUI thread is the only writer.
    """

    dataset_changed = Signal(object)
    grains_changed = Signal()  # names added/renamed/removed
    selected_changed = Signal(int)
    tilt_changed = Signal(int)
    display_changed = Signal(object)
    scheduler_changed = Signal(str)
    sums_changed = Signal()
    grain_handed = Signal(object)
    dirty_changed = Signal(bool)
    calibration_changed = Signal(object)  # the dataset's calibration was replaced (e.g. descan fit)

    def __init__(self) -> None:
        self._dataset: Any = None
        self.grain_names: dict[int, str] = {}
        self._selected = 0
        self._tilt = 0
        self._display = DisplaySettings()
        self._scheduler = ""
        #: label -> (n_tilts, k_y, k_x) summed patterns from the last "sum all grains"
        self.grain_sums: dict[int, np.ndarray] = {}
        #: label -> (n_tilts,) number of positions in each sum
        self.grain_counts: dict[int, np.ndarray] = {}
        self.handed: dict[int, HandedGrain] = {}
        self._last_handed: int | None = None
        self._dirty = False
        self.session_path: str | None = None
        self._clients: dict[str, Any] = {}
        self._client_lock = threading.Lock()

    # ---- dataset ----------------------------------------------------------------------------
    @property
    def dataset(self) -> Any:
        return self._dataset

    @dataset.setter
    def dataset(self, ds: Any) -> None:
        if ds is self._dataset:
            return
        self._dataset = ds
        self.grain_names = {}
        self.grain_sums, self.grain_counts, self.handed = {}, {}, {}
        self._selected, self._tilt, self._last_handed = 0, 0, None
        self.dataset_changed.emit(ds)

    def recalibrate(self, calibration: Any) -> None:
        """Replace the dataset's calibration (same data, grains and names kept)."""
        from virtual_aperture.model import Dataset

        ds = self._dataset
        if ds is None:
            raise ValueError("no dataset to calibrate: open a 4D/5D-STEM dataset first")
        self._dataset = Dataset(ds.data, calibration, source=ds.source, metadata=dict(ds.metadata))
        self.mark_dirty()
        self.calibration_changed.emit(self._dataset)

    @property
    def n_tilts(self) -> int:
        return int(self._dataset.n_tilts) if self._dataset is not None else 1

    @property
    def tilt_angles(self) -> tuple[float, ...]:
        ds = self._dataset
        if ds is None or not ds.is_tilt_series:
            return (0.0,)
        return tuple(ds.calibration.tilt_angles_deg)

    # ---- grains ---------------------------------------------------------------------------
    def new_grain_label(self, used: np.ndarray | None = None) -> int:
        """The smallest label > 0 not named and not present in ``used``."""
        taken = set(self.grain_names)
        if used is not None:
            taken |= {int(v) for v in np.unique(used)}
        label = 1
        while label in taken:
            label += 1
        return label

    def add_grain(self, label: int | None = None, name: str | None = None) -> int:
        label = self.new_grain_label() if label is None else int(label)
        if label <= 0:
            raise ValueError(f"grain labels must be positive, got {label}")
        self.grain_names[label] = name or f"grain {label}"
        self.grains_changed.emit()
        self.mark_dirty()
        return label

    def rename_grain(self, label: int, name: str) -> None:
        name = name.strip()
        if not name:
            raise ValueError("a grain name cannot be empty")
        if label not in self.grain_names:
            raise KeyError(f"no grain with label {label}")
        self.grain_names[label] = name
        self.grains_changed.emit()
        self.mark_dirty()

    def forget_grain(self, label: int) -> None:
        self.grain_names.pop(label, None)
        self.grain_sums.pop(label, None)
        self.grain_counts.pop(label, None)
        if self._selected == label:
            self.selected = 0
        self.grains_changed.emit()
        self.mark_dirty()

    def set_grain_names(self, names: dict[int, str]) -> None:
        self.grain_names = {int(k): str(v) for k, v in names.items()}
        self.grains_changed.emit()

    @property
    def selected(self) -> int:
        return self._selected

    @selected.setter
    def selected(self, label: int) -> None:
        label = int(label)
        if label != self._selected:
            self._selected = label
            self.selected_changed.emit(label)

    # ---- tilt, display, settings ------------------------------------------------------------
    @property
    def tilt(self) -> int:
        return self._tilt

    @tilt.setter
    def tilt(self, index: int) -> None:
        index = int(np.clip(int(index), 0, self.n_tilts - 1))
        if index != self._tilt:
            self._tilt = index
            self.tilt_changed.emit(index)

    @property
    def display(self) -> DisplaySettings:
        return self._display

    @display.setter
    def display(self, value: DisplaySettings) -> None:
        if value.percentile_low >= value.percentile_high:
            raise ValueError("display percentile_low must be below percentile_high")
        if not value.gamma > 0:
            raise ValueError(f"display gamma must be positive, got {value.gamma}")
        if value != self._display:
            self._display = value
            self.display_changed.emit(value)

    @property
    def scheduler_address(self) -> str:
        """dask scheduler address for heavy actions; empty = local threads."""
        return self._scheduler

    @scheduler_address.setter
    def scheduler_address(self, address: str) -> None:
        address = (address or "").strip()
        if address != self._scheduler:
            self._scheduler = address
            self.scheduler_changed.emit(address)

    def client(self) -> Any:
        """The dask client for heavy actions (None = local threads), made once per address.

        ``"local"`` starts one ``LocalCluster`` for this workspace, reused by every action and
        closed by :meth:`close`.
        """
        address = self._scheduler
        if not address:
            return None
        with self._client_lock:  # called from worker threads
            client = self._clients.get(address)
            if client is None or getattr(client, "status", "running") in ("closed", "closing"):
                from virtual_aperture.compute import get_client

                client = self._clients[address] = get_client(address)
            return client

    def close(self) -> None:
        """Close the dask clients (and a local cluster) this workspace started; drop all listeners."""
        for name in (
            "dataset_changed",
            "grains_changed",
            "selected_changed",
            "tilt_changed",
            "display_changed",
            "scheduler_changed",
            "sums_changed",
            "grain_handed",
            "dirty_changed",
            "calibration_changed",
        ):
            getattr(self, name).disconnect()
        clients, self._clients = self._clients, {}
        for client in clients.values():
            cluster = getattr(client, "cluster", None)
            try:
                client.close()
                if cluster is not None:
                    cluster.close()
            except Exception:  # noqa: BLE001 - closing on shutdown must not raise
                pass

    # ---- results ----------------------------------------------------------------------------
    def set_sums(self, sums: dict[int, np.ndarray], counts: dict[int, np.ndarray]) -> None:
        self.grain_sums = dict(sums)
        self.grain_counts = dict(counts)
        self.sums_changed.emit()

    def hand_off(self, label: int, patterns: np.ndarray, counts: np.ndarray, **meta: Any) -> HandedGrain:
        """Store a grain's summed per-tilt patterns for the indexing/solve widgets."""
        ds = self._dataset
        patterns = np.asarray(patterns)
        if patterns.ndim != 3 or patterns.shape[0] != self.n_tilts:
            raise ValueError(
                f"hand-off patterns must be (n_tilts={self.n_tilts}, k_y, k_x), got {patterns.shape}"
            )
        grain = HandedGrain(
            label=int(label),
            name=self.grain_names.get(int(label), f"grain {label}"),
            patterns=patterns,
            counts=np.asarray(counts),
            tilt_angles_deg=self.tilt_angles,
            calibration=None if ds is None else ds.calibration,
            source=None if ds is None else ds.source,
            meta=dict(meta),
        )
        self.handed[int(label)] = grain
        self._last_handed = int(label)
        self.grain_handed.emit(grain)
        return grain

    @property
    def handed_grain(self) -> HandedGrain | None:
        """The grain most recently handed to indexing/solving (None if none yet)."""
        return None if self._last_handed is None else self.handed.get(self._last_handed)

    # ---- dirty flag (autosave) ----------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return self._dirty

    def mark_dirty(self) -> None:
        if not self._dirty:
            self._dirty = True
            self.dirty_changed.emit(True)

    def mark_clean(self) -> None:
        if self._dirty:
            self._dirty = False
            self.dirty_changed.emit(False)


_REGISTRY: weakref.WeakKeyDictionary[Any, WorkspaceModel] = weakref.WeakKeyDictionary()


def _unwrap(viewer: Any) -> Any:
    """The viewer behind napari's ``PublicOnlyProxy`` (plugins receive proxies, one per widget)."""
    return getattr(viewer, "__wrapped__", viewer)


def workspace_for(viewer: Any, *, create: bool = True) -> WorkspaceModel | None:
    """The workspace model of a napari viewer (created on first use when ``create``).

    Widgets receive the viewer wrapped in different proxies; all of them map to one model.
    """
    viewer = _unwrap(viewer)
    ws = _REGISTRY.get(viewer)
    if ws is None and create:
        ws = _REGISTRY[viewer] = WorkspaceModel()
    return ws


def forget_workspace(viewer: Any) -> None:
    """Drop the viewer's model (its workspace was closed; reopening starts a fresh one)."""
    _REGISTRY.pop(_unwrap(viewer), None)


def handed_grain(viewer: Any) -> HandedGrain | None:
    """The grain last handed to indexing/solving in ``viewer``'s workspace, or None."""
    ws = workspace_for(viewer, create=False)
    return None if ws is None else ws.handed_grain
