"""Actions tab: sum all grains over all tilts, save the summed patterns, hand a grain on.

Everything heavy runs in a napari worker (:class:`.jobs.JobRunner`) with a progress bar and a
working Cancel; layers are touched only in the ``returned`` callbacks. The dask scheduler
address from the settings (empty = local threads) is used for the sums.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from virtual_aperture.compute.executor import check_cancel

from ..export import safe_name, save_pattern_stack
from ..live import as_tilt_stack, descan_map
from ..reader import META_KEY


def sum_grains(
    dataset: Any,
    labels: np.ndarray,
    *,
    only: int | None = None,
    client: Any = None,
    progress: Callable | None = None,
    cancel: Any = None,
) -> tuple[dict, dict]:
    """Summed pattern ``(n_tilts, k_y, k_x)`` and position count ``(n_tilts,)`` of every grain.

    ``labels`` is the grain label image (2D, or 3D per tilt); ``only`` restricts to one label.
    One pass of :func:`virtual_aperture.compute.aperture_sums` over the data (on the dask
    ``client`` when given), compensated by the descan fit the dataset's calibration holds.
    """
    from virtual_aperture.compute import aperture_sums

    stack = as_tilt_stack(labels)
    if only is not None:
        stack = np.where(stack == only, only, 0).astype(stack.dtype)
    result = aperture_sums(
        dataset,
        stack if dataset.is_tilt_series else stack[0],
        client=client,
        shifts=descan_map(dataset),
        progress=progress,
        cancel=cancel,
    )
    n = stack.shape[0]
    sums = {
        int(k): np.asarray(r.sum, dtype=np.float64).reshape(n, *dataset.detector_shape)
        for k, r in result.items()
    }
    counts = {int(k): np.asarray(r.count, dtype=np.int64).reshape(n) for k, r in result.items()}
    return sums, counts


class ActionsPanel(QWidget):
    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = controller.model
        self.sum_btn = QPushButton("Sum all grains (all tilts)")
        self.sum_btn.clicked.connect(lambda: self.sum_all())
        self.fmt = QComboBox()
        self.fmt.addItems([".tif", ".mrc"])
        self.save_btn = QPushButton("Save summed patterns…")
        self.save_btn.clicked.connect(lambda: self.save_sums())
        self.hand_btn = QPushButton("Hand selected grain to indexing / solving")
        self.hand_btn.clicked.connect(lambda: self.hand_off())
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(controller.jobs.cancel)
        self.address = QLineEdit()
        self.address.setPlaceholderText("empty = threads; 'local' = one LocalCluster; tcp://host:8786")
        self.address.editingFinished.connect(
            lambda: setattr(self.model, "scheduler_address", self.address.text())
        )
        self.message = QLabel("")
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("stack format", self.fmt)
        form.addRow("dask scheduler", self.address)
        lay = QVBoxLayout(self)
        for w in (self.sum_btn, self.save_btn, self.hand_btn, self.cancel_btn):
            lay.addWidget(w)
        lay.addLayout(form)
        lay.addWidget(self.message)
        lay.addStretch(1)
        controller.jobs.busy_changed.connect(self.cancel_btn.setEnabled)
        controller.jobs.message.connect(self.message.setText)
        self.last_saved: list[str] = []

    # ---- sum all -----------------------------------------------------------------------------------
    def sum_all(self, then: Callable[[], None] | None = None) -> Any:
        c = self.controller
        if c.grains is None:
            return None
        labels, ds, model = np.array(c.grains.data, copy=True), c.dataset, self.model

        def work(progress: Callable, cancel: Any) -> tuple:
            return sum_grains(ds, labels, client=model.client(), progress=progress, cancel=cancel)

        def done(result: tuple) -> None:
            sums, counts = result
            self.model.set_sums(sums, counts)
            self._show_sums()
            if then is not None:
                then()

        return c.jobs.start("sum all grains", work, done)

    def _show_sums(self) -> None:
        dv, ds = self.controller.diffraction, self.controller.dataset
        for layer in [
            lyr for lyr in dv.layers if (lyr.metadata or {}).get(META_KEY, {}).get("role") == "grain_sum"
        ]:
            dv.layers.remove(layer)
        disp = self.model.display
        for k, stack in sorted(self.model.grain_sums.items()):
            name = self.model.grain_names.get(k, f"grain {k}")
            data = disp.transform(stack if ds.is_tilt_series else stack[0])
            dv.add_image(
                data,
                name=f"sum: {name}",
                colormap="magma",
                visible=k == self.model.selected,
                contrast_limits=disp.contrast_limits(data),
                gamma=disp.gamma,
                metadata={META_KEY: {"role": "grain_sum", "label": k}},
                **self.controller.k_geometry(data.ndim),
            )
        if ds.is_tilt_series:
            dv.dims.set_current_step(0, self.model.tilt)

    # ---- save --------------------------------------------------------------------------------------
    def save_sums(self, directory: str | None = None, fmt: str | None = None) -> Any:
        if directory is None:
            directory = QFileDialog.getExistingDirectory(self, "Save summed patterns to")
            if not directory:
                return None
        fmt = fmt or self.fmt.currentText()
        if not self.model.grain_sums:
            return self.sum_all(then=lambda: self.save_sums(directory, fmt))
        ds = self.controller.dataset
        items = [
            (self.model.grain_names.get(k, f"grain {k}"), s, self.model.grain_counts[k])
            for k, s in sorted(self.model.grain_sums.items())
        ]
        cal, angles = ds.calibration, self.model.tilt_angles

        def work(progress: Callable, cancel: Any) -> list[str]:
            paths = []
            for i, (name, stack, counts) in enumerate(items):
                check_cancel(cancel)
                path = os.path.join(directory, safe_name(name) + fmt)
                save_pattern_stack(path, stack, calibration=cal, tilt_angles=angles, counts=counts, name=name)
                paths.append(path)
                progress(i + 1, len(items))
            return paths

        def done(paths: list[str]) -> None:
            self.last_saved = paths
            self.message.setText(f"saved {len(paths)} stacks to {directory}")

        return self.controller.jobs.start("save summed patterns", work, done)

    # ---- hand off ------------------------------------------------------------------------------------
    def hand_off(self, label: int | None = None) -> Any:
        c = self.controller
        label = label or self.model.selected
        if c.grains is None or label <= 0 or not (np.asarray(c.grains.data) == label).any():
            self.message.setText("select a painted grain first")
            return None
        labels, ds, model = np.array(c.grains.data, copy=True), c.dataset, self.model

        def work(progress: Callable, cancel: Any) -> tuple:
            sums, counts = sum_grains(
                ds, labels, only=label, client=model.client(), progress=progress, cancel=cancel
            )
            return sums[label], counts[label]

        def done(result: tuple) -> None:
            patterns, counts = result
            grain = self.model.hand_off(label, patterns, counts, descan=descan_map(ds) is not None)
            self.message.setText(
                f"{grain.name} handed to the Index and Solve tabs: {patterns.shape[0]} summed pattern(s)"
            )

        return c.jobs.start(f"hand grain {label} on", work, done)
