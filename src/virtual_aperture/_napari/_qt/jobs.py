"""Heavy workspace actions off the GUI thread: napari progress bar + Cancel, several at a time.

``JobRunner.start(name, fn, on_done)`` runs ``fn(progress, cancel)`` through
:func:`.background.start_worker` (the plugin's one way to run a job: a napari ``thread_worker``
around :func:`.background.run_reporting`); ``progress(done, total)`` may be called from any
thread and reaches the napari progress bar on the GUI thread; ``cancel`` is a
:class:`virtual_aperture.compute.CancelToken` that ``JobRunner.cancel()`` sets. Results reach
``on_done`` on the GUI thread, the only place layers are touched. Refusals and failures become
napari notifications and a one-line ``message``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, Signal

from .runner import notify_error


class JobRunner(QObject):
    busy_changed = Signal(bool)
    message = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[dict] = []

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def start(
        self, name: str, fn: Callable[[Callable, Any], Any], on_done: Callable[[Any], None] | None = None
    ) -> Any:
        from napari.utils import progress

        from virtual_aperture.compute import CancelToken

        from .background import CANCELLED, Failure, start_worker

        token = CancelToken()
        job: dict = {"name": name, "token": token, "pbar": progress(total=0, desc=name)}
        self._jobs.append(job)

        def on_progress(value: Any) -> None:  # (done, total), on the GUI thread
            done, total = (int(v) for v in value[-2:])
            pbar = job["pbar"]
            if total and pbar.total != total:
                pbar.total = total
            if done > pbar.n:
                pbar.update(done - pbar.n)

        def returned(result: Any) -> None:
            if result is CANCELLED:
                self.message.emit(f"{name}: cancelled")
                return
            if isinstance(result, Failure):  # the library refused the input: a message
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
            notify_error(f"{name} failed: {exc}")
            self.message.emit(f"{name}: failed ({exc})")

        self.busy_changed.emit(True)
        self.message.emit(f"{name}…")
        job["worker"] = start_worker(
            lambda progress, cancel: fn(progress, cancel),
            cancel=token,
            on_result=returned,
            on_progress=on_progress,
            on_error=errored,
            on_finished=lambda: self._finish(job),
        )
        return job["worker"]

    def _finish(self, job: dict) -> None:
        job["pbar"].close()
        if job in self._jobs:
            self._jobs.remove(job)
        if not self._jobs:
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
