"""Incremental updates for interactive painting.

* :class:`ApertureSum` — a painted real-space aperture: adding or removing scan positions
  updates the summed pattern in time ∝ the positions changed (reads only their frames).
* :class:`VirtualImageUpdater` — a virtual image whose detector mask is being edited: the
  image is updated in time ∝ the detector pixels changed, using a detector-major copy of the
  data (``(k_y*k_x, sy*sx)``, as large as one tilt of the data) when it fits the memory budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import kernels
from .source import Source
from .validate import as_weights, prepare_positions, prepare_scan_mask


class ApertureSum:
    """Running sum of the patterns under a painted scan-space mask (one tilt).

    Parameters
    ----------
    data
        ``Dataset``, dask or numpy array (4D or 5D).
    mask
        Optional initial boolean scan mask ``(sy, sx)``.
    tilt
        Which tilt of 5D data (0 for 4D).

    Notes
    -----
    Sums accumulate in float64, exact for integer data (below 2**53 counts per pixel), so adding
    and removing positions in any order returns exactly the sum of the current mask. Each
    update reads only the frames of the changed positions: in memory that is ~32 kB per
    position for 128×128 uint16; for file-backed data whole chunks are read.
    """

    def __init__(self, data: Any, *, mask: Any = None, tilt: int = 0) -> None:
        self._src = Source(data)
        self._tilt = self._src.check_tilt(tilt)
        self._sum = np.zeros((1, self._src.ky * self._src.kx))
        self._mask = np.zeros(self._src.scan_shape, dtype=bool)
        if mask is not None:
            self.set_mask(mask)

    # ---- updates -----------------------------------------------------------------------------
    def set_mask(self, mask: Any) -> ApertureSum:
        """Replace the mask; only positions that differ from the current mask are read."""
        new = prepare_scan_mask(mask, self._src.scan_shape)
        add_y, add_x = np.nonzero(new & ~self._mask)
        rem_y, rem_x = np.nonzero(self._mask & ~new)
        self._apply(
            np.concatenate([add_y, rem_y]),
            np.concatenate([add_x, rem_x]),
            np.concatenate([np.ones(add_y.size), -np.ones(rem_y.size)]),
        )
        self._mask = new.copy()
        return self

    def add(self, positions: Any) -> ApertureSum:
        """Add scan positions ``(n, 2)`` int (y, x); positions already in the mask are ignored."""
        ys, xs = self._new_positions(positions, want=False)
        self._apply(ys, xs, np.ones(ys.size))
        self._mask[ys, xs] = True
        return self

    def remove(self, positions: Any) -> ApertureSum:
        """Remove scan positions ``(n, 2)`` int (y, x); positions not in the mask are ignored."""
        ys, xs = self._new_positions(positions, want=True)
        self._apply(ys, xs, -np.ones(ys.size))
        self._mask[ys, xs] = False
        return self

    def _new_positions(self, positions: Any, *, want: bool) -> tuple[np.ndarray, np.ndarray]:
        ys, xs = prepare_positions(positions, self._src.scan_shape)
        flat = np.unique(ys * self._src.sx + xs)
        ys, xs = flat // self._src.sx, flat % self._src.sx
        keep = self._mask[ys, xs] == want
        return ys[keep], xs[keep]

    def _apply(self, ys: np.ndarray, xs: np.ndarray, wt: np.ndarray) -> None:
        if ys.size == 0:
            return
        lab = np.zeros(ys.size, dtype=np.int64)
        for flat, local, sel in self._src.frames_groups(self._tilt, ys, xs):
            with kernels.all_threads():
                kernels.gather_sum(flat, local, lab[sel], np.ascontiguousarray(wt[sel]), self._sum)

    # ---- results -----------------------------------------------------------------------------
    @property
    def sum(self) -> np.ndarray:
        """Summed pattern, float64 ``(k_y, k_x)`` (a copy)."""
        return self._sum[0].reshape(self._src.det_shape).copy()

    @property
    def count(self) -> int:
        """Number of scan positions in the mask."""
        return int(self._mask.sum())

    @property
    def mean(self) -> np.ndarray:
        """Mean pattern ``sum / count``; all NaN while the mask is empty."""
        n = self.count
        if n == 0:
            return np.full(self._src.det_shape, np.nan)
        return self.sum / n

    @property
    def mask(self) -> np.ndarray:
        """The current boolean scan mask (a copy)."""
        return self._mask.copy()


class VirtualImageUpdater:
    """A virtual image kept up to date while its detector mask is edited.

    Parameters
    ----------
    data
        ``Dataset``, dask or numpy array (4D or 5D).
    mask
        Initial detector mask ``(k_y, k_x)``, bool or float weights (may be all zero).
    tilt
        Which tilt of 5D data.
    memory_budget
        Bytes (or ``"4GB"``) the detector-major copy may use; default half of the memory
        available now. The copy holds one tilt of the data transposed to ``(k_y*k_x, sy*sx)`` in
        the data's dtype (2 GiB for 256×256×128×128 uint16) and is built once, in one pass.

    Notes
    -----
    With the copy, changing ``m`` detector pixels reads ``m`` contiguous rows of ``sy*sx``
    values: cost ∝ m. Without it (over budget) in-memory data is updated by a strided read of the
    changed pixels of every frame (still ∝ m, but each value costs a cache line), and
    file-backed data falls back to recomputing the image. When the new mask has fewer non-zero
    pixels than the number changed, the image is recomputed from the new mask instead, which
    also resets float rounding drift (integer data with bool masks are always exact).
    """

    def __init__(
        self, data: Any, mask: Any, *, tilt: int = 0, memory_budget: int | str | None = None
    ) -> None:
        from .executor import parse_memory_budget

        self._src = Source(data)
        self._tilt = self._src.check_tilt(tilt)
        w, _ = as_weights(mask, self._src.det_shape, allow_stack=False, allow_empty=True)
        self._w = w[0].reshape(-1).copy()
        n_pos = self._src.sy * self._src.sx
        self.copy_nbytes = n_pos * self._src.ky * self._src.kx * self._src.dtype.itemsize
        if memory_budget is None:
            import psutil

            budget = psutil.virtual_memory().available // 2
        else:
            budget = parse_memory_budget(memory_budget)
        self._t: np.ndarray | None = None
        if self.copy_nbytes <= budget:
            self._t = self._build_copy()
        self._image = np.zeros(n_pos)
        self._recompute()

    @property
    def uses_copy(self) -> bool:
        """Whether the detector-major copy is in use (cost ∝ changed pixels)."""
        return self._t is not None

    def _build_copy(self) -> np.ndarray:
        src = self._src
        t = np.empty((src.ky * src.kx, src.sy * src.sx), dtype=src.dtype)
        tmp = np.empty((src.ky * src.kx, src.sx), dtype=src.dtype)
        if src.in_memory:
            pieces = ((y0, x0, s) for tt, y0, x0, s in src.slabs() if tt == self._tilt)
        else:
            arr = src.dask5()[self._tilt]
            yb, xb = (np.concatenate([[0], np.cumsum(c)]).astype(int) for c in arr.chunks[:2])
            pieces = (
                (yb[i], xb[j], np.asarray(arr.blocks[i, j].compute()))
                for i in range(len(yb) - 1)
                for j in range(len(xb) - 1)
            )
        for y0, x0, piece in pieces:
            ny, nx = piece.shape[:2]
            flat = np.ascontiguousarray(piece).reshape(ny * nx, -1)
            if nx == src.sx:
                with kernels.all_threads():
                    kernels.transpose_into(flat, y0 * src.sx, t)
            else:  # blocks narrower than the scan: copy row by row
                for r in range(ny):
                    row = flat[r * nx : (r + 1) * nx]
                    with kernels.all_threads():
                        kernels.transpose_into(row, 0, tmp[:, :nx])
                    t[:, (y0 + r) * src.sx + x0 : (y0 + r) * src.sx + x0 + nx] = tmp[:, :nx]
        return t

    def _update(self, index: np.ndarray, dw: np.ndarray) -> None:
        if index.size == 0:
            return
        if self._t is not None:
            with kernels.all_threads():
                kernels.column_update(self._t, index, dw, self._image)
            return
        src = self._src
        if not src.in_memory:
            self._recompute()
            return
        img = self._image.reshape(src.scan_shape)
        for tt, y0, x0, slab in src.slabs():
            if tt != self._tilt:
                continue
            ny, nx = slab.shape[:2]
            part = np.ascontiguousarray(img[y0 : y0 + ny, x0 : x0 + nx]).reshape(-1)
            with kernels.all_threads():
                kernels.strided_update(np.ascontiguousarray(slab).reshape(ny * nx, -1), index, dw, part)
            img[y0 : y0 + ny, x0 : x0 + nx] = part.reshape(ny, nx)

    def _recompute(self) -> None:
        self._image[:] = 0.0
        index = np.flatnonzero(self._w).astype(np.int64)
        if index.size == 0:
            return
        if self._t is None and not self._src.in_memory:
            from .virtual import virtual_image

            arr = self._src.dask5()[self._tilt]
            self._image[:] = virtual_image(arr, self._w.reshape(self._src.det_shape)).reshape(-1)
            return
        self._update(index, self._w[index].copy())

    def set_mask(self, mask: Any) -> np.ndarray:
        """Change the detector mask and return the updated image ``(sy, sx)`` float64."""
        w, _ = as_weights(mask, self._src.det_shape, allow_stack=False, allow_empty=True)
        new = w[0].reshape(-1)
        changed = np.flatnonzero(new != self._w).astype(np.int64)
        if changed.size:
            if changed.size > np.count_nonzero(new):
                self._w = new.copy()
                self._recompute()
            else:
                dw = new[changed] - self._w[changed]
                self._w = new.copy()
                self._update(changed, dw)
                if not np.isfinite(self._image).all():  # NaN/inf of a pixel now at weight 0 cannot
                    self._recompute()  # be subtracted out: recompute from the pixels still in
        return self.image

    def refresh(self) -> np.ndarray:
        """Recompute the image from the current mask (drops float rounding drift)."""
        self._recompute()
        return self.image

    @property
    def image(self) -> np.ndarray:
        """The virtual image ``(sy, sx)`` float64 (a copy)."""
        return self._image.reshape(self._src.scan_shape).copy()

    @property
    def mask(self) -> np.ndarray:
        """The current detector weights ``(k_y, k_x)`` float64 (a copy)."""
        return self._w.reshape(self._src.det_shape).copy()
