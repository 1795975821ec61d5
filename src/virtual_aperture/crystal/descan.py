"""Descan (beam-centre) calibration and scan-to-detector rotation.

* :func:`beam_centers` — the unscattered-beam position at every scan position: centre of mass of
  the central disk inside a window (computed as a dask graph over whole frames).
* :func:`fit_descan` — a smooth low-order polynomial fit of that map; its ``shifts`` (fitted centre
  minus the reference centre, ``(scan_y, scan_x, 2)`` pixels ``(dk_y, dk_x)``) are what the
  compute engine takes as ``shifts=`` for shift-compensated virtual images and sums.
* :func:`scan_rotation_from_com` — rotation between scan and detector axes from centre-of-mass
  shift maps, by minimising the curl of the rotated field (the DPC method).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


def center_of_mass_map(
    data: Any,
    *,
    center: tuple[float, float] | None = None,
    radius: float | None = None,
    tilt: int = 0,
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
) -> np.ndarray:
    """Centre of mass ``(k_y, k_x)`` of each frame inside a disk window, ``(scan_y, scan_x, 2)``.

    ``data`` is a :class:`~virtual_aperture.Dataset` or a 4D/5D array; for 5D one ``tilt`` is used.
    ``radius=None`` uses the whole frame (the plain COM used for DPC); otherwise only pixels within
    ``radius`` of ``center`` (default: the geometric detector centre) count. Computed in one pass
    of the compute engine (:func:`virtual_aperture.virtual_image` with the mask stack
    ``[w, k_y·w, k_x·w]``). Positions with no counts in the window are NaN.
    """
    from ..compute import virtual_image

    arr = getattr(data, "data", data)
    shape = tuple(arr.shape)
    if len(shape) == 5:
        if not -shape[0] <= tilt < shape[0]:
            raise ValueError(f"tilt {tilt} out of range for {shape[0]} tilts")
        arr = arr[tilt]
    elif len(shape) != 4:
        raise ValueError(f"expected 4D (scan_y, scan_x, k_y, k_x) or 5D data, got shape {shape}")
    ky, kx = shape[-2:]
    yy, xx = np.mgrid[0:ky, 0:kx].astype(np.float64)
    if radius is None:
        window = np.ones((ky, kx))
    else:
        if not radius > 0:
            raise ValueError(f"window radius must be positive, got {radius}")
        c = center if center is not None else ((ky - 1) / 2, (kx - 1) / 2)
        window = (np.hypot(yy - c[0], xx - c[1]) <= radius).astype(np.float64)
        if not window.any():
            raise ValueError(f"the COM window (centre {c}, radius {radius}) lies off the detector")
    imgs = virtual_image(arr, np.stack([window, yy * window, xx * window]), progress=progress, cancel=cancel)
    s, my, mx = imgs
    with np.errstate(invalid="ignore", divide="ignore"):
        com = np.stack([my / s, mx / s], axis=-1)
    com[s <= 0] = np.nan
    return com


def beam_centers(
    data: Any,
    *,
    radius: float | None = None,
    center: tuple[float, float] | None = None,
    tilt: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Unscattered-beam centre ``(k_y, k_x)`` at every scan position, ``(scan_y, scan_x, 2)`` pixels.

    Two passes of a windowed centre of mass: the central disk of the mean pattern is located
    (``compute.detectors.measure_central_disk``), then each frame's COM is taken inside a disk of
    ``radius`` pixels (default: 2.5 disk radii, at least radius + 3 px) around it, which keeps
    Bragg spots out of the estimate.
    """
    arr = getattr(data, "data", data)
    if arr.ndim not in (4, 5):
        raise ValueError(f"expected 4D or 5D data, got shape {arr.shape}")
    frames = arr[tilt] if arr.ndim == 5 else arr
    if radius is None or center is None:
        from ..compute.detectors import measure_central_disk

        c0, r_disk = measure_central_disk(frames)
        radius = max(2.5 * r_disk, r_disk + 3.0) if radius is None else radius
        center = c0 if center is None else center
    com = center_of_mass_map(frames, center=center, radius=radius, progress=progress)
    # second pass: re-centre the window on the median position (the disk may sit off-centre)
    c2 = tuple(float(v) for v in np.nanmedian(com.reshape(-1, 2), axis=0))
    if not all(math.isfinite(v) for v in c2):
        raise ValueError("no signal inside the beam-centre window: is the central disk on the detector?")
    return center_of_mass_map(frames, center=c2, radius=radius)


