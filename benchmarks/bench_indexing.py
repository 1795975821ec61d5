"""Indexing benchmark of issue #11 on data the code under test did not make.

Kinematic rows: the independent generator ``tests/generators/kinematic.py`` (it does not import
``virtual_aperture``): a grain and a neighbour of the same crystal (own random orientations) on an
8×8 scan of 64×64 patterns (:func:`grain_masks`, :func:`compose_5d`: 1 px descan left uncorrected,
Poisson noise), the grain's hand-drawn mask summed with ``aperture_sums`` — with overlap the mask
includes the neighbour where the two overlap — then ``find_bragg_peaks`` (the tests' settings) and
``index_tilt_series`` (defaults). Matrix: tilt step 0.5 / 1 / 2 / 4°, range ±30 / ±60°, centring
P / C / I / F (the generator's aP, mC, cI, cF crystals), overlap 0 / 25 % of the grain's positions,
seeds (orientation, true tilt axis 20° + 55°·seed, noise).

Dynamical rows: the cached abTEM multislice series ``tests/data/abtem_series.npz`` (two cF and two
mC nanocrystals, ±30° in 2° steps, 64×64; not regenerated): steps 2° and 4° (every other pattern),
overlap 0 / 25 % (the other series of the same crystal added with weight 0.25), a dose in
electrons per summed pattern (Poisson, 10 counts/px background), and the peak finder's background
σ: the default 8 px and 4 px.

Each case is right / inaccurate / refused / FALSE by ``kinematic.cell_matches`` (reduced cell
within 0.5 % and 0.3°, same lattice and orientation; false = a lattice reported that is not the
true one), with the tilt-axis error (found − true, mod 180°), the indexed fraction and, for right
cases, the reflections integrated per pattern (``integrate_reflections`` as in the workflow
chain). The calibration is given the true tilt axis (as the tests do) plus ``--axis-offset``.

    python benchmarks/bench_indexing.py [--quick] [--seeds N] [--series N] [--axis-offset DEG] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from generators import abtem_series as A  # noqa: E402
from generators import kinematic as K  # noqa: E402

import virtual_aperture as va  # noqa: E402
from virtual_aperture.crystal.indexing import IndexingError  # noqa: E402

CENTRING_CRYSTAL = {"P": "aP", "C": "mC", "I": "cI", "F": "cF"}
SCAN, DET = (10, 10), (64, 64)  # 10×10: overlaps of exactly 0 and 25 % of the grain's 32 positions
VERDICTS = ("right", "inaccurate", "refused", "false", "error")


def axis_error(found: float, true: float) -> float:
    """found − true as a line direction, in (−90°, 90°]."""
    d = (found - true) % 180.0
    return d - 180.0 if d > 90.0 else d


def integrate(pats, peaks, r, angles) -> tuple[int, float]:
    """Reflections integrated over the series (the workflow chain's call) and per pattern."""
    cal = r.calibration
    centers = np.array([p.center for p in peaks], dtype=float)
    g = np.hypot(*(r.peaks.positions - centers[r.peaks.tilt]).T)
    d_min = float(1.0 / (np.percentile(g[r.indexed], 99) * cal.pixel_size))
    radius = 2.5
    refl = va.integrate_reflections(
        pats,
        UB=r.UB,
        tilt_angles_deg=angles,
        tilt_axis_deg=r.tilt_axis_deg,
        wavelength=cal.wavelength,
        pixel_size=cal.pixel_size,
        center=centers,
        ellipticity=cal.ellipticity,
        d_min=d_min,
        radius_px=radius,
        background_annulus=(radius + 2, radius + 4),
        excitation_width=0.01,
    )
    return len(refl), len(refl) / len(angles)


def solve(pats, cal, true_UB, true_centring, *, sigma_background=8.0) -> dict:
    """Peaks → index → verdict (→ integrate when right) on (n_tilt, k_y, k_x) summed patterns."""
    t0 = time.perf_counter()
    peaks = va.find_bragg_peaks(
        pats,
        calibration=cal,
        exclude_center_radius=4,
        threshold=6,
        center="beam",
        sigma_background=sigma_background,
    )
    out = {"peaks": int(sum(len(p) for p in peaks))}
    try:
        r = va.index_tilt_series(peaks, calibration=cal)
    except IndexingError as exc:
        out.update(verdict="refused", why=str(exc))
    except Exception as exc:  # anything but a refusal is a defect of the code under test
        out.update(verdict="error", why=f"{type(exc).__name__}: {exc}")
    else:
        verdict, why = K.cell_matches(r.UB, true_UB, found_centring=r.centring, true_centring=true_centring)
        out.update(
            verdict=verdict,
            why=why,
            lattice=r.lattice,
            cell=[round(v, 4) for v in r.cell],
            indexed=round(float(r.indexed_fraction), 4),
            axis=round(float(r.tilt_axis_deg), 3),
            confidence=round(float(r.confidence), 3),
            checks={
                k: {kk: vv for kk, vv in v.items() if kk != "detail"}
                for k, v in ((r.info.get("validation") or {}).get("checks") or {}).items()
            },
        )
        if verdict == "right":
            try:
                out["refl"], out["refl_per_pattern"] = integrate(pats, peaks, r, cal.tilt_angles_deg)
            except Exception as exc:
                out["why"] += f"; integration failed: {type(exc).__name__}: {exc}"
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def kinematic_cases(steps, spans, centrings, overlaps, seeds, axis_offset):
    for seed in seeds:
        axis_true = (20.0 + 55.0 * seed) % 180.0
        for c in centrings:
            cr = K.CRYSTALS[CENTRING_CRYSTAL[c]]
            for span in spans:
                for step in steps:
                    S = K.tilt_series(
                        [cr, cr],
                        tilts=(-span, span, step),
                        tilt_axis_deg=axis_true,
                        detector_shape=DET,
                        seed=seed,
                    )
                    for ov in overlaps:
                        masks = K.grain_masks(SCAN, 2, overlap=ov, seed=seed)
                        ov_real = float((masks[0] & masks[1]).sum() / masks[0].sum())
                        data, _ = K.compose_5d(S, masks, seed=seed)
                        ds = K.to_dataset(data, S, tilt_axis_deg=axis_true + axis_offset)
                        pats = va.aperture_sums(ds, masks[0].astype(np.int32))[1].sum
                        cal = ds.calibration
                        del data, ds
                        case = dict(
                            data="kinematic",
                            centring=c,
                            crystal=cr.name,
                            step=step,
                            range=span,
                            overlap=ov,
                            overlap_real=round(ov_real, 3),
                            seed=seed,
                            axis_true=axis_true,
                            n_tilt=len(S.tilts_deg),
                        )
                        case.update(solve(pats, cal, S.UB[0], cr.centring))
                        yield case


def dynamical_cases(steps, overlaps, seeds, doses, sigmas, axis_offset):
    series = A.load()
    by_lattice = defaultdict(list)
    for i, s in enumerate(series):
        by_lattice[s["lattice"]].append(i)
    for lat, idx in by_lattice.items():
        for j, i in enumerate(idx[: len(seeds)]):
            s = series[i]
            other = series[idx[(j + 1) % len(idx)]]
            for step in steps:
                every = int(round(step / float(np.diff(s["tilts_deg"])[0])))
                sel = slice(None, None, every)
                cal = va.Calibration(**A.calibration_kwargs(s, every=every, axis_offset_deg=axis_offset))
                angles = cal.tilt_angles_deg
                for ov in overlaps:
                    clean = s["patterns"][sel] + ov * other["patterns"][sel]
                    for dose in doses:
                        rng = np.random.default_rng(1000 + i)
                        pats = rng.poisson(clean * dose + 10.0).astype(float)
                        for sb in sigmas:
                            case = dict(
                                data="dynamical",
                                centring=s["centring"],
                                crystal=lat,
                                step=step,
                                range=int(round(max(abs(a) for a in angles))),
                                overlap=ov,
                                overlap_real=ov,
                                seed=i,
                                axis_true=s["tilt_axis_deg"],
                                n_tilt=len(angles),
                                dose=dose,
                                sigma_bg=sb,
                            )
                            case.update(solve(pats, cal, s["UB"], s["centring"], sigma_background=sb))
                            yield case


def fmt_row(c: dict) -> str:
    err = axis_error(c["axis"], c["axis_true"]) if "axis" in c else float("nan")
    c["axis_err"] = None if math.isnan(err) else round(err, 3)
    extra = f" dose {c['dose']:.0e} σbg {c['sigma_bg']:g}" if c["data"] == "dynamical" else ""
    rpp = f"{c['refl_per_pattern']:5.1f}" if "refl_per_pattern" in c else "    -"
    who = "seed" if c["data"] == "kinematic" else "series"
    return (
        f"{c['data'][:3]} {c['crystal']:2s} step {c['step']:>3g}° ±{c['range']:<2d} "
        f"ov {100 * c['overlap_real']:3.0f}% {who} {c['seed']:2d}{extra} | {c['verdict']:10s} "
        f"{c.get('lattice', '--'):2s} idx {100 * c.get('indexed', float('nan')):5.1f}% "
        f"axis err {err:+6.2f}° refl/pat {rpp} peaks {c['peaks']:4d} {c['seconds']:5.1f} s | {c['why']}"
    )


def label_of(key: str, v) -> str:
    if isinstance(v, str):
        return v
    if key == "dose":
        return f"{v:.0e}"
    if key == "overlap":
        return f"{100 * v:.0f} %"
    return f"{v:g}"


def summarise(cases: list[dict], key: str, label: str) -> list[str]:
    groups = defaultdict(list)
    for c in cases:
        if key in c:
            groups[c[key]].append(c)
    head = (
        f"| {label} | n | right | inaccurate | refused | false | error | % right | "
        "wrong Bravais | max abs axis err ° | refl/pattern |"
    )
    lines = [head, "|" + "---|" * 11]
    for v in sorted(groups, key=lambda x: (str(type(x)), x)):
        g = groups[v]
        name = label_of(key, v)
        n = {k: sum(c["verdict"] == k for c in g) for k in VERDICTS}
        errs = [abs(c["axis_err"]) for c in g if c.get("axis_err") is not None]
        wrong_bravais = sum(
            c["verdict"] in ("right", "inaccurate") and c["lattice"] != c["crystal"] for c in g
        )
        rpp = [c["refl_per_pattern"] for c in g if "refl_per_pattern" in c]
        lines.append(
            f"| {name} | {len(g)} | {n['right']} | {n['inaccurate']} | {n['refused']} | {n['false']} | "
            f"{n['error']} | {100 * n['right'] / len(g):.0f} | {wrong_bravais} | "
            f"{max(errs) if errs else float('nan'):.2f} | "
            f"{(f'{np.mean(rpp):.1f}' if rpp else '-')} |"
        )
    return lines


def goals(cases: list[dict]) -> list[str]:
    def pct(sel):
        return 100 * sum(c["verdict"] == "right" for c in sel) / max(len(sel), 1)

    false = [c for c in cases if c["verdict"] == "false"]
    errors = [c for c in cases if c["verdict"] == "error"]
    one = [c for c in cases if c["step"] == 1 and c["overlap"] == 0]
    default = [c for c in cases if c.get("sigma_bg", 8.0) == 8.0]
    tuned = [c for c in cases if c.get("sigma_bg") != 8.0]
    errs = [abs(c["axis_err"]) for c in cases if c.get("axis_err") is not None]
    emax = max(errs) if errs else float("nan")

    def ok(b):
        return "MET" if b else "NOT MET"

    out = [
        f"0 false lattices anywhere: {len(false)} false → {ok(not false)}",
        f"≥ 90 % right overall: {pct(cases):.1f} % of {len(cases)} → {ok(pct(cases) >= 90)}",
        f"   (default peak finding only: {pct(default):.1f} % of {len(default)}; "
        f"without the dynamical σbg 8 rows: {pct(tuned):.1f} % of {len(tuned)})",
        f"100 % right for 1° steps, no overlap: {pct(one):.1f} % of {len(one)} "
        f"→ {ok(bool(one) and pct(one) == 100)}",
        f"tilt-axis error < 0.5° (max over solved cases): {emax:.2f}° → {ok(emax < 0.5)}",
    ]
    if errors:
        out.append(f"{len(errors)} cases raised something other than IndexingError (defects)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small subset (about 1–2 min)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds per cell of the matrix (default 2)")
    ap.add_argument("--series", type=int, default=2, help="abTEM series per lattice (default 2: all four)")
    ap.add_argument("--axis-offset", type=float, default=0.0, help="nominal − true tilt axis (°)")
    ap.add_argument("--json", type=Path, help="write every case here")
    ap.add_argument("--no-dynamical", action="store_true")
    ap.add_argument("--no-kinematic", action="store_true")
    ap.add_argument("--from-json", type=Path, help="print the tables of a previous --json run")
    args = ap.parse_args()
    if args.from_json:
        run = json.loads(args.from_json.read_text())
        m = run["meta"]
        print(f"{m['date']}: {len(run['cases'])} cases in {m['minutes']:.1f} min, load {m['load_start']}")
        report(run["cases"])
        return 0
    seeds = list(range(1 if args.quick else args.seeds))
    if args.quick:
        steps, spans, centrings, overlaps = (1, 4), (30,), ("P", "F"), (0.0, 0.25)
        dsteps, doses, sigmas = (2,), (1e7,), (8.0, 4.0)
    else:
        steps, spans, centrings, overlaps = (0.5, 1, 2, 4), (30, 60), ("P", "C", "I", "F"), (0.0, 0.25)
        dsteps, doses, sigmas = (2, 4), (1e6, 1e7), (8.0, 4.0)
    t_start = time.perf_counter()
    load0 = os.getloadavg()
    date = datetime.datetime.now().isoformat(timespec="minutes")
    print(
        f"{date}  {platform.node()}  "
        f"{os.cpu_count()} cores  load {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}  "
        f"seeds {seeds}  axis offset {args.axis_offset:g}°",
        flush=True,
    )
    cases: list[dict] = []
    gens = []
    if not args.no_kinematic:
        gens.append(kinematic_cases(steps, spans, centrings, overlaps, seeds, args.axis_offset))
    if not args.no_dynamical:
        dseeds = [0] if args.quick else list(range(args.series))
        gens.append(dynamical_cases(dsteps, overlaps, dseeds, doses, sigmas, args.axis_offset))
    for gen in gens:
        for c in gen:
            print(fmt_row(c), flush=True)
            cases.append(c)
            if args.json:  # after every case: an interrupted run keeps what it measured
                write_json(args.json, cases, date, load0, time.perf_counter() - t_start, seeds)
    wall = time.perf_counter() - t_start
    load1 = os.getloadavg()
    print(f"\n{len(cases)} cases in {wall / 60:.1f} min; load at the end {load1[0]:.2f} {load1[1]:.2f}")
    if args.json:
        write_json(args.json, cases, date, load0, wall, seeds, load1)
    report(cases)
    return 0


def write_json(path, cases, date, load0, seconds, seeds, load1=None) -> None:
    meta = {"date": date, "load_start": load0, "load_end": load1, "minutes": seconds / 60, "seeds": seeds}
    path.write_text(json.dumps({"meta": meta, "cases": cases}, indent=1, default=float))


def report(cases: list[dict]) -> None:
    axes = [
        ("data", "data"),
        ("step", "step °"),
        ("range", "range ±°"),
        ("centring", "centring"),
        ("overlap", "overlap"),
    ]
    for key, label in axes:
        print()
        print("\n".join(summarise(cases, key, label)))
    dyn = [c for c in cases if c["data"] == "dynamical"]
    for key, label in (("dose", "dynamical: dose e⁻/pattern"), ("sigma_bg", "dynamical: peak σbg px")):
        print()
        print("\n".join(summarise(dyn, key, label)))
    print("\nGoals (issue #11):")
    print("\n".join("  " + g for g in goals(cases)))
    bad = [c for c in cases if c["verdict"] in ("false", "error", "inaccurate")]
    if bad:
        print("\nFalse / error / inaccurate cases:")
        for c in bad:
            print("  " + fmt_row(c))


if __name__ == "__main__":
    sys.exit(main())
