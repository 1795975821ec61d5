"""``python -m virtual_aperture._napari.launch``: napari with the plugin, a dataset and the workspace.

Used by ``make napari``. Opens the built-in 4D sample (``--sample 5d`` for the tilt series,
or a file path), docks the workspace (and with it the diffraction view) and runs napari.
"""

from __future__ import annotations

import argparse
import os
import sys

PLUGIN = "napari-virtual-aperture"


def open_workspace(viewer, *, sample: str | None = "4d", path: str | None = None):
    """Load data into ``viewer`` and dock the workspace; returns the workspace widget."""
    if path:
        viewer.open(path, plugin=PLUGIN)
    elif sample:
        viewer.open_sample(PLUGIN, f"agglomerate-{sample}")
    viewer.window._qt_window.resize(1600, 1000)
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Workspace")
    return widget


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m virtual_aperture._napari.launch", description=__doc__)
    parser.add_argument("path", nargs="?", help="a 4D/5D-STEM file to open instead of the sample")
    parser.add_argument(
        "--sample", choices=["4d", "5d", "none"], default="4d", help="built-in sample to open"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_API", "pyqt6")
    import napari

    viewer = napari.Viewer(title="napari — virtual aperture")
    open_workspace(viewer, sample=None if args.sample == "none" else args.sample, path=args.path)
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
