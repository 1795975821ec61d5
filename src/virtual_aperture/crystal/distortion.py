"""Detector distortion and beam centre from rings and Friedel pairs.

* :func:`ring_points` / :func:`fit_ellipse` / :func:`ellipse_from_ring` — trace a diffraction ring
  (e.g. of a polycrystalline standard) azimuth by azimuth and fit an ellipse to it
  (scikit-image ``EllipseModel``); :func:`ellipticity_from_ellipse` converts the ellipse to the
  ``(ratio, angle_deg)`` convention of :func:`crystal.geometry.distortion_matrix`.
* :func:`radial_profile` — azimuthal average about a centre, undoing the ellipticity.
* :func:`center_from_friedel_pairs` — beam centre as the common midpoint of ``g``/``−g`` peak pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.measure import EllipseModel

from .geometry import distortion_matrix


@dataclass(frozen=True)
class Ellipse:
    """An ellipse on the detector: centre ``(k_y, k_x)``, semi-axes ``a ≥ b`` (px), and the
    direction of ``a`` in degrees from +k_x towards +k_y (in [0, 180)); ``rms`` is the fit residual."""

    center: tuple[float, float]
    a: float
    b: float
    angle_deg: float
    rms: float = 0.0

    @property
    def ellipticity(self) -> tuple[float, float]:
        """``(ratio, angle_deg)`` for ``Calibration.ellipticity``: ratio = a / b."""
        return (self.a / self.b, self.angle_deg)


def fit_ellipse(points: np.ndarray) -> Ellipse:
    """Least-squares ellipse through ``(k_y, k_x)`` points (at least 5, not collinear)."""
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) < 5:
        raise ValueError(f"need at least 5 (k_y, k_x) points to fit an ellipse, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("ellipse points contain NaN or infinite values")
    model = EllipseModel.from_estimate(p[:, ::-1])  # scikit-image works in (x, y)
    if not model:
        raise ValueError("ellipse fit failed: points do not lie on an ellipse")
    xc, yc = (float(v) for v in model.center)
    a, b = (float(v) for v in model.axis_lengths)
    theta = float(model.theta)
    if b > a:
        a, b, theta = b, a, theta + math.pi / 2
    ang = math.degrees(theta) % 180.0
    rms = float(np.sqrt(np.mean(model.residuals(p[:, ::-1]) ** 2)))
    return Ellipse((yc, xc), a, b, ang, rms)


def ellipticity_from_ellipse(ellipse: Ellipse) -> tuple[float, float]:
    """The ``(ratio, angle_deg)`` distortion of an ellipse (its radius along b is the true radius)."""
    return ellipse.ellipticity


def ring_points(
    pattern: np.ndarray,
    *,
    center: tuple[float, float],
    r_min: float,
    r_max: float,
    n_azimuth: int = 180,
    smooth: float = 1.0,
) -> np.ndarray:
    """Sub-pixel positions ``(n, 2)`` of the brightest point of a ring along radial lines.

    For each of ``n_azimuth`` directions the (smoothed) pattern is sampled from ``r_min`` to
    ``r_max`` pixels; the maximum is refined by a parabola. Directions with no clear maximum
    (at the ends of the range) are dropped.
    """
    img = np.asarray(pattern, dtype=float)
    if img.ndim != 2:
        raise ValueError(f"pattern must be 2D, got shape {img.shape}")
    if not 0 <= r_min < r_max:
        raise ValueError(f"need 0 ≤ r_min < r_max, got {r_min}, {r_max}")
    if smooth:
        img = ndimage.gaussian_filter(img, smooth)
    radii = np.arange(r_min, r_max, 0.25)
    phi = np.linspace(0, 2 * math.pi, n_azimuth, endpoint=False)
    yy = center[0] + np.sin(phi)[:, None] * radii[None]
    xx = center[1] + np.cos(phi)[:, None] * radii[None]
    prof = ndimage.map_coordinates(img, [yy.ravel(), xx.ravel()], order=1, mode="constant", cval=np.nan)
    prof = prof.reshape(yy.shape)
    pts = []
    for i in range(n_azimuth):
        p = prof[i]
        if np.isnan(p).any():
            continue
        j = int(np.argmax(p))
        if j == 0 or j == len(p) - 1:
            continue
        m, z, q = p[j - 1], p[j], p[j + 1]
        den = m - 2 * z + q
        d = 0.5 * (m - q) / den if den < 0 else 0.0
        r = radii[j] + d * 0.25
        pts.append((center[0] + math.sin(phi[i]) * r, center[1] + math.cos(phi[i]) * r))
    return np.array(pts).reshape(-1, 2)


def ellipse_from_ring(
    pattern: np.ndarray,
    *,
    center: tuple[float, float] | None = None,
    r_min: float,
    r_max: float,
    n_azimuth: int = 180,
    n_iter: int = 2,
) -> Ellipse:
    """Fit an ellipse to the ring between ``r_min`` and ``r_max`` pixels from the beam centre.

    The centre is re-estimated from the fit and the ring re-traced ``n_iter`` times; points more
    than 3 robust σ off the ellipse are rejected.
    """
    img = np.asarray(pattern, dtype=float)
    c = center if center is not None else ((img.shape[0] - 1) / 2, (img.shape[1] - 1) / 2)
    ell = None
    for _ in range(max(1, n_iter)):
        pts = ring_points(img, center=c, r_min=r_min, r_max=r_max, n_azimuth=n_azimuth)
        if len(pts) < 8:
            raise ValueError(f"no ring found between r = {r_min} and {r_max} px around {tuple(c)}")
        ell = fit_ellipse(pts)
        model = EllipseModel.from_estimate(pts[:, ::-1])
        res = np.abs(model.residuals(pts[:, ::-1]))
        keep = res <= 3 * 1.4826 * np.median(res) + 1e-6
        if keep.sum() >= 8 and not keep.all():
            ell = fit_ellipse(pts[keep])
        c = ell.center
    return ell


def radial_profile(
    pattern: np.ndarray,
    *,
    center: tuple[float, float],
    ellipticity: tuple[float, float] = (1.0, 0.0),
    bin_width: float = 0.5,
    r_max: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Azimuthal average: ``(radii, mean intensity)`` in bins of ``bin_width`` pixels.

    Radii are undistorted (the ellipticity is undone first), so rings become sharp peaks.
    """
    img = np.asarray(pattern, dtype=float)
    if img.ndim != 2:
        raise ValueError(f"pattern must be 2D, got shape {img.shape}")
    yy, xx = np.indices(img.shape)
    off = np.stack([yy - center[0], xx - center[1]], axis=-1).reshape(-1, 2)
    if tuple(ellipticity) != (1.0, 0.0):
        off = off @ np.linalg.inv(distortion_matrix(ellipticity)).T
    r = np.hypot(off[:, 0], off[:, 1])
    r_max = float(r.max()) if r_max is None else float(r_max)
    nb = int(math.ceil(r_max / bin_width))
    idx = np.floor(r / bin_width).astype(int)
    ok = idx < nb
    s = np.bincount(idx[ok], weights=img.ravel()[ok], minlength=nb)
    n = np.bincount(idx[ok], minlength=nb)
    with np.errstate(invalid="ignore"):
        prof = s / n
    radii = (np.arange(nb) + 0.5) * bin_width
    good = n > 0
    return radii[good], prof[good]


