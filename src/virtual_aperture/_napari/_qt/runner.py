"""Background runners for the interactive paths (hover, live grain sums, live virtual images).

Each :class:`SerialRunner` owns one worker thread, so its tasks run in submission order; results
come back to the GUI thread through a queued Qt signal, where layers may be touched. Errors are
shown as napari notifications, never raised into the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from qtpy.QtCore import QObject, Signal


def notify_error(message: str) -> None:
    """Show an error in napari's notification area (never raises)."""
    try:
        from napari.utils.notifications import show_error

        show_error(message)
    except Exception:  # noqa: BLE001
        pass


class SerialRunner(QObject):
    """Run callables one at a time on a private thread; deliver results on the GUI thread."""

    _finished = Signal(object, object, object)  # on_result, on_error, future

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._name = name
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"va-{name}")
        self._finished.connect(self._deliver)
        self._pending = 0
        self._closed = False

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def submit(
        self,
        fn: Callable[[], Any],
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Future | None:
        if self._closed:
            return None
        self._pending += 1
        fut = self._pool.submit(fn)
        fut.add_done_callback(lambda f: self._emit(on_result, on_error, f))
        return fut

    def _emit(self, on_result, on_error, fut) -> None:
        try:
            self._finished.emit(on_result, on_error, fut)
        except RuntimeError:  # the QObject is gone (viewer closed)
            pass

    def _deliver(self, on_result, on_error, fut: Future) -> None:
        self._pending -= 1
        if self._closed:
            return
        exc = fut.exception()
        if exc is not None:
            if on_error is not None:
                on_error(exc)
            else:
                notify_error(f"virtual aperture ({self._name}): {exc}")
            return
        if on_result is not None:
            try:
                on_result(fut.result())
            except Exception as err:  # noqa: BLE001 - a GUI callback must not kill the loop
                notify_error(f"virtual aperture ({self._name}): {err}")

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until submitted tasks finished (tests and shutdown only)."""
        done = self._pool.submit(lambda: None)
        done.result(timeout=timeout)

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)


class LatestRunner(SerialRunner):
    """A runner that computes only the newest request: older pending requests are dropped.

    ``request(key, fn_of_key, on_result)`` stores the request; when the worker is free it runs
    the newest one, and when that finishes it runs the next newest if the key moved meanwhile.
    """

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(name, parent)
        self._latest: tuple[Any, Callable, Callable] | None = None
        self._running = False
        self.last_latency: float | None = None

    def request(self, key: Any, fn: Callable[[Any], Any], on_result: Callable[[Any, Any], None]) -> None:
        self._latest = (key, fn, on_result, time.perf_counter())
        if not self._running:
            self._start()

    def _start(self) -> None:
        req, self._latest = self._latest, None
        if req is None:
            self._running = False
            return
        self._running = True
        key, fn, on_result, t0 = req

        def done(result: Any) -> None:
            self.last_latency = time.perf_counter() - t0
            on_result(key, result)
            self._start()

        def failed(exc: BaseException) -> None:
            notify_error(f"virtual aperture ({self._name}): {exc}")
            self._start()

        self.submit(lambda: fn(key), done, failed)
