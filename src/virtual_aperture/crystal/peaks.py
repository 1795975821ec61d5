"""Bragg-peak finding on (summed) diffraction patterns.

The detector is background-subtracted, cross-correlated with the probe disk (a template
image, a disk radius, or a small Gaussian), local maxima of the correlation above a
signal-to-noise threshold are kept, and their positions refined to sub-pixel accuracy.
Positions are ``(k_y, k_x)`` pixels; with a calibrated pixel size the peaks also carry their
reciprocal-space coordinates in Å⁻¹ (``g_y, g_x, g``; no 2π), with the calibration's beam
centre and elliptical distortion taken into account (``crystal.geometry.detector_to_lab``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy import ndimage, signal

from ..compute.executor import check_cancel
from . import geometry

_FIELDS = ("tilt", "y", "x", "intensity", "sigma", "snr", "g_y", "g_x", "g")


@dataclass(frozen=True)
class PeakList:
    """Bragg peaks of one pattern (or of a stack, with ``tilt`` telling which pattern).

    All arrays have one entry per peak. ``y, x`` are detector pixels; ``intensity`` is the
    background-subtracted integrated count inside the probe disk and ``sigma`` its Poisson
    estimate; ``snr`` is the correlation peak over the correlation-map noise; ``g_y, g_x, g``
    are in Å⁻¹ (NaN when the pixel size is unknown). ``center`` is the beam centre used.
    """

    y: np.ndarray
    x: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    snr: np.ndarray
    g_y: np.ndarray
    g_x: np.ndarray
    g: np.ndarray
    tilt: np.ndarray
    center: tuple[float, float] = (math.nan, math.nan)
    meta: dict = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return int(self.y.size)

    @property
    def positions(self) -> np.ndarray:
        """(n, 2) array of ``(k_y, k_x)`` pixel positions."""
        return np.stack([self.y, self.x], axis=1) if len(self) else np.zeros((0, 2))

    def select(self, keep: np.ndarray) -> PeakList:
        """A PeakList with only the peaks where the boolean/integer index ``keep`` selects."""
        return replace(self, **{f: getattr(self, f)[keep] for f in _FIELDS})

    def for_tilt(self, tilt: int) -> PeakList:
        """The peaks of one pattern of a stack."""
        return self.select(self.tilt == tilt)

    def to_records(self) -> np.ndarray:
        """A numpy structured array with one record per peak."""
        rec = np.zeros(len(self), dtype=[(f, "i4" if f == "tilt" else "f8") for f in _FIELDS])
        for f in _FIELDS:
            rec[f] = getattr(self, f)
        return rec

    def to_csv(self, path: str | Path, *, extra: dict[str, Sequence] | None = None) -> None:
        """Write the peaks as CSV (one row per peak; ``extra`` adds columns, e.g. hkl)."""
        extra = extra or {}
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([*_FIELDS, *extra])
            for i in range(len(self)):
                row = [int(self.tilt[i])] + [f"{float(getattr(self, f)[i]):.6g}" for f in _FIELDS[1:]]
                w.writerow(row + [extra[k][i] for k in extra])

    @classmethod
    def from_csv(cls, path: str | Path) -> PeakList:
        """Read peaks written by :meth:`to_csv` (needs at least the columns ``y`` and ``x``)."""
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if rows and not {"y", "x"} <= set(rows[0]):
            raise ValueError(f"peak file {path} needs columns 'y' and 'x'")
        cols = {f: np.array([float(r.get(f, "nan") or "nan") for r in rows]) for f in _FIELDS}
        cols["tilt"] = np.nan_to_num(cols["tilt"]).astype(int)
        return cls(**cols)

    @classmethod
    def from_positions(
        cls, positions: np.ndarray, *, tilt: np.ndarray | int = 0, calibration=None, center=None
    ) -> PeakList:
        """Peaks at given ``(k_y, k_x)`` positions (e.g. edited by hand), no intensities."""
        p = np.asarray(positions, dtype=float).reshape(-1, 2)
        n = len(p)
        t = np.broadcast_to(np.asarray(tilt, dtype=int), (n,)).copy()
        nan = np.full(n, np.nan)
        c = _center(calibration, center, None)
        gy, gx, g = _reciprocal(p, calibration, c)
        return cls(
            p[:, 0].copy(),
            p[:, 1].copy(),
            nan,
            nan.copy(),
            nan.copy(),
            gy,
            gx,
            g,
            t,
            center=c if c is not None else (math.nan, math.nan),
        )

    @classmethod
    def concatenate(cls, lists: Sequence[PeakList]) -> PeakList:
        """One PeakList holding the peaks of several (keeps each one's ``tilt``)."""
        if not lists:
            return cls.from_positions(np.zeros((0, 2)))
        cols = {f: np.concatenate([getattr(p, f) for p in lists]) for f in _FIELDS}
        return cls(**cols, center=lists[0].center)


# ---- templates ---------------------------------------------------------------------------------
def disk_template(radius: float, *, soft: float = 0.5) -> np.ndarray:
    """A normalised disk image of ``radius`` pixels with a linear edge of width ``2·soft``."""
    if not radius > 0:
        raise ValueError(f"template radius must be positive, got {radius}")
    n = int(math.ceil(radius + 2 * soft)) + 1
    yy, xx = np.mgrid[-n : n + 1, -n : n + 1]
    r = np.hypot(yy, xx)
    t = np.clip((radius + soft - r) / (2 * soft), 0.0, 1.0)
    return t / t.sum()


def _template(template, shape) -> tuple[np.ndarray, float]:
    """Normalised template (sum 1, centred) and the radius used for integration."""
    if template is None:
        s = 1.0
        yy, xx = np.mgrid[-4:5, -4:5]
        t = np.exp(-(yy**2 + xx**2) / (2 * s * s))
        return t / t.sum(), 2.0
    if np.isscalar(template):
        return disk_template(float(template)), float(template)
    t = np.asarray(template, dtype=float)
    if t.ndim != 2 or t.shape[0] > shape[0] or t.shape[1] > shape[1] or not np.isfinite(t).all():
        raise ValueError(
            f"template must be a finite 2D image no larger than the pattern {shape}, got {t.shape}"
        )
    t = np.clip(t - np.median(t), 0, None)
    if t.sum() <= 0:
        raise ValueError("template image has no positive signal")
    # centre the template on its centre of mass (so correlation peaks sit on the disk centres)
    cy, cx = ndimage.center_of_mass(t)
    t = ndimage.shift(t, ((t.shape[0] - 1) / 2 - cy, (t.shape[1] - 1) / 2 - cx), order=1)
    radius = math.sqrt(float((t > 0.5 * t.max()).sum()) / math.pi)
    return t / t.sum(), max(radius, 1.0)


def beam_center(
    pattern: np.ndarray, *, guess: tuple[float, float] | None = None, radius: float = 6.0, n_iter: int = 3
) -> tuple[float, float]:
    """Position ``(k_y, k_x)`` of the unscattered beam in one pattern: iterated centre of mass of
    the background-subtracted intensity within ``radius`` pixels of the brightest spot near ``guess``."""
    img = np.asarray(pattern, dtype=float)
    if img.ndim != 2:
        raise ValueError(f"pattern must be 2D, got shape {img.shape}")
    sm = ndimage.gaussian_filter(img, 1.0)
    if guess is None:
        cy, cx = np.unravel_index(np.argmax(sm), sm.shape)
    else:  # brightest pixel within 2 radii of the guess
        yy, xx = np.indices(img.shape)
        near = np.hypot(yy - guess[0], xx - guess[1]) <= 2 * radius
        cy, cx = np.unravel_index(np.argmax(np.where(near, sm, -np.inf)), sm.shape)
    y, x = _subpixel_com(img - np.median(img), np.array([cy]), np.array([cx]), radius, n_iter=n_iter)
    return float(y[0]), float(x[0])


def _center(calibration, center, shape) -> tuple[float, float] | None:
    if center is not None:
        c = tuple(float(v) for v in center)
        if len(c) != 2:
            raise ValueError(f"center must be (k_y, k_x), got {center!r}")
        return c
    if calibration is not None and (calibration.center is not None or shape is not None):
        return calibration.detector_center(shape)
    if shape is not None:
        return ((shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0)
    return None


def _reciprocal(pos: np.ndarray, calibration, center) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(pos)
    if calibration is None or calibration.pixel_size is None or center is None or n == 0:
        nan = np.full(n, np.nan)
        return nan, nan.copy(), nan.copy()
    g = geometry.detector_to_lab(
        pos,
        wavelength=calibration.wavelength,
        pixel_size=calibration.pixel_size,
        center=center,
        ellipticity=calibration.ellipticity,
    )
    return g[:, 1].copy(), g[:, 0].copy(), np.hypot(g[:, 0], g[:, 1])


def _subpixel_parabolic(c: np.ndarray, iy: np.ndarray, ix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = c.shape
    iy = np.clip(iy, 1, h - 2)
    ix = np.clip(ix, 1, w - 2)

    def vertex(m, z, p):
        den = m - 2 * z + p
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(den < 0, 0.5 * (m - p) / den, 0.0)
        return np.clip(d, -0.5, 0.5)

    dy = vertex(c[iy - 1, ix], c[iy, ix], c[iy + 1, ix])
    dx = vertex(c[iy, ix - 1], c[iy, ix], c[iy, ix + 1])
    return iy + dy, ix + dx


def _subpixel_com(img: np.ndarray, y: np.ndarray, x: np.ndarray, radius: float, n_iter: int = 3):
    """Iterative centre of mass of the background-subtracted image in a disk window."""
    h, w = img.shape
    r = radius + 1.5
    n = int(math.ceil(r)) + 1
    oy, ox = np.mgrid[-n : n + 1, -n : n + 1]
    y, x = y.astype(float).copy(), x.astype(float).copy()
    for _ in range(n_iter):
        for i in range(len(y)):
            cy, cx = int(round(y[i])), int(round(x[i]))
            yy, xx = cy + oy, cx + ox
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            # window weights: 1 inside r, linear fall-off over one pixel (reduces pixel-lock bias)
            wgt = np.clip(r + 0.5 - np.hypot(yy - y[i], xx - x[i]), 0, 1) * inside
            v = np.where(inside, img[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0.0)
            v = np.clip(v, 0, None) * wgt
            s = v.sum()
            if s > 0:
                y[i], x[i] = (v * yy).sum() / s, (v * xx).sum() / s
    return y, x


def _integrate(img: np.ndarray, raw: np.ndarray, y: np.ndarray, x: np.ndarray, radius: float):
    h, w = img.shape
    n = int(math.ceil(radius)) + 1
    oy, ox = np.mgrid[-n : n + 1, -n : n + 1]
    inten, sig = np.zeros(len(y)), np.zeros(len(y))
    for i in range(len(y)):
        yy, xx = int(round(y[i])) + oy, int(round(x[i])) + ox
        m = (np.hypot(yy - y[i], xx - x[i]) <= radius) & (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        inten[i] = img[yy[m], xx[m]].sum()
        sig[i] = math.sqrt(max(float(np.clip(raw[yy[m], xx[m]], 0, None).sum()), 1.0))
    return inten, sig


#: the excluded direct beam enters the background estimate capped at this × the brightest pixel
#: outside it (kinematic test data: 3–5×, untouched; abTEM multislice: ~2700×)
BEAM_CAP = 10.0


def _one_pattern(
    pattern,
    *,
    template,
    sigma_background,
    threshold,
    min_distance,
    exclude_center_radius,
    subpixel,
    calibration,
    center,
    max_peaks,
    min_intensity,
    tilt,
) -> PeakList:
    raw = np.asarray(pattern, dtype=float)
    if raw.ndim != 2 or min(raw.shape) < 8:
        raise ValueError(
            f"a diffraction pattern must be a 2D image of at least 8×8 pixels, got shape {raw.shape}"
        )
    if not np.isfinite(raw).all():
        raise ValueError("diffraction pattern contains NaN or infinite values")
    tmpl, radius = _template(template, raw.shape)
    if isinstance(center, str):
        if center != "beam":
            raise ValueError(f"center must be (k_y, k_x), None or 'beam', got {center!r}")
        guess = calibration.detector_center(raw.shape) if calibration is not None else None
        c = beam_center(raw, guess=guess, radius=max(3.0, 2.0 * radius))
    else:
        c = _center(calibration, center, raw.shape)
    yy, xx = np.indices(raw.shape)
    rad = np.hypot(yy - c[0], xx - c[1])
    region = rad > exclude_center_radius if exclude_center_radius else np.ones(raw.shape, bool)
    if sigma_background and sigma_background > 0:
        smooth = raw
        if exclude_center_radius and region.sum() >= 10:
            # an excluded direct beam far brighter than any Bragg spot (10³× in multislice data)
            # must not dominate the background: blurred, it digs a crater over the whole pattern
            # that buries the spots. Capped at BEAM_CAP × the brightest pixel outside it.
            cap = BEAM_CAP * float(raw[region].max())
            smooth = np.where(region, raw, np.minimum(raw, cap))
        img = raw - ndimage.gaussian_filter(smooth, float(sigma_background), mode="nearest")
    else:
        img = raw - np.median(raw)
    corr = signal.fftconvolve(img, tmpl[::-1, ::-1], mode="same")
    vals = corr[region]
    if vals.size < 10:
        raise ValueError(f"exclude_center_radius={exclude_center_radius} leaves no detector area")
    noise = 1.4826 * float(np.median(np.abs(vals - np.median(vals))))
    if noise <= 0:
        noise = float(np.std(vals)) or 1.0
    md = max(1, int(round(min_distance if min_distance is not None else max(2.0, radius))))
    # local maxima of the correlation above the SNR threshold
    footprint = np.hypot(*np.mgrid[-md : md + 1, -md : md + 1]) <= md
    is_max = corr == ndimage.maximum_filter(corr, footprint=footprint, mode="nearest")
    cand = is_max & region & (corr > threshold * noise)
    iy, ix = np.nonzero(cand)
    order = np.argsort(-corr[iy, ix], kind="stable")
    iy, ix = iy[order], ix[order]
    # plateaus give several equal maxima: keep the strongest, suppress neighbours within md
    keep: list[int] = []
    if len(iy):
        from scipy.spatial import cKDTree

        tree = cKDTree(np.stack([iy, ix], axis=1))
        gone = np.zeros(len(iy), bool)
        for i in range(len(iy)):
            if gone[i]:
                continue
            keep.append(i)
            gone[tree.query_ball_point((iy[i], ix[i]), md)] = True
            if max_peaks is not None and len(keep) >= max_peaks:
                break
    iy, ix = iy[keep], ix[keep]
    snr = corr[iy, ix] / noise
    if subpixel in (True, "com"):
        y, x = _subpixel_com(img, iy, ix, radius)
    elif subpixel == "parabolic":
        y, x = _subpixel_parabolic(corr, iy, ix)
    elif subpixel is False or subpixel is None:
        y, x = iy.astype(float), ix.astype(float)
    else:
        raise ValueError(f"subpixel must be True, False, 'com' or 'parabolic', got {subpixel!r}")
    inten, sig = _integrate(img, raw, y, x, radius + 1.0)
    ok = inten > (min_intensity if min_intensity is not None else -np.inf)
    y, x, inten, sig, snr = y[ok], x[ok], inten[ok], sig[ok], snr[ok]
    pos = np.stack([y, x], axis=1) if len(y) else np.zeros((0, 2))
    gy, gx, g = _reciprocal(pos, calibration, c)
    return PeakList(
        y,
        x,
        inten,
        sig,
        snr,
        gy,
        gx,
        g,
        np.full(len(y), tilt, dtype=int),
        center=c,
        meta={"noise": noise, "radius": radius},
    )


def find_bragg_peaks(
    pattern: np.ndarray,
    *,
    template: None | float | np.ndarray = None,
    sigma_background: float = 8.0,
    threshold: float = 6.0,
    min_distance: float | None = None,
    exclude_center_radius: float = 0.0,
    subpixel: bool | str = True,
    calibration=None,
    center: tuple[float, float] | str | None = None,
    max_peaks: int | None = None,
    min_intensity: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
) -> PeakList | list[PeakList]:
    """Find Bragg peaks in a diffraction pattern (2D) or in each pattern of a stack (3D).

    Parameters
    ----------
    pattern
        ``(k_y, k_x)`` image, or ``(n, k_y, k_x)`` stack (e.g. one summed pattern per tilt).
    template
        Probe-disk template: ``None`` (small Gaussian, for point-like spots), a disk radius in
        pixels, or an image of the unscattered probe (e.g. a vacuum pattern).
    sigma_background
        Gaussian σ (pixels) of the smooth background subtracted before correlation; should be
        several times the disk radius. ``0`` subtracts the median only.
    threshold
        Minimum signal-to-noise of the correlation peak (peak / robust noise of the map).
    min_distance
        Minimum separation of two peaks in pixels (default: the template radius, ≥ 2).
    exclude_center_radius
        Ignore peaks within this many pixels of the beam centre (the unscattered beam).
    subpixel
        ``True``/``"com"``: iterative centre of mass in a disk window; ``"parabolic"``: vertex of a
        parabola through the correlation maximum; ``False``: integer pixels.
    calibration
        A :class:`~virtual_aperture.Calibration`; gives the beam centre, ellipticity and pixel size
        (then ``g_y, g_x, g`` are filled in Å⁻¹).
    center
        Beam centre ``(k_y, k_x)`` overriding the calibration's, or ``"beam"`` to measure the
        unscattered beam in each pattern (:func:`beam_center`; recommended for summed patterns,
        whose centre moves with the descan under the aperture). Stored as ``PeakList.center``.
    max_peaks, min_intensity
        Keep at most the ``max_peaks`` strongest peaks / only peaks with at least this intensity.
    progress, cancel
        ``progress(done, total)`` callback and a cancel token (``.cancelled``) for stacks.

    Returns
    -------
    PeakList, or a list of one PeakList per pattern for a stack (``tilt`` = its index).
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    if exclude_center_radius < 0:
        raise ValueError(f"exclude_center_radius must be ≥ 0, got {exclude_center_radius}")
    arr = np.asarray(pattern)
    kw = dict(
        template=template,
        sigma_background=sigma_background,
        threshold=threshold,
        min_distance=min_distance,
        exclude_center_radius=exclude_center_radius,
        subpixel=subpixel,
        calibration=calibration,
        center=center,
        max_peaks=max_peaks,
        min_intensity=min_intensity,
    )
    if arr.ndim == 2:
        return _one_pattern(arr, tilt=0, **kw)
    if arr.ndim != 3:
        raise ValueError(f"expected a 2D pattern or a 3D stack of patterns, got shape {arr.shape}")
    out = []
    for i in range(arr.shape[0]):
        check_cancel(cancel)
        out.append(_one_pattern(arr[i], tilt=i, **kw))
        if progress is not None:
            progress(i + 1, arr.shape[0])
    return out
