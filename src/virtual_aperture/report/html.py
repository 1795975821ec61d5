"""The per-grain HTML report: one self-contained page (figures embedded as base64 PNG, no external
file, script or font), readable offline and printable."""

from __future__ import annotations

import html
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._plot import to_data_uri

REPORT_FILE = "report.html"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;max-width:1150px;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:1.6em}
figure{margin:.6em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.85em;color:#555}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0}td,th{border:1px solid #ccc;padding:2px 7px;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
.ok{color:#060;font-weight:bold}.bad{color:#a00;font-weight:bold}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}
details{margin:.5em 0}summary{cursor:pointer;font-weight:bold}
"""


@dataclass(frozen=True)
class ReportContext:
    """What a grain report shows beyond the :class:`GrainResult` (all optional).

    Attributes
    ----------
    images
        Virtual images of the dataset, ``(n_tilts, sy, sx)`` (NaN for tilts not computed), for the
        strip of the grain's aperture over the tilts.
    labels
        The grain labels, ``(sy, sx)`` or ``(n_tilts, sy, sx)``.
    scan_step_nm
        Scan step (nm) for the real-space axes.
    command
        The exact command line that reruns this grain.
    source
        What the data were (file name, or a description).
    """

    images: Any = None
    labels: Any = None
    scan_step_nm: float = 1.0
    command: str | None = None
    source: str | None = None


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return "–"
        return f"{f:.4g}" if abs(f) < 1e5 else f"{f:.4e}"
    return _esc(v)


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    head = "".join(f"<th{' class=l' if i == 0 else ''}>{_esc(t)}</th>" for i, (_, t) in enumerate(columns))
    body = []
    for r in rows:
        cells = "".join(
            f"<td{' class=l' if i == 0 else ''}>{_num(r.get(k))}</td>" for i, (k, _) in enumerate(columns)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every leaf of a nested dict/list as ``(dotted.key, value)``."""
    out: list[tuple[str, Any]] = []
    if isinstance(d, dict):
        for k, v in d.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, (list, tuple)) and d and all(isinstance(v, (dict, list, tuple)) for v in d):
        for i, v in enumerate(d):
            out.extend(_flatten(v, f"{prefix}[{i}]"))
    else:
        out.append((prefix, d))
    return out


def _value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return _esc(", ".join(_num(x) if not isinstance(x, str) else x for x in v))
    return _num(v)


def _figure(fig, caption: str) -> str:
    uri = to_data_uri(fig)
    return f'<figure><img alt="{_esc(caption)}" src="{uri}"><figcaption>{_esc(caption)}</figcaption></figure>'


def _safe(make, caption: str) -> str:
    """A figure, or one line saying why it could not be drawn (a report is never lost to one plot)."""
    try:
        fig = make()
    except Exception as exc:  # noqa: BLE001 - the report must still be written
        return f"<p class=bad>{_esc(caption)}: not drawn ({_esc(type(exc).__name__)}: {_esc(exc)})</p>"
    return _figure(fig, caption)


def render(result, report: dict, context: ReportContext | None = None) -> str:
    """The HTML text of a grain's report (``report`` is what report.json holds)."""
    from . import figures
    from .structure import solution_figure

    ctx = context or ReportContext()
    sol, idx, stats = result.solution, result.indexing, result.merge_stats
    # a partial result (phasing could not run, or too few reflections to merge) is reported too
    o = (
        stats.overall
        if stats is not None
        else {"n_unique": 0, "d_min": float("nan"), "completeness": 0.0, "r_int": None, "cc_half": None}
    )
    state = "<span class=ok>solved</span>" if result.solved else "<span class=bad>not solved</span>"
    r1 = "n/a" if sol is None or sol.r1 is None else f"{sol.r1:.3f}"
    message = sol.message if sol is not None else getattr(result, "message", "")
    c = idx.cell
    parts = [
        f"<h1>Grain {result.grain}: {state} in {_esc(result.space_group)}</h1>",
        f"<p>{_esc(ctx.source or '')} — {len(result.tilts)} tilts "
        f"{result.tilt_angles_deg[0]:+.1f}…{result.tilt_angles_deg[-1]:+.1f}°, cell "
        f"a={c[0]:.4f} b={c[1]:.4f} c={c[2]:.4f} Å, α={c[3]:.2f} β={c[4]:.2f} γ={c[5]:.2f}° "
        f"({_esc(idx.lattice)}); {o['n_unique']} unique reflections to {o['d_min']:.2f} Å, "
        f"completeness {100 * o['completeness']:.1f} %, "
        f"R<sub>int</sub> {_num(o['r_int'])}, CC½ {_num(o['cc_half'])}; R1 {r1}. {_esc(message)}</p>",
    ]
    if ctx.command:
        parts.append(f"<h2>Rerun</h2><pre>{_esc(ctx.command)}</pre>")
    parts.append("<h2>The grain in the scan</h2>")
    if ctx.images is not None and ctx.labels is not None:
        parts.append(
            _safe(
                lambda: figures.scan_strip(
                    np.asarray(ctx.images),
                    np.asarray(ctx.labels),
                    result.tilts,
                    result.tilt_angles_deg,
                    result.grain,
                    scan_step_nm=ctx.scan_step_nm,
                ),
                "Virtual annular dark-field images of tilts the grain was solved from; "
                "the grain's aperture (orange) and the other grains (blue).",
            )
        )
    else:
        parts.append("<p>(no virtual images were given to the report)</p>")
    parts.append(
        _table(
            [
                {"t": int(t), "a": float(a), "n": int(n)}
                for t, a, n in zip(result.tilts, result.tilt_angles_deg, result.positions)
            ][:: max(1, len(result.tilts) // 12)],
            [("t", "tilt #"), ("a", "angle (°)"), ("n", "scan positions summed")],
        )
    )
    parts.append("<h2>Summed patterns, peaks and predicted spots</h2>")
    parts.append(
        _safe(
            lambda: figures.patterns_figure(result),
            "Summed patterns (log scale); white circles: peaks "
            "found; crosses: spots predicted by each indexed lattice, one colour per lattice.",
        )
    )
    parts.append("<h2>Reciprocal lattice and indexed cell</h2>")
    parts.append(
        _safe(
            lambda: figures.reciprocal_figure(result),
            "Every peak of the series mapped into 3D "
            "reciprocal space (specimen frame at zero tilt); arrows: a*, b*, c* of the indexed cell.",
        )
    )
    parts.append(
        _table(
            [{"l": b.lattice, "s": float(b.score)} for b in idx.bravais_candidates],
            [("l", "Bravais lattice"), ("s", "metric misfit (°)")],
        )
    )
    parts.append("<h2>Integration and merging against resolution</h2>")
    if stats is not None:
        parts.append(
            _safe(
                lambda: figures.merging_figure(stats),
                "Per resolution shell: mean I/σ(I), completeness, R_int and CC½ (dashed: overall).",
            )
        )
    cols = [
        ("d_max", "d max (Å)"),
        ("d_min", "d min (Å)"),
        ("n_obs", "obs"),
        ("n_unique", "unique"),
        ("completeness", "completeness"),
        ("multiplicity", "multiplicity"),
        ("i_over_sigma", "I/σ"),
        ("r_int", "R_int"),
        ("cc_half", "CC½"),
    ]
    if stats is not None:
        parts.append(_table([*stats.shells, {**o, "d_max": o.get("d_max")}], cols))
    else:
        parts.append("<p>No merged reflections.</p>")
    parts.append("<h2>Space group</h2>")
    sym = result.symmetry or {}
    parts.append(
        f"<p>Laue class {_esc(sym.get('laue', '?'))}; space group {_esc(result.space_group)} "
        f"({_esc(sym.get('chosen_by', '?'))}).</p>"
    )
    parts.append(
        _table(
            sym.get("laue_table", []),
            [
                ("laue", "Laue class"),
                ("r_int", "R_int"),
                ("cc_half", "CC½"),
                ("cc_sym", "CC symmetry pairs"),
                ("n_pairs", "pairs"),
                ("order", "order"),
                ("accepted", "accepted"),
            ],
        )
    )
    parts.append(
        _table(
            sym.get("candidates", []),
            [
                ("space_group", "space group"),
                ("number", "No."),
                ("n_absent", "absences tested"),
                ("absent_mean_i_over_sigma", "⟨I/σ⟩ of absences"),
                ("consistent", "consistent"),
                ("reference_setting", "reference setting"),
            ],
        )
    )
    parts.append("<h2>Solution</h2>")
    if sol is None:
        parts.append(
            f"<p>No phasing: {_esc(message)}. The indexing, integrated and merged reflections "
            "are in indexing.json, structure.hkl and reflections.cif.</p>"
        )
    parts.append(
        ""
        if sol is None
        else _safe(
            lambda: solution_figure(sol),
            "Charge-flipping potential projected along each cell axis "
            "over one unit cell, with the atoms found and their symmetry copies.",
        )
    )
    parts.append(
        _table(
            [a.as_dict() for a in sol.atoms],
            [
                ("label", "atom"),
                ("element", "element"),
                ("x", "x"),
                ("y", "y"),
                ("z", "z"),
                ("height", "map height"),
                ("multiplicity", "multiplicity"),
            ],
        )
        if sol is not None and sol.atoms
        else "<p>No atoms (no solution).</p>"
    )
    parts.append("<h2>Every number of report.json</h2><details><summary>show all</summary>")
    parts.append(
        "<table>"
        + "".join(
            f"<tr><td class=l>{_esc(k)}</td><td class=l>{_value(v)}</td></tr>" for k, v in _flatten(report)
        )
        + "</table></details>"
    )
    parts.append(
        f"<p style='font-size:.8em;color:#777'>written by virtual-aperture on "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}</p>"
    )
    title = f"Grain {result.grain} — virtual-aperture report"
    return (
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_esc(title)}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>"
    )


def write_report(
    result, out: str | os.PathLike, *, report: dict | None = None, context: ReportContext | None = None
) -> Path:
    """Write ``report.html`` for a :class:`~virtual_aperture.workflow.GrainResult` into folder ``out``.

    ``report`` is the dict report.json holds (default ``result.report()``); ``context`` adds the
    virtual images and labels (the strip of the aperture over the tilts) and the rerun command.

    Parameters
    ----------
    result
        What :func:`~virtual_aperture.solve_grain` returned (solved or not).
    out
        The folder (created if missing); the page is written there atomically, replacing an older one.
    report
        The figures of merit (default ``result.report()``).
    context
        A :class:`ReportContext` (virtual images, labels, scan step, rerun command, source).

    Returns
    -------
    pathlib.Path
        The ``report.html`` written (self-contained: figures embedded as PNG data URIs).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rep = json.loads(json.dumps(report if report is not None else result.report(), default=float))
    from .._atomic import write_text

    return write_text(out / REPORT_FILE, render(result, rep, context), overwrite=True)
