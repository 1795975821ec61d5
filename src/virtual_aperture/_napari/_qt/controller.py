"""The workspace controller: links the napari layers, the diffraction view and the model.

Main viewer: the navigator (from the reader), a ``grains`` Labels layer (one label = one
virtual aperture; ``(tilt, y, x)`` for tilt series) and the virtual images. Diffraction
viewer (a second :class:`~napari.components.ViewerModel`): the pattern under the cursor, the
summed pattern of the selected grain and a ``detectors`` Labels layer (see
:mod:`.detector_control`).

Every paint event of the grains layer is diffed against a shadow copy on the GUI thread (cheap)
and the changed positions are moved between :class:`ApertureSum` accumulators on a worker
thread, so the selected grain's summed pattern follows the brush live and exactly.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal

from ..live import GrainTracker, as_tilt_stack, descan_map, warm_up
from ..reader import META_KEY, find_dataset_layer
from ..workspace_model import WorkspaceModel, workspace_for
from .jobs import JobRunner
from .runner import LatestRunner, SerialRunner

PAINT_MODES = {"paint", "erase", "fill", "polygon"}
#: number of (tilt, grain) live sums kept up to date while painting
LIVE_KEYS = 4
#: an update measured faster than this (moving average) runs directly on the GUI thread, which
#: saves the event-loop round trip; slower ones (file-backed data) always go to a worker
FAST_S = 0.003
#: at most this many changed positions are applied on the GUI thread
FAST_POSITIONS = 512


def scale_bar_length(width: float) -> float:
    """A round scale-bar length (Å⁻¹) for a canvas ``width`` Å⁻¹ wide: 1, 2, 5 × 10ⁿ, at most a
    quarter of the width, but at least 1 Å⁻¹ when that fits in 60 % of the width — napari prints
    the bar in pint's compact form, which turns 0.5 Å⁻¹ into "500 1/kÅ"."""
    step = 10 ** np.floor(np.log10(width / 4))
    best = float(step * max(m for m in (1, 2, 5) if m * step <= width / 4))
    return 1.0 if best < 1.0 <= 0.6 * width else best


def scale_bar(viewer: Any) -> Any:
    """The scale-bar overlay of a viewer (``viewer.canvas.overlays`` since napari 0.9)."""
    overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
    if overlays is not None:
        try:
            return overlays["scale_bar"]
        except (KeyError, TypeError):
            pass
    return viewer.scale_bar


