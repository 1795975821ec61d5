"""The virtual-aperture workspace (Plugins ▸ Virtual Aperture ▸ Workspace): one panel with tabs.

Opening it lays the window out in one step: the real-space canvas (napari's own) in the middle,
the diffraction canvas docked to the right and as prominent, and this panel (tabs Grains,
Propose, Detectors, Tilts, Check, Index, Solve, Session, Help) on the left below napari's layer
list. Every tab reads and writes the one :class:`~virtual_aperture._napari.workspace_model.WorkspaceModel`
of the viewer; closing the panel removes its parts (diffraction dock, callbacks, workers, a local
dask cluster); opening it again re-uses the grains already painted.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QLabel, QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget

from .controller import WorkspaceController

HOW_TO = """<b>How to</b><ol>
<li>Open a 4D/5D-STEM file (File ▸ Open) or a sample (File ▸ Open Sample ▸ Virtual Aperture).
The real-space canvas (middle) shows the total intensity at every scan position; the diffraction
canvas (right) the pattern under the cursor, in Å⁻¹.</li>
<li>Hover over the real-space canvas: the diffraction canvas follows the cursor (click to pin a
position, click again to follow). Its selector switches to the selected grain's summed pattern.</li>
<li><b>Grains</b>: press <b>New grain</b> (Shift+N) and paint the grain on the <i>grains</i> layer with
napari's brush, fill or polygon tools; its summed pattern updates while you paint. Erase with the
eraser; undo/redo with Ctrl+Z / Ctrl+Shift+Z. Rename a grain by editing its name.
<b>Sum all grains</b>, save the summed patterns, or <b>hand the grain</b> to the Index and Solve tabs.</li>
<li><b>Propose</b>: automatic grain proposals, tracking through the tilts, overlapping crystals.</li>
<li><b>Detectors</b>: add preset detectors (they may overlap) or paint your own on the diffraction
canvas; each has a live virtual image in the real-space canvas.</li>
<li><b>Check</b>: is the grain one crystal (coherence; disagreeing positions in red), boundaries.</li>
<li><b>Index</b> / <b>Solve</b>: peaks, unit cell and predicted spots on the diffraction canvas;
the whole chain to a structure, shown in its own 3D window.</li>
<li><b>Session</b>: descan calibration, dask scheduler, sessions; autosaved beside the data.</li>
</ol>
<b>Shortcuts</b> (canvas focused): Shift+N new grain · PageDown / PageUp next / previous tilt ·
Shift+L toggle log display."""

#: width of the diffraction dock as a fraction of the window width
DIFFRACTION_FRACTION = 0.36
#: width of the workspace panel (left column) in pixels
PANEL_WIDTH = 340


def _scroll(widget: QWidget) -> QScrollArea:
    """A tab page that scrolls instead of growing the window."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


def status_text(ds: Any, tilt_text: str = "") -> str:
    """One readable line about the dataset: name, shape, scan step, Å⁻¹/px, mrad/px, kV, descan."""
    import os

    cal = ds.calibration
    name = os.path.basename(str(ds.source).rstrip("/\\")) if ds.source else "in-memory data"
    sy, sx = ds.scan_shape
    ky, kx = ds.detector_shape
    parts = [
        f"<b>{name}</b>: {sy}×{sx} scan × {ky}×{kx} detector"
        + (f" × {ds.n_tilts} tilts" if ds.is_tilt_series else "")
    ]
    parts.append(f"scan step {cal.scan_step_nm:g} nm")
    if cal.pixel_size:
        parts.append(f"{cal.pixel_size:.4g} Å⁻¹/px ({cal.pixel_size_mrad:.3g} mrad/px)")
    else:
        parts.append("detector pixel size not calibrated")
    parts.append(f"{cal.beam_energy_kv:g} kV")
    parts.append("descan fitted" if cal.extra.get("descan") else "no descan fit")
    text = " · ".join(parts)
    return text + (f"<br>{tilt_text}" if tilt_text else "")


