"""Least-squares refinement of orientation, cell and tilt axis on detector positions.

The model is :mod:`crystal.geometry`: a reflection ``h`` of a crystal with ``UB`` appears at tilt
``t`` at the transverse position of ``R(t, tilt axis) @ UB @ h`` on the detector (pixel size,
beam centre, ellipticity). Residuals are observed − predicted detector positions in pixels, so the
fit is independent of how far each spot is from the Ewald sphere.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from .geometry import distortion_matrix, excitation_error, reciprocal_basis, tilt_rotation

#: free cell parameters of each crystal family and how they expand to (a, b, c, α, β, γ)
_FAMILIES = {
    "c": (lambda p: (p[0], p[0], p[0], 90.0, 90.0, 90.0), lambda c: [c[0]]),
    "t": (lambda p: (p[0], p[0], p[1], 90.0, 90.0, 90.0), lambda c: [c[0], c[2]]),
    "o": (lambda p: (p[0], p[1], p[2], 90.0, 90.0, 90.0), lambda c: [c[0], c[1], c[2]]),
    "h": (lambda p: (p[0], p[0], p[1], 90.0, 90.0, 120.0), lambda c: [c[0], c[2]]),
    "m": (lambda p: (p[0], p[1], p[2], 90.0, p[3], 90.0), lambda c: [c[0], c[1], c[2], c[4]]),
    "a": (lambda p: tuple(p), lambda c: list(c)),
}


def expand_cell_esd(esd, family: str) -> tuple[float, ...]:
    """Standard uncertainties of the free parameters → six values (a, b, c, α, β, γ); angles fixed
    by the crystal family get 0 (as SHELX ZERR expects)."""
    full = list(_FAMILIES[family][0](list(esd)))
    for i in (3, 4, 5):
        if family != "a" and not (family == "m" and i == 4):
            full[i] = 0.0
    return tuple(float(v) for v in full)


def symmetrize_cell(cell, family: str) -> tuple[float, ...]:
    """Impose a crystal family's constraints on a measured cell (averaging equal lengths)."""
    a, b, c, al, be, ga = cell
    if family == "c":
        m = (a + b + c) / 3
        return (m, m, m, 90.0, 90.0, 90.0)
    if family in ("t", "h"):
        m = (a + b) / 2
        return (m, m, c, 90.0, 90.0, 120.0 if family == "h" else 90.0)
    if family == "o":
        return (a, b, c, 90.0, 90.0, 90.0)
    if family == "m":
        return (a, b, c, 90.0, be, 90.0)
    return tuple(cell)


def tilt_rotations(tilts_deg: np.ndarray, tilt_axis_deg: float) -> np.ndarray:
    """(n, 3, 3) tilt rotation matrices."""
    return np.stack([tilt_rotation(float(t), tilt_axis_deg) for t in np.atleast_1d(tilts_deg)])