@dataclass(frozen=True)
class DescanFit:
    """A smooth fit of the beam centre over the scan.

    ``measured`` and ``fitted`` are ``(scan_y, scan_x, 2)`` centres in pixels; ``shifts`` is
    ``fitted − reference`` (pass it as ``shifts=`` to the compute engine); ``coef_y``/``coef_x``
    are the polynomial coefficients in normalised scan coordinates; ``rms`` the fit residual (px).
    """

    measured: np.ndarray
    fitted: np.ndarray
    shifts: np.ndarray
    reference: tuple[float, float]
    order: int
    coef_y: np.ndarray
    coef_x: np.ndarray
    rms: float

    def to_dict(self) -> dict:
        return {
            "order": self.order,
            "reference": list(self.reference),
            "coef_y": self.coef_y.tolist(),
            "coef_x": self.coef_x.tolist(),
            "scan_shape": list(self.measured.shape[:2]),
            "rms_px": self.rms,
        }


def _design(scan_shape: tuple[int, int], order: int) -> np.ndarray:
    sy, sx = scan_shape
    v = np.linspace(-1, 1, sy) if sy > 1 else np.zeros(1)
    u = np.linspace(-1, 1, sx) if sx > 1 else np.zeros(1)
    V, U = np.meshgrid(v, u, indexing="ij")
    terms = [V**i * U**j for i in range(order + 1) for j in range(order + 1 - i)]
    return np.stack([t.ravel() for t in terms], axis=1)


