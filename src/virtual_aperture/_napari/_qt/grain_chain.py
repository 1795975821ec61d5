"""The "whole chain" box of the Solve dock: one painted (or proposed) grain of the dataset in the
viewer → :func:`virtual_aperture.workflow.solve_grain` in a thread worker (stage progress, Cancel)
→ the Solve dock shows the solution and its reflections → *Export…* writes the crystallographer's
files with :func:`virtual_aperture.workflow.write_grain`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
)

from ..reader import META_KEY
from .background import CANCELLED, Failure, start_worker

GRAINS_LAYER = "grains"


class GrainChainBox(QGroupBox):
    """Grain → structure in one click, inside :class:`~._qt.solve_widget.SolveWidget`."""

    def __init__(self, solve_widget: Any) -> None:
        super().__init__("Whole chain for a grain of the dataset")
        self.solve = solve_widget
        self.result = None
        form = QFormLayout(self)
        self.grain_spin = QSpinBox()
        self.grain_spin.setRange(1, 65535)
        form.addRow("Grain (label in 'grains')", self.grain_spin)
        self.sg_edit = QLineEdit()
        self.sg_edit.setPlaceholderText("blank = suggested from the data")
        form.addRow("Space group", self.sg_edit)
        row = QHBoxLayout()
        self.run_btn = QPushButton("Solve grain")
        self.run_btn.setToolTip("sum → peaks → index → integrate → symmetry → merge → charge flipping")
        self.run_btn.clicked.connect(self.run)
        self.export_btn = QPushButton("Export…")
        self.export_btn.setEnabled(False)
        self.export_btn.clicked.connect(self._export_dialog)
        row.addWidget(self.run_btn)
        row.addWidget(self.export_btn)
        form.addRow(row)
        self.status = QLabel("paint or propose grains, then solve one")
        self.status.setWordWrap(True)
        form.addRow(self.status)
        ws = getattr(solve_widget, "workspace", None)
        if ws is not None:  # the Solve tab solves the grain handed on (or selected) in the workspace
            self.grain_spin.setToolTip("the grain handed on from the Grains tab (or selected there)")
            ws.model.grain_handed.connect(self._on_handed)
            ws.model.selected_changed.connect(lambda label: label > 0 and self.grain_spin.setValue(label))

    def _on_handed(self, grain: Any) -> None:
        self.grain_spin.setValue(int(grain.label))
        self.status.setText(f"{grain.name} handed on: press 'Solve grain' to run the whole chain on it")

    def _inputs(self) -> tuple[Any, np.ndarray]:
        ws = getattr(self.solve, "workspace", None)
        if ws is not None:
            if ws.dataset is None or ws.grains is None:
                raise ValueError("open a dataset and paint or propose grains first")
            return ws.dataset, np.array(ws.grains.data, copy=True)
        viewer = self.solve.viewer
        if viewer is None or GRAINS_LAYER not in viewer.layers:
            raise ValueError("no 'grains' Labels layer: open a dataset and paint or propose grains first")
        layer = viewer.layers[GRAINS_LAYER]
        ds = (layer.metadata or {}).get(META_KEY, {}).get("dataset")
        if ds is None:
            from ..workspace_model import workspace_for

            ws = workspace_for(viewer, create=False)
            ds = None if ws is None else ws.dataset
        if ds is None:
            raise ValueError(
                "the 'grains' layer is not linked to a dataset: open the dataset with the plugin"
            )
        return ds, np.asarray(layer.data)

    def run(self):
        """Start the chain in a ``thread_worker``; returns the worker (None if the input is bad)."""
        from virtual_aperture.workflow import solve_grain

        try:
            ds, labels = self._inputs()
            comp = self.solve.comp_edit.text().strip() or None
            kwargs = dict(
                dataset=ds,
                labels=labels,
                grain=self.grain_spin.value(),
                composition=comp,
                space_group=self.sg_edit.text().strip() or None,
                starts=self.solve.starts_spin.value(),
                seed=self.solve.seed_spin.value(),
            )
        except ValueError as exc:
            self.status.setText(f"error: {exc}")
            return None
        self.solve.new_token()
        self.run_btn.setEnabled(False)
        self.solve.cancel_btn.setEnabled(True)
        self.status.setText(f"grain {kwargs['grain']}: summing …")
        self.solve._worker = start_worker(
            solve_grain,
            cancel=self.solve._cancel,
            on_result=self._on_result,
            on_progress=self._on_progress,
            on_error=lambda exc: (self.status.setText(f"error: {exc}"), self.solve.progress.setValue(0)),
            on_finished=self._on_finished,
            **kwargs,
        )
        return self.solve._worker

    def _on_progress(self, value) -> None:
        stage, done, total = value
        self.status.setText(f"{stage} …")
        self.solve._on_progress((done, total))

    def _on_finished(self) -> None:
        self.run_btn.setEnabled(True)
        self.solve._on_finished()

    def _on_result(self, result) -> None:
        if result is CANCELLED or isinstance(result, Failure):
            self.status.setText("cancelled" if result is CANCELLED else f"error: {result}")
            self.solve.progress.setValue(0)
            return
        self.result = result
        if result.merged is not None:  # None: no reflection was integrated (result.message says why)
            self.solve.set_reflections(result.merged)
        if result.solution is not None:  # None: phasing could not run (result.message says why)
            self.solve._on_result(result.solution)
        self.solve.report.setPlainText(result.summary())
        self.export_btn.setEnabled(True)
        self.status.setText(
            f"grain {result.grain}: {'solved' if result.solved else 'no solution'} in "
            f"{result.space_group}"
            + (f" ({result.message})" if getattr(result, "message", "") else "")
            + "; Export… writes CIF, .hkl/.ins, map, frames, report.html"
        )

    def _export_dialog(self) -> None:  # pragma: no cover - interactive dialog
        path = QFileDialog.getExistingDirectory(self, "Export the grain's files into")
        if path:
            self.export(path)

    def _report_context(self):
        """The grain's aperture over the tilts for report.html (None when the layer is gone)."""
        from virtual_aperture.report import ReportContext, strip_images

        try:
            ds, labels = self._inputs()
        except ValueError:
            return None
        return ReportContext(
            images=strip_images(ds, self.result.tilts),
            labels=labels,
            scan_step_nm=ds.calibration.scan_step_nm,
            source=ds.source or "napari",
        )

    def export(self, directory: str | Path) -> list[Path]:
        """Write the last result's files into ``directory`` (never overwriting); [] on error."""
        from virtual_aperture.workflow import write_grain

        if self.result is None:
            self.status.setText("error: solve a grain first")
            return []
        try:
            paths = write_grain(self.result, directory, context=self._report_context())
        except (ValueError, OSError) as exc:
            self.status.setText(f"error: {exc}")
            return []
        self.status.setText(f"wrote {len(paths)} files to {directory}")
        return paths
