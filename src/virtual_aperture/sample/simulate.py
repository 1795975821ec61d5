"""``simulate_agglomerate``: the built-in crowded agglomerate of nanocrystals.

Model (all lengths in nm in real space, Å⁻¹ without 2π in reciprocal space):

1. **Structure** – a real published crystal structure (``load_structure``); kinematic
   structure factors from gemmi's electron scattering factors (``scattering.py``).
2. **Grains** – ``n_grains`` flat, irregular nanocrystals with random sizes, thickness
   plateaus and orientations U (half of them, by default, within 1° of a low-index zone
   axis), packed into one agglomerate so that they touch and, with ``overlap=True``, overlap
   in projection (``grains.py``). At overlapping scan positions the patterns of both grains
   add, each with its own local thickness.
3. **Diffraction** – each reflection ``h`` of a grain appears at
   ``crystal.geometry.predict_reflections(U B, h, tilt, …)``: detector position through the
   Ewald-sphere geometry at the chosen kV, excitation error ``s``; its intensity is
   ``κ² sin²(π t s_eff)/(π s_eff)²`` with the local projected thickness ``t`` (a sinc² rocking
   curve, two-beam-corrected for strong reflections), capped so that electrons are conserved
   when many beams are excited (``scattering.depletion``). Disks have the probe's convergence
   semi-angle; the central disk keeps the unscattered beam; an amorphous support adds a smooth
   radial background (``render.py``).
4. **Detector** – optional elliptical distortion (``geometry.distortion_matrix``) of the whole
   pattern, a smooth descan shift of the pattern across the scan, Poisson noise at ``dose``
   electrons per pattern, conversion to ``dtype`` (values above its maximum are clipped, with
   a warning).
5. **Tilt series** – the same grains rotated by ``geometry.tilt_rotation`` about the tilt
   axis, projected along the beam (thicker path, parallax from each grain's height) and
   shifted by a random-walk stage drift per tilt.

The dataset is a lazy dask array: nothing is rendered until a chunk is computed; every frame
depends only on ``seed`` and its indices, so it is identical however often it is computed.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import dask.array as da
import gemmi
import numpy as np
from dask.base import tokenize

from ..crystal.geometry import distortion_matrix, predict_reflections, reciprocal_basis
from ..model.calibration import Calibration, electron_wavelength
from ..model.dataset import Dataset, scan_chunks
from . import particles as gr
from .render import DetectorModel, FrameRenderer, ReflectionTable
from .scattering import interaction_kappa, lorentz_factor, structure_factor_table
from .structures import load_structure, structure_name, structure_source, summarize
from .truth import Truth

#: electrons per pattern that scale the noiseless (``dose=None``) expectation values
NOISELESS_DOSE = 1.0e4
MAX_TILT_DEG = 80.0
#: keep reflections with |s| below this many inverse grain thicknesses (sinc² < 1e-3 of its peak)
S_CUTOFF_THICKNESSES = 12.0
CHUNK_BYTES = 4 * 2**20
#: refuse structures/resolutions needing more reflections than this (memory and gemmi time)
MAX_REFLECTIONS = 1_000_000


def sname_hint(structure: Any, st: gemmi.SmallStructure) -> str:
    return f"structure {structure_name(structure, st)!r}"


def _bad(msg: str) -> ValueError:
    return ValueError(msg)


def _finite(name: str, v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise _bad(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise _bad(f"{name} must be finite, got {v!r}")
    return f


def _positive(name: str, v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise _bad(f"{name} must be a positive number, got {v!r}") from None
    if not (math.isfinite(f) and f > 0):
        raise _bad(f"{name} must be a positive number, got {v!r}")
    return f


def _range(name: str, v: Any) -> tuple[float, float]:
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = _positive(name, v)
        return (f, f)
    try:
        lo, hi = (float(x) for x in v)
    except (TypeError, ValueError):
        raise _bad(f"{name} must be a positive number or a (min, max) pair, got {v!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise _bad(f"{name} must be a (min, max) pair with 0 < min <= max, got {v!r}")
    return (lo, hi)


def _shape2(name: str, v: Any, minimum: int) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in v)
        ok = all(float(x) == int(x) for x in v)
    except (TypeError, ValueError):
        raise _bad(f"{name} must be a pair of integers, got {v!r}") from None
    if not ok or a < minimum or b < minimum:
        raise _bad(f"{name} must be two integers >= {minimum}, got {v!r}")
    return (a, b)


def _check_orientations(orientations: Any, n_grains: int) -> np.ndarray:
    try:
        U = np.array(orientations, dtype=float)
    except (TypeError, ValueError):
        raise _bad("orientations must be an (n_grains, 3, 3) array of rotation matrices") from None
    if U.shape != (n_grains, 3, 3):
        raise _bad(f"orientations must have shape ({n_grains}, 3, 3), got {U.shape}")
    eye = np.einsum("nij,nkj->nik", U, U)
    if not np.allclose(eye, np.eye(3), atol=1e-6) or not np.allclose(np.linalg.det(U), 1.0, atol=1e-6):
        raise _bad("orientations must be proper rotation matrices (orthonormal, determinant +1)")
    return U


def parse_tilts(tilts: Any) -> np.ndarray | None:
    """``None`` → 4D; a tuple of three numbers → (start, stop, step) inclusive; else the angles."""
    if tilts is None:
        return None
    if (
        isinstance(tilts, tuple)
        and len(tilts) == 3
        and all(isinstance(v, (int, float, np.number)) for v in tilts)
    ):
        start, stop, step = (float(v) for v in tilts)
        if step == 0 or not all(math.isfinite(v) for v in (start, stop, step)) or (stop - start) * step < 0:
            raise _bad(f"tilts=(start, stop, step) must step from start towards stop, got {tilts!r}")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        angles = start + step * np.arange(n)
    else:
        try:
            angles = np.asarray(list(tilts), dtype=float).ravel()
        except (TypeError, ValueError):
            raise _bad(
                f"tilts must be None, (start, stop, step) or a sequence of angles, got {tilts!r}"
            ) from None
    if angles.size == 0:
        raise _bad("tilts must contain at least one angle")
    if not np.all(np.isfinite(angles)) or np.any(np.abs(angles) > MAX_TILT_DEG):
        raise _bad(f"tilt angles must lie within ±{MAX_TILT_DEG:g}°, got {angles.min():g}…{angles.max():g}")
    if len(np.unique(angles)) != angles.size:
        raise _bad("tilt angles must be distinct")
    return angles


def simulate_agglomerate(
    *,
    structure: str | os.PathLike | gemmi.SmallStructure = "uio66",
    n_grains: int = 6,
    scan_shape: tuple[int, int] = (64, 64),
    detector_shape: tuple[int, int] = (128, 128),
    tilts: Sequence[float] | tuple[float, float, float] | None = None,
    tilt_axis_deg: float = 20.0,
    beam_energy_kv: float = 300.0,
    pixel_size: float = 0.015,
    probe_semiangle_mrad: float = 0.5,
    scan_step_nm: float = 2.0,
    grain_size_nm: float | tuple[float, float] | None = None,
    thickness_nm: float | tuple[float, float] = (15.0, 40.0),
    d_min: float | None = None,
    dose: float | None = 1.0e4,
    descan_shift_px: float = 2.0,
    ellipticity: tuple[float, float] = (1.0, 0.0),
    background: float = 0.05,
    overlap: bool = True,
    zone_axis_fraction: float = 0.5,
    orientations: np.ndarray | None = None,
    seed: int = 0,
    dtype: Any = np.uint16,
) -> tuple[Dataset, Truth]:
    """Simulate 4D-STEM (or a 5D tilt series) of a crowded agglomerate of nanocrystals.

    Parameters
    ----------
    structure
        A shipped structure name (``builtin_structures()``), a CIF path or a gemmi.SmallStructure.
    n_grains
        Number of nanocrystals (≥ 1).
    scan_shape, detector_shape
        ``(scan_y, scan_x)`` positions and ``(k_y, k_x)`` detector pixels.
    tilts
        ``None`` for a 4D scan; a tuple ``(start, stop, step)`` in degrees (stop included) or a
        list of angles for a 5D tilt series (|angle| ≤ 80°).
    tilt_axis_deg
        Tilt-axis direction on the detector (and scan), degrees from +k_x towards +k_y.
    beam_energy_kv
        Accelerating voltage (kV); sets λ and the Ewald-sphere curvature.
    pixel_size
        Detector pixel size in Å⁻¹ per pixel (0.015 puts 0.96 Å⁻¹ at the edge of 128 pixels).
    probe_semiangle_mrad
        Convergence semi-angle (mrad); disk radius = α / (λ · pixel_size) pixels.
    scan_step_nm
        Probe step (nm).
    grain_size_nm
        Grain diameter range (min, max) in nm; ``None`` scales it so the grains cover about a
        third of the scan field.
    thickness_nm
        Plateau thickness of each grain (nm): a number or a (min, max) range.
    d_min
        Smallest d-spacing simulated (Å); ``None`` = what reaches the detector corners.
    dose
        Electrons per pattern for Poisson noise; ``None`` = noiseless expectation values
        scaled to ``NOISELESS_DOSE`` (1e4) electrons per pattern.
    descan_shift_px
        Largest magnitude of the smooth, scan-dependent shift of the pattern (detector pixels).
    ellipticity
        ``(ratio, angle_deg)`` elliptical distortion of the detector; (1, 0) is none.
    background
        Fraction of the beam scattered by the amorphous support (0 ≤ background < 1).
    overlap
        Let grains overlap in projection (else they only come close).
    zone_axis_fraction
        Fraction of grains oriented within 1° of a low-index zone axis (rest random).
    orientations
        Optional ``(n_grains, 3, 3)`` orientation matrices U (crystal Cartesian → lab at zero
        tilt, the ``crystal.geometry`` convention) instead of random ones.
    seed
        Seeds everything (grains, orientations, drift, descan, noise).
    dtype
        Output dtype (unsigned integers are clipped to their maximum, with a warning).

    Returns
    -------
    (Dataset, Truth)
        The lazy dataset with its calibration, and the ground truth.
    """
    # ---- validate ------------------------------------------------------------------------
    if isinstance(n_grains, bool) or not isinstance(n_grains, (int, np.integer)) or n_grains < 1:
        raise _bad(f"n_grains must be a positive integer, got {n_grains!r}")
    n_grains = int(n_grains)
    scan_shape = _shape2("scan_shape", scan_shape, 4)
    detector_shape = _shape2("detector_shape", detector_shape, 16)
    angles = parse_tilts(tilts)
    tilt_axis_deg = _finite("tilt_axis_deg", tilt_axis_deg)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise _bad(f"seed must be a non-negative integer, got {seed!r}")
    beam_energy_kv = _positive("beam_energy_kv", beam_energy_kv)
    pixel_size = _positive("pixel_size", pixel_size)
    alpha = _positive("probe_semiangle_mrad", probe_semiangle_mrad)
    step = _positive("scan_step_nm", scan_step_nm)
    thick = _range("thickness_nm", thickness_nm)
    if d_min is not None:
        d_min = _positive("d_min", d_min)
    if dose is not None:
        dose = _positive("dose", dose)
    descan = _finite("descan_shift_px", descan_shift_px)
    if descan < 0:
        raise _bad(f"descan_shift_px must be >= 0, got {descan_shift_px!r}")
    try:
        ell = (float(ellipticity[0]), float(ellipticity[1]))
    except (TypeError, ValueError, IndexError):
        raise _bad(f"ellipticity must be (ratio, angle_deg), got {ellipticity!r}") from None
    if not (math.isfinite(ell[0]) and ell[0] > 0 and math.isfinite(ell[1])):
        raise _bad(f"ellipticity ratio must be positive, got {ellipticity!r}")
    background = _finite("background", background)
    if not (0 <= background < 1):
        raise _bad(f"background must be in [0, 1), got {background!r}")
    zone_axis_fraction = _finite("zone_axis_fraction", zone_axis_fraction)
    if not 0 <= zone_axis_fraction <= 1:
        raise _bad(f"zone_axis_fraction must be in [0, 1], got {zone_axis_fraction!r}")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise _bad(f"dtype {dtype!r} is not a numpy dtype") from None
    if dtype.kind not in "uif":
        raise _bad(f"dtype must be an integer or float type, got {dtype}")
    sy, sx = scan_shape
    field = (sy * step, sx * step)
    if grain_size_nm is None:
        mean_d = math.sqrt(0.35 * field[0] * field[1] * 4 / (math.pi * n_grains))
        size = (0.75 * mean_d, 1.25 * mean_d)
    else:
        size = _range("grain_size_nm", grain_size_nm)

    st = load_structure(structure)
    summ = summarize(st)
    wavelength = electron_wavelength(beam_energy_kv)
    gamma = lorentz_factor(beam_energy_kv)
    disk_r = alpha * 1e-3 / (wavelength * pixel_size)
    five_d = angles is not None
    angles_arr = angles if five_d else np.array([0.0])
    n_t = len(angles_arr)

    # ---- real space ------------------------------------------------------------------------
    ss = np.random.SeedSequence(int(seed))
    r_shape, r_orient, r_drift, r_descan = (np.random.default_rng(s) for s in ss.spawn(4))
    shapes = gr.place_grains(
        r_shape, n_grains, field_nm=field, size_nm=size, thickness_nm=thick, overlap=bool(overlap)
    )
    U = gr.random_orientations(r_orient, n_grains, summ.cell, zone_axis_fraction=zone_axis_fraction)
    if orientations is not None:
        U = _check_orientations(orientations, n_grains)
    drift = gr.stage_drift(r_drift, angles_arr) if five_d else np.zeros((1, 2))
    descan_map = gr.descan_map(r_descan, scan_shape, descan)
    X, Y = gr.scan_coordinates(scan_shape, step)
    thick_nm = np.zeros((n_grains, n_t, sy, sx), dtype=np.float32)
    for g, shape in enumerate(shapes):
        for ti, ang in enumerate(angles_arr):
            thick_nm[g, ti] = gr.projected_thickness(
                shape,
                X,
                Y,
                tilt_deg=float(ang),
                tilt_axis_deg=tilt_axis_deg,
                drift_nm=tuple(drift[ti] * step),
            )

    # ---- reciprocal space ------------------------------------------------------------------
    pad = int(math.ceil(descan)) + 2
    ky, kx = detector_shape
    if d_min is None:
        corner = (
            math.hypot(ky / 2 + pad, kx / 2 + pad) * pixel_size * max(ell[0], 1.0) + alpha * 1e-3 / wavelength
        )
        d_min = 1.0 / corner
    n_est = st.cell.volume * 4.0 / 3.0 * math.pi / d_min**3
    if n_est > MAX_REFLECTIONS:
        raise _bad(
            f"{sname_hint(structure, st)}: about {n_est:.2g} reflections to d_min = {d_min:.2f} Å (unit cell "
            f"{st.cell.volume:.0f} Å³) is too many to simulate; "
            "raise d_min or use a smaller detector/pixel_size"
        )
    hkl_all, f_all = structure_factor_table(st, d_min)
    kappa_all = interaction_kappa(f_all, wavelength=wavelength, gamma=gamma, volume=st.cell.volume)
    B = reciprocal_basis(summ.cell)
    center = ((ky - 1) / 2.0, (kx - 1) / 2.0)
    margin = pad + disk_r * max(ell[0], 1.0) + 1
    tables: list[list[ReflectionTable]] = []
    truth_tables: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for g in range(n_grains):
        row = []
        for ti, ang in enumerate(angles_arr):
            pos, s, _ = predict_reflections(
                U[g] @ B,
                hkl_all,
                tilt_deg=float(ang),
                tilt_axis_deg=tilt_axis_deg,
                wavelength=wavelength,
                pixel_size=pixel_size,
                center=center,
                ellipticity=ell,
            )
            t_max = max(float(thick_nm[g, ti].max()), float(thick[1])) * 10.0
            keep = (
                (np.abs(s) < S_CUTOFF_THICKNESSES / t_max)
                & (pos[:, 0] > -margin)
                & (pos[:, 0] < ky - 1 + margin)
            )
            keep &= (pos[:, 1] > -margin) & (pos[:, 1] < kx - 1 + margin)
            tab = ReflectionTable(hkl_all[keep], f_all[keep], kappa_all[keep], s[keep], pos[keep])
            row.append(tab)
            truth_tables[(g, ti)] = {
                "hkl": tab.hkl,
                "f_abs": tab.f_abs,
                "kappa": tab.kappa,
                "s": tab.s,
                "positions": tab.positions,
            }
        tables.append(row)

    det = DetectorModel(detector_shape, pad, disk_r, distortion_matrix(ell), pixel_size)
    renderer = FrameRenderer(
        det=det,
        tables=tables,
        thickness_a=thick_nm * 10.0,
        descan=descan_map,
        background=background,
        dose=dose,
        noiseless_dose=NOISELESS_DOSE,
        seed=int(seed),
        dtype=dtype,
        five_d=five_d,
    )
    peak = float(renderer.central.max()) * (dose if dose is not None else NOISELESS_DOSE)
    clipped = False
    if dtype.kind in "ui":
        top = np.iinfo(dtype).max
        if peak + (5 * math.sqrt(peak) if dose is not None else 0.5) > top:
            clipped = True
            warnings.warn(
                f"simulate_agglomerate: up to {peak:.0f} counts per pixel expected in the central disk, "
                f"above the {dtype} maximum {top}; those pixels "
                "are clipped (lower dose or use a wider dtype)",
                stacklevel=2,
            )

    # ---- lazy data -------------------------------------------------------------------------
    shape = ((n_t,) if five_d else ()) + (sy, sx, ky, kx)
    chunks = da.core.normalize_chunks(scan_chunks(shape, dtype.itemsize, target_bytes=CHUNK_BYTES), shape)
    params = dict(
        structure=structure_name(structure, st),
        n_grains=n_grains,
        scan_shape=scan_shape,
        detector_shape=detector_shape,
        tilt_angles_deg=None if not five_d else [float(a) for a in angles_arr],
        tilt_axis_deg=tilt_axis_deg,
        beam_energy_kv=beam_energy_kv,
        pixel_size=pixel_size,
        probe_semiangle_mrad=alpha,
        scan_step_nm=step,
        grain_size_nm=size,
        thickness_nm=thick,
        d_min=d_min,
        dose=dose,
        descan_shift_px=descan,
        ellipticity=ell,
        background=background,
        overlap=bool(overlap),
        zone_axis_fraction=zone_axis_fraction,
        seed=int(seed),
        dtype=str(dtype),
        disk_radius_px=disk_r,
        wavelength=wavelength,
    )
    name = "simulate-agglomerate-" + tokenize(params, summ.atoms, summ.cell, U)
    data = da.map_blocks(
        renderer, chunks=chunks, dtype=dtype, meta=np.empty((0,) * len(shape), dtype), name=name
    )
    cal = Calibration(
        scan_step_nm=step,
        pixel_size=pixel_size,
        beam_energy_kv=beam_energy_kv,
        tilt_angles_deg=tuple(float(a) for a in angles_arr) if five_d else None,
        tilt_axis_deg=tilt_axis_deg,
        center=center,
        ellipticity=ell,
        extra={"probe_semiangle_mrad": alpha, "detector_shape": detector_shape, "simulated": True},
    )
    sname = params["structure"]
    ds = Dataset(
        data, cal, source=f"simulated:{sname}", metadata={"format": "simulated", "simulation": params}
    )

    # ---- truth -----------------------------------------------------------------------------
    t_truth = thick_nm if five_d else thick_nm[:, 0]
    foot = t_truth > 0
    lab = np.where(foot.any(axis=0), np.argmax(t_truth, axis=0) + 1, 0).astype(np.int32)
    truth = Truth(
        labels=lab,
        footprints=foot,
        thickness=t_truth,
        orientations=U,
        cell=summ.cell,
        space_group=summ.space_group,
        atoms=summ.atoms,
        structure_name=sname,
        source=structure_source(structure),
        descan_shift=descan_map,
        drift=drift if five_d else np.zeros((1, 2)),
        calibration=cal,
        parameters=params,
        clipped=clipped,
        reflection_tables=truth_tables,
    )
    return ds, truth
