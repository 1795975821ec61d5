"""An independent kinematic tilt-series generator (does NOT import ``virtual_aperture``).

Written from the project's *documented* conventions (docs/architecture.md, the
``virtual_aperture.model.calibration`` docstring, /work/shared/SCIENCE.md), with its own rotation,
reciprocal-lattice, Ewald-sphere and detector code, so that a sign or convention error in
``crystal/geometry.py`` cannot cancel out between the simulator and the indexer:

* lab frame: beam along +z, detector columns +x (= +k_x), rows +y (= +k_y); Å⁻¹ without 2π;
* the specimen tilts right-handedly by the tilt angle about an in-plane axis at ``tilt_axis_deg``
  from +k_x towards +k_y (``sense=-1`` simulates a microscope whose tilt sense is reversed);
* a reflection at ``g`` (lab) is excited by the distance of ``k0 + g`` from the Ewald sphere
  (``s = 1/λ − |k0 + g|``, positive inside), and lands ``(g_y, g_x) / pixel_size`` pixels from the
  beam centre;
* spot intensity: |F(h)|² (atoms with a Gaussian form factor, centring translations included in
  the structure, so systematic absences arise from the atoms) × a Gaussian rocking curve in s of
  width ``rocking_sigma`` (Å⁻¹).

:class:`CifCrystal` takes a published structure (a CIF or ``gemmi.SmallStructure``) instead: every
atom of the unit cell with the ITC Vol. C 4.3.2.2 electron scattering factors (gemmi's table of
coefficients, evaluated here) and its isotropic displacement. ``tilt_series(..., rotation=True)``
records each pattern over its tilt step, as a continuously rotating 3D ED acquisition does: a
Gaussian rocking curve normalised in s is integrated over the frame's sweep, so a reflection's
intensity summed over the frames is |F|²/(|ds/dφ|·Δφ) (the Lorentz factor of rotation data).

:func:`tilt_series` gives the per-grain patterns and the truth; :func:`compose_5d` builds a
``(tilt, scan_y, scan_x, k_y, k_x)`` array from grain masks (optionally an overlapping neighbour),
descan and Poisson noise; :func:`to_dataset` wraps it with the public API only at the boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# ---- physics ---------------------------------------------------------------------------------


def wavelength_A(kv: float) -> float:
    """Relativistic electron wavelength (Å): λ = h / sqrt(2 m e V (1 + eV/2mc²))."""
    h, m, e, c = 6.62607015e-34, 9.1093837015e-31, 1.602176634e-19, 299792458.0
    v = kv * 1e3
    return h / math.sqrt(2 * m * e * v * (1 + e * v / (2 * m * c * c))) * 1e10


def quaternion_rotation(axis, angle_deg: float) -> np.ndarray:
    """Right-handed rotation by ``angle_deg`` about ``axis`` from the unit quaternion."""
    u = np.asarray(axis, float)
    u = u / np.linalg.norm(u)
    half = math.radians(angle_deg) / 2
    w, (x, y, z) = math.cos(half), math.sin(half) * u
    return np.array(
        [
            [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z],
        ]
    )


def random_orientation(rng: np.random.Generator) -> np.ndarray:
    """A random rotation: QR of a Gaussian matrix with the sign fixed (Haar measure)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def direct_vectors(cell) -> np.ndarray:
    """Rows a, b, c (Å) in a frame with c along z and b in the yz plane (deliberately not the
    orthogonalisation crystal/geometry.py uses: only the lattice metric must agree)."""
    a, b, c, al, be, ga = cell
    al, be, ga = (math.radians(v) for v in (al, be, ga))
    cv = np.array([0.0, 0.0, c])
    bv = np.array([0.0, b * math.sin(al), b * math.cos(al)])
    ax_z = a * math.cos(be)
    ax_y = (a * b * math.cos(ga) - ax_z * bv[2]) / bv[1]
    ax_x = math.sqrt(a * a - ax_y * ax_y - ax_z * ax_z)
    return np.array([[ax_x, ax_y, ax_z], bv, cv])


