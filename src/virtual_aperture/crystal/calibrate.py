"""Calibration of a dataset: descan, beam centre, ellipticity, pixel size, scan rotation.

Every calibrating function returns numbers (and, for the ``calibrate_*`` helpers, a *new*
:class:`~virtual_aperture.Calibration` made with ``.replace(...)``); nothing is changed in place.

* descan map and its smooth fit → :func:`beam_centers`, :func:`fit_descan`,
  :func:`calibrate_descan`, :func:`descan_shifts` (usable as ``shifts=`` by the compute engine)
* elliptical distortion from a ring → :func:`ellipse_from_ring`, :func:`fit_ellipse`
* beam centre from Friedel pairs → :func:`center_from_friedel_pairs`
* pixel size / camera length from a standard (CIF via gemmi or d-spacings) →
  :func:`standard_rings`, :func:`pixel_size_from_rings`, :func:`calibrate_pixel_size`
* scan-to-detector rotation from centre-of-mass maps → :func:`scan_rotation_from_com`
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage, signal

from .descan import (  # noqa: F401  (re-exported: crystal.calibrate is the public entry point)
    DescanFit,
    beam_centers,
    calibrate_descan,
    center_of_mass_map,
    descan_shifts,
    fit_descan,
    scan_rotation_from_com,
)
from .distortion import (  # noqa: F401
    Ellipse,
    center_from_friedel_pairs,
    ellipse_from_ring,
    ellipticity_from_ellipse,
    fit_ellipse,
    radial_profile,
    ring_points,
)

__all__ = [
    "DescanFit",
    "Ellipse",
    "RingCalibration",
    "beam_centers",
    "calibrate_descan",
    "calibrate_pixel_size",
    "center_from_friedel_pairs",
    "center_of_mass_map",
    "descan_shifts",
    "ellipse_from_ring",
    "ellipticity_from_ellipse",
    "find_ring_radii",
    "fit_descan",
    "fit_ellipse",
    "pixel_size_from_rings",
    "radial_profile",
    "ring_points",
    "scan_rotation_from_com",
    "standard_rings",
]


def standard_rings(standard: str | Path | Sequence[float], *, d_min: float = 0.8, min_relative: float = 0.01):
    """d-spacings (Å, descending) of the rings of a powder standard, with relative intensities.

    ``standard`` is a CIF file (read with gemmi; ring intensities are |F|² × multiplicity from
    electron scattering factors) or a sequence of d-spacings in Å (all given equal weight).
    Rings weaker than ``min_relative`` of the strongest are dropped; rings closer than 0.2 % in d
    are merged. Returns ``(d_spacings, weights)`` arrays.
    """
    if isinstance(standard, (str, Path)):
        import gemmi

        path = Path(standard)
        if not path.is_file():
            raise ValueError(f"standard CIF not found: {path}")
        try:
            st = gemmi.read_small_structure(str(path))
        except Exception as exc:  # gemmi raises RuntimeError/ValueError for bad CIFs
            raise ValueError(f"cannot read standard CIF {path}: {exc}") from None
        st.setup_cell_images()
        from .geometry import miller_indices_within

        cell = st.cell
        hkl = miller_indices_within((cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma), d_min)
        calc = gemmi.StructureFactorCalculatorE(cell)
        f = np.array([abs(calc.calculate_sf_from_small_structure(st, [int(v) for v in h])) for h in hkl])
        d = np.array([cell.calculate_d([int(v) for v in h]) for h in hkl])
        w = f**2
    else:
        d = np.asarray(list(standard), dtype=float)
        if d.size == 0 or not np.all(np.isfinite(d)) or np.any(d <= 0):
            raise ValueError(f"d-spacings must be positive numbers (Å), got {list(standard)!r}")
        w = np.ones_like(d)
    order = np.argsort(-d)
    d, w = d[order], w[order]
    # merge reflections of equal d (multiplicity) into rings
    rings_d, rings_w = [], []
    for di, wi in zip(d, w):
        if rings_d and abs(rings_d[-1] - di) <= 0.002 * di:
            rings_w[-1] += wi
        else:
            rings_d.append(float(di))
            rings_w.append(float(wi))
    rd, rw = np.array(rings_d), np.array(rings_w)
    keep = rw >= min_relative * rw.max()
    if not keep.any():
        raise ValueError("the standard has no reflections within d_min")
    return rd[keep], rw[keep] / rw[keep].max()


@dataclass(frozen=True)
class RingCalibration:
    """Result of a pixel-size calibration from rings.

    ``pixel_size`` in Å⁻¹ per pixel; ``ring_radii`` (px) of the rings found; ``matched_d`` the
    d-spacing (Å) each ring was assigned (NaN if none); ``rel_error`` of each match;
    ``camera_length_mm`` when the detector's physical pixel size was given.
    """

    pixel_size: float
    ring_radii: np.ndarray
    matched_d: np.ndarray
    rel_error: np.ndarray
    n_matched: int
    camera_length_mm: float | None = None


def pixel_size_from_rings(
    ring_radii: Sequence[float], d_spacings: Sequence[float], *, tolerance: float = 0.01
) -> RingCalibration:
    """Match measured ring radii (px) to d-spacings (Å) and fit the pixel size (Å⁻¹/px).

    Every (ring, d) pair proposes a scale ``(1/d)/r``; the scale matching the most rings within
    ``tolerance`` (relative) wins, ties broken by the smallest residual, and is then refined by
    least squares through the origin on the matched rings.
    """
    r = np.asarray(ring_radii, dtype=float)
    g = 1.0 / np.asarray(d_spacings, dtype=float)
    if r.size < 2 or g.size < 2:
        raise ValueError(f"need at least 2 ring radii and 2 d-spacings, got {r.size} and {g.size}")
    best = None
    for ri in r:
        for gj in g:
            s = gj / ri
            err = np.abs(r[:, None] * s - g[None, :]) / g[None, :]
            j = np.argmin(err, axis=1)
            ok = err[np.arange(r.size), j] < tolerance
            n = int(ok.sum())
            if n < 2:
                continue
            rms = float(np.sqrt(np.mean(err[np.arange(r.size), j][ok] ** 2)))
            key = (n, -rms)
            if best is None or key > best[0]:
                best = (key, s, j, ok)
    if best is None:
        raise ValueError("could not match at least 2 rings to the standard's d-spacings")
    _, s, j, ok = best
    s = float(np.sum(r[ok] * g[j[ok]]) / np.sum(r[ok] ** 2))
    md = np.where(ok, 1.0 / g[j], np.nan)
    rel = np.where(ok, (r * s - g[j]) / g[j], np.nan)
    return RingCalibration(s, r, md, rel, int(ok.sum()))


def find_ring_radii(
    pattern: np.ndarray,
    *,
    center: tuple[float, float],
    ellipticity=(1.0, 0.0),
    r_min: float = 3.0,
    prominence: float = 0.05,
    bin_width: float = 0.5,
) -> np.ndarray:
    """Radii (px, undistorted) of the rings in a pattern, from peaks of its radial profile.

    The radial profile's slowly varying background (a wide median) is removed first; rings are
    profile maxima with a prominence of at least ``prominence`` × the strongest one.
    """
    radii, prof = radial_profile(pattern, center=center, ellipticity=ellipticity, bin_width=bin_width)
    sel = radii >= r_min
    radii, prof = radii[sel], prof[sel]
    if prof.size < 8:
        raise ValueError("pattern too small for a radial profile")
    bg = ndimage.minimum_filter1d(ndimage.median_filter(prof, size=max(5, int(8 / bin_width))), 5)
    bg = ndimage.uniform_filter1d(bg, 5)
    p = prof - bg
    idx, props = signal.find_peaks(p, prominence=prominence * max(float(p.max()), 1e-30))
    out = []
    for i in idx:  # centroid over the three bins around each maximum
        lo, hi = max(i - 1, 0), min(i + 2, p.size)
        w = np.clip(p[lo:hi], 0, None)
        out.append(float(np.sum(w * radii[lo:hi]) / w.sum()) if w.sum() > 0 else float(radii[i]))
    return np.array(out)


def calibrate_pixel_size(
    pattern: np.ndarray,
    standard: str | Path | Sequence[float],
    *,
    calibration=None,
    center: tuple[float, float] | None = None,
    detector_pixel_um: float | None = None,
    tolerance: float = 0.01,
    r_min: float = 3.0,
):
    """Pixel size (Å⁻¹/px) from the rings of a known standard (e.g. polycrystalline gold).

    Parameters
    ----------
    pattern
        A ring pattern (e.g. the sum of all patterns of a gold-film scan).
    standard
        CIF path (gemmi) or d-spacings in Å.
    calibration
        Provides the centre and ellipticity (fit those first with :func:`ellipse_from_ring`);
        the returned calibration is a copy with ``pixel_size`` set.
    detector_pixel_um
        Physical pixel size of the detector in µm: then the camera length
        ``L = pixel / (λ · pixel_size)`` is reported too.

    Returns
    -------
    (Calibration or None, RingCalibration)
    """
    img = np.asarray(pattern, dtype=float)
    ell = calibration.ellipticity if calibration is not None else (1.0, 0.0)
    c = (
        center
        if center is not None
        else (
            calibration.detector_center(img.shape)
            if calibration is not None
            else ((img.shape[0] - 1) / 2, (img.shape[1] - 1) / 2)
        )
    )
    radii = find_ring_radii(img, center=c, ellipticity=ell, r_min=r_min)
    if radii.size < 2:
        raise ValueError(f"found {radii.size} ring(s) in the pattern; need at least 2 to calibrate")
    d, _ = standard_rings(standard)
    res = pixel_size_from_rings(radii, d, tolerance=tolerance)
    cal = calibration.replace(pixel_size=res.pixel_size) if calibration is not None else None
    if detector_pixel_um is not None:
        lam = cal.wavelength if cal is not None else None
        if lam is None:
            raise ValueError("camera length needs the beam energy: pass calibration=")
        L_mm = detector_pixel_um * 1e-3 / (lam * res.pixel_size)
        res = RingCalibration(
            res.pixel_size,
            res.ring_radii,
            res.matched_d,
            res.rel_error,
            res.n_matched,
            camera_length_mm=float(L_mm),
        )
    return cal, res
