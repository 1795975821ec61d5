"""The virtual-aperture workspace dock (Plugins ▸ Virtual Aperture ▸ Workspace)."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from .controller import WorkspaceController

HOW_TO = """<b>How to</b><ol>
<li>Open a 4D/5D-STEM file (File ▸ Open) or a sample (File ▸ Open Sample ▸ Virtual Aperture).
The navigator shows the total intensity at every scan position.</li>
<li>Hover over the navigator: the <i>Diffraction</i> dock shows the pattern under the cursor
(click to pin it there, click again to follow the cursor again). The selector above the
pattern switches between the pattern under the cursor and the selected grain's sum.</li>
<li>Press <b>New grain</b> (Shift+N) and paint over a grain on the <i>grains</i> layer with napari's
brush, fill or polygon tools. The grain's summed pattern updates while you paint.
Erase with the eraser; undo/redo with Ctrl+Z / Ctrl+Shift+Z.</li>
<li>Detectors: paint on the <i>detectors</i> layer of the diffraction view or apply a preset;
its virtual image in the main view follows every edit.</li>
<li>Check: the coherence score shows whether all positions of the grain see the same crystal;
positions that disagree are overlaid in red.</li>
<li>Actions: sum all grains over all tilts, save the patterns, hand a grain to indexing.</li>
<li>Session: everything is autosaved every few seconds next to the data; reopen it here.</li>
</ol>
<b>Shortcuts</b> (canvas focused): Shift+N new grain · PageDown / PageUp next / previous tilt ·
Shift+L toggle log display."""


class WorkspaceWidget(QWidget):
    """Main dock: grain list, detectors, tilts, checks, actions, session and help tabs.

    Opening it also docks the diffraction view (a second canvas) next to it.
    """

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
        self._size_docks()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.tabs = QTabWidget()
        self.grain_list = GrainList(self.controller)
        self.tabs.addTab(self.grain_list, "Grains")
        self.panels: dict[str, QWidget] = {"grains": self.grain_list}
        self._add_optional_panels()
        help_label = QLabel(HOW_TO)
        help_label.setWordWrap(True)
        help_label.setTextFormat(Qt.TextFormat.RichText)
        scroll = QScrollArea()
        scroll.setWidget(help_label)
        scroll.setWidgetResizable(True)
        self.tabs.addTab(scroll, "Help")
        lay = QVBoxLayout(self)
        lay.addWidget(self.status)
        lay.addWidget(self.tabs)
        self.controller.dataset_ready.connect(self._update_status)
        self.model.tilt_changed.connect(lambda *_: self._update_status())
        self._bind_keys()
        self.destroyed.connect(self.controller.close)
        self.controller.start()
        self._update_status()

    def _size_docks(self) -> None:
        try:
            win = self.viewer.window._qt_window
            dock = getattr(self.diffraction_dock, "__wrapped__", self.diffraction_dock)
            win.resizeDocks([dock], [480], Qt.Orientation.Horizontal)
        except (AttributeError, RuntimeError, TypeError):
            pass

    def _add_optional_panels(self) -> None:
        from .panels import PANELS

        for key, title, cls in PANELS:
            panel = cls(self.controller)
            self.panels[key] = panel
            self.controller.panels[key] = panel
            self.tabs.addTab(panel, title)

    def _update_status(self) -> None:
        ds = self.controller.dataset
        if ds is None:
            self.status.setText("No dataset: open a 4D/5D-STEM file or a sample (File ▸ Open Sample).")
            return
        text = f"{ds!r}"
        if ds.is_tilt_series:
            text += "\n" + self.controller.tilt_text()
        self.status.setText(text)

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
        """Stop timers and workers and close the embedded diffraction canvas."""
        for panel in self.panels.values():
            if hasattr(panel, "shutdown"):
                panel.shutdown()
        self.controller.close()
        self.diffraction.close_viewer()