def predict_positions(
    UB: np.ndarray,
    hkl: np.ndarray,
    tilts_deg: np.ndarray,
    *,
    tilt_axis_deg: float,
    pixel_size: float,
    centers: np.ndarray,
    ellipticity=(1.0, 0.0),
    wavelength: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Detector positions (n, 2) of reflections ``hkl`` each at its own tilt (and s if λ given)."""
    uniq, inv = np.unique(np.asarray(tilts_deg, dtype=float), return_inverse=True)
    R = tilt_rotations(uniq, tilt_axis_deg)[inv]
    g = np.einsum("nij,nj->ni", R, np.asarray(hkl, dtype=float) @ np.asarray(UB).T)
    off = np.stack([g[:, 1], g[:, 0]], axis=1) / pixel_size
    if tuple(ellipticity) != (1.0, 0.0):
        off = off @ distortion_matrix(ellipticity).T
    s = excitation_error(g, wavelength) if wavelength is not None else None
    return off + centers, s


def refine_ub(
    UB: np.ndarray,
    hkl: np.ndarray,
    positions: np.ndarray,
    tilts_deg: np.ndarray,
    *,
    tilt_axis_deg: float,
    pixel_size: float,
    centers: np.ndarray,
    ellipticity=(1.0, 0.0),
    refine_axis: bool = True,
    f_scale: float = 1.0,
    wavelength: float | None = None,
    s_sigma: float | None = None,
    s_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Refine an unconstrained UB (and the tilt axis) on detector positions.

    Returns ``(UB, tilt_axis_deg, residuals (n, 2) px)``. A robust (soft-L1) loss with scale
    ``f_scale`` pixels keeps mis-indexed peaks from pulling the fit. Spot positions barely depend
    on a rotation about the tilt axis; with ``wavelength`` and ``s_sigma`` (Å⁻¹) the excitation
    errors of the observed spots (expected ≈ 0 ± s_sigma) are added as residuals, which fixes it.
    """
    hkl = np.asarray(hkl, dtype=float)
    pos = np.asarray(positions, dtype=float)
    if len(hkl) < 4:
        raise ValueError(f"need at least 4 indexed peaks to refine, got {len(hkl)}")

    def unpack(p):
        return p[:9].reshape(3, 3), (p[9] if refine_axis else tilt_axis_deg)

    use_s = s_sigma is not None and wavelength is not None
    sw = 1.0 if s_weights is None else np.asarray(s_weights, dtype=float)

    def fun(p):
        ub, ax = unpack(p)
        pred, s = predict_positions(
            ub,
            hkl,
            tilts_deg,
            tilt_axis_deg=ax,
            pixel_size=pixel_size,
            centers=centers,
            ellipticity=ellipticity,
            wavelength=wavelength,
        )
        r = (pred - pos).ravel()
        return np.concatenate([r, sw * s / s_sigma]) if use_s else r

    p0 = np.concatenate([np.asarray(UB, float).ravel(), [tilt_axis_deg] if refine_axis else []])
    res = least_squares(fun, p0, loss="soft_l1", f_scale=f_scale, x_scale="jac")
    ub, ax = unpack(res.x)
    return ub, float(ax), res.fun[: 2 * len(hkl)].reshape(-1, 2)


def nearest_rotation(M: np.ndarray) -> np.ndarray:
    """The proper rotation closest to ``M`` (SVD polar decomposition)."""
    u, _, vt = np.linalg.svd(M)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def refine_cell(
    cell,
    U: np.ndarray,
    family: str,
    hkl: np.ndarray,
    positions: np.ndarray,
    tilts_deg: np.ndarray,
    *,
    tilt_axis_deg: float,
    pixel_size: float,
    centers: np.ndarray,
    ellipticity=(1.0, 0.0),
    refine_axis: bool = True,
    f_scale: float = 1.0,
    wavelength: float | None = None,
    s_sigma: float | None = None,
    s_weights: np.ndarray | None = None,
    refine_ellipticity: bool = False,
):
    """Refine a symmetry-constrained cell, orientation U and tilt axis on detector positions.

    ``family`` is one of ``c t o h m a`` (cubic … triclinic; ``h`` also for rhombohedral lattices in
    the hexagonal setting). ``wavelength``/``s_sigma`` add excitation-error residuals as in
    :func:`refine_ub`. With ``refine_ellipticity`` the detector's elliptical distortion is refined
    too (the same reflection seen at different azimuths across the tilts fixes it).
    Returns ``(cell, U, tilt_axis_deg, residuals (n, 2) px, cell_esd, ellipticity)``;
    ``cell_esd`` holds standard uncertainties of the free parameters from the Jacobian.
    """
    expand, free = _FAMILIES[family]
    c0 = np.array(free(symmetrize_cell(cell, family)), dtype=float)
    hkl = np.asarray(hkl, dtype=float)
    pos = np.asarray(positions, dtype=float)
    nc = c0.size

    na = nc + 3 + (1 if refine_axis else 0)

    def unpack(p):
        c = expand(p[:nc])
        rot = Rotation.from_rotvec(p[nc : nc + 3]).as_matrix() @ U
        ax = p[nc + 3] if refine_axis else tilt_axis_deg
        return c, rot, ax

    def ell_of(p):
        if not refine_ellipticity:
            return tuple(ellipticity)
        e1, e2 = p[na], p[na + 1]  # (ratio − 1)·(cos 2θ, sin 2θ): smooth through no distortion
        return (1.0 + math.hypot(e1, e2), math.degrees(math.atan2(e2, e1)) / 2.0)

    use_s = s_sigma is not None and wavelength is not None
    sw = 1.0 if s_weights is None else np.asarray(s_weights, dtype=float)

    def fun(p):
        c, rot, ax = unpack(p)
        try:
            B = reciprocal_basis(c)
        except ValueError:
            return np.full(pos.size + (len(hkl) if use_s else 0), 1e3)
        pred, s = predict_positions(
            rot @ B,
            hkl,
            tilts_deg,
            tilt_axis_deg=ax,
            pixel_size=pixel_size,
            centers=centers,
            ellipticity=ell_of(p),
            wavelength=wavelength,
        )
        r = (pred - pos).ravel()
        return np.concatenate([r, sw * s / s_sigma]) if use_s else r

    r0, t0 = float(ellipticity[0]) - 1.0, math.radians(2 * float(ellipticity[1]))
    p0 = np.concatenate(
        [
            c0,
            np.zeros(3),
            [tilt_axis_deg] if refine_axis else [],
            [r0 * math.cos(t0), r0 * math.sin(t0)] if refine_ellipticity else [],
        ]
    )
    res = least_squares(fun, p0, loss="soft_l1", f_scale=f_scale, x_scale="jac")
    c, rot, ax = unpack(res.x)
    # parameter uncertainties from the Jacobian at the optimum
    dof = max(res.fun.size - res.x.size, 1)
    s2 = float(np.sum(res.fun**2) / dof)
    try:
        cov = np.linalg.inv(res.jac.T @ res.jac) * s2
        esd = np.sqrt(np.clip(np.diag(cov)[:nc], 0, None))
    except np.linalg.LinAlgError:
        esd = np.full(nc, math.nan)
    ell = tuple(float(v) for v in ell_of(res.x))
    return tuple(float(v) for v in c), rot, float(ax), res.fun[: 2 * len(hkl)].reshape(-1, 2), esd, ell
