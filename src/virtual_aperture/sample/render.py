"""Detector-side rendering of the built-in sample: disk stamps and lazy frame generation.

Every diffraction disk (and the central disk) is a uniformly filled disk of radius
``α / (λ · pixel_size)`` pixels, anti-aliased at its rim and distorted with the detector's
elliptical distortion; each is stored once as a normalised sparse stamp, so a pattern is a
sparse-matrix product of per-position reflection intensities with the stamps. The amorphous
support adds a smooth radial background (falloff plus a broad halo). Patterns are rendered
on a canvas padded by the largest descan shift and cropped per scan position with a
bilinear sub-pixel shift, then Poisson noise is drawn with a generator seeded by
``(seed, tilt, scan_y, scan_x)``, so every frame is the same however the array is chunked
(``kernels.frames_kernel``; ``FrameRenderer.shift_crop`` is its numpy reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .frame_kernels import frames_kernel, position_seeds
from .scattering import depletion, rocking_intensity

NOISE_SALT = 0x5A3D1E


@dataclass
class DetectorModel:
    """Canvas geometry shared by all stamps."""

    detector_shape: tuple[int, int]
    pad: int
    disk_radius_px: float
    distortion: np.ndarray  # 2×2 on (dy, dx)
    pixel_size: float

    @property
    def canvas_shape(self) -> tuple[int, int]:
        return (self.detector_shape[0] + 2 * self.pad, self.detector_shape[1] + 2 * self.pad)

    @property
    def center(self) -> tuple[float, float]:
        """Nominal beam centre on the canvas (pixels)."""
        return ((self.detector_shape[0] - 1) / 2.0 + self.pad, (self.detector_shape[1] - 1) / 2.0 + self.pad)

    def undistorted_radius_grid(self) -> np.ndarray:
        """|g| (Å⁻¹) of every canvas pixel, undoing the elliptical distortion."""
        H, W = self.canvas_shape
        cy, cx = self.center
        yy, xx = np.meshgrid(np.arange(H) - cy, np.arange(W) - cx, indexing="ij")
        inv = np.linalg.inv(self.distortion)
        uy = inv[0, 0] * yy + inv[0, 1] * xx
        ux = inv[1, 0] * yy + inv[1, 1] * xx
        return np.hypot(uy, ux) * self.pixel_size

    def disk_stamps(self, centers: np.ndarray) -> sp.csr_matrix:
        """Sparse (n, n_canvas_pixels) matrix of unit-sum disks at canvas positions (n, 2)."""
        H, W = self.canvas_shape
        centers = np.atleast_2d(np.asarray(centers, dtype=float))
        n = len(centers)
        if n == 0:
            return sp.csr_matrix((0, H * W), dtype=np.float32)
        r = self.disk_radius_px
        stretch = float(np.linalg.norm(self.distortion, 2))
        h = int(math.ceil(r * max(stretch, 1.0))) + 2
        off = np.arange(-h, h + 1)
        base = np.floor(centers).astype(np.int64)  # (n, 2)
        py = base[:, 0, None, None] + off[None, :, None]  # (n, 2h+1, 1)
        px = base[:, 1, None, None] + off[None, None, :]  # (n, 1, 2h+1)
        dy = py - centers[:, 0, None, None]
        dx = px - centers[:, 1, None, None]
        inv = np.linalg.inv(self.distortion)
        uy = inv[0, 0] * dy + inv[0, 1] * dx
        ux = inv[1, 0] * dy + inv[1, 1] * dx
        cover = np.clip(r + 0.5 - np.hypot(uy, ux), 0.0, 1.0)  # (n, 2h+1, 2h+1)
        total = cover.sum(axis=(1, 2), keepdims=True)
        cover = cover / np.where(total > 0, total, 1.0)
        py_b, px_b = np.broadcast_arrays(py, px)
        inside = (py_b >= 0) & (py_b < H) & (px_b >= 0) & (px_b < W) & (cover > 0)
        rows = np.broadcast_to(np.arange(n)[:, None, None], cover.shape)[inside]
        cols = (py_b * W + px_b)[inside]
        return sp.csr_matrix((cover[inside].astype(np.float32), (rows, cols)), shape=(n, H * W))

    def background(self) -> np.ndarray:
        """Amorphous-support scattering: unit-sum smooth radial falloff plus a broad halo."""
        q = self.undistorted_radius_grid()
        b = 1.0 / (1.0 + (q / 0.12) ** 2) + 0.35 * np.exp(-(((q - 0.45) / 0.15) ** 2))
        b[q < self.disk_radius_px * self.pixel_size] = 0.0  # under the central disk: counted there
        return (b / b.sum()).ravel().astype(np.float32)


@dataclass
class ReflectionTable:
    """Reflections of one grain at one tilt that the renderer draws."""

    hkl: np.ndarray  # (n, 3) int
    f_abs: np.ndarray  # (n,) |F| in Å
    kappa: np.ndarray  # (n,) Å⁻¹
    s: np.ndarray  # (n,) excitation error, Å⁻¹
    positions: np.ndarray  # (n, 2) detector (k_y, k_x) pixels, nominal centre, no descan
    stamps: sp.csr_matrix | None = None  # (n, n_canvas_pixels) unit-sum disk stamps


class FrameRenderer:
    """Renders blocks of frames on demand (callable from dask ``map_blocks``)."""

    def __init__(
        self,
        *,
        det: DetectorModel,
        tables: list[list[ReflectionTable]],  # [grain][tilt]
        thickness_a: np.ndarray,  # (n_grains, n_tilts, sy, sx) Å
        descan: np.ndarray,  # (sy, sx, 2)
        background: float,
        dose: float | None,
        noiseless_dose: float,
        seed: int,
        dtype: np.dtype,
        five_d: bool,
    ) -> None:
        self.det = det
        self.tables = tables
        self.thickness_a = thickness_a
        self.descan = descan
        self.background_level = float(background)
        self.dose = dose
        self.scale = float(dose if dose is not None else noiseless_dose)
        self.seed = int(seed)
        self.dtype = np.dtype(dtype)
        self.five_d = five_d
        c = np.array([det.center])
        self.central = np.asarray(det.disk_stamps(c).todense()).ravel()
        self.central_idx = np.flatnonzero(self.central).astype(np.int64)
        self.central_val = self.central[self.central_idx].astype(np.float32)
        self.bg = det.background()
        # per tilt, built on first use: all grains' stamps stacked
        # (rows = reflections of grain 0, then grain 1, ...)
        self._stacked: dict[int, tuple[sp.csr_matrix, np.ndarray]] = {}

    def stacked_stamps(self, ti: int) -> tuple[sp.csr_matrix, np.ndarray]:
        """All grains' stamps at tilt ``ti`` as one CSR matrix, and each grain's first row."""
        hit = self._stacked.get(ti)
        if hit is None:
            for per_grain in self.tables:
                tab = per_grain[ti]
                if tab.stamps is None:
                    tab.stamps = self.det.disk_stamps(tab.positions + self.det.pad)
            mats = [per_grain[ti].stamps for per_grain in self.tables]
            offsets = np.cumsum([0] + [m.shape[0] for m in mats])
            stacked = sp.vstack(mats, format="csr") if offsets[-1] else sp.csr_matrix((0, self.central.size))
            stacked.sort_indices()
            hit = (stacked.astype(np.float32), offsets)
            self._stacked[ti] = hit
        return hit

    def reflection_weights(self, ti: int, ys: slice, xs: slice) -> tuple[np.ndarray, np.ndarray]:
        """Intensities (n_positions, n_reflections of all grains) and central-disk weights (n_positions,).

        Both are fractions of the incident beam (multiply by the dose for electrons).
        """
        th = self.thickness_a[:, ti, ys, xs]
        npos = th.shape[1] * th.shape[2]
        _, offsets = self.stacked_stamps(ti)
        w = np.zeros((npos, int(offsets[-1])), dtype=np.float32)
        for g in range(th.shape[0]):
            t = th[g].ravel()
            act = np.nonzero(t > 0)[0]
            tab = self.tables[g][ti]
            if act.size == 0 or tab.hkl.shape[0] == 0:
                continue
            w[act, offsets[g] : offsets[g + 1]] = rocking_intensity(
                tab.kappa[None, :], tab.s[None, :], t[act, None]
            )
        scale, direct = depletion(w.sum(axis=1, dtype=np.float64), self.background_level)
        w *= scale.astype(np.float32)[:, None]
        return w, direct.astype(np.float32)

    # ---- expected counts ---------------------------------------------------------------
    def bragg_canvas(self, ti: int, ys: slice, xs: slice) -> tuple[np.ndarray, np.ndarray]:
        """Bragg-disk canvases (n_positions, n_canvas_pixels) and central-disk weights (numpy reference)."""
        w, central_w = self.reflection_weights(ti, ys, xs)
        stamps, _ = self.stacked_stamps(ti)
        return np.asarray(stamps.T @ w.T).T.astype(np.float32), central_w

    def expected_canvas(self, ti: int, ys: slice, xs: slice) -> np.ndarray:
        """Expected electrons per canvas pixel (n_positions, n_canvas_pixels), before the descan shift."""
        canvas, central_w = self.bragg_canvas(ti, ys, xs)
        canvas += central_w[:, None] * self.central[None, :]
        canvas += np.float32(self.background_level) * self.bg[None, :]
        canvas *= np.float32(self.scale)
        return canvas

    def shift_crop(self, canvas: np.ndarray, shifts: np.ndarray) -> np.ndarray:
        """Crop each canvas to the detector, moved by its (dy, dx) descan shift (bilinear)."""
        H, W = self.det.canvas_shape
        ky, kx = self.det.detector_shape
        p = self.det.pad
        out = np.empty((canvas.shape[0], ky, kx), dtype=np.float32)
        img = canvas.reshape(-1, H, W)
        for i, (dy, dx) in enumerate(shifts):
            ny, nx = math.floor(dy), math.floor(dx)
            fy, fx = dy - ny, dx - nx
            y0, x0 = p - ny, p - nx
            a = img[i]
            out[i] = (
                (1 - fy) * (1 - fx) * a[y0 : y0 + ky, x0 : x0 + kx]
                + (1 - fy) * fx * a[y0 : y0 + ky, x0 - 1 : x0 - 1 + kx]
                + fy * (1 - fx) * a[y0 - 1 : y0 - 1 + ky, x0 : x0 + kx]
                + fy * fx * a[y0 - 1 : y0 - 1 + ky, x0 - 1 : x0 - 1 + kx]
            )
        return out

    def render(self, ti: int, ys: slice, xs: slice) -> np.ndarray:
        """Frames (ny, nx, k_y, k_x) of scan rows ``ys`` and columns ``xs`` at tilt ``ti``."""
        ny, nx = ys.stop - ys.start, xs.stop - xs.start
        ky, kx = self.det.detector_shape
        w, central_w = self.reflection_weights(ti, ys, xs)
        stamps, _ = self.stacked_stamps(ti)
        yy, xx = np.meshgrid(np.arange(ys.start, ys.stop), np.arange(xs.start, xs.stop), indexing="ij")
        seeds = position_seeds(self.seed, NOISE_SALT, ti, yy.ravel(), xx.ravel())
        shifts = np.ascontiguousarray(self.descan[ys, xs].reshape(-1, 2), dtype=np.float64)
        # one compiled kernel signature: float32 out, rounded and clipped for integer dtypes
        frames = np.empty((ny * nx, ky, kx), dtype=np.float32)
        integer = self.dtype.kind in "ui"
        top = float(np.iinfo(self.dtype).max) if integer else np.inf
        frames_kernel(
            w,
            stamps.indptr.astype(np.int64),
            stamps.indices.astype(np.int64),
            stamps.data,
            central_w,
            self.central_idx,
            self.central_val,
            self.bg,
            np.float32(self.background_level),
            np.float32(self.scale),
            shifts,
            self.det.pad,
            self.det.canvas_shape[1],
            ky,
            kx,
            seeds,
            self.dose is not None,
            integer,
            top,
            frames,
        )
        return frames.astype(self.dtype, copy=False).reshape(ny, nx, ky, kx)

    def __call__(self, block_info=None) -> np.ndarray:
        loc = block_info[None]["array-location"]
        if self.five_d:
            (t0, t1), (y0, y1), (x0, x1) = loc[0], loc[1], loc[2]
            return np.stack([self.render(ti, slice(y0, y1), slice(x0, x1)) for ti in range(t0, t1)])
        (y0, y1), (x0, x1) = loc[0], loc[1]
        return self.render(0, slice(y0, y1), slice(x0, x1))