def reciprocal_vectors(cell) -> np.ndarray:
    """Rows a*, b*, c* (Å⁻¹, no 2π): a* = (b × c) / V etc."""
    a, b, c = direct_vectors(cell)
    vol = float(a @ np.cross(b, c))
    return np.array([np.cross(b, c), np.cross(c, a), np.cross(a, b)]) / vol


# ---- structures: P (triclinic), C (monoclinic), I and F (cubic) --------------------------------

_TRANSLATIONS = {
    "P": [(0, 0, 0)],
    "C": [(0, 0, 0), (0.5, 0.5, 0)],
    "I": [(0, 0, 0), (0.5, 0.5, 0.5)],
    "F": [(0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)],
}


@dataclass(frozen=True)
class Crystal:
    """A conventional cell, its centring and the atoms of one lattice point (frac, weight)."""

    name: str
    cell: tuple
    centring: str
    atoms: tuple  # ((x, y, z, f0), ...)
    b_iso: float = 0.6  # Å², Debye–Waller-like damping of the form factor

    @property
    def lattice(self) -> str:
        return {"aP": "aP"}.get(self.name, self.name[:2])

    def all_atoms(self) -> np.ndarray:
        out = []
        for tx, ty, tz in _TRANSLATIONS[self.centring]:
            for x, y, z, f in self.atoms:
                out.append(((x + tx) % 1, (y + ty) % 1, (z + tz) % 1, f))
        return np.array(out)

    def structure_factors(self, hkl: np.ndarray, g: np.ndarray) -> np.ndarray:
        at = self.all_atoms()
        f = at[:, 3][None, :] * np.exp(-(self.b_iso + 2.0) * (g[:, None] ** 2) / 4)
        phase = 2j * math.pi * (hkl @ at[:, :3].T)
        return (f * np.exp(phase)).sum(axis=1)


CRYSTALS = {
    "aP": Crystal(
        "aP",
        (5.9, 6.8, 7.7, 82.0, 77.0, 68.0),
        "P",
        ((0, 0, 0, 12.0), (0.31, 0.22, 0.15, 8.0), (0.64, 0.41, 0.72, 8.0), (0.12, 0.77, 0.48, 6.0)),
    ),
    "mC": Crystal(
        "mC",
        (9.1, 5.6, 6.9, 90.0, 108.0, 90.0),
        "C",
        ((0, 0, 0, 14.0), (0.28, 0.0, 0.33, 8.0), (0.11, 0.5, 0.79, 8.0)),
    ),
    "cI": Crystal(
        "cI",
        (6.4, 6.4, 6.4, 90.0, 90.0, 90.0),
        "I",
        ((0, 0, 0, 14.0), (0.25, 0.25, 0.0, 8.0), (0.0, 0.5, 0.25, 6.0)),
    ),
    # fluorite type, primitive cell 5.70 Å rhombohedral (60°), as in issue 11
    "cF": Crystal(
        "cF",
        (8.06, 8.06, 8.06, 90.0, 90.0, 90.0),
        "F",
        ((0, 0, 0, 22.0), (0.25, 0.25, 0.25, 8.0), (0.75, 0.75, 0.75, 8.0)),
    ),
}


def _c4322(element) -> tuple[list, list]:
    """(a₁…a₅, b₁…b₅) of ITC Vol. C Table 4.3.2.2 for a gemmi Element."""
    c = list(element.c4322.get_coefs())
    return c[:5], c[5:]


