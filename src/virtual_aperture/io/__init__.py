"""Readers and writer: detector files, HDF5/EMD, zarr and npy → lazy :class:`~virtual_aperture.Dataset`.

Public: :func:`open_dataset`, :func:`open_tilt_series`, :func:`save_dataset`, :func:`can_read`,
:class:`ReadError`, ``SUPPORTED_EXTENSIONS``. See ``docs/opening-data.md``.
"""

from .dispatch import open_dataset
from .errors import ReadError
from .formats import FORMATS, SUPPORTED_EXTENSIONS, can_read
from .store import save_dataset
from .tilt import angle_from_name, open_tilt_series

__all__ = [
    "FORMATS",
    "ReadError",
    "SUPPORTED_EXTENSIONS",
    "angle_from_name",
    "can_read",
    "open_dataset",
    "open_tilt_series",
    "save_dataset",
]
