"""Real-space model of the agglomerate: grain placement, shapes, thickness, tilt, drift.

Each grain is a flat, irregular particle lying in the specimen plane: an outline
``r(θ) = R (1 + Σ_k a_k cos(kθ + φ_k))`` (k = 2..4), a height ``z`` above the specimen
mid-plane and a thickness profile that rises linearly from the rim over the outer 30 % of
the radius to a plateau ``T`` (a faceted crystal seen in projection). At a specimen tilt the
scan position ``(X, Y)`` (lab frame, nm, beam along z) is traced along the beam to the
grain's plane with :func:`crystal.geometry.tilt_rotation`; the projected thickness is the
plateau profile there divided by ``|cos|`` of the tilt (longer path through the slab).
Stage drift shifts the whole agglomerate by a random walk between tilts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..crystal.geometry import direct_basis, random_rotation, rotation_about, tilt_rotation

RIM_FRACTION = 0.3
_HARMONICS = (2, 3, 4)


@dataclass(frozen=True)
class GrainShape:
    center_nm: tuple[float, float]  # (X, Y) in the specimen plane, nm from the scan centre
    height_nm: float
    radius_nm: float
    harmonics: tuple[tuple[float, float], ...]  # (amplitude, phase) for k = 2, 3, 4
    thickness_nm: float  # plateau thickness

    @property
    def max_radius_nm(self) -> float:
        return self.radius_nm * (1.0 + sum(a for a, _ in self.harmonics))

    def thickness_at(self, x_nm: np.ndarray, y_nm: np.ndarray) -> np.ndarray:
        """Thickness (nm) along the specimen normal at specimen-plane points."""
        dx = x_nm - self.center_nm[0]
        dy = y_nm - self.center_nm[1]
        theta = np.arctan2(dy, dx)
        r_edge = np.full_like(theta, self.radius_nm)
        for k, (a, ph) in zip(_HARMONICS, self.harmonics):
            r_edge = r_edge + self.radius_nm * a * np.cos(k * theta + ph)
        rho = np.hypot(dx, dy) / r_edge
        return self.thickness_nm * np.clip((1.0 - rho) / RIM_FRACTION, 0.0, 1.0)


def place_grains(
    rng: np.random.Generator,
    n_grains: int,
    *,
    field_nm: tuple[float, float],
    size_nm: tuple[float, float],
    thickness_nm: tuple[float, float],
    overlap: bool,
) -> list[GrainShape]:
    """Random touching (and, with ``overlap``, overlapping) grains forming one agglomerate."""
    fy, fx = field_nm
    shapes: list[GrainShape] = []
    for i in range(n_grains):
        radius = 0.5 * rng.uniform(*size_nm)
        harm = tuple((float(rng.uniform(0.03, 0.09)), float(rng.uniform(0, 2 * np.pi))) for _ in _HARMONICS)
        thick = float(rng.uniform(*thickness_nm))
        height = float(rng.uniform(-0.5, 0.5) * thick)
        proto = GrainShape((0.0, 0.0), height, radius, harm, thick)
        if i == 0:
            center = tuple(rng.normal(0.0, 0.02 * min(fx, fy), 2))
        else:
            center = None
            for attempt in range(400):
                j = int(rng.integers(len(shapes)))
                other = shapes[j]
                phi = rng.uniform(0, 2 * np.pi)
                if overlap:
                    d = (radius + other.radius_nm) * rng.uniform(0.6, 0.9)
                else:
                    d = (proto.max_radius_nm + other.max_radius_nm) * rng.uniform(1.02, 1.12) + 0.5
                c = (other.center_nm[0] + d * math.cos(phi), other.center_nm[1] + d * math.sin(phi))
                slack = 1.0 if attempt < 300 else 1.5  # relax the field constraint late
                if abs(c[0]) > slack * (fx / 2 - 0.6 * radius) or abs(c[1]) > slack * (fy / 2 - 0.6 * radius):
                    continue
                ok = True
                for k in shapes:
                    dist = math.hypot(c[0] - k.center_nm[0], c[1] - k.center_nm[1])
                    if overlap and dist < 0.55 * (radius + k.radius_nm):
                        ok = False  # never hide one grain under another
                    if not overlap and dist < proto.max_radius_nm + k.max_radius_nm + 0.5:
                        ok = False
                if ok:
                    center = c
                    break
            if center is None:
                raise ValueError(
                    f"cannot place {n_grains} grains of {size_nm[0]}–{size_nm[1]} nm in a "
                    f"{fy:.0f}×{fx:.0f} nm scan field; use fewer or smaller grains or a larger scan"
                )
        shapes.append(GrainShape((float(center[0]), float(center[1])), height, radius, harm, thick))
    # centre the agglomerate (area-weighted) in the scan field
    w = np.array([s.radius_nm**2 for s in shapes])
    cx = float(np.average([s.center_nm[0] for s in shapes], weights=w))
    cy = float(np.average([s.center_nm[1] for s in shapes], weights=w))
    return [
        GrainShape(
            (s.center_nm[0] - cx, s.center_nm[1] - cy), s.height_nm, s.radius_nm, s.harmonics, s.thickness_nm
        )
        for s in shapes
    ]


def scan_coordinates(scan_shape: tuple[int, int], step_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """Lab coordinates (X, Y) in nm of every scan position, origin at the scan centre."""
    sy, sx = scan_shape
    y = (np.arange(sy) - (sy - 1) / 2.0) * step_nm
    x = (np.arange(sx) - (sx - 1) / 2.0) * step_nm
    return np.meshgrid(x, y)  # X (sy, sx), Y (sy, sx)


def projected_thickness(
    shape: GrainShape,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    tilt_deg: float,
    tilt_axis_deg: float,
    drift_nm: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Projected thickness (nm) of one grain at lab positions (X, Y) at one tilt."""
    R = tilt_rotation(tilt_deg, tilt_axis_deg)
    Xs = X - drift_nm[1]
    Ys = Y - drift_nm[0]
    # along the beam (X, Y, z) to the grain plane p_z = height, p = R^T v
    z = (shape.height_nm - R[0, 2] * Xs - R[1, 2] * Ys) / R[2, 2]
    px = R[0, 0] * Xs + R[1, 0] * Ys + R[2, 0] * z
    py = R[0, 1] * Xs + R[1, 1] * Ys + R[2, 1] * z
    return shape.thickness_at(px, py) / abs(R[2, 2])


