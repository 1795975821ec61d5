"""Tilts tab: step through a tilt series and carry a grain to the next/previous tilt.

The copy is shifted by the measured drift between the navigator images of the two tilts
(phase cross-correlation), then written through napari's Labels API, so it can be undone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QCheckBox, QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..drift import measure_drift, shift_mask


class TiltPanel(QWidget):
    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = controller.model
        self.info = QLabel("4D dataset: no tilts")
        self.info.setWordWrap(True)
        self.follow = QCheckBox("shift by measured drift")
        self.follow.setChecked(True)
        self.go = QCheckBox("go to the target tilt after copying")
        self.go.setChecked(True)
        grid = QGridLayout()
        buttons = (
            ("◀ previous tilt", lambda: controller.step_tilt(-1)),
            ("next tilt ▶", lambda: controller.step_tilt(+1)),
            ("copy grain to previous", lambda: self.copy_grain(-1)),
            ("copy grain to next", lambda: self.copy_grain(+1)),
        )
        self.buttons = []
        for i, (text, fn) in enumerate(buttons):
            b = QPushButton(text)
            b.clicked.connect(fn)
            grid.addWidget(b, i // 2, i % 2)
            self.buttons.append(b)
        lay = QVBoxLayout(self)
        lay.addWidget(self.info)
        lay.addLayout(grid)
        lay.addWidget(self.follow)
        lay.addWidget(self.go)
        lay.addStretch(1)
        self.model.tilt_changed.connect(lambda *_: self._update())
        controller.dataset_ready.connect(self._update)

    def _update(self) -> None:
        ds = self.controller.dataset
        tilted = ds is not None and ds.is_tilt_series
        for b in self.buttons:
            b.setEnabled(tilted)
        if tilted:
            t = self.model.tilt
            self.info.setText(f"tilt {t + 1} of {ds.n_tilts}: {self.model.tilt_angles[t]:+.2f}°")
        else:
            self.info.setText("4D dataset: no tilts")

    def copy_grain(self, direction: int, *, label: int | None = None) -> tuple[float, float] | None:
        """Copy the selected grain of the current tilt to tilt ``current + direction``.

        Returns the shift applied (scan pixels) or None when there is nothing to copy.
        """
        c = self.controller
        ds = c.dataset
        if ds is None or not ds.is_tilt_series:
            return None
        src, label = self.model.tilt, label or self.model.selected
        dst = src + direction
        if not 0 <= dst < ds.n_tilts or label <= 0:
            return None
        data = c.grains.data
        mask = data[src] == label
        if not mask.any():
            c.viewer.status = f"grain {label} is empty at tilt {src + 1}"
            return None
        shift = measure_drift(c.total[src], c.total[dst]) if self.follow.isChecked() else (0.0, 0.0)
        moved = shift_mask(mask, shift)
        target = data[dst]
        clear = np.nonzero((target == label) & ~moved)
        if clear[0].size:
            c.grains.data_setitem((np.full(clear[0].size, dst), *clear), 0)
        put = np.nonzero(moved & (target == 0))
        if put[0].size:
            c.grains.data_setitem((np.full(put[0].size, dst), *put), label)
        c.viewer.status = f"copied grain {label} to tilt {dst + 1} shifted by ({shift[0]:+.1f}, {shift[1]:+.1f}) px"
        if self.go.isChecked():
            self.model.tilt = dst
        return shift
