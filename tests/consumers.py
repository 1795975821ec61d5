"""Independent consumers of the project's exports: cctbx (iotbx, cctbx.xray), gemmi, mrcfile.

Nothing here imports ``virtual_aperture``: every helper reads a file the way a crystallographic
program does and returns plain numbers, so tests can compare them with what the project reports.

cctbx runs in a fresh interpreter (:func:`cctbx`): its Boost.Python extension crashes the process
(segmentation fault in ``boost_adaptbx/boost/python.py``) when numba or gemmi was imported
before it, which pytest's plugins and the project always do. ``cctbx("name", *args)`` calls
``name(*args)`` of this module in a subprocess and returns its JSON result.

- :func:`cif_validation` — iotbx.cif against the ``cif_core`` dictionary shipped with cctbx.
- :func:`xray_structure_from_cif`, :func:`xray_structure_from_res` — cctbx builds the model.
- :func:`f_obs_from_reflections_cif`, :func:`f_obs_from_hkl` — iotbx reads the data (HKLF 4 / _refln).
- :func:`cctbx_r1` — R1 recomputed by cctbx with its electron scattering table.
- :func:`smv_geometry` — an SMV header interpreted exactly as dxtbx's ``FormatSMVADSC`` does.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

__all__ = [
    "cctbx",
    "cctbx_batch",
    "cctbx_r1",
    "check_cif",
    "cif_validation",
    "f_obs_from_hkl",
    "f_obs_from_reflections_cif",
    "hkl_as_cctbx",
    "recompute_r1",
    "smv_geometry",
    "smv_header",
    "xray_structure_from_cif",
    "xray_structure_from_res",
]


def cif_validation(path) -> tuple[int, int, str]:
    """Validate every block of a CIF against cif_core (iotbx.cif.validation).

    Returns ``(errors, warnings, text of the messages)``.
    """
    import io

    import iotbx.cif
    from iotbx.cif import validation

    cif = iotbx.cif.reader(file_path=str(path), strict=True).model()
    core = validation.smart_load_dictionary(name="cif_core.dic")
    n_err = n_warn = 0
    buf = io.StringIO()
    for block in cif.values():
        handler = validation.ErrorHandler()
        core.set_error_handler(handler)
        block.validate(core)
        handler.show(out=buf)
        n_err += handler.error_count
        n_warn += handler.warning_count
    return n_err, n_warn, buf.getvalue()


def xray_structure_from_cif(path):
    """The ``cctbx.xray.structure`` iotbx.cif builds from a structure CIF (one block)."""
    import iotbx.cif

    structures = iotbx.cif.reader(file_path=str(path)).build_crystal_structures()
    if len(structures) != 1:
        raise ValueError(f"{path}: {len(structures)} structures, expected one")
    return next(iter(structures.values()))


def xray_structure_from_res(path):
    """The ``cctbx.xray.structure`` iotbx.shelx builds from a SHELX .res/.ins file.

    iotbx.shelx does not implement the long SFAC form (``SFAC label a1 b1 … a4 b4 c f' f" mu r
    wt``: ``NotImplementedError`` in ``iotbx/shelx/parsers.py``), which SHELXL needs for electron
    scattering factors; each long card is reduced to its label here — the coefficients are
    replaced by cctbx's own electron table in :func:`cctbx_r1`. Everything else (CELL, LATT, SYMM,
    atom lines with SHELX's sof = 10 + occupancy·symmetry factor, Uiso) is parsed by iotbx.
    """
    import io

    from cctbx import xray

    out, labels, at, skip = [], [], None, False
    for line in Path(path).read_text().splitlines():
        if skip:
            skip = line.rstrip().endswith("=")
            continue
        tok = line.split()
        if tok and tok[0].upper() == "SFAC":  # iotbx keeps only the last SFAC card: collect them
            long_form = len(tok) > 2 and _is_number(tok[2])
            labels.extend(tok[1:2] if long_form else tok[1:])
            skip = line.rstrip().endswith("=")
            at = len(out) if at is None else at
            continue
        out.append(line)
    if at is not None:
        out.insert(at, "SFAC " + " ".join(labels))
    return xray.structure.from_shelx(file=io.StringIO("\n".join(out) + "\n"), strictly_shelxl=True)


def _is_number(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def f_obs_from_reflections_cif(path, crystal_symmetry=None):
    """|F_obs| (sqrt of max(F², 0)) from a ``_refln`` CIF, as a cctbx miller array."""
    import iotbx.cif
    from cctbx.array_family import flex

    arrays = iotbx.cif.reader(file_path=str(path)).as_miller_arrays(crystal_symmetry=crystal_symmetry)
    iobs = [a for a in arrays if a.is_xray_intensity_array()]
    if not iobs:
        raise ValueError(f"{path}: no intensity array")
    i = iobs[0]
    f = flex.sqrt(i.data().deep_copy().set_selected(i.data() < 0, 0.0))
    return i.customized_copy(data=f, sigmas=None).set_observation_type_xray_amplitude()


def f_obs_from_hkl(path, crystal_symmetry, *, merge: bool = True):
    """Intensities of an HKLF 4 file read by iotbx (``hklf`` reader), optionally merged by cctbx.

    Returns the (merged) intensity array and, when merged, the cctbx merging object.
    """
    from iotbx.reflection_file_reader import any_reflection_file

    arrays = any_reflection_file(f"{path}=hklf4").as_miller_arrays(crystal_symmetry=crystal_symmetry)
    i = arrays[0]
    if not merge:
        return i, None
    m = i.merge_equivalents()
    return m.array(), m


def cctbx_r1(xs, f_obs, *, scale=None) -> float:
    """R1 = Σ||Fo| − k|Fc|| / Σ|Fo| with |Fc| from cctbx's direct summation and the electron table.

    ``scale`` None: cctbx's least-squares scale (``r1_factor(scale_factor=Auto)``).
    """
    from libtbx import Auto

    xs = xs.deep_copy_scatterers()
    xs.scattering_type_registry(table="electron")
    fc = f_obs.structure_factors_from_scatterers(xs, algorithm="direct").f_calc().amplitudes()
    return float(f_obs.r1_factor(fc, scale_factor=Auto if scale is None else scale))


def smv_header(path) -> tuple[int, dict]:
    """(header size, key → value) of an SMV file, parsed as dxtbx ``FormatSMV.get_smv_header``."""
    raw = Path(path).read_bytes()
    if raw[:15] != b"{\nHEADER_BYTES=":
        raise ValueError(f"{path} is not SMV (dxtbx FormatSMV.understand)")
    size = int(raw[:45].decode("ascii", "ignore").split("\n")[1].split("=")[1].replace(";", "").strip())
    head = {}
    for record in raw[:size].decode("ascii", "ignore").split("\n"):
        if record == "}":
            break
        if "=" not in record:
            continue
        key, value = record.replace(";", "").split("=")
        head[key.strip()] = value.strip()
    return size, head


def smv_geometry(path) -> dict:
    """The experiment model dxtbx ``FormatSMVADSC`` builds from an SMV file, without dxtbx.

    From dxtbx ``format/FormatSMVADSC.py`` (cctbx/dxtbx, ``_detector``/``_scan``/``_goniometer``):
    ``detector_factory.simple("CCD", DISTANCE, (BEAM_CENTER_Y, BEAM_CENTER_X), "+x", "-y", ...)``
    — the beam centre is (fast, slow) in mm from the corner of the first pixel; the fast axis is
    +x, and ``goniometer_factory.single_axis()`` puts the rotation axis along +x (the fast axis);
    the trusted range is (1, 65534): 0 marks pixels without data, 65535 overloads. ``FormatSMV``
    reads SIZE1 × SIZE2 uint16 and reshapes to (SIZE2, SIZE1), i.e. SIZE1 is the fast size.
    """
    size, h = smv_header(path)
    fast, slow = int(h["SIZE1"]), int(h["SIZE2"])
    dt = "<u2" if h["BYTE_ORDER"] == "little_endian" else ">u2"
    data = np.frombuffer(Path(path).read_bytes()[size:], dtype=dt, count=fast * slow).reshape(slow, fast)
    px = float(h["PIXEL_SIZE"])
    bc_fast_mm, bc_slow_mm = float(h["BEAM_CENTER_Y"]), float(h["BEAM_CENTER_X"])
    return {
        "data": data,
        "pixel_mm": px,
        "distance_mm": float(h["DISTANCE"]),
        "wavelength": float(h["WAVELENGTH"]),
        # beam centre in pixel units from the corner, and in array-index (pixel-centre) units
        "beam_px_fast_slow": (bc_fast_mm / px, bc_slow_mm / px),
        "beam_index_fast_slow": (bc_fast_mm / px - 0.5, bc_slow_mm / px - 0.5),
        "osc_start": float(h["OSC_START"]),
        "osc_range": abs(float(h["OSC_RANGE"])),
        "rotation_axis_lab": (1.0, 0.0, 0.0) if float(h["OSC_RANGE"]) > 0 else (-1.0, 0.0, 0.0),
        "trusted_range": (1, 65534),
        "pedestal": float(h.get("IMAGE_PEDESTAL", 0)),
        "header": h,
    }


def resolution_s2(xs, indices) -> np.ndarray:
    """1/d² of ``indices`` in the cell of ``xs`` (helper for comparisons)."""
    uc = xs.unit_cell()
    return np.array([1.0 / uc.d(tuple(int(v) for v in h)) ** 2 for h in indices])


def u_iso_to_b(u: float) -> float:
    return 8 * math.pi**2 * u


# ----------------------------------------------------------------------------- subprocess entry
def cctbx(name: str, *args, timeout: float = 300):
    """Run ``name(*args)`` of this module in a fresh interpreter with cctbx loaded first."""
    return cctbx_batch([(name, *args)], timeout=timeout)[0]


def cctbx_batch(calls, *, timeout: float = 300) -> list:
    """Run several ``(name, *args)`` calls in one fresh interpreter (cctbx loaded first)."""
    here = str(Path(__file__).parent)
    code = (
        f"import boost_adaptbx.boost.python, json, sys; sys.path.insert(0, {here!r}); import consumers; "
        "print('@@' + json.dumps([getattr(consumers, c[0])(*c[1:]) for c in json.loads(sys.argv[1])]))"
    )
    payload = json.dumps([[str(a) if isinstance(a, Path) else a for a in c] for c in calls])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # never the project under test
    res = subprocess.run(
        [sys.executable, "-c", code, payload],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    out = [line for line in res.stdout.splitlines() if line.startswith("@@")]
    if res.returncode != 0 or not out:
        raise RuntimeError(
            f"consumers {[c[0] for c in calls]} failed ({res.returncode}):\n{res.stderr[-3000:]}"
        )
    return json.loads(out[-1][2:])


def check_cif(path) -> dict:
    """cif_core validation of ``path``: ``{"errors", "warnings", "messages"}``."""
    n_err, n_warn, text = cif_validation(path)
    return {"errors": n_err, "warnings": n_warn, "messages": text}


def _structure_dict(xs) -> dict:
    cs = xs.crystal_symmetry()
    return {
        "cell": list(cs.unit_cell().parameters()),
        "hall": cs.space_group_info().type().hall_symbol(),
        "n_ops": cs.space_group().order_z(),
        "scatterers": [
            {
                "label": sc.label,
                "type": sc.scattering_type,
                "site": list(sc.site),
                "b_iso": u_iso_to_b(sc.u_iso),
                "occupancy": sc.occupancy,
                "multiplicity": sc.multiplicity(),
            }
            for sc in xs.scatterers()
        ],
    }


def recompute_r1(model_path, data_path, data_kind: str = "cif") -> dict:
    """cctbx's R1 of the model in ``model_path`` (.cif or .res) against ``data_path``.

    ``data_kind`` "cif": a ``_refln`` CIF (merged); "hkl": an HKLF 4 file, merged by cctbx in the
    model's symmetry, systematic absences removed. Returns the R1, the number of reflections
    and the structure cctbx built (cell, Hall symbol, scatterers with B, occupancy, multiplicity).
    """
    from cctbx.array_family import flex

    model_path = str(model_path)
    xs = (
        xray_structure_from_res(model_path)
        if model_path.lower().endswith((".res", ".ins"))
        else xray_structure_from_cif(model_path)
    )
    if data_kind == "cif":
        f = f_obs_from_reflections_cif(data_path, xs.crystal_symmetry())
    else:
        i, _ = f_obs_from_hkl(data_path, xs.crystal_symmetry())
        f = i.customized_copy(
            data=flex.sqrt(i.data().set_selected(i.data() < 0, 0.0)), sigmas=None
        ).set_observation_type_xray_amplitude()
        f = f.select(~f.sys_absent_flags().data())
    return {"r1": cctbx_r1(xs, f), "n": int(f.size()), **_structure_dict(xs)}


def hkl_as_cctbx(path, cell, space_group) -> dict:
    """Read an HKLF 4 file with iotbx and merge it with cctbx: counts, R_int, batch presence."""
    from cctbx import crystal

    cs = crystal.symmetry(unit_cell=tuple(cell), space_group_symbol=space_group)
    i, m = f_obs_from_hkl(path, cs)
    raw, _ = f_obs_from_hkl(path, cs, merge=False)
    return {
        "n": int(raw.size()),
        "n_merged": int(i.size()),
        "r_int": float(m.r_int()),
        "i_max": float(max(raw.data())),
        "sigma_min": float(min(raw.sigmas())),
        "is_intensity": bool(raw.is_xray_intensity_array()),
    }
