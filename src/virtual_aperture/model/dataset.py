"""The one dataset class: a lazy dask array with named dims plus calibration."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np

from .calibration import Calibration

DIMS_4D = ("scan_y", "scan_x", "k_y", "k_x")
DIMS_5D = ("tilt", "scan_y", "scan_x", "k_y", "k_x")

#: Target size of one chunk: whole detector frames over a block of scan positions.
DEFAULT_CHUNK_BYTES = 128 * 2**20
MIN_CHUNK_BYTES = 64 * 2**20
MAX_CHUNK_BYTES = 256 * 2**20


def scan_chunks(
    shape: tuple[int, ...], itemsize: int, *, target_bytes: int = DEFAULT_CHUNK_BYTES
) -> tuple[int, ...]:
    """Chunk sizes that span scan positions only (whole detector frames per chunk).

    Chunks hold whole rows of the scan when a row fits the target; one tilt per chunk for 5D.
    """
    if len(shape) not in (4, 5):
        raise ValueError(f"expected 4D or 5D data shape, got {shape}")
    *lead, sy, sx, ky, kx = shape
    frame = ky * kx * itemsize
    frames = max(1, target_bytes // max(frame, 1))
    if frames >= sx:
        cy, cx = max(1, min(sy, frames // sx)), sx
    else:
        cy, cx = 1, max(1, frames)
    return tuple([1] * len(lead)) + (cy, cx, ky, kx)


@dataclass
class Dataset:
    """A 4D ``(scan_y, scan_x, k_y, k_x)`` or 5D ``(tilt, scan_y, scan_x, k_y, k_x)`` 4D-STEM dataset.

    ``data`` is always a dask array chunked over the scan axes only; nothing is read until a
    computation asks for it. ``calibration`` holds the physics; ``source`` the file it came from;
    ``metadata`` whatever else the reader found (original metadata, format name).
    """

    data: da.Array
    calibration: Calibration = field(default_factory=Calibration)
    source: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.data, da.Array):
            self.data = da.asarray(self.data)
        if self.data.ndim not in (4, 5):
            raise ValueError(
                "a dataset must be 4D (scan_y, scan_x, k_y, k_x) "
                f"or 5D (tilt, ...), got shape {self.data.shape}"
                + (f" from {self.source}" if self.source else "")
            )
        if any(s == 0 for s in self.data.shape):
            raise ValueError(f"dataset has an empty axis: shape {self.data.shape}")
        # detector axes must never be split: every chunk holds whole frames
        if (
            len(self.data.chunks[-1]) > 1
            or len(self.data.chunks[-2]) > 1
            or (self.data.ndim == 5 and max(self.data.chunks[0]) > 1)
        ):
            self.data = self.data.rechunk(scan_chunks(self.data.shape, self.data.dtype.itemsize))
        cal = self.calibration
        if self.is_tilt_series:
            if cal.tilt_angles_deg is None:
                raise ValueError(
                    f"a 5D dataset with {self.n_tilts} tilts needs tilt angles (calibration.tilt_angles_deg)"
                )
            if len(cal.tilt_angles_deg) != self.n_tilts:
                raise ValueError(f"{len(cal.tilt_angles_deg)} tilt angles given for {self.n_tilts} tilts")

    # ---- shape -----------------------------------------------------------------------------
    @property
    def dims(self) -> tuple[str, ...]:
        return DIMS_5D if self.data.ndim == 5 else DIMS_4D

    @property
    def is_tilt_series(self) -> bool:
        return self.data.ndim == 5

    @property
    def n_tilts(self) -> int:
        return int(self.data.shape[0]) if self.is_tilt_series else 1

    @property
    def scan_shape(self) -> tuple[int, int]:
        return tuple(int(s) for s in self.data.shape[-4:-2])  # type: ignore[return-value]

    @property
    def detector_shape(self) -> tuple[int, int]:
        return tuple(int(s) for s in self.data.shape[-2:])  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def nbytes(self) -> int:
        return int(math.prod(self.data.shape) * self.data.dtype.itemsize)

    def __repr__(self) -> str:
        dims = ", ".join(f"{d}={s}" for d, s in zip(self.dims, self.shape))
        src = f", source={self.source!r}" if self.source else ""
        return f"Dataset({dims}, dtype={self.dtype}, {self.nbytes / 2**30:.2f} GiB{src})"

    # ---- access ------------------------------------------------------------------------------
    def tilt(self, index: int) -> Dataset:
        """The 4D scan of one tilt (a view; for 4D data only index 0 is valid)."""
        if not self.is_tilt_series:
            if index != 0:
                raise IndexError(f"4D dataset has no tilt {index}")
            return self
        if not -self.n_tilts <= index < self.n_tilts:
            raise IndexError(f"tilt {index} out of range for {self.n_tilts} tilts")
        angle = self.calibration.tilt_angles_deg[index]  # type: ignore[index]
        return Dataset(
            self.data[index],
            self.calibration.replace(
                tilt_angles_deg=None, extra={**self.calibration.extra, "tilt_angle_deg": angle}
            ),
            source=self.source,
            metadata=self.metadata,
        )

    def pattern(self, y: int, x: int, *, tilt: int = 0) -> np.ndarray:
        """The diffraction pattern recorded at scan position (y, x) as a numpy array."""
        sy, sx = self.scan_shape
        if not (0 <= y < sy and 0 <= x < sx):
            raise IndexError(f"scan position ({y}, {x}) outside the scan {sy}×{sx}")
        arr = self.data[tilt] if self.is_tilt_series else self.data
        return np.asarray(arr[y, x].compute())

    def with_calibration(self, **changes: Any) -> Dataset:
        """A dataset sharing the same data with some calibration fields overridden."""
        return Dataset(
            self.data, self.calibration.replace(**changes), source=self.source, metadata=dict(self.metadata)
        )

    def rechunk(self, *, target_bytes: int = DEFAULT_CHUNK_BYTES) -> Dataset:
        chunks = scan_chunks(self.shape, self.dtype.itemsize, target_bytes=target_bytes)
        return Dataset(
            self.data.rechunk(chunks), self.calibration, source=self.source, metadata=self.metadata
        )
