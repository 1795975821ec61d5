"""Diffraction geometry shared by the simulator, indexing and integration.

Frames and conventions (one set, used everywhere):

* **Lab frame**: the beam travels along ``+z``; the detector axes are ``x`` (= ``+k_x``, columns)
  and ``y`` (= ``+k_y``, rows). Reciprocal vectors are in Å⁻¹ without 2π.
* **Crystal Cartesian frame**: gemmi's orthogonalisation (a along x, b in the xy plane).
  ``B = reciprocal_basis(cell)`` has the reciprocal axes a*, b*, c* as columns, so the
  Cartesian reciprocal vector of Miller indices ``h`` is ``B @ h``.
* **Orientation** ``U`` (3×3 rotation) takes crystal Cartesian to lab at zero specimen tilt;
  ``UB = U @ B``.
* **Tilt**: the specimen rotates by ``tilt_deg`` (right-handed) about the tilt axis, which lies
  in the detector plane at ``tilt_axis_deg`` from ``+x`` towards ``+y``. At that tilt a
  reflection sits at ``g_lab = R(tilt) @ UB @ h``.
* **Ewald sphere**: incident wavevector ``k0 = (0, 0, 1/λ)``. The excitation error is
  ``s = (k² − |k0 + g|²) / (2k)``, positive inside the sphere, zero on it.
* **Detector**: a scattered beam ``k0 + g`` lands at the pixel whose offset from the beam
  centre is its transverse component ``(g_x, g_y) / pixel_size`` (Å⁻¹ per pixel); then the
  optional elliptical distortion is applied about the centre. Positions are ``(k_y, k_x)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Cell = Sequence[float]  # a, b, c (Å), alpha, beta, gamma (degrees)


def reciprocal_basis(cell: Cell) -> np.ndarray:
    """3×3 matrix whose columns are a*, b*, c* in the crystal Cartesian frame (Å⁻¹)."""
    a, b, c, al, be, ga = (float(v) for v in cell)
    if min(a, b, c) <= 0 or not all(0 < t < 180 for t in (al, be, ga)):
        raise ValueError(f"invalid unit cell {tuple(cell)}")
    al, be, ga = np.radians([al, be, ga])
    ca, cb, cg, sg = math.cos(al), math.cos(be), math.cos(ga), math.sin(ga)
    vol2 = 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg
    if vol2 <= 0:
        raise ValueError(f"unit cell angles {tuple(cell)[3:]} do not form a cell")
    # direct basis (columns a, b, c), gemmi/PDB orthogonalisation: a along x, b in xy plane
    A = np.array(
        [
            [a, b * cg, c * cb],
            [0.0, b * sg, c * (ca - cb * cg) / sg],
            [0.0, 0.0, c * math.sqrt(vol2) / sg],
        ]
    )
    return np.linalg.inv(A).T


def direct_basis(cell: Cell) -> np.ndarray:
    """3×3 matrix whose columns are a, b, c in the crystal Cartesian frame (Å)."""
    return np.linalg.inv(reciprocal_basis(cell)).T


def cell_from_basis(direct: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """(a, b, c, α, β, γ) from a matrix whose columns are the direct basis vectors."""
    a, b, c = (np.asarray(direct)[:, i] for i in range(3))
    la, lb, lc = (float(np.linalg.norm(v)) for v in (a, b, c))

    def ang(u: np.ndarray, v: np.ndarray) -> float:
        return float(np.degrees(np.arccos(np.clip(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)), -1, 1))))

    return (la, lb, lc, ang(b, c), ang(a, c), ang(a, b))


def rotation_about(axis: Sequence[float], angle_deg: float) -> np.ndarray:
    """Right-handed rotation matrix by ``angle_deg`` about ``axis`` (Rodrigues)."""
    u = np.asarray(axis, dtype=float)
    n = np.linalg.norm(u)
    if n == 0:
        raise ValueError("rotation axis must be non-zero")
    u = u / n
    t = math.radians(angle_deg)
    K = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    return np.eye(3) + math.sin(t) * K + (1 - math.cos(t)) * (K @ K)


def tilt_axis_vector(tilt_axis_deg: float) -> np.ndarray:
    """Unit vector of the tilt axis in the lab frame (in the detector plane)."""
    p = math.radians(tilt_axis_deg)
    return np.array([math.cos(p), math.sin(p), 0.0])


def tilt_rotation(tilt_deg: float, tilt_axis_deg: float) -> np.ndarray:
    """Lab-frame rotation of the specimen at ``tilt_deg`` about the tilt axis."""
    return rotation_about(tilt_axis_vector(tilt_axis_deg), tilt_deg)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly distributed random rotation matrix."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def excitation_error(g_lab: np.ndarray, wavelength: float) -> np.ndarray:
    """Excitation error s (Å⁻¹) of lab-frame reciprocal vectors ``g_lab`` (…, 3)."""
    k = 1.0 / wavelength
    g = np.asarray(g_lab, dtype=float)
    kp = g + np.array([0.0, 0.0, k])
    return (k * k - np.einsum("...i,...i->...", kp, kp)) / (2 * k)


def distortion_matrix(ellipticity: tuple[float, float]) -> np.ndarray:
    """2×2 matrix acting on ``(dy, dx)`` offsets: stretch by ``ratio`` along ``angle_deg``.

    ``ellipticity = (ratio, angle_deg)``; the angle is measured from +k_x towards +k_y.
    A circle of radius r becomes an ellipse with semi-axes ``ratio·r`` (along the angle) and r.
    """
    ratio, angle = float(ellipticity[0]), math.radians(float(ellipticity[1]))
    c, s = math.cos(angle), math.sin(angle)
    # in (x, y) coordinates: R diag(ratio, 1) R^T ; convert to (y, x) ordering
    rxy = np.array([[c, -s], [s, c]])
    m_xy = rxy @ np.diag([ratio, 1.0]) @ rxy.T
    return m_xy[::-1, ::-1].copy()


def lab_to_detector(
    g_lab: np.ndarray,
    *,
    pixel_size: float,
    center: tuple[float, float],
    ellipticity: tuple[float, float] = (1.0, 0.0),
) -> np.ndarray:
    """Detector positions ``(k_y, k_x)`` in pixels of lab-frame vectors ``g_lab`` (n, 3)."""
    g = np.atleast_2d(np.asarray(g_lab, dtype=float))
    off = np.stack([g[:, 1], g[:, 0]], axis=1) / pixel_size
    if tuple(ellipticity) != (1.0, 0.0):
        off = off @ distortion_matrix(ellipticity).T
    return off + np.asarray(center, dtype=float)


def detector_to_lab(
    positions: np.ndarray,
    *,
    wavelength: float,
    pixel_size: float,
    center: tuple[float, float],
    ellipticity: tuple[float, float] = (1.0, 0.0),
) -> np.ndarray:
    """Lab-frame reciprocal vectors (n, 3) on the Ewald sphere for detector positions (n, 2).

    Inverse of :func:`lab_to_detector` for reflections exactly on the sphere (s = 0).
    """
    p = np.atleast_2d(np.asarray(positions, dtype=float)) - np.asarray(center, dtype=float)
    if tuple(ellipticity) != (1.0, 0.0):
        p = p @ np.linalg.inv(distortion_matrix(ellipticity)).T
    gy, gx = p[:, 0] * pixel_size, p[:, 1] * pixel_size
    k = 1.0 / wavelength
    gz = np.sqrt(np.maximum(k * k - gx * gx - gy * gy, 0.0)) - k
    return np.stack([gx, gy, gz], axis=1)


def detector_to_crystal_frame(
    positions: np.ndarray,
    *,
    tilt_deg: float,
    tilt_axis_deg: float,
    wavelength: float,
    pixel_size: float,
    center: tuple[float, float],
    ellipticity: tuple[float, float] = (1.0, 0.0),
) -> np.ndarray:
    """Map detector peaks of one tilt to reciprocal vectors in the specimen frame at zero tilt.

    The result for a reflection ``h`` equals ``UB @ h`` (up to measurement error), so peaks from
    all tilts of a series land in one common 3D reciprocal space for indexing.
    """
    g_lab = detector_to_lab(
        positions, wavelength=wavelength, pixel_size=pixel_size, center=center, ellipticity=ellipticity
    )
    return g_lab @ tilt_rotation(tilt_deg, tilt_axis_deg)  # R^T g, row-vector form


def predict_reflections(
    UB: np.ndarray,
    hkl: np.ndarray,
    *,
    tilt_deg: float,
    tilt_axis_deg: float,
    wavelength: float,
    pixel_size: float,
    center: tuple[float, float],
    ellipticity: tuple[float, float] = (1.0, 0.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where reflections ``hkl`` (n, 3) appear at one tilt.

    Returns ``(positions (n, 2) as (k_y, k_x) pixels, excitation errors s (n,) in Å⁻¹,
    g_lab (n, 3))``. The caller decides which are excited (|s| small) and on the detector.
    """
    h = np.atleast_2d(np.asarray(hkl, dtype=float))
    g_lab = (tilt_rotation(tilt_deg, tilt_axis_deg) @ np.asarray(UB, dtype=float) @ h.T).T
    s = excitation_error(g_lab, wavelength)
    pos = lab_to_detector(g_lab, pixel_size=pixel_size, center=center, ellipticity=ellipticity)
    return pos, s, g_lab


def miller_indices_within(cell: Cell, d_min: float) -> np.ndarray:
    """All (h, k, l) ≠ 0 with d-spacing ≥ d_min (Å), as an (n, 3) int array."""
    if not d_min > 0:
        raise ValueError(f"d_min must be positive, got {d_min}")
    B = reciprocal_basis(cell)
    gmax = 1.0 / d_min
    # |h_i| = |a_i · g| <= |a_i| gmax ; rows of inv(B) are the direct basis vectors
    lim = [int(math.ceil(gmax * np.linalg.norm(row))) + 1 for row in np.linalg.inv(B)]
    r = [np.arange(-m, m + 1) for m in lim]
    hkl = np.stack(np.meshgrid(*r, indexing="ij"), axis=-1).reshape(-1, 3)
    g = np.linalg.norm(hkl @ B.T, axis=1)
    keep = (g <= gmax) & (g > 0)
    return hkl[keep]
