"""``virtual-aperture solve DATA --labels L --all --out DIR``: every grain, one task per grain."""

from __future__ import annotations

import argparse
import sys

from ._runtime import close_client, open_client


def _grain_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        grains = [int(t) for t in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"--grains {text!r}: expected labels like 1,2,5") from None
    if not grains or min(grains) <= 0:
        raise ValueError(f"--grains {text!r}: expected positive labels")
    return grains


def run_all(args: argparse.Namespace, dataset, labels) -> int:
    """Solve every grain; print one line per finished grain and the summary table.

    Exit 0 when every grain was solved, 3 when the batch ran but some grain has no solution
    (or failed: its row says why), 2 for bad input (raised before any work)."""
    from virtual_aperture.batch import solve_all_grains

    grains = _grain_list(args.grains)
    client = open_client(args.scheduler)

    def progress(stage: str, done: int, total: int) -> None:
        print(f"[{done}/{total}] {stage}", file=sys.stderr, flush=True)

    try:
        batch = solve_all_grains(
            dataset,
            labels,
            out=args.out,
            grains=grains,
            client=client,
            max_workers=args.workers,
            overwrite=args.overwrite,
            progress=progress,
            composition=args.composition,
            space_group=args.space_group,
            known_cell=_known(args),
            d_min=args.d_min,
            min_positions=args.min_positions,
            peak_threshold=args.threshold,
            max_lattices=args.max_lattices,
            starts=args.starts,
            seed=args.seed,
        )
    finally:
        close_client(client)
    print(batch.table_text())
    print(
        f"wrote {batch.out}/summary.csv, summary.json, phase_map.tif, orientation_map.tif and a folder "
        "per grain"
    )
    return 0 if batch.n_solved == len(batch.outcomes) else 3


def _known(args):
    from ._runtime import known_cell_arg

    return known_cell_arg(args.known_cell)
