"""Heavy actions off the GUI thread: napari ``thread_worker`` + napari progress bar + Cancel.

``JobRunner.start(name, fn, on_done)`` runs ``fn(progress, cancel)`` in a napari worker thread;
``progress(done, total)`` may be called from any thread (a GUI-thread timer copies it into the
napari progress bar); ``cancel`` is a :class:`virtual_aperture.compute.CancelToken` that
``JobRunner.cancel()`` sets. Results reach ``on_done`` on the GUI thread (``returned`` signal),
the only place layers are touched. Failures become napari notifications.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, QTimer, Signal

from .runner import notify_error


class JobRunner(QObject):
    busy_changed = Signal(bool)
    message = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[dict] = []
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._tick)

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def start(
        self, name: str, fn: Callable[[Callable, Any], Any], on_done: Callable[[Any], None] | None = None
    ) -> Any:
        from napari.qt.threading import create_worker
        from napari.utils import progress

        from virtual_aperture.compute import CancelToken

        token = CancelToken()
        state = {"done": 0, "total": 0}

        def report(done: int, total: int) -> None:
            state["done"], state["total"] = int(done), int(total)

        from .background import Failure

        def guarded(report: Callable, token: Any) -> Any:
            try:
                return fn(report, token)
            except ValueError as exc:  # the library refused the input: a message, not a traceback
                return Failure(str(exc))

        worker = create_worker(guarded, report, token, _start_thread=False, _ignore_errors=True)
        job = {
            "name": name,
            "token": token,
            "state": state,
            "worker": worker,
            "pbar": progress(total=0, desc=name),
        }
        self._jobs.append(job)

        def returned(result: Any) -> None:
            if isinstance(result, Failure):
                notify_error(f"{name}: {result}")
                self.message.emit(f"{name}: {result}")
                return
            self.message.emit(f"{name}: done")  # first: a message on_done shows is not overwritten
            if on_done is not None:
                try:
                    on_done(result)
                except Exception as exc:  # noqa: BLE001 - never crash napari from a callback
                    notify_error(f"{name}: {exc}")
                    self.message.emit(f"{name}: failed ({exc})")

        def errored(exc: BaseException) -> None:
            if type(exc).__name__ == "Cancelled":
                self.message.emit(f"{name}: cancelled")
            else:
                notify_error(f"{name} failed: {exc}")
                self.message.emit(f"{name}: failed ({exc})")

        worker.returned.connect(returned)
        worker.errored.connect(errored)
        worker.finished.connect(lambda: self._finish(job))
        self.busy_changed.emit(True)
        self.message.emit(f"{name}…")
        self._timer.start()
        worker.start()
        return worker

    def _tick(self) -> None:
        for job in self._jobs:
            pbar, st = job["pbar"], job["state"]
            if st["total"] and pbar.total != st["total"]:
                pbar.total = st["total"]
            if st["done"] > pbar.n:
                pbar.update(st["done"] - pbar.n)

    def _finish(self, job: dict) -> None:
        job["pbar"].close()
        if job in self._jobs:
            self._jobs.remove(job)
        if not self._jobs:
            self._timer.stop()
            self.busy_changed.emit(False)

    def cancel(self) -> None:
        """Ask every running job to stop (they raise ``Cancelled`` at their next check)."""
        for job in self._jobs:
            job["token"].cancel()

    def wait(self, timeout: float = 60.0) -> None:
        """Process events until all jobs finished (tests, scripts)."""
        import time

        from qtpy.QtWidgets import QApplication

        end = time.perf_counter() + timeout
        while self._jobs and time.perf_counter() < end:
            QApplication.processEvents()
            time.sleep(0.005)
        QApplication.processEvents()
        if self._jobs:
            raise TimeoutError("virtual-aperture jobs did not finish")