class CifCrystal:
    """A published structure: every atom of the unit cell (gemmi expands the symmetry), electron
    scattering factors f(s) = Σ aᵢ exp(−bᵢ s²), s = |g|/2 (coefficients of ITC Vol. C Table
    4.3.2.2 from gemmi's ``Element.c4322``; this module evaluates them), × exp(−B s²) with B = 8π²U
    of each site, occupancies included. ``centring`` is the lattice letter of the space group;
    the absences come from the atoms, as with :class:`Crystal`."""

    def __init__(self, structure, *, name: str | None = None, hydrogens: bool = True):
        import gemmi

        st = gemmi.read_small_structure(str(structure)) if not hasattr(structure, "sites") else structure
        self.name = name or st.name
        self.cell = tuple(st.cell.parameters)
        self.centring = st.spacegroup.hm[0]
        sites = [s for s in st.get_all_unit_cell_sites() if hydrogens or s.element.name != "H"]
        self.frac = np.array([[s.fract.x, s.fract.y, s.fract.z] for s in sites]) % 1.0
        self.elements = [s.element.name for s in sites]
        self.occ = np.array([s.occ for s in sites])
        self.b_iso = np.array([8 * math.pi**2 * (s.u_iso if s.u_iso > 0 else 0.0125) for s in sites])
        self._coefs = {e: _c4322(gemmi.Element(e)) for e in set(self.elements)}

    def all_atoms(self) -> np.ndarray:
        """(n, 4): fractional x, y, z and the atomic number (for plotting and counts)."""
        import gemmi

        z = [gemmi.Element(e).atomic_number for e in self.elements]
        return np.column_stack([self.frac, z])

    def structure_factors(self, hkl: np.ndarray, g: np.ndarray) -> np.ndarray:
        hkl, g = np.asarray(hkl, float), np.asarray(g, float)
        out = np.zeros(len(hkl), complex)
        for lo in range(0, len(hkl), 4096):  # chunks: (reflections × atoms) arrays stay small
            s2 = (g[lo : lo + 4096] / 2) ** 2
            for e, (a, b) in self._coefs.items():
                sel = np.array([el == e for el in self.elements])
                fe = sum(ai * np.exp(-bi * s2) for ai, bi in zip(a, b, strict=True))
                dw = self.occ[sel][None, :] * np.exp(-self.b_iso[sel][None, :] * s2[:, None])
                phase = np.exp(2j * math.pi * (hkl[lo : lo + 4096] @ self.frac[sel].T))
                out[lo : lo + 4096] += fe * (dw * phase).sum(axis=1)
        return out


def reflections(crystal: Crystal, d_min: float):
    """(hkl (n, 3), g* rows in the crystal frame (n, 3), |F|² (n,)) with d ≥ d_min, |F|² > 0."""
    R = reciprocal_vectors(crystal.cell)
    lim = [math.ceil(np.linalg.norm(v) / d_min) + 1 for v in direct_vectors(crystal.cell)]
    rng = [np.arange(-m, m + 1) for m in lim]
    hkl = np.stack(np.meshgrid(*rng, indexing="ij"), -1).reshape(-1, 3)
    gv = hkl @ R
    g = np.linalg.norm(gv, axis=1)
    keep = (g > 0) & (g <= 1 / d_min)
    hkl, gv, g = hkl[keep], gv[keep], g[keep]
    f2 = np.abs(crystal.structure_factors(hkl, g)) ** 2
    nz = f2 > 1e-6 * f2.max()
    return hkl[nz], gv[nz], f2[nz]


# ---- a tilt series of isolated grains ----------------------------------------------------------


@dataclass
class Series:
    """Patterns and truth. ``patterns[i]`` is (n_tilt, ky, kx) of grain i (one unit of
    thickness, no noise); ``UB[i]`` has rows ``a*, b*, c*`` in the lab frame at zero tilt
    (so ``g_lab(0) = hkl @ UB``)."""

    crystals: list
    UB: list
    tilts_deg: np.ndarray
    tilt_axis_deg: float
    sense: int
    pixel_size: float
    kv: float
    center: tuple
    detector_shape: tuple
    patterns: list
    spots: list = field(default_factory=list)  # per grain, per tilt: dict(hkl, pos, s, intensity)


def render(shape, pos: np.ndarray, inten: np.ndarray, sigma_px: float) -> np.ndarray:
    """Sum of Gaussian spots (separable: one matrix product)."""
    ky = np.arange(shape[0])[:, None]
    kx = np.arange(shape[1])[:, None]
    gy = np.exp(-((ky - pos[None, :, 0]) ** 2) / (2 * sigma_px**2))
    gx = np.exp(-((kx - pos[None, :, 1]) ** 2) / (2 * sigma_px**2))
    return (gy * inten[None, :]) @ gx.T / (2 * math.pi * sigma_px**2)


