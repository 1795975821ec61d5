"""The optional tabs of the workspace dock, in display order: (key, title, class)."""

from __future__ import annotations

from .detector_control import DetectorPanel

PANELS: list = [
    ("detectors", "Detectors", DetectorPanel),
]
