"""Running a library call off the GUI thread while it reports progress.

The library reports progress through a callback *in its own thread*; napari's ``thread_worker``
delivers what a generator yields to the GUI thread. :func:`run_reporting` bridges the two: it runs
``fn(progress=…)`` in a helper thread and yields its latest progress arguments until it ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

#: returned instead of a result when the job's cancel token was set
CANCELLED = object()


class Failure:
    """Returned instead of a result when the library refused the input (a ``ValueError``): an
    expected failure, shown as a one-line message, never as a traceback."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:
        return self.message


class JobError(Exception):
    """A library error delivered to the GUI. superqt swallows ``RuntimeError`` (e.g. ``Cancelled``)
    raised by a worker without emitting ``finished``; this wrapper is not one."""


def run_reporting(fn: Callable[..., Any], *, cancel: Any = None, poll_s: float = 0.1, **kwargs: Any):
    """Generator for ``thread_worker``: runs ``fn(progress=callback, cancel=cancel, **kwargs)`` in a
    helper thread (``cancel`` is passed only when given),
    yields the latest ``callback(*args)`` arguments every ``poll_s`` and the final ones, then
    returns ``fn``'s result — :data:`CANCELLED` when ``cancel`` was set and ``fn`` stopped with an
    error, a :class:`Failure` for a ``ValueError`` (bad input); any other ``RuntimeError`` is
    re-raised as :class:`JobError`."""
    from virtual_aperture.compute.executor import is_cancelled

    if cancel is not None:
        kwargs["cancel"] = cancel
    box: dict = {}
    done = threading.Event()

    def progress(*args: Any) -> None:
        box["p"] = args

    def target() -> None:
        try:
            box["result"] = fn(progress=progress, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - delivered to the GUI below
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, daemon=True).start()
    while not done.wait(poll_s):
        if "p" in box:
            yield box.pop("p")
    if "p" in box:  # the final count
        yield box.pop("p")
    err = box.get("error")
    if err is not None:
        if is_cancelled(cancel):
            return CANCELLED
        if isinstance(err, ValueError):
            return Failure(str(err))
        if isinstance(err, RuntimeError):
            raise JobError(str(err)) from err
        raise err
    return box["result"]


def start_worker(
    fn: Callable[..., Any],
    *,
    cancel: Any,
    on_result: Callable[[Any], None],
    on_progress: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    **kwargs: Any,
):
    """The one way the plugin runs a job off the GUI thread: ``fn(progress=…, cancel=cancel,
    **kwargs)`` through :func:`run_reporting` in a napari ``thread_worker``, started at once.

    On the GUI thread: ``on_progress`` gets each ``progress(*args)`` tuple; ``on_result`` gets the
    result — or :data:`CANCELLED`, or a :class:`Failure` (a ``ValueError``: the input refused), so
    one handler decides what the tab shows; ``on_error`` gets any other exception (default: a
    napari notification); ``on_finished`` runs last, whatever happened. ``cancel`` is the job's
    :class:`~virtual_aperture.compute.CancelToken`. Returns the worker.
    """
    from napari.qt.threading import thread_worker

    from .runner import notify_error

    worker = thread_worker(run_reporting)(fn, cancel=cancel, **kwargs)
    if on_progress is not None:
        worker.yielded.connect(on_progress)
    worker.returned.connect(on_result)
    worker.errored.connect(on_error or (lambda exc: notify_error(f"{type(exc).__name__}: {exc}")))
    if on_finished is not None:
        worker.finished.connect(on_finished)
    worker.start()
    return worker