class WorkspaceWidget(QWidget):
    """The workspace panel: status line and one tab per task, all on one model."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from .diffraction import DiffractionView
        from .grain_list import GrainList

        # napari hands plugin widgets a PublicOnlyProxy; the workspace drives the viewer itself
        napari_viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.viewer = napari_viewer
        self.controller = WorkspaceController(napari_viewer, self)
        self.model = self.controller.model
        self.diffraction = DiffractionView(self.controller)
        self.diffraction_dock = napari_viewer.window.add_dock_widget(
            self.diffraction, name="Diffraction", area="right", tabify=False
        )
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.tabs = QTabWidget()
        self.tabs.setTabPosition(QTabWidget.TabPosition.West)
        self.tabs.setUsesScrollButtons(True)  # the tab bar never sets the window's minimum height
        self.tabs.setMinimumHeight(160)
        self.panels: dict[str, QWidget] = {}
        self.grain_list = GrainList(self.controller)
        self._build_tabs()
        help_label = QLabel(HOW_TO)
        help_label.setWordWrap(True)
        help_label.setTextFormat(Qt.TextFormat.RichText)
        self.tabs.addTab(_scroll(help_label), "Help")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.status)
        lay.addWidget(self.tabs, 1)
        self.controller.dataset_ready.connect(self._update_status)
        self.model.tilt_changed.connect(lambda *_: self._update_status())
        self.model.grain_handed.connect(lambda *_: self.tabs.setCurrentWidget(self.pages["index"]))
        self._bind_keys()
        self._closed = False
        self.destroyed.connect(self.controller.close)
        self.controller.start()
        self._update_status()
        QTimer.singleShot(0, self.arrange)  # once docked: move the panel left, size the docks
        QTimer.singleShot(300, self.arrange)  # Qt applies dock sizes only once the new layout settled

    # ---- tabs ------------------------------------------------------------------------------------
    def _build_tabs(self) -> None:
        from .actions_panel import ActionsPanel
        from .check_panel import CheckPanel
        from .detector_control import DetectorPanel
        from .grains_widget import GrainsWidget
        from .indexing_widget import IndexingWidget
        from .session_panel import SessionPanel
        from .solve_widget import SolveWidget
        from .tilt_panel import TiltPanel

        c = self.controller
        self.panels["grains"] = self.grain_list
        for key, cls in (
            ("actions", ActionsPanel),
            ("detectors", DetectorPanel),
            ("tilts", TiltPanel),
            ("check", CheckPanel),
            ("session", SessionPanel),
        ):
            self.panels[key] = c.panels[key] = cls(c)
        self.panels["propose"] = c.panels["propose"] = GrainsWidget(self.viewer, workspace=c)
        self.panels["index"] = c.panels["index"] = IndexingWidget(workspace=c)
        self.panels["solve"] = c.panels["solve"] = SolveWidget(workspace=c)

        grains_page = QSplitter(Qt.Orientation.Vertical)
        grains_page.addWidget(self.grain_list)
        grains_page.addWidget(_scroll(self.panels["actions"]))
        grains_page.setSizes([260, 200])
        det_page = QSplitter(Qt.Orientation.Vertical)
        det_page.addWidget(_scroll(self.panels["detectors"]))
        # the diffraction viewer's own layer list and controls: brush, eraser, fill on the detectors
        qtv = self.diffraction.qt_viewer
        det_page.addWidget(qtv.layers)
        det_page.addWidget(qtv.controls)
        det_page.setSizes([300, 120, 160])
        self.pages = {
            "grains": grains_page,
            "propose": _scroll(self.panels["propose"]),
            "detectors": det_page,
            "tilts": _scroll(self.panels["tilts"]),
            "check": _scroll(self.panels["check"]),
            "index": _scroll(self.panels["index"]),
            "solve": _scroll(self.panels["solve"]),
            "session": _scroll(self.panels["session"]),
        }
        titles = {
            "grains": "Grains",
            "propose": "Propose",
            "detectors": "Detectors",
            "tilts": "Tilts",
            "check": "Check",
            "index": "Index",
            "solve": "Solve",
            "session": "Session",
        }
        for key, page in self.pages.items():
            self.tabs.addTab(page, titles[key])

    # ---- layout ------------------------------------------------------------------------------------
    def _own_dock(self) -> Any:
        from qtpy.QtWidgets import QDockWidget

        w = self.parent()
        while w is not None and not isinstance(w, QDockWidget):
            w = w.parent()
        return w

    def arrange(self) -> None:
        """Left: napari's layer list and this panel; middle: real space; right: diffraction, as large.

        The window is clamped to the screen, and both canvases are framed.
        """
        try:
            win = self.viewer.window._qt_window
        except AttributeError:
            return
        dock = self._own_dock()
        diff = getattr(self.diffraction_dock, "__wrapped__", self.diffraction_dock)
        qtv = getattr(self.viewer.window, "_qt_viewer", None)
        layer_list = getattr(qtv, "dockLayerList", None)
        screen = win.screen().availableGeometry() if win.screen() is not None else None
        if screen is not None:
            width, height = min(win.width(), screen.width()), min(win.height(), screen.height())
            win.resize(max(width, 800), max(height, 600))
        if dock is not None and win.dockWidgetArea(dock) != Qt.DockWidgetArea.LeftDockWidgetArea:
            win.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
            if layer_list is not None and not layer_list.isFloating():
                win.splitDockWidget(layer_list, dock, Qt.Orientation.Vertical)
        width = win.width()
        docks, sizes = [diff], [int(DIFFRACTION_FRACTION * width)]
        if dock is not None:
            docks.append(dock)
            sizes.append(PANEL_WIDTH)
        win.resizeDocks(docks, sizes, Qt.Orientation.Horizontal)
        controls = getattr(qtv, "dockLayerControls", None)
        column = [d for d in (controls, layer_list, dock) if d is not None and d.isVisible()]
        if len(column) == 3:  # napari's controls at their minimum, a short layer list, the rest for the tabs
            h = win.height()
            top = column[0].minimumSizeHint().height()
            win.resizeDocks(
                column, [top, int(0.17 * h), max(h - top - int(0.17 * h), 200)], Qt.Orientation.Vertical
            )
        if screen is not None and win.frameGeometry().height() > screen.height():
            win.resize(win.width(), screen.height() - (win.frameGeometry().height() - win.height()))
        self.viewer.reset_view()
        self.diffraction.fit()

    def canvas_sizes(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(width, height) of the real-space canvas and of the diffraction canvas (layout tests)."""
        main = self.viewer.window._qt_viewer.canvas.native
        other = self.diffraction.qt_viewer.canvas.native
        return (main.width(), main.height()), (other.width(), other.height())

    # ---- status ---------------------------------------------------------------------------------------
    def _update_status(self) -> None:
        ds = self.controller.dataset
        if ds is None:
            self.status.setText("No dataset: open a 4D/5D-STEM file or a sample (File ▸ Open Sample).")
            return
        self.status.setText(status_text(ds, self.controller.tilt_text()))

    def _bind_keys(self) -> None:
        v = self.viewer
        v.bind_key("Shift-N", lambda _v: self.grain_list.new_grain(), overwrite=True)
        v.bind_key("PageDown", lambda _v: self.controller.step_tilt(+1), overwrite=True)
        v.bind_key("PageUp", lambda _v: self.controller.step_tilt(-1), overwrite=True)
        v.bind_key("Shift-L", lambda _v: self.diffraction.toggle_log(), overwrite=True)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt name
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Remove the workspace's parts: workers, timers, key bindings, virtual images, docks."""
        if self._closed:
            return
        self._closed = True
        for panel in self.panels.values():
            if hasattr(panel, "shutdown"):
                panel.shutdown()
        det = self.panels.get("detectors")
        try:
            if det is not None:
                det.remove_all()
            for key in ("Shift-N", "PageDown", "PageUp", "Shift-L"):
                self.viewer.bind_key(key, None, overwrite=True)
        except (RuntimeError, ValueError, KeyError):
            pass
        self.controller.close()
        try:
            self.viewer.window.remove_dock_widget(self.diffraction_dock)
        except (AttributeError, LookupError, RuntimeError, ValueError):
            pass
        self.diffraction.close_viewer()
