"""The grain list: one row per grain (virtual aperture) with colour, name, pixels, counts.

Edits of the label image go through napari's Labels API (``data_setitem``/``paint_polygon``), so
merge, delete and polygon fills are undoable with napari's own undo (Ctrl+Z on the layer).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..live import as_tilt_stack

COLUMNS = ("", "name", "pixels", "total counts")


class GrainList(QWidget):
    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = controller.model
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 22)
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        self.table.itemChanged.connect(self._on_item_changed)
        buttons = QHBoxLayout()
        self.new_btn = QPushButton("New grain")
        self.merge_btn = QPushButton("Merge")
        self.delete_btn = QPushButton("Delete")
        self.polygon_btn = QPushButton("Polygons → grain")
        self.new_btn.setToolTip("start a new grain with the paint brush (Shift+N on the canvas)")
        self.merge_btn.setToolTip("merge the selected rows into the first one")
        self.polygon_btn.setToolTip(
            "fill the polygons of the 'polygons' Shapes layer into the selected grain"
        )
        for b, fn in (
            (self.new_btn, self.new_grain),
            (self.merge_btn, self.merge_selected),
            (self.delete_btn, self.delete_selected),
            (self.polygon_btn, self.polygons_to_grain),
        ):
            # ``clicked`` passes ``checked``: never let it arrive as the ``labels`` argument
            b.clicked.connect(lambda _checked=False, fn=fn: fn())
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table)
        lay.addLayout(buttons)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(100)
        self._refresh_timer.timeout.connect(self.refresh)
        # psygnal cannot inspect a Qt builtin (a warning on every open): connect a Python callable
        self.model.grains_changed.connect(lambda *_: self._refresh_timer.start())
        self.model.tilt_changed.connect(lambda *_: self._refresh_timer.start())
        self.model.selected_changed.connect(self._select_row)
        controller.grains_edited.connect(lambda *_: self._refresh_timer.start())
        controller.dataset_ready.connect(self.refresh)
        self._updating = False

    # ---- table -----------------------------------------------------------------------------------
    def labels(self) -> list[int]:
        return [
            int(self.table.item(r, 1).data(Qt.ItemDataRole.UserRole)) for r in range(self.table.rowCount())
        ]

    def refresh(self) -> None:
        layer = self.controller.grains
        stats = self.controller.grain_stats()
        self._updating = True
        try:
            labels = sorted(set(self.model.grain_names) | set(stats))
            self.table.setRowCount(len(labels))
            for row, label in enumerate(labels):
                pix, tot = stats.get(label, (0, 0.0))
                colour = QTableWidgetItem()
                if layer is not None:
                    r, g, b, a = (np.asarray(layer.get_color(label)) * 255).astype(int)
                    colour.setBackground(QColor(int(r), int(g), int(b)))
                colour.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                name = QTableWidgetItem(self.model.grain_names.get(label, f"grain {label}"))
                name.setData(Qt.ItemDataRole.UserRole, label)
                cells = [colour, name, QTableWidgetItem(str(pix)), QTableWidgetItem(f"{tot:.4g}")]
                for c in cells[2:]:
                    c.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                for col, item in enumerate(cells):
                    self.table.setItem(row, col, item)
            self._select_row(self.model.selected)
        finally:
            self._updating = False

    def _select_row(self, label: int) -> None:
        labels = self.labels()
        if label in labels:
            row = labels.index(label)
            if row not in {i.row() for i in self.table.selectionModel().selectedRows()}:
                from qtpy.QtCore import QItemSelectionModel

                was, self._updating = self._updating, True
                # not selectRow(): it extends the selection while Shift is held (Shift+N)
                flags = (
                    QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
                )
                self.table.selectionModel().select(self.table.model().index(row, 0), flags)
                self._updating = was

    def selected_labels(self) -> list[int]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        labels = self.labels()
        return [labels[r] for r in rows]

    def _on_row_selected(self) -> None:
        if self._updating:
            return
        sel = self.selected_labels()
        if sel:
            self.model.selected = sel[0]

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._updating or item.column() != 1:
            return
        label = int(item.data(Qt.ItemDataRole.UserRole))
        try:
            self.model.rename_grain(label, item.text())
        except (ValueError, KeyError) as exc:
            from .runner import notify_error

            notify_error(str(exc))
            self._refresh_timer.start()

    # ---- actions -----------------------------------------------------------------------------------
    def new_grain(self) -> int:
        layer = self.controller.grains
        if layer is None:
            return 0
        label = self.model.new_grain_label(used=layer.data)
        self.model.add_grain(label)
        self.model.selected = label
        layer.selected_label = label
        layer.mode = "paint"
        self.controller.viewer.layers.selection.active = layer
        return label

    def merge_selected(self, labels: list[int] | None = None) -> None:
        labels = self.selected_labels() if labels is None else list(labels)
        layer = self.controller.grains
        if layer is None or len(labels) < 2:
            return
        target, others = labels[0], labels[1:]
        idx = np.nonzero(np.isin(layer.data, others))
        if idx[0].size:
            layer.data_setitem(idx, target)
        for lab in others:
            self.model.forget_grain(lab)
        self.model.selected = target

    def delete_selected(self, labels: list[int] | None = None) -> None:
        labels = self.selected_labels() if labels is None else list(labels)
        layer = self.controller.grains
        if layer is None or not labels:
            return
        idx = np.nonzero(np.isin(layer.data, labels))
        if idx[0].size:
            layer.data_setitem(idx, 0)
        for lab in labels:
            self.model.forget_grain(lab)

    def polygon_layer(self) -> Any:
        viewer = self.controller.viewer
        if "polygons" in viewer.layers:
            return viewer.layers["polygons"]
        g = self.controller.grains
        layer = viewer.add_shapes(
            ndim=g.ndim,
            name="polygons",
            scale=g.scale,
            translate=g.translate,
            units=g.units,  # the grains' nm: one set of units in the real-space canvas
            edge_color="yellow",
            face_color="transparent",
        )
        layer.mode = "add_polygon"
        return layer

    def polygons_to_grain(self) -> None:
        """Fill every polygon of the 'polygons' Shapes layer into the selected grain."""
        layer = self.controller.grains
        viewer = self.controller.viewer
        if layer is None:
            return
        if "polygons" not in viewer.layers or not len(viewer.layers["polygons"].data):
            self.polygon_layer()
            viewer.status = "draw polygons on the 'polygons' layer, then press 'Polygons → grain' again"
            return
        shapes = viewer.layers["polygons"]
        label = self.model.selected if self.model.selected > 0 else self.new_grain()
        for verts in shapes.data:
            pts = np.round(np.asarray(verts)).astype(int)
            if pts.shape[1] == 3 and as_tilt_stack(layer.data).shape[0] > 1:
                pts[:, 0] = self.model.tilt
            layer.paint_polygon(pts, label)
        shapes.data = []
        self.controller.viewer.layers.selection.active = layer
