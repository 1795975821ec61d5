"""`virtual-aperture phase` on dynamical intensities: abTEM multislice, not |F|².

Data: ``tests/data/dynamical_brookite.npz``, made by ``tests/data/make_dynamical.py`` (abTEM
multislice through 60 randomly oriented 30 Å brookite slabs, 200 kV; independent of
virtual_aperture). The reflections carry multiple scattering, partiality and the crystal shape.
The solution is compared with the published structure under the space group's permitted origins
and hand only; R1 of the exported ``structure.cif`` is recomputed by cctbx in its own process.
"""

import json
import subprocess
import sys
from pathlib import Path

import gemmi
import numpy as np
import pytest

from virtual_aperture.cli import main
from virtual_aperture.crystal.compare import match_to_reference, reference_sites

ROOT = Path(__file__).parents[1]
DATA = ROOT / "tests" / "data" / "dynamical_brookite.npz"
CIF = ROOT / "src" / "virtual_aperture" / "sample" / "structures" / "brookite.cif"
WORKER = ROOT / "benchmarks" / "_cctbx_worker.py"


def write_hklf4(path: Path, hkl, intensity, sigma) -> None:
    """SHELX HKLF 4, FORMAT(3I4,2F8.2), written here so that the test does not use the exporter it checks."""
    k = 9000.0 / np.max(intensity)
    lines = [
        f"{h:4d}{kk:4d}{ll:4d}{i * k:8.2f}{s * k:8.2f}" for (h, kk, ll), i, s in zip(hkl, intensity, sigma)
    ]
    path.write_text("\n".join([*lines, f"{0:4d}{0:4d}{0:4d}{0:8.2f}{0:8.2f}"]) + "\n")


def cctbx_r1(hkl: Path, cif: Path, cell) -> float:
    hall = gemmi.SpaceGroup("P b c a").hall
    args = [sys.executable, str(WORKER), "r1", str(hkl), " ".join(map(str, cell)), hall, str(cif)]
    res = subprocess.run(args, check=False, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return float(json.loads(res.stdout.strip().splitlines()[-1])["r1"])


@pytest.fixture(scope="module")
def dynamical():
    d = np.load(DATA)
    return d["hkl"].astype(int), d["intensity"], d["sigma"], tuple(float(v) for v in d["cell"])


def test_dynamical_data_is_not_kinematic(dynamical):
    """The cached intensities differ from |F|² (else the test below would be a kinematic one again)."""
    hkl, inten, _, _ = dynamical
    st = gemmi.read_small_structure(str(CIF))
    st.setup_cell_images()
    calc = gemmi.StructureFactorCalculatorE(st.cell)
    fc = np.array([abs(calc.calculate_sf_from_small_structure(st, [int(v) for v in h])) for h in hkl])
    fo = np.sqrt(np.maximum(inten, 0))
    r_kin = np.sum(np.abs(fo - fc * fo.sum() / fc.sum())) / fo.sum()
    print(f"\nR1 of the kinematic |F| of the published structure against the dynamical data: {r_kin:.3f}")
    assert len(hkl) > 200
    assert 0.05 < r_kin < 0.5, r_kin


def test_phase_solves_brookite_from_abtem_multislice_intensities(dynamical, tmp_path):
    pytest.importorskip("cctbx")
    hkl, inten, sigma, cell = dynamical
    path = tmp_path / "brookite_dyn.hkl"
    write_hklf4(path, hkl, inten, sigma)
    out = tmp_path / "out"
    code = main(
        [
            "phase",
            str(path),
            "--cell",
            *map(str, cell),
            "--space-group",
            "Pbca",
            "--composition",
            "TiO2",
            "--seed",
            "0",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["converged"], rep.get("message")
    found = [(a["element"], (a["x"], a["y"], a["z"])) for a in rep["atoms"]]
    sites, ref_cell, sg = reference_sites(CIF)
    dist = match_to_reference(found, sites, ref_cell, sg)
    elements = np.array([e for e, _ in sites])
    print(
        f"\ndynamical brookite: {len(hkl)} reflections, errors Ti {dist[elements == 'Ti'].round(3)} "
        f"O {dist[elements == 'O'].round(3)} Å, R1 reported {rep['r1']:.3f}"
    )
    assert np.all(dist[elements == "Ti"] < 0.1), dist
    assert np.all(dist[elements == "O"] < 0.3), dist
    assert sorted(e for e, _ in found) == sorted(elements.tolist())
    r1_files = cctbx_r1(path, out / "structure.cif", cell)
    print(f"R1 recomputed by cctbx from structure.cif: {r1_files:.3f}")
    assert abs(r1_files - rep["r1"]) < 0.01
    assert rep["r1"] < 0.30


AZO_DATA = ROOT / "tests" / "data" / "dynamical_azo.npz"
AZO_CIF = ROOT / "tests" / "data" / "azo_1854329.cif"


@pytest.mark.slow
def test_phase_solves_azobenzene_from_abtem_multislice_intensities(tmp_path):
    """A light-atom structure (C13H13N3, P2₁/c, 16 independent C and N; CCDC 1854329) from abTEM
    multislice through 60 random 30 Å slabs (``make_dynamical.py azo``, hydrogens left out of the
    slabs, static atoms): every atom within 0.1 Å and of the right element, R1 as cctbx has it."""
    pytest.importorskip("cctbx")
    from consumers import cctbx_batch

    d = np.load(AZO_DATA)
    cell = tuple(float(v) for v in d["cell"])
    path = tmp_path / "azo_dyn.hkl"
    write_hklf4(path, d["hkl"].astype(int), d["intensity"], d["sigma"])
    out = tmp_path / "out"
    args = ["phase", str(path), "--cell", *map(str, cell), "--space-group", "P 1 21/c 1"]
    assert main([*args, "--composition", "C13H13N3", "--seed", "0", "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["converged"], rep.get("message")
    sites, ref_cell, sg = reference_sites(AZO_CIF)
    sites = [s for s in sites if s[0] != "H"]
    found, _, _ = reference_sites(out / "structure.cif")
    dist = match_to_reference(found, sites, ref_cell, sg)  # element by element
    r1 = cctbx_batch([("recompute_r1", out / "structure.cif", out / "reflections.cif")])[0]["r1"]
    print(f"\ndynamical azobenzene: max error {dist.max():.3f} Å, R1 {rep['r1']:.3f}, cctbx {r1:.3f}")
    assert len(found) == len(sites) == 16
    assert np.all(dist < 0.1), dist
    assert abs(r1 - rep["r1"]) < 0.01
    assert rep["r1"] < 0.15