class WorkspaceController(QObject):
    """Owns the live machinery of one workspace (one per napari viewer)."""

    dataset_ready = Signal()
    grains_edited = Signal()  # the grains label image changed (throttled by listeners)
    grain_pattern_changed = Signal()
    cursor_pattern_changed = Signal()
    show_mode_changed = Signal(str)  # "cursor" or "grain": which pattern the diffraction view shows

    def __init__(self, viewer: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from napari.components import ViewerModel

        self.viewer = viewer
        self.model: WorkspaceModel = workspace_for(viewer)
        self.diffraction = ViewerModel(title="diffraction")
        self.dataset: Any = None
        self.navigator: Any = None
        self.grains: Any = None
        self.tracker: GrainTracker | None = None
        self.total: np.ndarray | None = None  # (n_tilts, sy, sx) total intensity per position
        self.cursor_layer = self.grain_layer = None
        self.grain_sum: np.ndarray | None = None
        self.grain_count = 0
        self.grain_key: tuple[int, int] | None = None
        self.cursor_pattern: np.ndarray | None = None
        self.cursor_position: tuple[int, int, int] | None = None
        self.paint_latency: list[float] = []
        self.hover = LatestRunner("hover", self)
        self.sums = SerialRunner("grain sums", self)
        self.jobs = JobRunner(self)
        self.panels: dict[str, Any] = {}
        self._edit_t0: float | None = None
        self._cost: dict[str, float | None] = {"sum": None, "hover": None}
        self.model.selected_changed.connect(self._on_selected)
        self.model.tilt_changed.connect(self._on_tilt)
        self.model.display_changed.connect(self._redisplay)
        self.model.grains_changed.connect(self._names_to_layer)
        self.model.calibration_changed.connect(self._on_calibration)
        viewer.layers.events.inserted.connect(self._on_layer_inserted)
        viewer.dims.events.current_step.connect(self._on_dims)
        viewer.mouse_move_callbacks.append(self._on_mouse_move)
        viewer.mouse_drag_callbacks.append(self._on_mouse_click)
        self._edit_timer = QTimer(self)
        self._edit_timer.setSingleShot(True)
        self._edit_timer.setInterval(150)
        self._edit_timer.timeout.connect(self.grains_edited.emit)

    def start(self) -> None:
        """Attach to the newest dataset already open in the viewer (call once listeners exist)."""
        layer = find_dataset_layer(self.viewer)
        if layer is not None:
            self.attach(layer)

    # ---- dataset ---------------------------------------------------------------------------------
    def _on_layer_inserted(self, event: Any) -> None:
        layer = event.value
        info = layer.metadata.get(META_KEY) if isinstance(layer.metadata, dict) else None
        if info and info.get("role") == "navigator" and info.get("dataset") is not self.dataset:
            QTimer.singleShot(0, lambda: self._safe_attach(layer))

    def _safe_attach(self, layer: Any) -> None:
        try:
            self.attach(layer)
        except (ValueError, KeyError, OSError) as exc:
            from .runner import notify_error

            notify_error(f"virtual aperture: cannot use layer {layer.name!r}: {exc}")

    def attach(self, navigator: Any, grains: np.ndarray | None = None) -> None:
        """Work on the dataset of ``navigator``; ``grains`` restores a label image (sessions)."""
        ds = navigator.metadata[META_KEY]["dataset"]
        self.dataset, self.navigator = ds, navigator
        self.model.dataset = ds
        shape = (ds.n_tilts, *ds.scan_shape) if ds.is_tilt_series else tuple(ds.scan_shape)
        names: dict[int, str] = {}
        earlier = self._earlier_grains(ds, shape)
        if earlier is not None:  # the workspace was closed and opened again: keep the painted grains
            if grains is None:
                grains = np.asarray(earlier.data)
                names = dict(earlier.metadata[META_KEY].get("grain_names") or {})
            self.viewer.layers.remove(earlier)
        data = np.zeros(shape, np.int32) if grains is None else np.array(grains, dtype=np.int32)
        if data.shape != shape:
            raise ValueError(f"grain labels of shape {data.shape} do not fit the scan {shape}")
        nav = np.asarray(navigator.data, dtype=np.float64)
        self.total = as_tilt_stack(nav)
        if self.grains is not None and self.grains in self.viewer.layers:
            self.viewer.layers.remove(self.grains)
        self.grains = self.viewer.add_labels(
            data,
            name="grains",
            scale=navigator.scale,
            axis_labels=navigator.axis_labels,
            units=navigator.units,
            opacity=0.5,
            metadata={META_KEY: {"role": "grains", "dataset": ds, "grain_names": self.model.grain_names}},
        )
        self.grains.brush_size = 3
        self.tracker = GrainTracker(ds, data, shifts=descan_map(ds))
        self.sums.submit(lambda: self.tracker.drop())
        self.sums.submit(lambda: warm_up(ds))
        ev = self.grains.events
        ev.labels_update.connect(lambda e: self._on_grains_edit(current_tilt_only=True))
        ev.paint.connect(lambda e: self._on_grains_edit())
        ev.data.connect(lambda e: self._on_grains_edit())
        ev.set_data.connect(lambda e: self._on_grains_edit())
        ev.selected_label.connect(lambda e: setattr(self.model, "selected", self.grains.selected_label))
        self._setup_diffraction(ds)
        self.model.set_grain_names(
            {int(v): names.get(int(v), f"grain {int(v)}") for v in np.unique(data) if v}
        )
        self.model.selected = self.grains.selected_label
        self.viewer.layers.selection.active = self.grains
        self.viewer.reset_view()
        self._on_dims()  # the workspace works on the tilt napari's slider shows (it opens on the middle one)
        self._request_grain()
        sy, sx = ds.scan_shape
        self.request_pattern(sy // 2, sx // 2)
        self.dataset_ready.emit()

    def k_geometry(self, ndim: int = 2) -> dict:
        """``scale`` and ``units`` of a diffraction-space layer: Å⁻¹ on the detector axes when the
        pixel size is calibrated (leading tilt axis in steps), detector pixels otherwise."""
        px = self.dataset.calibration.pixel_size if self.dataset is not None else None
        lead = ndim - 2
        if px:
            return {"scale": (1.0,) * lead + (px, px), "units": ("pixel",) * lead + ("1/angstrom",) * 2}
        return {"scale": (1.0,) * ndim, "units": ("pixel",) * ndim}

    def _setup_diffraction(self, ds: Any) -> None:
        dv = self.diffraction
        for layer in list(dv.layers):
            if layer is self.cursor_layer or layer is self.grain_layer:
                dv.layers.remove(layer)
        blank = np.zeros(ds.detector_shape, np.float32)
        geo = self.k_geometry(2)
        self.cursor_layer = dv.add_image(blank, name="cursor pattern", colormap="gray", **geo)
        self.grain_layer = dv.add_image(blank, name="grain sum", colormap="magma", visible=False, **geo)
        bar = scale_bar(dv)
        bar.visible = True
        if ds.calibration.pixel_size:
            bar.length = scale_bar_length(ds.calibration.pixel_size * min(ds.detector_shape))
        else:
            bar.length = None
        scale_bar(self.viewer).visible = True
        dv.reset_view()

    def _earlier_grains(self, ds: Any, shape: tuple) -> Any:
        """A grains layer of this dataset left by an earlier workspace (or None)."""
        for layer in self.viewer.layers:
            info = layer.metadata.get(META_KEY) if isinstance(layer.metadata, dict) else None
            if (
                info
                and info.get("role") == "grains"
                and info.get("dataset") is ds
                and layer is not self.grains
                and tuple(layer.data.shape) == shape
            ):
                return layer
        return None

    def _names_to_layer(self) -> None:
        """Grain names into the grains layer's metadata, so napari's writer saves them."""
        if self.grains is not None:
            self.grains.metadata.setdefault(META_KEY, {})["grain_names"] = dict(self.model.grain_names)

    def _on_calibration(self, ds: Any) -> None:
        """A new calibration (e.g. a descan fit): live sums restart with its shifts."""
        self.dataset = ds
        if self.navigator is not None:
            self.navigator.metadata[META_KEY]["dataset"] = ds
        if self.grains is not None:
            self.grains.metadata[META_KEY]["dataset"] = ds
            self.tracker = GrainTracker(ds, self.grains.data, shifts=descan_map(ds))
            self._recent = []
            self._request_grain()
        geo = self.k_geometry(2)
        for layer in (self.cursor_layer, self.grain_layer):
            if layer is not None:
                layer.scale, layer.units = geo["scale"], geo["units"]
        self.dataset_ready.emit()

    def tilt_text(self, tilt: int | None = None) -> str:
        """``"tilt 2/5 (−10.0°)"``: tilts are numbered from 1 everywhere in the GUI."""
        t = self.model.tilt if tilt is None else int(tilt)
        if self.dataset is None or not self.dataset.is_tilt_series:
            return ""
        return f"tilt {t + 1}/{self.dataset.n_tilts} ({self.model.tilt_angles[t]:+.1f}°)"

    @property
    def grain_labels(self) -> np.ndarray | None:
        return None if self.grains is None else self.grains.data

    # ---- grains: live sums -------------------------------------------------------------------
    def _on_grains_edit(self, current_tilt_only: bool = False) -> None:
        if self.tracker is None:
            return
        t0 = time.perf_counter()
        tilt = self.model.tilt if current_tilt_only else None
        changes = self.tracker.diff(self.grains.data, tilt=tilt)
        if not changes:
            return
        self.model.mark_dirty()
        new = {c.new for c in changes if c.new > 0 and c.new not in self.model.grain_names}
        for label in sorted(new):
            self.model.add_grain(label)
        key = (self.model.tilt, self.model.selected)
        mask = self.tracker.mask(*key) if key[1] > 0 else None
        tracker = self.tracker
        if self._edit_t0 is None:
            self._edit_t0 = t0

        def work() -> tuple | None:
            tracker.apply(changes)
            if key[1] <= 0:
                return None
            acc = tracker.ensure(*key, mask)
            return key, np.array(acc.sum, dtype=np.float64, copy=True), int(acc.count)

        self.set_show_mode("grain")
        self._edit_timer.start()
        n_changed = sum(len(c.positions) for c in changes)
        if n_changed <= FAST_POSITIONS and not self.sums.busy and self._fast("sum"):
            self._grain_result(self._timed("sum", work)())  # a few µs per position, in memory
        else:
            self.sums.submit(self._timed("sum", work), self._grain_result)

    def _request_grain(self) -> None:
        if self.tracker is None:
            return
        key = (self.model.tilt, self.model.selected)
        # live accumulators only for the last few (tilt, grain) pairs looked at
        self._recent = [k for k in getattr(self, "_recent", []) if k != key][-(LIVE_KEYS - 1) :]
        keep = [*self._recent, key] if key[1] > 0 else []  # no grain selected: no live sums
        self._recent = keep
        tracker = self.tracker
        if key[1] <= 0:
            self.grain_key, self.grain_sum, self.grain_count = key, None, 0
            self.sums.submit(lambda: tracker.keep_only(keep))
            return
        mask = self.tracker.mask(*key)

        def work() -> tuple:
            tracker.keep_only(keep)
            acc = tracker.ensure(*key, mask)
            return key, np.array(acc.sum, dtype=np.float64, copy=True), int(acc.count)

        self.sums.submit(self._timed("sum", work), self._grain_result)

    def _timed(self, kind: str, fn: Any) -> Any:
        """``fn`` wrapped to keep a moving average of its run time (for the fast path)."""

        def run(*args: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                dt = time.perf_counter() - t0
                old = self._cost[kind]
                self._cost[kind] = dt if old is None else 0.7 * old + 0.3 * dt

        return run

    def _fast(self, kind: str) -> bool:
        cost = self._cost[kind]
        return cost is not None and cost < FAST_S

    def _grain_result(self, result: tuple | None) -> None:
        if result is None:
            return
        key, total, count = result
        if key != (self.model.tilt, self.model.selected):
            return
        self.grain_key, self.grain_sum, self.grain_count = key, total, count
        if self._edit_t0 is not None and not self.sums.busy:
            self.paint_latency.append(time.perf_counter() - self._edit_t0)
            self._edit_t0 = None
        name = self.model.grain_names.get(key[1], f"grain {key[1]}")
        self.grain_layer.name = "grain sum"
        self.grain_layer.metadata["title"] = f"{name}: {count} positions"
        self._show(self.grain_layer, total)
        self.grain_pattern_changed.emit()

    def _on_selected(self, label: int) -> None:
        if self.grains is not None and self.grains.selected_label != label and label > 0:
            self.grains.selected_label = label
        self._request_grain()

    # ---- tilt ---------------------------------------------------------------------------------
    def _on_dims(self, event: Any = None) -> None:
        if self.dataset is None or not self.dataset.is_tilt_series or self.navigator is None:
            return
        axis = self.viewer.dims.ndim - 3  # the tilt axis is the first of the 3 navigator axes
        self.model.tilt = int(self.viewer.dims.current_step[axis])

    def _on_tilt(self, tilt: int) -> None:
        if self.dataset is not None and self.dataset.is_tilt_series:
            axis = self.viewer.dims.ndim - 3
            if self.viewer.dims.current_step[axis] != tilt:
                self.viewer.dims.set_current_step(axis, tilt)
        if self.diffraction.dims.ndim == 3:
            self.diffraction.dims.set_current_step(0, tilt)
        self._request_grain()
        if self.cursor_position is not None:
            _, y, x = self.cursor_position
            self.request_pattern(y, x)

    def step_tilt(self, delta: int) -> None:
        self.model.tilt = self.model.tilt + delta

    # ---- cursor pattern ---------------------------------------------------------------------
    def _scan_position(self, world: Any) -> tuple[int, int] | None:
        if self.navigator is None:
            return None
        data = self.navigator.world_to_data(world)
        y, x = int(round(data[-2])), int(round(data[-1]))
        sy, sx = self.dataset.scan_shape
        return (y, x) if (0 <= y < sy and 0 <= x < sx) else None

    def _on_mouse_move(self, viewer: Any, event: Any) -> None:
        pos = self._scan_position(event.position)
        if pos is not None and not getattr(self, "pinned", False):
            self.request_pattern(*pos)

    def _on_mouse_click(self, viewer: Any, event: Any) -> None:
        layer = viewer.layers.selection.active
        if layer is self.grains and getattr(layer, "mode", "") in PAINT_MODES:
            return
        pos = self._scan_position(event.position)
        if pos is not None:
            # a click pins the pattern of that position; the next click follows the cursor again
            self.pinned = not getattr(self, "pinned", False)
            self.set_show_mode("cursor")
            self.request_pattern(*pos)

    def request_pattern(self, y: int, x: int) -> None:
        """Show the pattern at scan position (y, x) of the current tilt (computed off-thread)."""
        from virtual_aperture.compute import pattern_at

        ds = self.dataset
        key = (self.model.tilt, int(y), int(x))

        def fetch(k: tuple) -> np.ndarray:
            return np.asarray(pattern_at(ds.data, k[1], k[2], tilt=k[0]))

        if not self.hover.busy and self._fast("hover"):
            self._cursor_result(key, self._timed("hover", fetch)(key))  # in-memory frame copy
        else:
            self.hover.request(key, self._timed("hover", fetch), self._cursor_result)

    def _cursor_result(self, key: tuple, pattern: np.ndarray) -> None:
        self.cursor_position, self.cursor_pattern = key, pattern
        t, y, x = key
        where = f", {self.tilt_text(t)}" if self.dataset.is_tilt_series else ""
        self.cursor_layer.metadata["title"] = f"pattern at (y={y}, x={x}){where}"
        self._show(self.cursor_layer, pattern)
        self.cursor_pattern_changed.emit()

    # ---- display ------------------------------------------------------------------------------
    def set_show_mode(self, mode: str) -> None:
        """Show the pattern under the cursor ("cursor") or the selected grain's sum ("grain")."""
        if mode not in ("cursor", "grain"):
            raise ValueError(f"show mode must be 'cursor' or 'grain', got {mode!r}")
        if self.cursor_layer is None:
            return
        want_grain = mode == "grain"
        if self.grain_layer.visible != want_grain or self.cursor_layer.visible == want_grain:
            self.grain_layer.visible = want_grain
            self.cursor_layer.visible = not want_grain
            self.show_mode_changed.emit(mode)

    def _show(self, layer: Any, raw: np.ndarray) -> None:
        disp = self.model.display
        shown = disp.transform(raw)
        old = layer.data
        owned = getattr(self, "_shown_buffers", {})
        if owned.get(id(layer)) is old and old.shape == shown.shape and old.dtype == shown.dtype:
            # a new pattern of the same shape (every brush dab, every hover) into the buffer this
            # method gave the layer (no other layer shares it): written in place and redrawn once;
            # setting ``data`` would also redo the dims and emit the data events
            old[...] = shown
            layer.contrast_limits = disp.contrast_limits(shown)
            layer.refresh(thumbnail=False, highlight=False, extent=False)
        else:
            layer.data = shown
            layer.contrast_limits = disp.contrast_limits(shown)
            self._shown_buffers = {**owned, id(layer): shown}
        if layer.gamma != disp.gamma:
            layer.gamma = disp.gamma

    def _redisplay(self, *_: Any) -> None:
        if self.cursor_pattern is not None:
            self._show(self.cursor_layer, self.cursor_pattern)
        if self.grain_sum is not None:
            self._show(self.grain_layer, self.grain_sum)

    # ---- helpers for widgets and tests ----------------------------------------------------------
    def grain_stats(self) -> dict[int, tuple[int, float]]:
        """label -> (pixel count, total counts) at the current tilt."""
        if self.grains is None:
            return {}
        labels = as_tilt_stack(self.grains.data)[self.model.tilt].ravel().astype(np.int64)
        n = int(labels.max(initial=0)) + 1
        pix = np.bincount(labels, minlength=n)
        tot = np.bincount(labels, weights=self.total[self.model.tilt].ravel(), minlength=n)
        return {k: (int(pix[k]), float(tot[k])) for k in range(1, n) if pix[k] > 0}

    def flush(self, timeout: float = 10.0) -> None:
        """Process events until the live runners are idle (tests, benchmarks, shutdown)."""
        from qtpy.QtWidgets import QApplication

        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            QApplication.processEvents()
            if not (self.sums.busy or self.hover.busy or any(r.busy for r in self.extra_runners())):
                QApplication.processEvents()
                return
            time.sleep(0.001)
        raise TimeoutError("virtual-aperture workers did not finish")

    def extra_panel(self, key: str) -> Any:
        return self.panels.get(key)

    def extra_runners(self) -> list:
        return [r for r in getattr(self, "_extra_runners", [])]

    def close(self) -> None:
        for r in (self.hover, self.sums, *self.extra_runners()):
            r.close()
        self.jobs.cancel()
        from ..workspace_model import forget_workspace

        self.model.close()
        forget_workspace(self.viewer)
        try:
            self.viewer.mouse_move_callbacks.remove(self._on_mouse_move)
            self.viewer.mouse_drag_callbacks.remove(self._on_mouse_click)
        except ValueError:
            pass
