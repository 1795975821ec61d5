"""Per-grain reports a microscopist can publish: a self-contained HTML page (``report.html``) with
calibrated Matplotlib figures — the grain's aperture over the tilts, the summed patterns with
peaks and predicted spots, the reciprocal lattice and cell, merging statistics against
resolution, space-group candidates, the potential with the atoms, every number of report.json
and the command that reruns it — plus calibrated figure helpers used by the CLI's PNG previews.

Qt-free and below :mod:`virtual_aperture.workflow` in the layering (it reads a ``GrainResult``
duck-typed, never imports the workflow).
"""

from __future__ import annotations

from ._plot import image_figure
from .html import REPORT_FILE, ReportContext, render, write_report
from .scan import strip_images

__all__ = ["REPORT_FILE", "ReportContext", "image_figure", "render", "strip_images", "write_report"]
