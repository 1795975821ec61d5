"""napari contributions of virtual-aperture: reader, writer, sample data and the workspace widgets.

Only this sub-package (and :mod:`._qt` below it) imports napari or Qt. The Qt-free workspace
state lives in :mod:`.model` (``workspace_for(viewer)``, ``handed_grain(viewer)``).
"""
