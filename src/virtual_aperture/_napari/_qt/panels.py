"""The optional tabs of the workspace dock, in display order: (key, title, class)."""

from __future__ import annotations

from .actions_panel import ActionsPanel
from .check_panel import CheckPanel
from .detector_control import DetectorPanel
from .session_panel import SessionPanel
from .tilt_panel import TiltPanel

PANELS: list = [
    ("detectors", "Detectors", DetectorPanel),
    ("tilts", "Tilts", TiltPanel),
    ("check", "Check", CheckPanel),
    ("actions", "Actions", ActionsPanel),
    ("session", "Session", SessionPanel),
]
