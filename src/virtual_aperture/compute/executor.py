"""Where the work runs: dask on local threads (default) or a ``dask.distributed`` cluster.

Every streamed computation is a list of small dask graphs, one per data chunk (read the chunk,
reduce it with a numba kernel). :func:`stream` runs them with a bounded number in flight, so
memory stays under the budget, hands each result to an ``accumulate`` callback in the calling
thread as it arrives, reports ``progress(done, total)`` and stops early on a :class:`CancelToken`.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import dask

ProgressFn = Callable[[int, int], Any]

#: default memory budget for streamed (file-backed) data when none is given
DEFAULT_BUDGET = 1 * 2**30


class Cancelled(RuntimeError):
    """Raised by a computation whose :class:`CancelToken` was cancelled."""


class CancelToken:
    """A thread-safe flag a GUI (or anything) sets to stop a running computation.

    Computations check it between chunks and raise :class:`Cancelled`.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the computation(s) holding this token to stop."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("computation cancelled")

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.cancelled})"


def is_cancelled(cancel: Any) -> bool:
    """True when a cancel token is set. Accepts ``None``, a :class:`CancelToken`, a
    ``threading.Event``, any object with ``cancelled``/``is_cancelled()``, or a callable."""
    if cancel is None:
        return False
    for name in ("cancelled", "is_cancelled", "is_set"):
        attr = getattr(cancel, name, None)
        if attr is not None:
            return bool(attr() if callable(attr) else attr)
    return bool(cancel()) if callable(cancel) else bool(cancel)


def check_cancel(cancel: Any) -> None:
    """Raise :class:`Cancelled` when ``cancel`` (see :func:`is_cancelled`) is set."""
    if is_cancelled(cancel):
        raise Cancelled("computation cancelled")


def parse_memory_budget(budget: int | float | str | None) -> int:
    """Bytes from ``budget``: a number of bytes or a string like ``"2GB"``, ``"512 MiB"``.

    Strings are read by :func:`dask.utils.parse_bytes` (decimal ``kB``/``MB``/``GB``/``TB`` and
    binary ``KiB``/``MiB``/``GiB``/``TiB`` units). ``None`` gives :data:`DEFAULT_BUDGET` (1 GiB).
    Raises ``ValueError`` for anything not positive.
    """
    from dask.utils import parse_bytes

    if budget is None:
        return DEFAULT_BUDGET
    if isinstance(budget, str):
        try:
            value = float(parse_bytes(budget.strip()))
        except ValueError:
            raise ValueError(f"memory budget {budget!r} is not a size like '2GB' or '512MiB'") from None
    elif isinstance(budget, (int, float)) and not isinstance(budget, bool):
        value = float(budget)
    else:
        raise ValueError(f"memory budget must be bytes or a string like '2GB', got {budget!r}")
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"memory budget must be a positive size, got {budget!r}")
    return int(value)


def get_client(
    address_or_client: Any = None,
    *,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    memory_limit: str | int = "auto",
) -> Any:
    """A ``dask.distributed`` client to run computations on, or ``None`` for local threads.

    Parameters
    ----------
    address_or_client
        ``None`` → ``None`` (in-process threads, the default everywhere); ``"local"`` → a new
        ``LocalCluster`` with ``n_workers`` worker processes; any other string → a client connected
        to that scheduler address (e.g. ``"tcp://10.0.0.5:8786"``); an existing ``Client`` is
        checked (it must not be closed) and returned.
    n_workers, threads_per_worker, memory_limit
        Used only for ``"local"``.

    Returns
    -------
    distributed.Client or None
        The client, or ``None`` for in-process threads.
    """
    if address_or_client is None:
        return None
    if isinstance(address_or_client, str):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - distributed is a dependency of [all]
            raise ValueError("a scheduler address needs dask.distributed: pip install distributed") from exc
        if address_or_client.strip().lower() == "local":
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                memory_limit=memory_limit,
                dashboard_address=None,
                processes=True,
            )
            return Client(cluster)
        try:
            return Client(address_or_client, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"cannot connect to dask scheduler {address_or_client!r}: {exc}") from exc
    return check_client(address_or_client)


