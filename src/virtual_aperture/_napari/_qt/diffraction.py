"""The diffraction view: a second napari canvas docked beside the main one.

napari's ``multiple_viewer_widget`` pattern: a :class:`~napari.components.ViewerModel` (owned by
the controller) shown by its own ``QtViewer`` (with a scale bar in Å⁻¹), docked to the right of
the real-space canvas and as large. That viewer's layer list and layer controls (to paint the
detector layers with napari's own tools) live in the workspace's Detectors tab. Display controls
(log, gamma, percentiles) write
:class:`~virtual_aperture._napari.workspace_model.DisplaySettings` to the model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget


class DiffractionView(QWidget):
    """Canvas + layer controls + display settings of the diffraction viewer."""

    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from napari.qt import QtViewer

        self.controller = controller
        self.model = controller.model
        self.qt_viewer = QtViewer(controller.diffraction)
        self.title = QLabel("hover over the navigator to see patterns")
        self.title.setWordWrap(True)

        self.mode = QComboBox()
        self.mode.addItems(["pattern under cursor", "selected grain's sum"])
        self.mode.currentIndexChanged.connect(lambda i: controller.set_show_mode(("cursor", "grain")[i]))
        controller.show_mode_changed.connect(self._mode_changed)
        self.log = QCheckBox("log")
        self.gamma = QDoubleSpinBox(minimum=0.1, maximum=5.0, singleStep=0.1, decimals=2)
        self.low = QDoubleSpinBox(minimum=0.0, maximum=99.0, singleStep=0.5, decimals=1)
        self.high = QDoubleSpinBox(minimum=1.0, maximum=100.0, singleStep=0.1, decimals=2)
        self._load_display(self.model.display)
        row = QHBoxLayout()
        for label, w in (("", self.log), ("γ", self.gamma), ("low %", self.low), ("high %", self.high)):
            if label:
                row.addWidget(QLabel(label))
            row.addWidget(w)
        for w in (self.gamma, self.low, self.high):
            w.valueChanged.connect(self._store_display)
        self.log.toggled.connect(self._store_display)
        self.model.display_changed.connect(self._load_display)

        self.qt_viewer.setMinimumHeight(240)
        row.insertWidget(0, self.mode)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.title)
        lay.addLayout(row)
        lay.addWidget(self.qt_viewer, 1)
        controller.dataset_ready.connect(lambda: QTimer.singleShot(50, self.fit))
        controller.cursor_pattern_changed.connect(lambda: self._title(controller.cursor_layer))
        controller.grain_pattern_changed.connect(lambda: self._title(controller.grain_layer))
        # showing or hiding a pattern (the eye in the layer list) retitles the canvas
        layers = controller.diffraction.layers
        layers.events.inserted.connect(self._watch_layer)
        layers.events.removed.connect(lambda _e=None: self._title(None))
        for lyr in layers:
            self._watch_layer(lyr)
        self.setMinimumWidth(300)

    def fit(self) -> None:
        """Fit the whole detector into the diffraction canvas."""
        self.controller.diffraction.reset_view()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt name
        super().showEvent(event)
        QTimer.singleShot(50, self.fit)

    def _mode_changed(self, mode: str) -> None:
        self.mode.blockSignals(True)
        self.mode.setCurrentIndex(0 if mode == "cursor" else 1)
        self.mode.blockSignals(False)
        self._title(None)

    def _watch_layer(self, event: Any) -> None:
        layer = getattr(event, "value", event)
        layer.events.visible.connect(lambda _e=None: self._title(None))
        self._title(None)

    def _title(self, layer: Any) -> None:
        texts = []
        c = self.controller
        others = [lyr for lyr in c.diffraction.layers if lyr not in (c.cursor_layer, c.grain_layer)]
        for lyr in (c.cursor_layer, c.grain_layer, *others):  # every visible pattern with a title
            if lyr is not None and lyr.visible and lyr.metadata.get("title"):
                texts.append(f"{lyr.name}: {lyr.metadata['title']}")
        self.title.setText("\n".join(texts))

    def _load_display(self, d: Any) -> None:
        for w, v in (
            (self.log, d.log),
            (self.gamma, d.gamma),
            (self.low, d.percentile_low),
            (self.high, d.percentile_high),
        ):
            w.blockSignals(True)
            w.setChecked(v) if isinstance(w, QCheckBox) else w.setValue(v)
            w.blockSignals(False)

    def _store_display(self, *_: Any) -> None:
        low, high = self.low.value(), self.high.value()
        if low >= high:
            return
        self.model.display = dataclasses.replace(
            self.model.display,
            log=self.log.isChecked(),
            gamma=self.gamma.value(),
            percentile_low=low,
            percentile_high=high,
        )

    def toggle_log(self) -> None:
        self.log.setChecked(not self.log.isChecked())

    def close_viewer(self) -> None:
        """Close the embedded QtViewer (it is a napari QtViewer and must be closed explicitly)."""
        qtv, self.qt_viewer = self.qt_viewer, None
        if qtv is None:
            return
        try:
            for part in (qtv.controls, qtv.layers):
                part.setParent(None)
                part.deleteLater()
            qtv.close()
            qtv.setParent(None)
            qtv.deleteLater()
        except RuntimeError:
            pass