def center_from_friedel_pairs(
    positions: np.ndarray,
    *,
    center: tuple[float, float],
    tolerance: float = 3.0,
    search: float = 10.0,
    n_iter: int = 5,
) -> tuple[tuple[float, float], int]:
    """Beam centre from Friedel pairs: peaks ``p`` with a partner near ``2c − p``.

    The midpoints of all peak pairs within ``search`` pixels of the guess ``center`` vote; the
    densest cluster of midpoints starts the iteration, which matches pairs within ``tolerance``
    pixels and moves the centre to the mean of their midpoints. Returns ``(center, number of
    pairs)``; raises ValueError if fewer than 2 pairs are found.
    """
    p = np.asarray(positions, dtype=float).reshape(-1, 2)
    c = np.asarray(center, dtype=float)
    i, j = np.triu_indices(len(p), 1)
    mids = (p[i] + p[j]) / 2
    mids = mids[np.linalg.norm(mids - c, axis=1) <= search]
    if len(mids):
        votes = (np.linalg.norm(mids[:, None] - mids[None], axis=-1) <= tolerance / 2).sum(1)
        best = votes == votes.max()
        if votes.max() >= 2:
            c = (
                mids[best].mean(0)
                if best.sum() > 1 and np.ptp(mids[best], axis=0).max() < tolerance
                else mids[np.argmax(votes)]
            )
    n_pairs = 0
    for _ in range(n_iter):
        mirror = 2 * c - p
        d = np.linalg.norm(mirror[:, None, :] - p[None, :, :], axis=-1)
        np.fill_diagonal(d, np.inf)
        j = np.argmin(d, axis=1)
        ok = (d[np.arange(len(p)), j] < tolerance) & (np.hypot(*(p - c).T) > tolerance)
        n_pairs = int(ok.sum()) // 2
        if n_pairs < 2:
            raise ValueError(f"found {n_pairs} Friedel pair(s) within {tolerance} px; need at least 2")
        c = np.mean((p[ok] + p[j[ok]]) / 2, axis=0)
    return (float(c[0]), float(c[1])), n_pairs
