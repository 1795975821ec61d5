"""Detectors tab: virtual detectors drawn on the diffraction view and their virtual images.

Every detector is its own mask: one Labels layer ``detector: <name>`` of the diffraction viewer
(label 1 = inside), so detectors overlap freely (a bright field inside an annulus, a spot inside
a ring). Each has a virtual image layer ``VI: <name>`` in the main viewer. Painting a detector
(napari's brush/eraser/fill on the diffraction canvas) or adding a preset updates its virtual
image live through :class:`~virtual_aperture.compute.VirtualImageUpdater` (only the changed
detector pixels are re-read); with a descan fit in the calibration the image is recomputed with
``virtual_image(..., shifts=)`` instead. Other tilts of a tilt series are brought up to date when
the tilt slider reaches them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..live import descan_map
from ..reader import META_KEY
from .runner import SerialRunner, notify_error

PRESETS = ("bright field", "annular dark field", "ring")
#: outline colours of successive detectors
COLOURS = ("cyan", "yellow", "magenta", "lime", "orange", "deepskyblue", "red", "white")


#: memory one live virtual-image updater may use for its detector-major copy of a tilt
UPDATER_BUDGET = 768 * 2**20


def central_disk(dataset: Any, *, tilt: int = 0) -> tuple[tuple[float, float], float]:
    """Centre ``(k_y, k_x)`` and radius (pixels) of the measured bright-field disk.

    Falls back to the calibrated centre and 1/16 of the detector when no disk stands out.
    """
    from virtual_aperture.compute import detectors

    try:
        return detectors.measure_central_disk(dataset, tilt=tilt)
    except ValueError:
        h, w = dataset.detector_shape
        return dataset.calibration.detector_center((h, w)), max(2.0, min(h, w) / 16)


def preset_mask(
    kind: str, shape: tuple[int, int], center: tuple[float, float], inner: float, outer: float
) -> np.ndarray:
    """Boolean mask of a preset detector (disk of radius ``outer``, or annulus ``inner``–``outer``)."""
    from virtual_aperture.compute import detectors

    if kind == "bright field":
        return np.asarray(detectors.disk(shape, center, outer), dtype=bool)
    if kind in ("annular dark field", "ring"):
        if not inner < outer:
            raise ValueError(f"{kind}: inner radius {inner} must be smaller than outer radius {outer}")
        return np.asarray(detectors.annulus(shape, center, inner, outer), dtype=bool)
    raise ValueError(f"unknown detector preset {kind!r}; choose one of {', '.join(PRESETS)}")


class DetectorPanel(QWidget):
    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = controller.model
        self.runner = SerialRunner("virtual images", self)
        controller._extra_runners = [*getattr(controller, "_extra_runners", []), self.runner]
        self.layers: dict[int, Any] = {}  # detector id -> Labels layer of the diffraction viewer
        self.names: dict[int, str] = {}
        self.vi_layers: dict[int, Any] = {}
        self._shadow: dict[int, np.ndarray] = {}
        self._updaters: dict[tuple[int, int], Any] = {}
        self._stale: dict[int, set[int]] = {}
        self._pending: dict[int, np.ndarray] = {}
        self._running = False
        self.center = (0.0, 0.0)
        self.disk_radius = 1.0

        self.preset = QComboBox()
        self.preset.addItems(PRESETS)
        self.inner = QDoubleSpinBox(minimum=0.0, maximum=4096.0, decimals=1, singleStep=0.5)
        self.outer = QDoubleSpinBox(minimum=0.5, maximum=4096.0, decimals=1, singleStep=0.5)
        self.radii_info = QLabel("")
        self.radii_info.setWordWrap(True)
        self.name = QLineEdit()
        self.name.setPlaceholderText("detector name (empty = preset name)")
        self.apply_btn = QPushButton("Add preset detector")
        self.apply_btn.setToolTip("a new detector from the preset; detectors may overlap")
        self.apply_btn.clicked.connect(lambda: self.apply_preset())
        self.replace_btn = QPushButton("Preset → selected")
        self.replace_btn.setToolTip("replace the selected detector's mask by the preset")
        self.replace_btn.clicked.connect(lambda: self.apply_preset(label=self.selected_detector() or None))
        self.new_btn = QPushButton("New detector (paint)")
        self.new_btn.clicked.connect(lambda: self.new_detector())
        self.delete_btn = QPushButton("Delete detector")
        self.delete_btn.clicked.connect(lambda: self.delete_detector())
        self.list = QListWidget()
        self.list.setMaximumHeight(110)
        self.list.currentRowChanged.connect(self._on_row)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.preset.currentTextChanged.connect(self._default_radii)
        for w in (self.inner, self.outer):
            w.valueChanged.connect(self._show_radii)
        form = QFormLayout()
        form.addRow("preset", self.preset)
        radii = QHBoxLayout()
        radii.addWidget(self.inner)
        radii.addWidget(self.outer)
        form.addRow("radii inner / outer (px)", radii)
        form.addRow("", self.radii_info)
        form.addRow("name", self.name)
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        row1.addWidget(self.apply_btn)
        row1.addWidget(self.replace_btn)
        row2.addWidget(self.new_btn)
        row2.addWidget(self.delete_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(row1)
        lay.addWidget(self.list)
        lay.addLayout(row2)
        lay.addWidget(self.message)
        lay.addStretch(1)
        controller.dataset_ready.connect(self._on_dataset)
        self.model.tilt_changed.connect(self._on_tilt)
        self.model.calibration_changed.connect(lambda *_: self._recompute_all())
        self._dataset = None

    @property
    def ready(self) -> bool:
        return self.controller.dataset is not None

    # ---- set-up ----------------------------------------------------------------------------------
    def _on_dataset(self) -> None:
        ds = self.controller.dataset
        same = ds is self._dataset or (
            ds is not None and self._dataset is not None and ds.data is self._dataset.data
        )
        self._dataset = ds
        self._show_radii()
        if same:  # a new calibration of the same data: detectors stay, images follow (calibration_changed)
            return
        self.remove_all()
        self.runner.submit(lambda: central_disk(ds, tilt=0), self._measured)

    def remove_all(self) -> None:
        """Remove every detector and its virtual image (closing the workspace, a new dataset)."""
        for k in list(self.layers):
            self._remove(k)
        self._updaters, self._stale, self._pending = {}, {}, {}
        self._refresh_list()

    def _remove(self, k: int) -> None:
        dv, viewer = self.controller.diffraction, self.controller.viewer
        layer = self.layers.pop(k, None)
        if layer is not None and layer in dv.layers:
            dv.layers.remove(layer)
        vi = self.vi_layers.pop(k, None)
        if vi is not None and vi in viewer.layers:
            viewer.layers.remove(vi)
        self.names.pop(k, None)
        self._shadow.pop(k, None)
        self._stale.pop(k, None)
        self._pending.pop(k, None)
        for key in [key for key in self._updaters if key[0] == k]:
            del self._updaters[key]

    def _measured(self, result: tuple) -> None:
        self.center, self.disk_radius = result
        self._default_radii(self.preset.currentText())
        if not self.layers:
            self.apply_preset("bright field")
            self.apply_preset("annular dark field")
        self.controller.viewer.layers.selection.active = self.controller.grains

    def _default_radii(self, kind: str) -> None:
        r = self.disk_radius
        h, w = self.controller.dataset.detector_shape if self.controller.dataset is not None else (64, 64)
        edge = float(min(h, w) / 2 - 1)
        inner, outer = {
            "bright field": (0.0, round(r, 1)),
            "annular dark field": (round(1.5 * r, 1), edge),
            "ring": (round(2.0 * r, 1), round(2.6 * r, 1)),
        }[kind]
        self.inner.setValue(inner)
        self.outer.setValue(max(outer, inner + 0.5))
        self._show_radii()

    def _show_radii(self, *_: Any) -> None:
        """The radii in mrad and Å⁻¹ as well as px (from the dataset's calibration)."""
        ds = self.controller.dataset
        px = ds.calibration.pixel_size if ds is not None else None
        if not px:
            self.radii_info.setText("set the detector pixel size (Å⁻¹/px) to see mrad and Å⁻¹")
            return
        lam = ds.calibration.wavelength
        a, b = self.inner.value() * px, self.outer.value() * px
        self.radii_info.setText(
            f"= {a:.3f}–{b:.3f} Å⁻¹ = {1000 * lam * a:.2f}–{1000 * lam * b:.2f} mrad "
            f"({ds.calibration.beam_energy_kv:g} kV)"
        )

    # ---- detectors ---------------------------------------------------------------------------------
    def _add_layer(self, k: int, mask: np.ndarray, name: str) -> Any:
        ds = self.controller.dataset
        colour = COLOURS[(k - 1) % len(COLOURS)]
        layer = self.controller.diffraction.add_labels(
            np.asarray(mask, dtype=np.int32),
            name=f"detector: {name}",
            opacity=0.9,
            metadata={META_KEY: {"role": "detector", "detector": k}},
            **self.controller.k_geometry(2),
        )
        layer.colormap = {None: "transparent", 0: "transparent", 1: colour}
        layer.contour = 1  # outlines: the pattern stays visible under the detectors
        layer.selected_label = 1
        self.layers[k], self.names[k] = layer, name
        self._shadow[k] = np.zeros(ds.detector_shape, bool)
        ev = layer.events
        for e in (ev.labels_update, ev.paint, ev.data, ev.set_data):
            e.connect(lambda _e=None, k=k: self._on_edit(k))
        self._on_edit(k)
        self._refresh_list()
        return layer

    def _refresh_list(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for k in sorted(self.names):
            self.list.addItem(f"{k}: {self.names[k]}")
        self.list.blockSignals(False)

    def _on_row(self, row: int) -> None:
        ids = sorted(self.names)
        if 0 <= row < len(ids):
            self.controller.diffraction.layers.selection.active = self.layers[ids[row]]

    def selected_detector(self) -> int:
        """The detector chosen in the list or active in the diffraction viewer (0 = none)."""
        ids, row = sorted(self.names), self.list.currentRow()
        if 0 <= row < len(ids):
            return ids[row]
        active = self.controller.diffraction.layers.selection.active
        for k, layer in self.layers.items():
            if layer is active:
                return k
        return 0

    def mask(self, k: int) -> np.ndarray:
        return np.asarray(self.layers[k].data) != 0

    def new_detector(self, name: str | None = None) -> int:
        """An empty detector, active in the diffraction viewer with the paint brush."""
        if not self.ready:
            self.message.setText("open a dataset first")
            return 0
        k = max(self.names, default=0) + 1
        layer = self._add_layer(
            k,
            np.zeros(self.controller.dataset.detector_shape, bool),
            name or self.name.text().strip() or f"detector {k}",
        )
        layer.mode = "paint"
        self.controller.diffraction.layers.selection.active = layer
        self.list.setCurrentRow(sorted(self.names).index(k))
        return k

    def delete_detector(self, k: int | None = None) -> None:
        k = self.selected_detector() if k is None else k
        if k in self.layers:
            self._remove(k)
            self._refresh_list()
            self.model.mark_dirty()

    def apply_preset(
        self,
        kind: str | None = None,
        *,
        label: int | None = None,
        inner: float | None = None,
        outer: float | None = None,
    ) -> int:
        """A preset detector: a new one (``label`` None or new) or replacing detector ``label``; its id."""
        if not self.ready:
            self.message.setText("open a dataset first: presets are measured on its central disk")
            return 0
        kind = kind or self.preset.currentText()
        if kind != self.preset.currentText():
            self.preset.setCurrentText(kind)
        inner = self.inner.value() if inner is None else inner
        outer = self.outer.value() if outer is None else outer
        try:
            mask = preset_mask(kind, self.controller.dataset.detector_shape, self.center, inner, outer)
        except ValueError as exc:
            self.message.setText(str(exc))
            return 0
        name = self.name.text().strip() or kind
        if label is not None and label in self.layers:
            layer = self.layers[label]
            data = layer.data
            for value, where in ((0, (data != 0) & ~mask), (1, mask & (data == 0))):
                idx = np.nonzero(where)
                if idx[0].size:
                    layer.data_setitem(idx, value)  # undoable
            self._on_edit(label)
            self.message.setText(f"detector {label} is now a {kind} of {inner:g}–{outer:g} px")
            return label
        k = label if label is not None else max(self.names, default=0) + 1
        self._add_layer(k, mask, name)
        self.message.setText(f"added detector {k}: {name}")
        return k

    # ---- live virtual images ------------------------------------------------------------------------
    def masks(self) -> dict[str, np.ndarray]:
        """Detector name -> boolean mask of every non-empty detector (sessions)."""
        out = {}
        for k in sorted(self.names):
            m = self.mask(k)
            if m.any():
                out[self.names[k]] = m
        return out

    def load_masks(self, masks: dict[str, np.ndarray]) -> None:
        """Replace all detectors by named boolean masks (sessions); ids 1, 2, … in order."""
        shape = tuple(self.controller.dataset.detector_shape)
        checked = {}
        for name, mask in masks.items():
            m = np.asarray(mask, dtype=bool)
            if m.shape != shape:
                raise ValueError(f"detector {name!r} has shape {m.shape}, the detector is {shape}")
            checked[name] = m
        self.remove_all()
        for k, (name, m) in enumerate(checked.items(), start=1):
            self._add_layer(k, m, name)

    def _on_edit(self, k: int) -> None:
        if k not in self.layers:
            return
        cur = self.mask(k)
        if np.array_equal(cur, self._shadow[k]) and k in self.vi_layers:
            return
        self._shadow[k] = cur
        self.model.mark_dirty()
        self._pending[k] = cur
        self._stale[k] = set(range(self.model.n_tilts))
        self._schedule()

    def _recompute_all(self) -> None:
        self._updaters = {}
        for k in self.layers:
            self._pending[k] = self._shadow[k]
            self._stale[k] = set(range(self.model.n_tilts))
        self._schedule()

    def _on_tilt(self, tilt: int) -> None:
        for k, stale in self._stale.items():
            if tilt in stale and k in self._shadow:
                self._pending[k] = self._shadow[k]
        self._schedule()

    def _schedule(self) -> None:
        if self._running or not self._pending:
            return
        jobs, self._pending = self._pending, {}
        tilt = self.model.tilt
        ds = self.controller.dataset
        shifts = descan_map(ds)
        updaters = self._updaters
        self._running = True

        def work() -> dict:
            from virtual_aperture.compute import VirtualImageUpdater, virtual_image

            out = {}
            for k, mask in jobs.items():
                if shifts is not None:  # descan-compensated: the whole image with shifted masks
                    out[k] = np.asarray(virtual_image(ds.tilt(tilt), mask, shifts=shifts), dtype=np.float32)
                    continue
                up = updaters.get((k, tilt))
                if up is None:
                    for key in [key for key in updaters if key[1] != tilt]:
                        del updaters[key]  # one tilt's updaters at a time bounds the memory
                    up = updaters[(k, tilt)] = VirtualImageUpdater(
                        ds, mask, tilt=tilt, memory_budget=UPDATER_BUDGET
                    )
                    out[k] = np.asarray(up.image, dtype=np.float32)
                else:
                    out[k] = np.asarray(up.set_mask(mask), dtype=np.float32)
            return {"tilt": tilt, "images": out}

        self.runner.submit(work, self._show, self._failed)

    def _failed(self, exc: BaseException) -> None:
        self._running = False
        notify_error(f"virtual image update failed: {exc}")
        self._schedule()

    def _show(self, result: dict) -> None:
        self._running = False
        tilt = result["tilt"]
        for k, image in result["images"].items():
            if k not in self.layers:
                continue  # deleted meanwhile
            self._stale.get(k, set()).discard(tilt)
            self._set_vi(k, tilt, image)
        self._schedule()

    def _set_vi(self, label: int, tilt: int, image: np.ndarray) -> None:
        ds, nav = self.controller.dataset, self.controller.navigator
        viewer = self.controller.viewer
        name = f"VI: {self.names.get(label, f'detector {label}')}"
        layer = self.vi_layers.get(label)
        if layer is None or layer not in viewer.layers:
            shape = (ds.n_tilts, *ds.scan_shape) if ds.is_tilt_series else ds.scan_shape
            active = viewer.layers.selection.active
            layer = viewer.add_image(
                np.zeros(shape, np.float32),
                name=name,
                scale=nav.scale,
                units=nav.units,
                axis_labels=nav.axis_labels,
                colormap="gray",
                visible=True,
                metadata={META_KEY: {"role": "virtual_image", "detector": label}},
            )
            grains = self.controller.grains
            if grains is not None and grains in viewer.layers:
                idx, grains_idx = viewer.layers.index(layer), viewer.layers.index(grains)
                if idx > grains_idx:
                    viewer.layers.move(idx, grains_idx)  # the grains stay on top
            self.vi_layers[label] = layer
            if active is not None and active in viewer.layers:
                viewer.layers.selection.active = active
        layer.name = name
        if ds.is_tilt_series:
            layer.data[tilt] = image
        else:
            layer.data[...] = image
        finite = image[np.isfinite(image)]
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            layer.contrast_limits = (lo, hi if hi > lo else lo + 1.0)
        layer.refresh()

    def vi_image(self, label: int) -> np.ndarray:
        """The current virtual image of detector ``label`` at the current tilt."""
        data = self.vi_layers[label].data
        return data[self.model.tilt] if self.controller.dataset.is_tilt_series else data

    def shutdown(self) -> None:
        self.runner.close()
