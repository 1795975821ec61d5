"""Session tab: save/open sessions and autosave to a sidecar file.

The autosave timer fires every few seconds; when the workspace changed since the last save it
snapshots the grain labels, names and detectors on the GUI thread (a copy) and writes them on a
worker thread with :func:`virtual_aperture.session.save_session` (temporary file + atomic
rename), so a crash loses at most the last seconds of painting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path
from typing import Any

import h5py  # noqa: F401 - imported here, not by the first autosave: a first import holds the GIL ~1 s
import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from virtual_aperture.session import load_session, save_session

from .runner import SerialRunner, notify_error


def autosave_path(dataset: Any) -> Path:
    """Sidecar autosave file: next to the data when writable, else in ~/.cache/virtual-aperture."""
    src = getattr(dataset, "source", None)
    p = Path(str(src).rstrip("/\\")) if src else None
    if p is not None and p.exists():
        side = p.with_name(p.name + ".va-autosave.h5")
        if os.access(side.parent, os.W_OK):
            return side
        tag = hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:12]
    else:  # in-memory or simulated data: keyed by its description
        tag = "memory-" + hashlib.sha1(f"{src}{dataset.shape}".encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "virtual-aperture"
    cache.mkdir(parents=True, exist_ok=True)
    return cache / f"autosave-{tag}.h5"


class SessionPanel(QWidget):
    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = controller.model
        self.writer = SerialRunner("autosave", self)
        controller._extra_runners = [*getattr(controller, "_extra_runners", []), self.writer]
        self.save_btn = QPushButton("Save session…")
        self.open_btn = QPushButton("Open session…")
        self.recover_btn = QPushButton("Recover autosave")
        self.save_btn.clicked.connect(lambda: self.save())
        self.open_btn.clicked.connect(lambda: self.restore())
        self.recover_btn.clicked.connect(lambda: self.restore(self.autosave_file))
        self.autosave = QCheckBox("autosave")
        self.autosave.setChecked(True)
        self.interval = QSpinBox(minimum=1, maximum=600)
        self.interval.setValue(5)
        self.interval.setSuffix(" s")
        self.state = QLabel("")
        self.state.setWordWrap(True)
        row = QHBoxLayout()
        for b in (self.save_btn, self.open_btn, self.recover_btn):
            row.addWidget(b)
        form = QFormLayout()
        form.addRow(self.autosave, self.interval)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addLayout(form)
        lay.addWidget(self.state)
        lay.addWidget(self._calibration_box())
        lay.addStretch(1)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.autosave_now)
        self.interval.valueChanged.connect(lambda s: self.timer.setInterval(1000 * s))
        self.autosave.toggled.connect(
            lambda on: self.timer.start(1000 * self.interval.value()) if on else self.timer.stop()
        )
        self.timer.start(1000 * self.interval.value())
        controller.dataset_ready.connect(self._on_dataset)
        self.autosave_file: Path | None = None
        self.last_autosave: float | None = None

    def _on_dataset(self) -> None:
        ds = self.controller.dataset
        self.autosave_file = autosave_path(ds)
        exists = self.autosave_file.exists()
        self.recover_btn.setEnabled(exists)
        src = getattr(ds, "source", None)
        if src and Path(str(src)).exists() and not self.autosave_file.name.startswith(Path(str(src)).name):
            where = f"the folder of {src} is not writable: autosaving to {self.autosave_file}"
        elif src and Path(str(src)).exists():
            where = f"autosave beside the data: {self.autosave_file}"
        else:
            where = f"data not from a file: autosaving to {self.autosave_file}"
        self.state.setText(where + (" (an earlier autosave exists: Recover autosave)" if exists else ""))

    # ---- descan calibration ----------------------------------------------------------------------------
    def _calibration_box(self) -> QGroupBox:
        box = QGroupBox("Descan calibration")
        form = QFormLayout(box)
        self.descan_order = QSpinBox(minimum=0, maximum=5)
        self.descan_order.setValue(3)
        self.descan_order.setToolTip("order of the polynomial fitted to the beam-centre map (1 = plane)")
        self.descan_btn = QPushButton("Measure descan")
        self.descan_btn.setToolTip(
            "fit the unscattered beam's position over the scan; sums, virtual images "
            "and indexing then re-centre every pattern"
        )
        self.descan_btn.clicked.connect(lambda: self.calibrate_descan())
        self.descan_clear_btn = QPushButton("Forget descan fit")
        self.descan_clear_btn.clicked.connect(lambda: self.clear_descan())
        self.descan_info = QLabel("no descan fit")
        self.descan_info.setWordWrap(True)
        form.addRow("polynomial order", self.descan_order)
        buttons = QHBoxLayout()
        buttons.addWidget(self.descan_btn)
        buttons.addWidget(self.descan_clear_btn)
        form.addRow(buttons)
        form.addRow(self.descan_info)
        return box

    def calibrate_descan(self) -> Any:
        """Measure and fit the descan (:func:`virtual_aperture.crystal.calibrate_descan`) in a job."""
        c = self.controller
        ds = c.dataset
        if ds is None:
            self.descan_info.setText("open a dataset first")
            return None
        order, tilt = self.descan_order.value(), self.model.tilt

        def work(progress: Any, cancel: Any) -> tuple:
            from virtual_aperture.crystal.descan import calibrate_descan

            return calibrate_descan(ds, order=order, tilt=tilt, progress=progress)

        def done(result: tuple) -> None:
            cal, fit = result
            self.model.recalibrate(cal)
            shifts = np.hypot(fit.shifts[..., 0], fit.shifts[..., 1])
            self.descan_info.setText(
                f"descan fitted on tilt {tilt + 1}: order {fit.order}, up to "
                f"{float(np.nanmax(shifts)):.2f} px, residual {fit.rms:.2f} px rms; sums and "
                "virtual images are now descan-compensated"
            )

        return c.jobs.start("descan calibration", work, done)

    def clear_descan(self) -> None:
        ds = self.controller.dataset
        if ds is None or not ds.calibration.extra.get("descan"):
            self.descan_info.setText("no descan fit")
            return
        extra = {k: v for k, v in ds.calibration.extra.items() if k != "descan"}
        self.model.recalibrate(ds.calibration.replace(extra=extra))
        self.descan_info.setText("descan fit removed")

    # ---- snapshot / save ------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """The session state as save_session keywords (copies, safe to hand to a thread)."""
        c = self.controller
        det = c.extra_panel("detectors")
        ds = c.dataset
        return {
            "dataset_source": ds.source if ds is not None else None,
            "grains": np.array(c.grains.data, dtype=np.int32, copy=True),
            "grain_names": dict(self.model.grain_names),
            "detectors": {k: v.copy() for k, v in det.masks().items()}
            if det is not None and det.ready
            else {},
            "calibration": ds.calibration if ds is not None else None,
            "extra": {
                "selected": self.model.selected,
                "tilt": self.model.tilt,
                "display": dataclasses.asdict(self.model.display),
                "scheduler_address": self.model.scheduler_address,
            },
        }

    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        if self.controller.grains is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save session", "", "Session (*.h5 *.zarr)")
            if not path:
                return None
        try:
            out = save_session(path, **self.snapshot())
        except (OSError, ValueError) as exc:
            notify_error(f"could not save the session: {exc}")
            return None
        self.model.session_path = str(out)
        self.model.mark_clean()
        self.state.setText(f"saved session to {out}")
        return out

    def autosave_now(self) -> None:
        if not self.model.dirty or self.controller.grains is None or self.autosave_file is None:
            return
        kwargs, path = self.snapshot(), self.autosave_file
        self.model.mark_clean()

        def done(_: Any) -> None:
            self.last_autosave = time.time()
            self.state.setText(f"autosaved {time.strftime('%H:%M:%S')} to {path}")

        def failed(exc: BaseException) -> None:
            self.model.mark_dirty()
            notify_error(f"autosave to {path} failed: {exc}")

        self.writer.submit(lambda: save_session(path, **kwargs), done, failed)

    # ---- restore ------------------------------------------------------------------------------------
    def restore(self, path: str | os.PathLike | None = None) -> bool:
        c = self.controller
        if path is None:
            path, _ = QFileDialog.getOpenFileName(
                self, "Open session", "", "Session (*.h5 *.hdf5 *.vas *.zarr)"
            )
            if not path:
                return False
        if c.grains is None:
            notify_error("open the dataset first, then the session")
            return False
        try:
            s = load_session(path)
        except (OSError, ValueError) as exc:
            notify_error(f"could not open session: {exc}")
            return False
        if s.grains.shape != c.grains.data.shape:
            notify_error(
                f"session {path} has grains of shape {s.grains.shape}; "
                f"this dataset needs {c.grains.data.shape}"
            )
            return False
        c.grains.data = s.grains.astype(np.int32)
        self.model.set_grain_names(s.grain_names)
        cal = getattr(s, "calibration", None)
        if cal is not None and cal != c.dataset.calibration:
            self.model.recalibrate(cal)  # e.g. the descan fit saved with the session
        det = c.extra_panel("detectors")
        if det is not None and det.ready and s.detectors:
            det.load_masks(s.detectors)
        extra = s.extra or {}
        if "display" in extra:
            try:
                self.model.display = type(self.model.display)(**extra["display"])
            except (TypeError, ValueError):
                pass
        self.model.scheduler_address = extra.get("scheduler_address", "")
        self.model.tilt = int(extra.get("tilt", 0))
        if int(extra.get("selected", 0)) > 0:
            self.model.selected = int(extra["selected"])
        self.model.session_path = str(path)
        self.model.mark_clean()
        self.state.setText(f"opened session {path}")
        c.grains_edited.emit()
        return True

    def shutdown(self) -> None:
        self.timer.stop()
        self.writer.close()
