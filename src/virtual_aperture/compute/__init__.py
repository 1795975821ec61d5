"""Compute engine: virtual images, aperture sums, incremental updates and hover fetches.

Everything runs on in-memory numpy blocks with numba kernels at memory bandwidth, or streams
file-backed data chunk by chunk as dask graphs (local threads, or a ``dask.distributed``
client) under a bounded memory budget. See ``docs/compute.md``.
"""

from . import detectors
from .executor import Cancelled, CancelToken, get_client, parse_memory_budget
from .incremental import ApertureSum, VirtualImageUpdater
from .single_pattern import pattern_at, region_mean
from .sums import ApertureSumResult, aperture_sums
from .virtual import virtual_image

__all__ = [
    "ApertureSum",
    "ApertureSumResult",
    "CancelToken",
    "Cancelled",
    "VirtualImageUpdater",
    "aperture_sums",
    "detectors",
    "get_client",
    "parse_memory_budget",
    "pattern_at",
    "region_mean",
    "virtual_image",
]
