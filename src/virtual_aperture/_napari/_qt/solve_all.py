"""The "every grain" box of the Solve tab: :func:`virtual_aperture.solve_all_grains` on every grain of
the workspace in a thread worker (progress per grain, Cancel), a results table, and the phase and
orientation maps as layers over the real-space view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
)

from .background import CANCELLED, Failure, start_worker

#: columns of the results table (a subset of ``virtual_aperture.batch.SUMMARY_COLUMNS``)
TABLE_COLUMNS = ("grain", "status", "tilts", "positions", "phase", "cell", "space_group", "r1", "message")
PHASE_LAYER, ORIENTATION_LAYER = "phases", "orientations"


class SolveAllBox(QGroupBox):
    """Every grain → its structure, one task per grain, inside the Solve tab."""

    def __init__(self, solve_widget: Any) -> None:
        super().__init__("Every grain of the dataset")
        self.solve = solve_widget
        self.result = None
        form = QFormLayout(self)
        row = QHBoxLayout()
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("folder for grain_N/, summary.csv, maps (blank: keep in memory)")
        self.browse_btn = QPushButton("…")
        self.browse_btn.clicked.connect(self._browse)
        row.addWidget(self.out_edit)
        row.addWidget(self.browse_btn)
        form.addRow("Output", row)
        self.run_btn = QPushButton("Solve all grains")
        self.run_btn.setToolTip(
            "the whole chain for every grain (one task per grain on the workspace's "
            "scheduler); a grain that fails does not stop the others"
        )
        self.run_btn.clicked.connect(self.run)
        form.addRow(self.run_btn)
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels([c.replace("_", " ") for c in TABLE_COLUMNS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(140)
        form.addRow(self.table)
        self.status = QLabel("paint or propose grains, then solve them all")
        self.status.setWordWrap(True)
        form.addRow(self.status)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for the results")
        if path:
            self.out_edit.setText(path)

    def _inputs(self) -> dict:
        ds, labels = self.solve.chain._inputs()  # the same grains the one-grain chain solves
        ws = getattr(self.solve, "workspace", None)
        if not np.any(labels > 0):
            raise ValueError("no grains yet: paint or propose grains first")
        out = self.out_edit.text().strip() or None
        if out is not None and Path(out).exists() and not Path(out).is_dir():
            raise ValueError(f"{out} exists and is not a folder")
        if out is not None and (Path(out) / "summary.csv").exists():
            raise ValueError(f"{Path(out) / 'summary.csv'} already exists: choose another folder")
        client = ws.model.client() if ws is not None else None
        return dict(
            dataset=ds,
            labels=labels,
            out=out,
            client=client,
            overwrite=False,
            composition=self.solve.comp_edit.text().strip() or None,
            starts=self.solve.starts_spin.value(),
            seed=self.solve.seed_spin.value(),
        )

    def run(self):
        """Start the batch in a ``thread_worker``; returns the worker (None if the input is bad)."""
        from virtual_aperture.batch import solve_all_grains

        try:
            kwargs = self._inputs()
        except (ValueError, OSError) as exc:
            self.status.setText(f"error: {exc}")
            return None
        self.solve.new_token()
        self.run_btn.setEnabled(False)
        self.solve.cancel_btn.setEnabled(True)
        self.table.setRowCount(0)
        self.status.setText("solving every grain …")
        self.solve._worker = start_worker(
            solve_all_grains,
            cancel=self.solve._cancel,
            on_result=self._on_result,
            on_progress=self._on_progress,
            on_error=lambda exc: self.status.setText(f"error: {exc}"),
            on_finished=self._on_finished,
            **kwargs,
        )
        return self.solve._worker

    def _on_progress(self, value) -> None:
        stage, done, total = value
        self.status.setText(f"{stage} ({done} of {total} grains done)")
        self.solve._on_progress((done, total))

    def _on_finished(self) -> None:
        self.run_btn.setEnabled(True)
        self.solve._on_finished()

    def _on_result(self, batch) -> None:
        if batch is CANCELLED:
            self.status.setText("cancelled")
            return
        if isinstance(batch, Failure):  # the library refused the input: one line, no traceback
            self.status.setText(f"error: {batch}")
            return
        self.result = batch
        rows = batch.table()
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            for j, c in enumerate(TABLE_COLUMNS):
                v = r.get(c)
                self.table.setItem(
                    i, j, QTableWidgetItem("" if v is None or v == 0 and c == "phase" else str(v))
                )
        self.table.resizeColumnsToContents()
        self._show_maps(batch)
        where = f"; files in {batch.out}" if batch.out is not None else ""
        rare = [p.number for p in batch.phases if p.rare]
        self.status.setText(
            f"{batch.n_solved} of {len(batch.outcomes)} grains solved, {len(batch.phases)} phase(s)"
            + (f" (rare: {', '.join(map(str, rare))})" if rare else "")
            + f", {100 * batch.unassigned_fraction:.0f} % of positions in no grain{where}"
        )

    def _show_maps(self, batch) -> None:
        """Phase map (Labels) and orientation map (RGB) over the real-space view, on the grains'
        scale and translation; replaced, not duplicated, on the next run."""
        ws = getattr(self.solve, "workspace", None)
        viewer = ws.viewer if ws is not None else self.solve.viewer  # the real-space viewer
        grains = (
            ws.grains
            if ws is not None
            else (viewer.layers["grains"] if viewer is not None and "grains" in viewer.layers else None)
        )
        if viewer is None or grains is None:
            return
        geo = {"scale": grains.scale, "translate": grains.translate}
        units = getattr(grains, "units", None)
        if units is not None:
            geo["units"] = units
        for name in (PHASE_LAYER, ORIENTATION_LAYER):
            if name in viewer.layers:
                viewer.layers.remove(name)
        active = viewer.layers.selection.active
        viewer.add_labels(batch.phase_map, name=PHASE_LAYER, opacity=0.5, visible=True, **geo)
        rgb = viewer.add_image(
            batch.orientation_map, name=ORIENTATION_LAYER, rgb=True, opacity=0.6, visible=False, **geo
        )
        rgb.metadata["note"] = "IPF colour of each grain's beam direction (docs/scaling.md)"
        if active is not None:  # painting goes on in the grains layer, not in the new maps
            viewer.layers.selection.active = active