def check_client(client: Any) -> Any:
    """Validate a client argument: ``None`` or a running ``distributed.Client``."""
    if client is None:
        return None
    if isinstance(client, str):
        return get_client(client)
    status = getattr(client, "status", None)
    if status is None or not hasattr(client, "compute"):
        raise ValueError(
            f"client must be a dask.distributed Client or an address, got {type(client).__name__}"
        )
    if status != "running":
        raise ValueError(f"the dask.distributed client is not usable (status {status!r}); create a new one")
    return client


def local_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def stream(
    tasks: Sequence[Any],
    accumulate: Callable[[int, Any], None],
    *,
    client: Any = None,
    in_flight: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Compute dask ``tasks`` (one chunk each), feeding results to ``accumulate(i, result)``.

    At most ``in_flight`` tasks are running or waiting to be accumulated at once (default: the
    number of local workers + 1; on a cluster max(8, 4 × its threads), as queued tasks hold no data),
    which bounds memory. ``accumulate`` runs in the calling thread.
    """
    total = len(tasks)
    if progress is not None:
        progress(0, total)
    if total == 0:
        return
    client = check_client(client)
    if client is not None:
        _stream_distributed(tasks, accumulate, client, in_flight, progress, cancel)
        return
    window = max(1, in_flight or local_workers() + 1)
    _windowed(tasks, _compute_sync, accumulate, window, "va-compute", progress, cancel)


def _windowed(
    items: Sequence[Any],
    fn: Callable[[Any], Any],
    accumulate: Callable[[int, Any], None],
    window: int,
    prefix: str,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> None:
    """``fn(item)`` on local threads with at most ``window`` running or waiting to be accumulated;
    ``accumulate(i, result)`` and ``progress(done, total)`` run in the calling thread."""
    total, done = len(items), 0
    with ThreadPoolExecutor(max_workers=min(local_workers(), window), thread_name_prefix=prefix) as pool:
        pending: dict[Future, int] = {}
        next_i = 0
        try:
            while next_i < total or pending:
                check_cancel(cancel)
                while next_i < total and len(pending) < window:
                    pending[pool.submit(fn, items[next_i])] = next_i
                    next_i += 1
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in finished:
                    accumulate(pending.pop(fut), fut.result())
                    done += 1
                    if progress is not None:
                        progress(done, total)
        finally:
            for fut in pending:
                fut.cancel()


def _compute_sync(task: Any) -> Any:
    (result,) = dask.compute(task, scheduler="sync")
    return result


def _stream_distributed(
    tasks: Sequence[Any],
    accumulate: Callable[[int, Any], None],
    client: Any,
    in_flight: int | None,
    progress: ProgressFn | None,
    cancel: Any,
) -> None:
    from distributed import as_completed

    total = len(tasks)
    try:
        n_threads = sum(client.nthreads().values())
    except Exception:  # noqa: BLE001 - a client that cannot answer gets a small window
        n_threads = 2
    # a deeper window hides the per-task scheduling latency; queued tasks hold no data yet
    window = max(1, in_flight or max(8, 4 * n_threads))
    index: dict[Any, int] = {}
    next_i = 0
    done = 0

    def submit(i: int) -> Any:
        fut = client.compute(tasks[i])
        index[fut.key] = i
        return fut

    first = [submit(i) for i in range(min(window, total))]
    next_i = len(first)
    ac = as_completed(first)
    try:
        for fut in ac:
            check_cancel(cancel)
            result = fut.result()
            accumulate(index.pop(fut.key), result)
            fut.release()
            done += 1
            if progress is not None:
                progress(done, total)
            if next_i < total:
                ac.add(submit(next_i))
                next_i += 1
    except BaseException:
        for f in list(ac.futures):
            f.cancel()
        raise


def run_local(
    items: Sequence[Any],
    fn: Callable[[Any], Any],
    accumulate: Callable[[int, Any], None],
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """``fn(item)`` for every item on the local worker threads, results to ``accumulate(i, result)``
    in the calling thread, at most workers + 1 in flight (no dask). For work that reads its own
    input (a piece of a file): each thread runs whole pieces, so no thread waits for another."""
    if progress is not None:
        progress(0, len(items))
    _windowed(items, fn, accumulate, local_workers() + 1, "va-file", progress, cancel)