def tilt_series(
    crystals,
    *,
    tilts=(-30, 30, 1),
    tilt_axis_deg=20.0,
    sense=1,
    pixel_size=0.03,
    kv=200.0,
    detector_shape=(64, 64),
    center=None,
    rocking_sigma=0.005,
    spot_sigma_px=0.9,
    d_min=None,
    seed=0,
    orientations=None,
    direct_beam=400.0,
    rotation=False,
) -> Series:
    """Kinematic patterns of each crystal (its own random orientation) over a tilt series.

    ``rotation=False``: stills, a spot's weight is exp(−s²/2σ²) at the tilt. ``rotation=True``:
    each pattern integrates the rocking curve over its step [t − Δ/2, t + Δ/2] (continuous
    rotation), weight σ√(2π)·[Φ(s₊/σ) − Φ(s₋/σ)]/|s₊ − s₋| with s± the excitation errors at the
    ends of the step (the same peak weight 1 as stills for a reflection that barely moves).
    """
    from scipy.special import ndtr

    rng = np.random.default_rng(seed)
    start, stop, step = tilts
    angles = np.round(np.arange(start, stop + step / 2, step), 6)
    lam = wavelength_A(kv)
    k = 1 / lam
    ny, nx = detector_shape
    c = np.array(center if center is not None else ((ny - 1) / 2 + 0.3, (nx - 1) / 2 - 0.2), float)
    if d_min is None:  # the detector's inscribed circle
        d_min = 1 / (pixel_size * (min(ny, nx) / 2 - 1))
    p = math.radians(tilt_axis_deg)
    axis = np.array([math.cos(p), math.sin(p), 0.0])
    pats, UBs, spots = [], [], []
    for i, cr in enumerate(crystals):
        U = orientations[i] if orientations is not None else random_orientation(rng)
        hkl, _, f2 = reflections(cr, d_min)
        UB = reciprocal_vectors(cr.cell) @ U.T  # rows a*, b*, c* in the lab at zero tilt
        g0 = hkl @ UB
        stack, sp = [], []
        for t in angles:
            g = g0 @ quaternion_rotation(axis, sense * t).T
            kp = g + np.array([0, 0, k])
            s = k - np.linalg.norm(kp, axis=1)
            pos = c[None, :] + g[:, [1, 0]] / pixel_size
            part = np.exp(-0.5 * (s / rocking_sigma) ** 2)
            if rotation:
                ends = [
                    k - np.linalg.norm(g0 @ quaternion_rotation(axis, sense * (t + d)).T + [0, 0, k], axis=1)
                    for d in (-step / 2, step / 2)
                ]
                ds = np.abs(ends[1] - ends[0])
                swept = np.abs(ndtr(ends[1] / rocking_sigma) - ndtr(ends[0] / rocking_sigma))
                wide = ds > 1e-3 * rocking_sigma
                part = np.where(
                    wide, swept * rocking_sigma * math.sqrt(2 * math.pi) / np.maximum(ds, 1e-300), part
                )
            on = (
                (part > 1e-3)
                & (pos[:, 0] > -3)
                & (pos[:, 1] > -3)
                & (pos[:, 0] < ny + 2)
                & (pos[:, 1] < nx + 2)
            )
            inten = f2[on] * part[on]
            img = render(detector_shape, pos[on], inten, spot_sigma_px)
            img += render(detector_shape, c[None, :], np.array([direct_beam * f2.max() / 100]), 1.2)
            stack.append(img)
            sp.append({"hkl": hkl[on], "positions": pos[on], "s": s[on], "intensity": inten, "F2": f2[on]})
        pats.append(np.array(stack))
        UBs.append(UB)
        spots.append(sp)
    return Series(
        list(crystals),
        UBs,
        angles,
        float(tilt_axis_deg),
        int(sense),
        float(pixel_size),
        float(kv),
        tuple(c),
        tuple(detector_shape),
        pats,
        spots,
    )


