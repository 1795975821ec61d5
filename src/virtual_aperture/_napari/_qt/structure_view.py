"""The solved structure in its own 3D window: potential, atoms and cell never enter the real-space viewer.

A second :class:`~napari.components.ViewerModel` (``ndisplay=3``) with its own ``QtViewer`` and
layer list, in a top-level window that the Solve tab opens on its first solution (napari's
multiple-viewer pattern). Its axes are Cartesian Å, so its units never mix with the scan (nm) or
the detector (Å⁻¹).
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QSplitter, QVBoxLayout, QWidget


class StructureView(QWidget):
    """Top-level window holding the 3D viewer of a solved structure."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        from napari.components import ViewerModel
        from napari.qt import QtViewer

        self.setWindowTitle("virtual aperture — solved structure")
        self.viewer = ViewerModel(title="solved structure", ndisplay=3)
        self.viewer.axes.visible = True
        self.qt_viewer = QtViewer(self.viewer)
        split = QSplitter(Qt.Orientation.Horizontal)
        side = QSplitter(Qt.Orientation.Vertical)
        side.addWidget(self.qt_viewer.controls)
        side.addWidget(self.qt_viewer.layers)
        split.addWidget(side)
        split.addWidget(self.qt_viewer)
        split.setSizes([220, 680])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)
        self.resize(900, 650)

    def present(self) -> None:
        """Show (or raise) the window and frame the structure."""
        self.show()
        self.raise_()
        self.viewer.reset_view()

    def close_viewer(self) -> None:
        qtv, self.qt_viewer = self.qt_viewer, None
        if qtv is None:
            return
        try:
            qtv.close()
            self.close()
            self.deleteLater()
        except RuntimeError:
            pass


def close_all(views: Any) -> None:
    for v in list(views):
        if v is not None:
            v.close_viewer()
