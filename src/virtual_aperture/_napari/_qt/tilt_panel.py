"""Tilts tab: step through a tilt series and carry a grain to the next/previous tilt.

The copy is shifted by the measured drift between the navigator images of the two tilts
(phase cross-correlation), then written through napari's Labels API, so it can be undone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QCheckBox, QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..drift import measure_drift, shift_mask

#: a measured drift larger than this (scan pixels) between neighbouring tilts is not trusted
MAX_DRIFT_PX = 5.0


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
            self.info.setText(self.controller.tilt_text())
        else:
            self.info.setText("4D dataset: no tilts")

    def drift_mask(self) -> np.ndarray | None:
        """Detector mask for the drift images: the first annular dark field detector, if any."""
        det = self.controller.extra_panel("detectors")
        if det is None:
            return None
        for name, mask in det.masks().items():
            if "dark field" in name:
                return mask
        return None

    def copy_grain(self, direction: int, *, label: int | None = None) -> Any:
        """Copy the selected grain of the current tilt to tilt ``current + direction``.

        With "shift by measured drift" the drift is measured in a worker (dark-field virtual
        images of both tilts, phase cross-correlation) and the copy is made when it returns; the
        worker is returned. Without it the copy is made at once and ``(0.0, 0.0)`` is returned.
        None when there is nothing to copy.
        """
        c = self.controller
        ds = c.dataset
        if ds is None or not ds.is_tilt_series:
            return None
        src, label = self.model.tilt, label or self.model.selected
        dst = src + direction
        if not 0 <= dst < ds.n_tilts or label <= 0:
            return None
        if not (c.grains.data[src] == label).any():
            self.info.setText(f"grain {label} is empty at tilt {src + 1}")
            return None
        if not self.follow.isChecked():
            self._apply_copy(label, src, dst, (0.0, 0.0))
            return (0.0, 0.0)
        mask, nav = self.drift_mask(), c.total

        def work(progress: Any, cancel: Any) -> tuple[float, float]:
            from virtual_aperture.compute import virtual_image

            progress(0, 2)
            if mask is None:  # no dark-field detector: the navigator images
                return measure_drift(nav[src], nav[dst])
            a = virtual_image(ds.tilt(src), mask, cancel=cancel)
            progress(1, 2)
            b = virtual_image(ds.tilt(dst), mask, cancel=cancel)
            progress(2, 2)
            return measure_drift(a, b)

        def done(shift: tuple[float, float]) -> None:
            if max(abs(shift[0]), abs(shift[1])) > MAX_DRIFT_PX:
                from napari.utils.notifications import show_warning

                show_warning(
                    f"measured drift ({shift[0]:+.1f}, {shift[1]:+.1f}) px between tilts {src + 1} and "
                    f"{dst + 1} exceeds {MAX_DRIFT_PX} px and is not trusted: copied without a shift"
                )
                shift = (0.0, 0.0)
            self._apply_copy(label, src, dst, shift)

        return c.jobs.start(f"drift tilt {src + 1} → {dst + 1}", work, done)

    def _apply_copy(self, label: int, src: int, dst: int, shift: tuple[float, float]) -> None:
        c = self.controller
        data = c.grains.data
        moved = shift_mask(data[src] == label, shift)
        target = data[dst]
        clear = np.nonzero((target == label) & ~moved)
        if clear[0].size:
            c.grains.data_setitem((np.full(clear[0].size, dst), *clear), 0)
        put = np.nonzero(moved & (target == 0))
        if put[0].size:
            c.grains.data_setitem((np.full(put[0].size, dst), *put), label)
        self.last_shift = shift
        self.info.setText(
            f"copied grain {label} to tilt {dst + 1} shifted by ({shift[0]:+.1f}, {shift[1]:+.1f}) px"
        )
        if self.go.isChecked():
            self.model.tilt = dst
