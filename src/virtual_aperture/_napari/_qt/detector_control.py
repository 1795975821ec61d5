"""Detectors tab: the ``detectors`` Labels layer of the diffraction view and its virtual images.

Every label of the ``detectors`` layer is one virtual detector; each has a virtual image layer
``VI: <name>`` in the main viewer. Painting a detector (napari's brush/eraser/fill on the
diffraction canvas) or applying a preset updates its virtual image live through
:class:`~virtual_aperture.compute.VirtualImageUpdater` (only the changed detector pixels are
re-read); other tilts of a tilt series are brought up to date when the tilt slider reaches them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..reader import META_KEY
from .runner import SerialRunner

PRESETS = ("bright field", "annular dark field", "ring")


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


def preset_mask(kind: str, shape: tuple[int, int], center: tuple[float, float], inner: float, outer: float) -> np.ndarray:
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
        self.layer: Any = None
        self.names: dict[int, str] = {}
        self.vi_layers: dict[int, Any] = {}
        self._shadow: np.ndarray | None = None
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
        self.name = QLineEdit()
        self.name.setPlaceholderText("detector name (empty = preset name)")
        self.apply_btn = QPushButton("Apply preset")
        self.apply_btn.clicked.connect(lambda: self.apply_preset())
        self.preset.currentTextChanged.connect(self._default_radii)
        form = QFormLayout()
        form.addRow("preset", self.preset)
        radii = QHBoxLayout()
        radii.addWidget(self.inner)
        radii.addWidget(self.outer)
        form.addRow("radii inner / outer (px)", radii)
        form.addRow("name", self.name)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.apply_btn)
        lay.addStretch(1)
        controller.dataset_ready.connect(self._on_dataset)
        self.model.tilt_changed.connect(self._on_tilt)

    # ---- set-up ----------------------------------------------------------------------------------
    def _on_dataset(self) -> None:
        ds = self.controller.dataset
        dv = self.controller.diffraction
        if self.layer is not None and self.layer in dv.layers:
            dv.layers.remove(self.layer)
        for lyr in self.vi_layers.values():
            if lyr in self.controller.viewer.layers:
                self.controller.viewer.layers.remove(lyr)
        self.vi_layers, self.names, self._updaters, self._stale = {}, {}, {}, {}
        px = ds.calibration.pixel_size or 1.0
        self.layer = dv.add_labels(np.zeros(ds.detector_shape, np.int32), name="detectors", opacity=0.8, scale=(px, px))
        self.layer.contour = 1  # outlines: the pattern stays visible under the detectors
        self._shadow = self.layer.data.copy()
        ev = self.layer.events
        for e in (ev.labels_update, ev.paint, ev.data, ev.set_data):
            e.connect(self._on_edit)
        self.runner.submit(lambda: central_disk(ds, tilt=0), self._measured)

    def _measured(self, result: tuple) -> None:
        self.center, self.disk_radius = result
        self._default_radii(self.preset.currentText())
        self.apply_preset("bright field", label=1)
        self.apply_preset("annular dark field", label=2)
        self.controller.viewer.layers.selection.active = self.controller.grains

    def _default_radii(self, kind: str) -> None:
        r = self.disk_radius
        h, w = self.controller.dataset.detector_shape if self.controller.dataset is not None else (64, 64)
        edge = float(min(h, w) / 2 - 1)
        inner, outer = {"bright field": (0.0, round(r, 1)), "annular dark field": (round(1.5 * r, 1), edge),
                        "ring": (round(2.0 * r, 1), round(2.6 * r, 1))}[kind]
        self.inner.setValue(inner)
        self.outer.setValue(max(outer, inner + 0.5))

    # ---- presets -----------------------------------------------------------------------------------
    def apply_preset(self, kind: str | None = None, *, label: int | None = None, inner: float | None = None,
                     outer: float | None = None) -> int:
        """Write a preset detector into the detectors layer (undoable) and return its label."""
        kind = kind or self.preset.currentText()
        if kind != self.preset.currentText():
            self.preset.setCurrentText(kind)
        inner = self.inner.value() if inner is None else inner
        outer = self.outer.value() if outer is None else outer
        mask = preset_mask(kind, self.controller.dataset.detector_shape, self.center, inner, outer)
        if label is None:
            label = self.layer.selected_label if self.layer.selected_label in self.names else max(self.names, default=0) + 1
        self.names[label] = self.name.text().strip() or kind
        data = self.layer.data
        idx = np.nonzero((data == label) & ~mask)
        if idx[0].size:
            self.layer.data_setitem(idx, 0)
        idx = np.nonzero(mask & (data != label))
        if idx[0].size:
            self.layer.data_setitem(idx, label)
        self.layer.selected_label = label
        self._on_edit()
        return label

    # ---- live virtual images ------------------------------------------------------------------------
    def masks(self) -> dict[str, np.ndarray]:
        """Detector name -> boolean mask (for sessions)."""
        return {self.names.get(k, f"detector {k}"): self.layer.data == k for k in sorted(self.names)
                if (self.layer.data == k).any()}

    def load_masks(self, masks: dict[str, np.ndarray]) -> None:
        """Replace all detectors by named boolean masks (sessions); labels 1, 2, … in order."""
        data = np.zeros(self.controller.dataset.detector_shape, np.int32)
        names = {}
        for i, (name, mask) in enumerate(masks.items(), start=1):
            m = np.asarray(mask, dtype=bool)
            if m.shape != data.shape:
                raise ValueError(f"detector {name!r} has shape {m.shape}, the detector is {data.shape}")
            data[m] = i
            names[i] = name
        for k in set(self.names) - set(names):
            layer = self.vi_layers.pop(k, None)
            if layer is not None and layer in self.controller.viewer.layers:
                self.controller.viewer.layers.remove(layer)
        self.names = names
        self.layer.data = data
        self._on_edit()

    def _on_edit(self, event: Any = None) -> None:
        if self.layer is None:
            return
        cur = self.layer.data
        changed = cur != self._shadow
        if not changed.any():
            return
        ids = {int(v) for v in np.unique(np.concatenate([cur[changed], self._shadow[changed]])) if v > 0}
        self._shadow = cur.copy()
        self.model.mark_dirty()
        for k in ids:
            self.names.setdefault(k, f"detector {k}")
            self._pending[k] = self._shadow == k
            self._stale[k] = set(range(self.model.n_tilts))
        self._schedule()

    def _on_tilt(self, tilt: int) -> None:
        for k, stale in self._stale.items():
            if tilt in stale:
                self._pending[k] = self._shadow == k
        self._schedule()

    def _schedule(self) -> None:
        if self._running or not self._pending:
            return
        jobs, self._pending = self._pending, {}
        tilt = self.model.tilt
        ds = self.controller.dataset
        updaters = self._updaters
        self._running = True

        def work() -> dict:
            from virtual_aperture.compute import VirtualImageUpdater

            out = {}
            for k, mask in jobs.items():
                up = updaters.get((k, tilt))
                if up is None:
                    for key in [key for key in updaters if key[1] != tilt]:
                        del updaters[key]  # one tilt's updaters at a time bounds the memory
                    up = updaters[(k, tilt)] = VirtualImageUpdater(ds, mask, tilt=tilt, memory_budget=UPDATER_BUDGET)
                    out[k] = np.asarray(up.image, dtype=np.float32)
                else:
                    out[k] = np.asarray(up.set_mask(mask), dtype=np.float32)
            return {"tilt": tilt, "images": out}

        self.runner.submit(work, self._show, self._failed)

    def _failed(self, exc: BaseException) -> None:
        from .runner import notify_error

        self._running = False
        notify_error(f"virtual image update failed: {exc}")
        self._schedule()

    def _show(self, result: dict) -> None:
        self._running = False
        tilt = result["tilt"]
        for k, image in result["images"].items():
            self._stale.get(k, set()).discard(tilt)
            self._set_vi(k, tilt, image)
        self._schedule()

    def _set_vi(self, label: int, tilt: int, image: np.ndarray) -> None:
        ds, nav = self.controller.dataset, self.controller.navigator
        name = f"VI: {self.names.get(label, f'detector {label}')}"
        layer = self.vi_layers.get(label)
        if layer is None or layer not in self.controller.viewer.layers:
            shape = (ds.n_tilts, *ds.scan_shape) if ds.is_tilt_series else ds.scan_shape
            data = np.zeros(shape, np.float32)
            active = self.controller.viewer.layers.selection.active
            layer = self.controller.viewer.add_image(
                data, name=name, scale=nav.scale, units=nav.units, axis_labels=nav.axis_labels, colormap="gray",
                visible=label == 2, metadata={META_KEY: {"role": "virtual_image", "detector": label}},
            )
            idx = list(self.controller.viewer.layers).index(layer)
            grains_idx = list(self.controller.viewer.layers).index(self.controller.grains)
            if idx > grains_idx:
                self.controller.viewer.layers.move(idx, grains_idx)
            self.vi_layers[label] = layer
            if active is not None:
                self.controller.viewer.layers.selection.active = active
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