# ---- a 5D dataset: grain masks, an overlapping neighbour, descan, Poisson noise -----------------


def grain_masks(scan_shape, n_grains: int, *, overlap: float = 0.0, seed: int = 0) -> np.ndarray:
    """(n_grains, sy, sx) boolean masks: grain 0 a disk in the middle-left; grain 1 (if any) a
    disk on the right overlapping ``overlap`` of grain 0's positions; further grains elsewhere."""
    sy, sx = scan_shape
    yy, xx = np.mgrid[:sy, :sx]
    r = 0.3 * min(sy, sx)
    c0 = (sy / 2 - 0.5, sx * 0.35)
    m0 = (yy - c0[0]) ** 2 + (xx - c0[1]) ** 2 <= r * r
    masks = [m0]
    if n_grains > 1:
        best = None
        for cx in np.linspace(sx - 1, c0[1], 60):  # slide grain 1 until the overlap fraction is reached
            m1 = (yy - c0[0]) ** 2 + (xx - cx) ** 2 <= r * r
            f = (m0 & m1).sum() / m0.sum()
            if best is None or abs(f - overlap) < abs(best[0] - overlap):
                best = (f, m1)
        masks.append(best[1])
    for j in range(2, n_grains):
        cy = (sy - 1) * (0.15 + 0.7 * ((j * 0.37) % 1))
        masks.append((yy - cy) ** 2 + (xx - (sx - 1) * 0.1) ** 2 <= (0.6 * r) ** 2)
    return np.array(masks)


