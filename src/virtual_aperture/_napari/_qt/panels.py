"""The optional tabs of the workspace dock, in display order: (key, title, class)."""

from __future__ import annotations

PANELS: list = []
