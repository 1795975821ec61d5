"""What every command shares: progress bars on stderr and the dask client from ``--scheduler``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def cli_progress(label: str, unit: str = "chunks") -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback drawing a tqdm bar on stderr (silent when not a terminal)."""
    from tqdm import tqdm

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=label, unit=unit, file=sys.stderr, leave=False, disable=None)
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            bar = None

    return progress


@contextmanager
def tqdm_progress(label: str, unit: str = "it") -> Iterator[Callable[[int, int], None]]:
    """:func:`cli_progress` whose bar is closed on leaving the block, even after an error."""
    from tqdm import tqdm

    bar = tqdm(total=1, desc=label, unit=unit, file=sys.stderr, leave=False, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield progress
    finally:
        bar.close()


def add_output_options(p, help: str) -> None:
    """``--out FILE`` and ``--overwrite`` (an existing output is refused without it)."""
    p.add_argument("--out", required=True, help=help)
    p.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")


def check_output(args) -> None:
    """Refuse an existing ``--out`` (without ``--overwrite``) or a missing folder before computing."""
    from virtual_aperture._atomic import check_target

    check_target(args.out, args.overwrite, option="--overwrite")


def write_output(args, writer: Callable[[str], None]) -> None:
    """Write ``--out`` atomically with ``writer(tmp_name)``: a temporary file in the same folder moved
    into place when complete, so an error or Ctrl-C never leaves a partial file under that name."""
    from virtual_aperture._atomic import write_with

    write_with(args.out, writer, overwrite=args.overwrite, option="--overwrite")


def open_client(address: str | None):
    """``None`` (threads), or the client for ``--scheduler ADDRESS`` / ``local``."""
    from virtual_aperture.compute import get_client

    return get_client(address) if address else None


def close_client(client) -> None:
    """Close a client opened by :func:`open_client` (and its LocalCluster, if it made one)."""
    if client is None:
        return
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def staged_progress(unit: str = "steps") -> Callable[[str, int, int], None]:
    """A ``progress(stage, done, total)`` callback: one :func:`cli_progress` bar per stage."""
    bars: dict[str, Callable[[int, int], None]] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = cli_progress(stage, unit=unit)
        bars[stage](done, total)

    return progress


def known_cell_arg(text: str | None):
    """``--known-cell``: six numbers (a b c α β γ) as a tuple, or the path of an existing CIF."""
    if text is None:
        return None
    parts = text.replace(",", " ").split()
    if len(parts) == 6:
        try:
            return tuple(float(v) for v in parts)
        except ValueError:
            pass
    if not Path(text).is_file():
        raise ValueError(f"--known-cell {text!r} is neither six numbers nor an existing CIF file")
    return text


def add_max_lattices(p) -> None:
    """``--max-lattices N`` of the commands that index (``index``, ``solve``)."""
    p.add_argument(
        "--max-lattices",
        type=int,
        default=1,
        metavar="N",
        help="index up to N lattices (a contaminated aperture: the dominant crystal plus "
        "neighbours); the dominant one is used, every lattice is reported (default 1)",
    )


def check_max_lattices(args) -> None:
    """A clear error before any work when ``--max-lattices`` is below 1."""
    if args.max_lattices < 1:
        raise ValueError(f"--max-lattices must be 1 or more, got {args.max_lattices}")