def compose_5d(
    series: Series,
    masks: np.ndarray,
    *,
    dose: float = 200.0,
    descan_px: float = 1.0,
    background: float = 0.5,
    seed: int = 0,
    noise: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(tilt, sy, sx, ky, kx) counts and the descan shifts (sy, sx, 2) px applied to every pattern.

    ``dose`` scales the spots of one position; descan moves the whole pattern linearly over the
    scan (direct beam and Bragg spots together).
    """
    rng = np.random.default_rng(seed)
    n_g, sy, sx = masks.shape
    ny, nx = series.detector_shape
    yy, xx = np.mgrid[:sy, :sx]
    shifts = np.stack(
        [descan_px * (yy / max(sy - 1, 1) - 0.5), descan_px * (xx / max(sx - 1, 1) - 0.5) * 0.7], -1
    )
    out = np.zeros((len(series.tilts_deg), sy, sx, ny, nx), np.float32)
    norm = [max(float(s["F2"].max()) for s in series.spots[g] if len(s["F2"])) for g in range(n_g)]
    for t in range(len(series.tilts_deg)):
        for y in range(sy):
            for x in range(sx):
                img = np.full((ny, nx), background, float)
                present = [g for g in range(n_g) if masks[g, y, x]]
                for g in present:
                    sp = series.spots[g][t]
                    img += (
                        dose
                        / norm[g]
                        * render((ny, nx), sp["positions"] + shifts[y, x], sp["intensity"], 0.9)
                    )
                bc = np.array(series.center) + shifts[y, x]
                img += render((ny, nx), bc[None], np.array([20.0 * dose]), 1.2)
                out[t, y, x] = rng.poisson(img) if noise else img
    return out, shifts


def uniform_5d(
    series: Series,
    *,
    grain: int = 0,
    scan_shape=(2, 2),
    peak_counts: float = 2e4,
    background: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """(tilt, sy, sx, ky, kx) Poisson counts of one grain filling a small scan (every position
    sees the same pattern): the strongest pixel of the series gets ``peak_counts`` per position
    on top of ``background`` counts/pixel. The summed pattern of the grain is then a
    ``sy·sx``-fold dose (what a virtual aperture over the grain gives)."""
    rng = np.random.default_rng(seed)
    pats = series.patterns[grain]
    scale = peak_counts / float(pats.max())
    sy, sx = scan_shape
    out = np.empty((len(pats), sy, sx, *pats.shape[1:]), np.float32)
    for t, img in enumerate(pats):
        lam = img * scale + background
        out[t] = rng.poisson(lam, size=(sy, sx, *img.shape))
    return out


def to_dataset(data5d: np.ndarray, series: Series, *, with_centre: bool = True, tilt_axis_deg=None):
    """Wrap as a virtual_aperture Dataset through the public constructor (the only import)."""
    import virtual_aperture as va

    cal = va.Calibration(
        pixel_size=series.pixel_size,
        beam_energy_kv=series.kv,
        tilt_angles_deg=tuple(float(a) for a in series.tilts_deg),
        tilt_axis_deg=series.tilt_axis_deg if tilt_axis_deg is None else tilt_axis_deg,
        center=tuple(series.center) if with_centre else None,
    )
    return va.Dataset(data5d, calibration=cal, source="independent kinematic generator")


def reduced_cell_of(crystal: Crystal):
    """Niggli-reduced primitive cell of a crystal, via gemmi (independent of the project)."""
    import gemmi

    gv = gemmi.GruberVector(gemmi.UnitCell(*crystal.cell), crystal.centring, True)
    gv.niggli_reduce()
    return tuple(gv.cell_parameters())


#: primitive vectors (columns) of each centring, in conventional fractional coordinates
PRIMITIVE = {
    "P": np.eye(3),
    "C": np.array([[0.5, -0.5, 0], [0.5, 0.5, 0], [0, 0, 1]]),
    "A": np.array([[1, 0, 0], [0, 0.5, -0.5], [0, 0.5, 0.5]]),
    "B": np.array([[0.5, 0, -0.5], [0, 1, 0], [0.5, 0, 0.5]]),
    "I": np.array([[-0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.5, 0.5, -0.5]]),
    "F": np.array([[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]),
    "R": np.array([[2 / 3, -1 / 3, -1 / 3], [1 / 3, 1 / 3, -2 / 3], [1 / 3, 1 / 3, 1 / 3]]),
}


def cell_matches(found_UB, true_UB_rows, *, found_centring="P", true_centring="P", rel=5e-3, deg=0.3):
    """Is the lattice of ``found_UB`` (columns a*, b*, c* of its conventional cell with
    ``found_centring``, the project's convention) the true one?

    Both are turned into primitive bases; the found one expressed in the true one must be an
    integer matrix of determinant ±1 (the same lattice, not a sub- or super-lattice), and the
    primitive cells in that common basis must agree within ``rel`` on lengths and ``deg`` on
    angles (i.e. the reduced cells agree). Returns ``(verdict, reason)`` with verdict one of
    ``"right"``, ``"inaccurate"`` (right lattice, metric off), ``"false"``.
    """
    found_direct = np.linalg.inv(np.asarray(found_UB, float)).T @ PRIMITIVE[found_centring]
    true_direct = np.linalg.inv(np.asarray(true_UB_rows, float).T).T @ PRIMITIVE[true_centring]
    M = np.linalg.solve(true_direct, found_direct)
    Mi = np.rint(M)
    if np.abs(M - Mi).max() > 0.15:
        return "false", f"not the same lattice (M off integers by {np.abs(M - Mi).max():.2f})"
    det = round(abs(np.linalg.det(Mi)))
    if det != 1:
        return "false", f"a {'super' if det > 1 else 'sub'}lattice (|det M| = {det})"

    def params(D):
        a = [np.linalg.norm(D[:, i]) for i in range(3)]
        ang = [
            math.degrees(math.acos(D[:, j] @ D[:, k] / (a[j] * a[k]))) for j, k in ((1, 2), (0, 2), (0, 1))
        ]
        return np.array(a), np.array(ang)

    la, aa = params(found_direct)
    lt, at = params(true_direct @ Mi)
    dl, da_ = float(np.max(np.abs(la / lt - 1))), float(np.max(np.abs(aa - at)))
    if dl > rel or da_ > deg:
        return "inaccurate", f"right lattice, inaccurate metric ({100 * dl:.2f} %, {da_:.2f}°)"
    return "right", "right cell"