def stage_drift(rng: np.random.Generator, tilt_angles: np.ndarray, *, step_px: float = 0.6) -> np.ndarray:
    """Random-walk stage drift (n_tilts, 2) as (dy, dx) scan pixels, zero at the tilt nearest 0°."""
    n = len(tilt_angles)
    if n <= 1:
        return np.zeros((n, 2))
    steps = rng.normal(0.0, step_px, size=(n, 2)) + rng.normal(0.0, 0.3 * step_px, size=2)
    walk = np.cumsum(steps, axis=0)
    return walk - walk[int(np.argmin(np.abs(tilt_angles)))]


def low_index_zone_axes(cell) -> np.ndarray:
    """Unit vectors (Cartesian crystal frame) of the zone axes [uvw] with |u|,|v|,|w| ≤ 1."""
    A = direct_basis(cell)
    axes = []
    for u in (0, 1):
        for v in (-1, 0, 1):
            for w in (-1, 0, 1):
                if (u, v, w) == (0, 0, 0) or (u == 0 and (v < 0 or (v == 0 and w < 0))):
                    continue
                vec = A @ np.array([u, v, w], float)
                axes.append(vec / np.linalg.norm(vec))
    return np.array(axes)


def random_orientations(
    rng: np.random.Generator, n: int, cell, *, zone_axis_fraction: float, zone_tolerance_deg: float = 1.0
) -> np.ndarray:
    """(n, 3, 3) orientation matrices U; a fraction of them within a few degrees of a zone axis."""
    out = np.empty((n, 3, 3))
    axes = low_index_zone_axes(cell)
    n_zone = int(round(zone_axis_fraction * n))
    for i in range(n):
        if i < n_zone:
            d = axes[int(rng.integers(len(axes)))]
            z = np.array([0.0, 0.0, 1.0])
            v = np.cross(d, z)
            ang = math.degrees(math.acos(np.clip(d @ z, -1, 1)))
            R0 = (
                rotation_about(v, ang)
                if np.linalg.norm(v) > 1e-9
                else (np.eye(3) if d[2] > 0 else rotation_about([1, 0, 0], 180))
            )
            spin = rotation_about(z, rng.uniform(0, 360))
            tilt_ax = np.array([*rng.normal(size=2), 0.0])
            off = rotation_about(tilt_ax, rng.uniform(0, zone_tolerance_deg))
            out[i] = off @ spin @ R0
        else:
            out[i] = random_rotation(rng)
    return out[rng.permutation(n)]


def descan_map(rng: np.random.Generator, scan_shape: tuple[int, int], max_shift_px: float) -> np.ndarray:
    """Smooth descan shift (sy, sx, 2) as (dy, dx) detector pixels, max magnitude ``max_shift_px``."""
    sy, sx = scan_shape
    out = np.zeros((sy, sx, 2))
    if max_shift_px <= 0:
        return out
    v, u = np.meshgrid(np.linspace(-1, 1, sy), np.linspace(-1, 1, sx), indexing="ij")
    c = rng.normal(size=(2, 4))
    ph = rng.uniform(0, 2 * np.pi, size=2)
    for k in range(2):
        out[..., k] = (
            c[k, 0] * u
            + c[k, 1] * v
            + 0.5 * c[k, 2] * u * v
            + 0.4 * c[k, 3] * np.sin(np.pi * (u + v) / 2 + ph[k])
        )
    mag = np.hypot(out[..., 0], out[..., 1]).max()
    return out * (max_shift_px / mag) if mag > 0 else out
