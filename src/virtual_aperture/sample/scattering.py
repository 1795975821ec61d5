"""Kinematic electron diffraction intensities for the built-in sample.

Structure factors come from gemmi's :class:`~gemmi.StructureFactorCalculatorE` (electron
scattering factors of ITC Vol. C Table 4.3.2.2, ``Element.c4322``, in Å, with isotropic
Debye–Waller factors). For a crystal of thickness ``t`` (Å) and a reflection with excitation
error ``s`` (Å⁻¹) the fraction of the incident beam scattered into the reflection is

    I = κ² · sin²(π t s_eff) / (π s_eff)²,   κ = λ γ |F| / V,   s_eff = sqrt(s² + κ²/π²)

(λ the relativistic wavelength in Å, γ the Lorentz factor, V the unit-cell volume in Å³).
For ``t ≪ ξ = π/κ`` this is the kinematic ``(λγ|F|t/V)² sinc²(π t s)`` (proportional to
|F|²); ``s_eff`` is the two-beam (Howie–Whelan) extinction-distance correction that keeps
I ≤ 1 for strong reflections of heavy, thick crystals.

Beam depletion: when many beams are excited at once (zone axes, thick or heavy crystals) the
summed intensities P = Σ I can approach or exceed the incident beam. Electrons are conserved by
capping the scattered fraction at ``MAX_SCATTERED`` of the beam that reaches the crystal: above
the cap all reflections of the pattern are scaled down by one common factor
(:func:`depletion`); below it (the usual case) intensities are exactly the kinematic ones.
"""

from __future__ import annotations

import hashlib

import gemmi
import numpy as np

from ..crystal.geometry import miller_indices_within
from .structures import crystallographic_copy

#: electron rest energy in keV
ELECTRON_REST_KEV = 510.99895


def lorentz_factor(beam_energy_kv: float) -> float:
    """Relativistic γ = 1 + eV / (m c²) of the beam electrons."""
    return 1.0 + float(beam_energy_kv) / ELECTRON_REST_KEV


def _structure_key(st: gemmi.SmallStructure) -> str:
    return hashlib.sha1(st.make_cif_block().as_string().encode()).hexdigest()


_SF_CACHE: dict[tuple[str, float], tuple[np.ndarray, np.ndarray]] = {}


def structure_factor_table(st: gemmi.SmallStructure, d_min: float) -> tuple[np.ndarray, np.ndarray]:
    """All reflections with d ≥ d_min that are not systematically absent, with |F| (Å).

    Returns ``(hkl (n, 3) int, |F| (n,) float)``. |F| is computed once per symmetry-unique
    reflection with gemmi and copied to its equivalents (results are cached per structure).
    """
    key = (_structure_key(st), round(float(d_min), 6))
    hit = _SF_CACHE.get(key)
    if hit is not None:
        return hit
    cp = crystallographic_copy(st)
    c = cp.cell
    hkl = miller_indices_within((c.a, c.b, c.c, c.alpha, c.beta, c.gamma), d_min)
    gops = cp.spacegroup.operations()
    asu = gemmi.ReciprocalAsu(cp.spacegroup)
    calc = gemmi.StructureFactorCalculatorE(cp.cell)
    keep = np.ones(len(hkl), bool)
    amp = np.zeros(len(hkl))
    unique: dict[tuple[int, int, int], float] = {}
    for i, h in enumerate(hkl.tolist()):
        if gops.is_systematically_absent(h):
            keep[i] = False
            continue
        a = tuple(asu.to_asu(h, gops)[0])
        f = unique.get(a)
        if f is None:
            f = abs(calc.calculate_sf_from_small_structure(cp, list(a)))
            unique[a] = f
        amp[i] = f
    keep &= amp > 1e-6 * max(float(amp.max(initial=0.0)), 1e-30)
    out = (hkl[keep].astype(np.int64), amp[keep])
    if len(_SF_CACHE) > 16:
        _SF_CACHE.clear()
    _SF_CACHE[key] = out
    return out


def gemmi_structure_factor(st: gemmi.SmallStructure, hkl) -> np.ndarray:
    """|F| (Å) of the given reflections straight from gemmi (reference for tests)."""
    cp = crystallographic_copy(st)
    calc = gemmi.StructureFactorCalculatorE(cp.cell)
    return np.array(
        [abs(calc.calculate_sf_from_small_structure(cp, [int(v) for v in h])) for h in np.atleast_2d(hkl)]
    )


def interaction_kappa(f_abs: np.ndarray, *, wavelength: float, gamma: float, volume: float) -> np.ndarray:
    """κ = λ γ |F| / V (Å⁻¹) = π / ξ_g, the inverse extinction distance times π."""
    return wavelength * gamma * np.asarray(f_abs, dtype=float) / volume


def rocking_intensity(kappa: np.ndarray, s: np.ndarray, thickness: np.ndarray) -> np.ndarray:
    """Fraction of the incident beam in a reflection (see the module docstring).

    Broadcasts ``kappa`` and ``s`` (Å⁻¹) against ``thickness`` (Å); zero where t ≤ 0.
    """
    kappa = np.asarray(kappa, dtype=float)
    s = np.asarray(s, dtype=float)
    t = np.asarray(thickness, dtype=float)
    s_eff = np.sqrt(s * s + (kappa / np.pi) ** 2)
    x = np.pi * s_eff
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.where(x > 0, np.sin(x * t) / np.where(x > 0, x, 1.0), t)
    return np.where(t > 0, kappa * kappa * val * val, 0.0)


#: largest fraction of the beam (after the support) that the crystals may scatter (all of it:
#: the cap only enforces electron conservation and leaves every other pattern kinematic)
MAX_SCATTERED = 1.0


def depletion(total: np.ndarray, background: float) -> tuple[np.ndarray, np.ndarray]:
    """Scale of the reflection intensities and direct-beam fraction for summed intensity ``total``.

    Returns ``(scale, direct)``: reflection r carries ``scale · I_r`` and the central disk
    ``direct`` of the incident beam, with ``scale = min(1, MAX_SCATTERED (1 − b) / P)`` and
    ``direct = 1 − b − scale · P`` (b = fraction scattered by the amorphous support), so the
    central disk, the support and the reflections always add up to the incident beam.
    """
    P = np.asarray(total, dtype=np.float64)
    cap = MAX_SCATTERED * (1.0 - float(background))
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(P > cap, cap / np.where(P > cap, P, 1.0), 1.0)
    return scale, np.clip(1.0 - float(background) - scale * P, 0.0, None)
