"""Every grain of an acquisition: the whole chain of :func:`~virtual_aperture.solve_grain` once per
grain, one task per grain on a dask scheduler, then the grains grouped into phases with phase and
orientation maps of the scan.

``virtual-aperture solve DATA --labels L --all --out DIR`` runs it; in Python::

    batch = va.solve_all_grains(ds, labels, out="all_grains", composition="TiO2")
    print(batch.table_text())

A grain that fails (cannot be indexed, too few tilts, …) never stops the others: its row says why.
Each task reads the dataset itself (a lazy, file-backed dataset travels as its small dask graph, so
on a cluster the workers read their chunks from the shared file system), writes its own folder and
sends back one summary row — the large per-grain arrays never cross the network.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GrainOutcome", "BatchResult", "solve_all_grains", "SUMMARY_COLUMNS"]

#: columns of ``summary.csv`` (and of :meth:`BatchResult.table`)
SUMMARY_COLUMNS = (
    "grain",
    "status",
    "tilts",
    "positions",
    "lattices",
    "cell",
    "lattice",
    "space_group",
    "completeness",
    "r_int",
    "r1",
    "phase",
    "seconds",
    "folder",
    "message",
)


@dataclass(frozen=True)
class GrainOutcome:
    """What happened to one grain: ``status`` is ``'solved'``, ``'no solution'`` (indexed and
    merged, phasing gave no structure), ``'failed'`` (stopped before that; ``message`` says why)
    or ``'cancelled'``."""

    grain: int
    status: str
    message: str = ""
    folder: str | None = None
    tilts: int = 0
    positions: int = 0
    lattices: int = 0
    cell: tuple[float, ...] = ()
    lattice: str = ""
    U: tuple[tuple[float, ...], ...] = ()
    space_group: str = ""
    completeness: float | None = None
    r_int: float | None = None
    r1: float | None = None
    seconds: float = 0.0
    phase: int = 0

    @property
    def indexed(self) -> bool:
        return len(self.cell) == 6

    def row(self) -> dict:
        """The summary-table row (JSON/CSV-able)."""
        d = asdict(self)
        d.pop("U")
        d["cell"] = " ".join(f"{v:.4f}" for v in self.cell)
        for k in ("completeness", "r_int", "r1"):
            d[k] = None if d[k] is None else round(float(d[k]), 4)
        d["seconds"] = round(self.seconds, 1)
        return {k: d[k] for k in SUMMARY_COLUMNS}


@dataclass(frozen=True)
class BatchResult:
    """Every grain's :class:`GrainOutcome`, the phases (:class:`~virtual_aperture.grains.phases.Phase`)
    they form, the phase and orientation maps over the scan, and the folder written (if any)."""

    outcomes: tuple[GrainOutcome, ...]
    phases: tuple = ()
    phase_map: np.ndarray | None = None
    orientation_map: np.ndarray | None = None
    unassigned_fraction: float = 0.0
    out: Path | None = None
    info: dict = field(default_factory=dict)

    @property
    def n_solved(self) -> int:
        return sum(o.status == "solved" for o in self.outcomes)

    def table(self) -> list[dict]:
        return [o.row() for o in self.outcomes]

    def table_text(self) -> str:
        """A short table for the terminal: grain, status, tilts, positions, cell, space group, R1."""
        head = (
            f"{'grain':>5} {'status':<11} {'tilts':>5} {'pos':>5} {'phase':>5}  {'cell (Å, °)':<44} "
            f"{'SG':<10} {'R1':>6}"
        )
        lines = [head, "-" * len(head)]
        for o in self.outcomes:
            cell = " ".join(f"{v:.2f}" for v in o.cell[:3]) + (
                "  " + " ".join(f"{v:.1f}" for v in o.cell[3:]) if o.cell else ""
            )
            r1 = "" if o.r1 is None else f"{o.r1:.3f}"
            lines.append(
                f"{o.grain:>5} {o.status:<11} {o.tilts:>5} {o.positions:>5} {o.phase or '':>5}  "
                f"{cell:<44} {o.space_group:<10} {r1:>6}"
            )
            if o.status in ("failed", "no solution") and o.message:
                lines.append(f"{'':>5} └ {o.message[:100]}")
        for ph in self.phases:
            lines.append(
                f"phase {ph.number}: grains {', '.join(map(str, ph.grains))} — reduced cell "
                + " ".join(f"{v:.3f}" for v in ph.reduced_cell)
                + (" (rare: one grain)" if ph.rare else "")
            )
        lines.append(
            f"{self.n_solved} of {len(self.outcomes)} grains solved; "
            f"{100 * self.unassigned_fraction:.1f} % of scan positions belong to no grain"
        )
        return "\n".join(lines)

    def summary(self) -> dict:
        """JSON-able record of the whole batch (what ``summary.json`` holds)."""
        return {
            "grains": self.table(),
            "phases": [p.as_dict() for p in self.phases],
            "n_solved": self.n_solved,
            "unassigned_fraction": float(self.unassigned_fraction),
            **self.info,
        }


def _present_grains(labels: np.ndarray) -> list[int]:
    return [int(v) for v in np.unique(labels) if v > 0]


def _outcome_from_result(res, grain: int, folder: str | None, seconds: float) -> GrainOutcome:
    idx, o, sol = res.indexing, res.merge_stats.overall, res.solution
    n_lattices = len(getattr(idx, "lattices", None) or [idx])  # multi-lattice indexing reports every lattice
    return GrainOutcome(
        grain=grain,
        status="solved" if res.solved else "no solution",
        message=str(sol.message),
        folder=folder,
        tilts=len(res.tilts),
        positions=int(np.sum(res.positions)),
        lattices=n_lattices,
        cell=tuple(float(v) for v in idx.cell),
        lattice=str(idx.lattice),
        U=tuple(tuple(float(v) for v in row) for row in np.asarray(idx.U)),
        space_group=str(res.space_group),
        completeness=float(o["completeness"]),
        r_int=float(o["r_int"]),
        r1=None if sol.r1 is None else float(sol.r1),
        seconds=seconds,
    )


def _solve_one(
    dataset, labels, grain: int, out: str | None, overwrite: bool, options: dict, cancel: Any = None
) -> GrainOutcome:
    """One task: solve one grain, write its folder, return its summary row. Never raises for a
    grain that cannot be solved (the row says why)."""
    from .compute.executor import Cancelled
    from .workflow import solve_grain, write_grain

    t0 = time.perf_counter()
    try:
        res = solve_grain(dataset, labels, grain, cancel=cancel, **options)
    except Cancelled:
        return GrainOutcome(grain, "cancelled", "cancelled", seconds=time.perf_counter() - t0)
    except (ValueError, RuntimeError, ArithmeticError, np.linalg.LinAlgError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return GrainOutcome(
            grain,
            "failed",
            msg,
            seconds=time.perf_counter() - t0,
            positions=int(np.sum(np.asarray(labels) == grain)),
        )
    folder = None
    if out is not None:
        folder = str(Path(out) / f"grain_{grain}")
        write_grain(res, folder, overwrite=overwrite)
    return _outcome_from_result(res, grain, folder, time.perf_counter() - t0)


def _maps(outcomes: Sequence[GrainOutcome], labels: np.ndarray):
    from .grains.phases import group_by_cell, orientation_colours, orientation_map, phase_map

    indexed = [o for o in outcomes if o.indexed]
    cells = {o.grain: o.cell for o in indexed}
    centrings = {o.grain: (o.lattice[1:2] or "P") for o in indexed}
    phases = group_by_cell(cells, centrings=centrings) if cells else []
    colours = orientation_colours(
        {o.grain: np.array(o.U) for o in indexed if o.U}, lattices={o.grain: o.lattice for o in indexed}
    )
    number = {g: ph.number for ph in phases for g in ph.grains}
    outcomes = tuple(o if o.grain not in number else _with_phase(o, number[o.grain]) for o in outcomes)
    return outcomes, tuple(phases), phase_map(labels, phases), orientation_map(labels, colours)


def _with_phase(o: GrainOutcome, phase: int) -> GrainOutcome:
    import dataclasses

    return dataclasses.replace(o, phase=phase)


def solve_all_grains(
    dataset,
    labels: np.ndarray,
    *,
    out: str | os.PathLike | None = None,
    grains: Sequence[int] | None = None,
    client: Any = None,
    max_workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    cancel: Any = None,
    **options: Any,
) -> BatchResult:
    """Solve every grain of a tilt series, one task per grain.

    Parameters
    ----------
    dataset
        A 5D :class:`~virtual_aperture.Dataset` (as for :func:`~virtual_aperture.solve_grain`).
    labels
        Grain labels ``(sy, sx)`` or ``(n_tilt, sy, sx)`` — hand-painted, or the proposals of
        :func:`~virtual_aperture.propose_grains` (which keeps those above its ``min_confidence``).
    out
        Folder for the results: ``grain_N/`` per grain (the files of
        :func:`~virtual_aperture.write_grain`), ``summary.csv``, ``summary.json``,
        ``phase_map.tif``, ``orientation_map.tif``. ``None``: write nothing.
    grains
        Labels to solve (default: every label present).
    client
        A ``dask.distributed.Client``: one task per grain on its workers (each reads the data
        itself). Default: a pool of ``max_workers`` threads in this process.
    max_workers
        Grains solved at once with threads (default 1: each grain's sums already use every core).
    overwrite
        Replace existing files in ``out`` (otherwise an existing ``summary.csv`` or grain folder
        file is refused before any work starts).
    progress
        ``progress(stage, done, total)``: ``stage`` is ``"grain N: <status>"``, ``done`` the number
        of grains finished.
    cancel
        A token with ``.cancelled`` (e.g. :class:`~virtual_aperture.compute.CancelToken`): grains
        not started are cancelled, running ones stop at their next check (threads only).
    **options
        Passed to :func:`~virtual_aperture.solve_grain` (``composition``, ``space_group``,
        ``min_positions``, ``starts``, …).

    Returns
    -------
    BatchResult
        One :class:`GrainOutcome` per grain (in label order), the phases and the maps.

    Raises
    ------
    ValueError
        Bad labels, an unknown grain, or options ``solve_grain`` does not take.
    FileExistsError
        ``out`` already holds results and ``overwrite`` is False.
    """
    import inspect

    from .compute.executor import is_cancelled
    from .workflow.chain import _check_inputs, solve_grain

    lab = np.asarray(labels)
    present = _present_grains(lab) if lab.dtype.kind in "iu" else []
    if grains is None:
        grains = present
    grains = [int(g) for g in grains]
    if not grains:
        raise ValueError("no grains to solve: the labels hold no positive label")
    missing = sorted(set(grains) - set(present))
    if missing:
        raise ValueError(f"grain(s) {missing} not in the labels (present: {present[:20]})")
    _check_inputs(dataset, lab, grains[0])
    allowed = set(inspect.signature(solve_grain).parameters) - {
        "dataset",
        "labels",
        "grain",
        "cancel",
        "progress",
        "client",
    }
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"unknown option(s) for solve_grain: {unknown}")
    if max_workers is not None and max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    out_path = None
    if out is not None:
        out_path = Path(out)
        if out_path.exists() and not out_path.is_dir():
            raise ValueError(f"--out {out_path} exists and is not a folder")
        if not overwrite:
            taken = [
                p
                for p in (out_path / "summary.csv", *(out_path / f"grain_{g}" for g in grains))
                if p.exists()
            ]
            if taken:
                raise FileExistsError(f"{taken[0]} already exists (use --overwrite / overwrite=True)")
        out_path.mkdir(parents=True, exist_ok=True)

    t_start = time.perf_counter()
    executor = client.get_executor() if client is not None else cf.ThreadPoolExecutor(max_workers or 1)
    token = cancel if client is None else None  # an in-process token cannot travel to other processes
    futures = {
        executor.submit(
            _solve_one,
            dataset,
            lab,
            g,
            None if out_path is None else str(out_path),
            overwrite,
            options,
            token,
        ): g
        for g in grains
    }
    results: dict[int, GrainOutcome] = {}
    try:
        for fut in cf.as_completed(futures):
            g = futures[fut]
            try:
                results[g] = fut.result()
            except cf.CancelledError:
                results[g] = GrainOutcome(g, "cancelled", "cancelled")
            except Exception as exc:  # a crashed worker or an unexpected error: one grain, not the batch
                results[g] = GrainOutcome(
                    g, "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                )
            if progress is not None:
                progress(f"grain {g}: {results[g].status}", len(results), len(grains))
            if is_cancelled(cancel):
                for f in futures:
                    f.cancel()
    finally:
        if client is None:
            executor.shutdown(wait=True, cancel_futures=True)
    outcomes = [results.get(g, GrainOutcome(g, "cancelled", "cancelled")) for g in grains]
    outcomes, phases, pmap, omap = _maps(outcomes, lab)
    unassigned = float(np.mean(lab <= 0))
    info = {
        "seconds": round(time.perf_counter() - t_start, 1),
        "scheduler": "threads"
        if client is None
        else str(getattr(client, "scheduler_info", lambda: {})().get("address", "distributed")),
    }
    info["scan_step_nm"] = float(dataset.calibration.scan_step_nm)
    batch = BatchResult(tuple(outcomes), phases, pmap, omap, unassigned, out_path, info)
    if out_path is not None:
        write_batch(batch, out_path, overwrite=True, labels=lab)
    return batch


def write_batch(
    batch: BatchResult, out: str | os.PathLike, *, overwrite: bool = False, labels: np.ndarray | None = None
) -> list[Path]:
    """Write ``summary.csv``, ``summary.json``, ``phase_map.tif`` (int32),
    ``orientation_map.tif`` (RGB uint8, IPF colours) and ``maps.png`` (both maps as a figure with
    axes in nm) of a batch into ``out``."""
    import tifffile

    from ._atomic import atomic_path

    out = Path(out)
    paths = []
    with atomic_path(out / "summary.csv", overwrite=overwrite) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(SUMMARY_COLUMNS))
            w.writeheader()
            w.writerows(batch.table())
    paths.append(out / "summary.csv")
    with atomic_path(out / "summary.json", overwrite=overwrite) as tmp:
        Path(tmp).write_text(json.dumps(batch.summary(), indent=1))
    paths.append(out / "summary.json")
    if batch.phase_map is not None:
        axes = "TYX" if batch.phase_map.ndim == 3 else "YX"
        with atomic_path(out / "phase_map.tif", overwrite=overwrite) as tmp:
            tifffile.imwrite(tmp, batch.phase_map.astype(np.int32), metadata={"axes": axes})
        with atomic_path(out / "orientation_map.tif", overwrite=overwrite) as tmp:
            rgb = np.round(255 * batch.orientation_map).astype(np.uint8)
            tifffile.imwrite(tmp, rgb, photometric="rgb", metadata={"axes": axes + "S"})
        paths += [out / "phase_map.tif", out / "orientation_map.tif"]
        from .grains.phase_figure import maps_figure

        with atomic_path(out / "maps.png", overwrite=overwrite) as tmp:
            maps_figure(
                batch.phase_map,
                batch.orientation_map,
                batch.phases,
                out=tmp,
                scan_step_nm=float(batch.info.get("scan_step_nm", 1.0)),
                title=f"{batch.n_solved} of {len(batch.outcomes)} grains solved",
                labels=labels,
            )
        paths.append(out / "maps.png")
    return paths