def fit_descan(
    centers: np.ndarray,
    *,
    order: int = 3,
    reference: tuple[float, float] | None = None,
    n_sigma: float = 3.0,
    min_reject_px: float = 0.5,
    smooth_sigma: float | None = 2.0,
) -> DescanFit:
    """Fit a 2D polynomial of ``order`` (1 = plane) to a beam-centre map, rejecting outliers.

    With ``smooth_sigma`` (scan pixels) the polynomial's residual over the inlier positions is
    low-pass filtered (normalised Gaussian) and added, so smooth non-polynomial descan (e.g. a
    sinusoidal term) is followed while per-position noise is not; ``None`` = polynomial only.

    ``reference`` is the centre the shifts are measured from (default: the fitted centre at the
    middle of the scan).
    """
    c = np.asarray(centers, dtype=float)
    if c.ndim != 3 or c.shape[-1] != 2:
        raise ValueError(f"beam centres must have shape (scan_y, scan_x, 2), got {c.shape}")
    if not 0 <= int(order) <= 5:
        raise ValueError(f"polynomial order must be 0–5, got {order}")
    A = _design(c.shape[:2], int(order))
    y, x = c[..., 0].ravel(), c[..., 1].ravel()
    ok = np.isfinite(y) & np.isfinite(x)
    if ok.sum() < A.shape[1] + 1:
        raise ValueError(f"only {int(ok.sum())} scan positions have a beam centre; cannot fit order {order}")
    for _ in range(5):
        cy, *_ = np.linalg.lstsq(A[ok], y[ok], rcond=None)
        cx, *_ = np.linalg.lstsq(A[ok], x[ok], rcond=None)
        r = np.hypot(A @ cy - y, A @ cx - x)
        s = 1.4826 * np.median(r[ok]) + 1e-9
        new = np.isfinite(r) & (r <= max(n_sigma * s, min_reject_px))
        if new.sum() < A.shape[1] + 1 or np.array_equal(new, ok):
            break
        ok = new
    fitted = np.stack([(A @ cy).reshape(c.shape[:2]), (A @ cx).reshape(c.shape[:2])], axis=-1)
    if smooth_sigma:
        from scipy import ndimage

        w = ok.reshape(c.shape[:2]).astype(float)
        norm = ndimage.gaussian_filter(w, smooth_sigma, mode="nearest")
        for k in range(2):
            resid = np.where(w > 0, np.nan_to_num(c[..., k] - fitted[..., k]), 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                fitted[..., k] += np.where(
                    norm > 1e-6, ndimage.gaussian_filter(resid, smooth_sigma, mode="nearest") / norm, 0
                )
    if reference is None:
        mid = _design((1, 1), int(order))  # scan centre = normalised (0, 0)
        reference = (float(mid @ cy), float(mid @ cx))
    ref = np.asarray(reference, dtype=float)
    rms = float(np.sqrt(np.mean(r[ok] ** 2)))
    return DescanFit(c, fitted, fitted - ref, (float(ref[0]), float(ref[1])), int(order), cy, cx, rms)


def calibrate_descan(
    dataset,
    *,
    order: int = 3,
    radius: float | None = None,
    tilt: int = 0,
    reference: tuple[float, float] | None = None,
    progress: Callable[[int, int], None] | None = None,
):
    """Measure and fit the descan of a dataset; returns ``(new Calibration, DescanFit)``.

    Shifts are measured from ``reference`` (default: the calibration's beam centre, or the
    fitted centre at the middle of the scan when it has none). The new calibration has
    ``center`` = the reference and the fit stored in ``extra["descan"]`` (rebuild the shift
    map with :func:`descan_shifts`, pass it as ``shifts=`` to ``virtual_image``).

    Parameters
    ----------
    dataset
        A 4D scan or 5D tilt series (:class:`~virtual_aperture.Dataset`).
    order
        Degree of the 2D polynomial fitted to the measured beam centres over the scan.
    radius
        Radius (detector pixels) of the central disk; found from the mean pattern when None.
    tilt
        Tilt of a 5D series whose scan is measured (the descan is a property of the scan coils).
    reference
        ``(k_y, k_x)`` the shifts are measured from.
    progress
        ``progress(done, total)`` callback.

    Returns
    -------
    (Calibration, DescanFit)
        The calibration with the fit in ``extra["descan"]``, and the fit (measured centres,
        coefficients, residuals).
    """
    cal = dataset.calibration
    ref = reference if reference is not None else cal.center
    fit = fit_descan(
        beam_centers(dataset, radius=radius, tilt=tilt, progress=progress), order=order, reference=ref
    )
    return cal.replace(center=fit.reference, extra={**cal.extra, "descan": fit.to_dict()}), fit


def descan_shifts(calibration, scan_shape: tuple[int, int] | None = None) -> np.ndarray | None:
    """The ``(scan_y, scan_x, 2)`` descan shift map stored by :func:`calibrate_descan` (or None)."""
    d = calibration.extra.get("descan") if calibration is not None else None
    if not d:
        return None
    shape = tuple(scan_shape) if scan_shape is not None else tuple(d["scan_shape"])
    A = _design(shape, int(d["order"]))
    ref = np.asarray(d["reference"], dtype=float)
    return np.stack(
        [
            (A @ np.asarray(d["coef_y"])).reshape(shape) - ref[0],
            (A @ np.asarray(d["coef_x"])).reshape(shape) - ref[1],
        ],
        axis=-1,
    )


# ---- scan rotation (DPC curl minimisation) ---------------------------------------------------------
def _curl2(fy: np.ndarray, fx: np.ndarray) -> float:
    curl = np.gradient(fy, axis=1) - np.gradient(fx, axis=0)
    return float(np.mean(curl**2))


def _rotate(fy: np.ndarray, fx: np.ndarray, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate vector field components (y, x) by ``angle_deg`` (from +x towards +y)."""
    t = math.radians(angle_deg)
    c, s = math.cos(t), math.sin(t)
    return s * fx + c * fy, c * fx - s * fy


def _potential_skew(fy: np.ndarray, fx: np.ndarray) -> float:
    """Skewness of the potential whose gradient is (fy, fx) (Fourier integration)."""
    ny, nx = fy.shape
    qy = np.fft.fftfreq(ny)[:, None]
    qx = np.fft.fftfreq(nx)[None, :]
    q2 = qy**2 + qx**2
    q2[0, 0] = 1.0
    phi_hat = (qy * np.fft.fft2(fy) + qx * np.fft.fft2(fx)) / (2j * math.pi * q2)
    phi_hat[0, 0] = 0.0
    phi = np.fft.ifft2(phi_hat).real
    phi = phi - phi.mean()
    return float(np.mean(phi**3) / (np.mean(phi**2) ** 1.5 + 1e-30))


def scan_rotation_from_com(
    com_y: np.ndarray, com_x: np.ndarray, *, step_deg: float = 0.5, positive_potential: bool = True
) -> dict:
    """Scan-to-detector rotation from centre-of-mass shift maps (DPC curl minimisation).

    The beam deflection in scan coordinates is the gradient of the projected potential, so it is
    curl-free; rotating the measured detector-frame COM field back by the right angle (and, if the
    scan is mirrored, transposing) makes its curl vanish. The remaining 180° ambiguity is fixed by
    requiring the integrated potential to have positive peaks (``positive_potential``; atoms
    attract the beam), i.e. the COM field points up-hill towards the atoms.

    Parameters
    ----------
    com_y, com_x
        ``(scan_y, scan_x)`` maps of the COM *shift* (pixels, mean need not be removed).

    Returns
    -------
    dict with ``rotation_deg`` (in (−180, 180], the value for ``Calibration.scan_rotation_deg``),
    ``flip`` (True if the scan axes are transposed), ``curl`` (normalised residual curl at the
    optimum) and the scanned ``angles``/``curls``.
    """
    fy, fx = (np.asarray(a, dtype=float) for a in (com_y, com_x))
    if fy.shape != fx.shape or fy.ndim != 2 or min(fy.shape) < 4:
        raise ValueError(
            f"COM maps must be two equal 2D scan maps of at least 4×4, got {fy.shape} and {fx.shape}"
        )
    if not (np.isfinite(fy).all() and np.isfinite(fx).all()):
        raise ValueError("COM maps contain NaN: fill or crop positions without signal first")
    fy, fx = fy - fy.mean(), fx - fx.mean()
    power = (
        float(
            np.mean(
                np.gradient(fy, axis=0) ** 2
                + np.gradient(fx, axis=1) ** 2
                + np.gradient(fy, axis=1) ** 2
                + np.gradient(fx, axis=0) ** 2
            )
        )
        + 1e-30
    )
    angles = np.arange(-90.0, 90.0, step_deg)
    best = None
    curls_all = {}
    for flip in (False, True):
        gy, gx = (fx, fy) if flip else (fy, fx)
        curls = np.array([_curl2(*_rotate(gy, gx, -a)) for a in angles]) / power
        curls_all[flip] = curls
        i = int(np.argmin(curls))
        # refine with a parabola through the neighbours
        a = angles[i]
        if 0 < i < len(angles) - 1:
            m, z, p = curls[i - 1], curls[i], curls[i + 1]
            den = m - 2 * z + p
            if den > 0:
                a = a + 0.5 * (m - p) / den * step_deg
        if best is None or curls[i] < best[1]:
            best = (a, float(curls[i]), flip)
    a, c, flip = best
    gy, gx = (fx, fy) if flip else (fy, fx)
    ry, rx = _rotate(gy, gx, -a)
    skew = _potential_skew(ry, rx)
    if (skew < 0) == positive_potential:
        a = a + 180.0
    a = (a + 180.0) % 360.0 - 180.0
    if a <= -180.0:
        a += 360.0
    return {
        "rotation_deg": float(a),
        "flip": bool(flip),
        "curl": c,
        "angles": angles,
        "curls": curls_all[flip],
    }
