"""Benchmark: the project's `virtual-aperture phase` against cctbx's charge flipping (smtbx), same
files, same run.

For every structure a published CIF is turned into merged electron intensities by gemmi's
structure-factor calculator (``simulate_reflections``: missing wedge, 5 % noise) and written as
one SHELX HKLF 4 file. Both programs read that file:

* **smtbx** — ``smtbx.ab_initio.charge_flipping`` (weak-reflection-improved flipping on
  quasi-normalised amplitudes, its own delta guessing, phase-transition detection and origin
  search); the peaks of its best symmetrised map (cctbx ``peak_search``) are matched with the
  reference by position (smtbx assigns no elements).
* **project** — ``virtual-aperture phase`` (CLI, files written); atoms matched with the reference
  element by element under the space group's permitted origins and hand only
  (``match_to_reference``); R1 as reported, and R1 recomputed by cctbx from the exported
  ``structure.cif`` (electron scattering table) against the same .hkl, scale fitted.

Solved = at least 85 % of the reference atoms within 0.3 Å (project: of the right element).
Columns: time (s), solved, atoms found by element, max error heavy / light (Å), R1.

    python benchmarks/bench_phasing.py [--structures brookite,uio66,azo,amine,brookite-dyn,azo-dyn]

``*-dyn``: the abTEM multislice intensities of tests/data (``make_dynamical.py``), not |F|².
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import gemmi
import numpy as np

from virtual_aperture.cli import main as cli_main
from virtual_aperture.crystal.compare import match_to_reference, reference_sites
from virtual_aperture.crystal.export import write_hkl
from virtual_aperture.crystal.solve import simulate_reflections

ROOT = Path(__file__).parents[1]
STRUCTURES = ROOT / "src" / "virtual_aperture" / "sample" / "structures"
CASES = {
    # name: (cif, composition, d_min, tilt range ±deg, seed, smtbx-equivalent atom count)
    "brookite": (STRUCTURES / "brookite.cif", "TiO2", 0.8, 40, 1),
    "uio66": (STRUCTURES / "uio66.cif", "Zr6O32C48H28", 0.8, 60, 3),
    "azo": (ROOT / "tests" / "data" / "azo_1854329.cif", "C13H13N3", 0.8, 40, 0),
    # a structure no test used before (same paper, another deposition: 15 independent C/N)
    "amine": (ROOT / "tests" / "data" / "amine_1854330.cif", "C12H11N3", 0.8, 40, 2),
}
#: dynamical intensities: abTEM multislice through 60 random 30 Å slabs (tests/data/make_dynamical.py)
DYNAMICAL = {
    "brookite-dyn": (ROOT / "tests" / "data" / "dynamical_brookite.npz", CASES["brookite"][0], "TiO2"),
    "azo-dyn": (ROOT / "tests" / "data" / "dynamical_azo.npz", CASES["azo"][0], "C13H13N3"),
}
HEAVY_Z = 10  # elements heavier than Ne count as heavy


WORKER = Path(__file__).with_name("_cctbx_worker.py")


def _worker(*args) -> dict:
    """cctbx in its own process: imported next to numba it crashes, next to numpy it breaks LAPACK."""
    res = subprocess.run(
        [sys.executable, str(WORKER), *map(str, args)], capture_output=True, text=True, timeout=600
    )
    if res.returncode:
        raise RuntimeError(f"cctbx worker failed: {res.stderr.strip().splitlines()[-1:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_smtbx(hkl: Path, sites, cell, sg, seed: int) -> dict:
    out = _worker("smtbx", hkl, " ".join(map(str, cell)), gemmi.SpaceGroup(sg).hall, len(sites), seed)
    found = [("X", tuple(x)) for x in out["peaks"]]
    dist = (
        match_to_reference(found, sites, cell, sg, by_element=False) if found else np.full(len(sites), np.inf)
    )
    return {"time": out["time"], "phase_transition": out["phase_transition"], "dist": dist}


def cctbx_r1(hkl: Path, cif: Path, cell, sg) -> float:
    """R1 of the exported model recomputed by cctbx (electron table) against the .hkl, scale fitted."""
    return float(_worker("r1", hkl, " ".join(map(str, cell)), gemmi.SpaceGroup(sg).hall, cif)["r1"])


def run_project(hkl: Path, out: Path, cell, sg, composition: str, sites, seed: int) -> dict:
    t0 = time.perf_counter()
    code = cli_main(
        [
            "phase",
            str(hkl),
            "--cell",
            *map(str, cell),
            "--space-group",
            sg.replace(" ", ""),
            "--composition",
            composition,
            "--seed",
            str(seed),
            "--out",
            str(out),
            "--overwrite",
        ]
    )
    dt = time.perf_counter() - t0
    rep = json.loads((out / "report.json").read_text()) if code == 0 else {"atoms": [], "r1": None}
    found = [(a["element"], (a["x"], a["y"], a["z"])) for a in rep["atoms"]]
    dist = match_to_reference(found, sites, cell, sg) if found else np.full(len(sites), np.inf)
    return {
        "time": dt,
        "code": code,
        "dist": dist,
        "r1": rep.get("r1"),
        "converged": rep.get("converged"),
        "by_element": Counter(e for e, _ in found),
        "cif": out / "structure.cif",
    }


def write_hklf4(path: Path, hkl, intensity, sigma) -> None:
    """SHELX HKLF 4 of measured (here: multislice) intensities, scaled to a largest I of 9000."""
    k = 9000.0 / float(np.max(intensity))
    rows = zip(hkl, intensity, sigma)
    lines = [f"{h:4d}{kk:4d}{ll:4d}{i * k:8.2f}{e * k:8.2f}" for (h, kk, ll), i, e in rows]
    path.write_text("\n".join([*lines, f"{0:4d}{0:4d}{0:4d}{0:8.2f}{0:8.2f}"]) + "\n")


def summary(dist, elements) -> tuple[bool, float, float]:
    heavy = np.array([gemmi.Element(e).atomic_number > HEAVY_Z for e in elements])
    solved = bool(np.mean(dist < 0.3) >= 0.85)
    mh = float(dist[heavy].max()) if heavy.any() else float("nan")
    ml = float(dist[~heavy].max()) if (~heavy).any() else float("nan")
    return solved, mh, ml


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--structures", default=",".join([*CASES, *DYNAMICAL]))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.structures.split(","):
            hkl = Path(tmp) / f"{name}.hkl"
            if name in DYNAMICAL:
                npz, cif, composition = DYNAMICAL[name]
                d = np.load(npz)
                write_hklf4(hkl, d["hkl"].astype(int), d["intensity"], d["sigma"])
                n_refl = len(d["hkl"])
            else:
                cif, composition, d_min, tilt, seed = CASES[name]
                st = gemmi.read_small_structure(str(cif))
                st.remove_hydrogens()
                refl = simulate_reflections(st, d_min=d_min, tilt_range_deg=tilt, noise=0.05, seed=seed)
                write_hkl(hkl, refl)
                n_refl = len(refl)
            sites, cell, sg = reference_sites(cif)
            sites = [x for x in sites if x[0] != "H"]
            elements = [e for e, _ in sites]
            if not rows:  # untimed warm-up: numba dispatch and caches (smtbx's time excludes imports)
                run_project(hkl, Path(tmp) / "warm_up", cell, sg, composition, sites, args.seed)
            sm = run_smtbx(hkl, sites, cell, sg, args.seed)
            pr = run_project(hkl, Path(tmp) / f"{name}_out", cell, sg, composition, sites, args.seed)
            r1_cctbx = (
                cctbx_r1(hkl, pr["cif"], cell, sg) if pr["code"] == 0 and pr["cif"].exists() else float("nan")
            )
            ref_counts = Counter(elements)
            rows.append(
                (
                    name,
                    n_refl,
                    ref_counts,
                    sm,
                    summary(sm["dist"], elements),
                    pr,
                    summary(pr["dist"], elements),
                    r1_cctbx,
                )
            )
    print(
        "| structure | refl. | program | time (s) | solved | atoms found (of reference, by element) "
        "| max err heavy / light (Å) | R1 reported | R1 by cctbx from files |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n, ref_counts, sm, s_sm, pr, s_pr, r1c in rows:
        ok_sm = "positions only"
        cif = DYNAMICAL[name][1] if name in DYNAMICAL else CASES[name][0]
        elements = [e for e, _ in reference_sites(cif)[0] if e != "H"]

        def within(d, elements=elements, ref_counts=ref_counts):
            return ", ".join(
                f"{e} {int(np.sum((d < 0.3) & (np.array(elements) == e)))}/{ref_counts[e]}"
                for e in ref_counts
            )

        print(
            f"| {name} | {n} | smtbx | {sm['time']:.1f} | {'yes' if s_sm[0] else 'no'} | "
            f"{within(sm['dist'])} "
            f"({ok_sm}) | {s_sm[1]:.2f} / {s_sm[2]:.2f} | – | – |"
        )
        r1 = "–" if pr["r1"] is None else f"{pr['r1']:.3f}"
        print(
            f"| {name} | {n} | project | {pr['time']:.1f} | {'yes' if s_pr[0] else 'no'} | "
            f"{within(pr['dist'])} "
            f"| {s_pr[1]:.2f} / {s_pr[2]:.2f} | {r1} | {r1c:.3f} |"
        )
    print(
        "\ntime ratio project / smtbx: "
        + ", ".join(f"{r[0]} {r[5]['time'] / r[3]['time']:.2f}" for r in rows)
    )


if __name__ == "__main__":
    main()
