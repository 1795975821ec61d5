"""Indexing dock widget: per-tilt summed patterns → Bragg peaks (editable) → unit cell → overlays.

Source: an image layer holding summed patterns (``(n_tilts, k_y, k_x)`` or one ``(k_y, k_x)``), or a
navigator layer (its ``metadata["virtual_aperture"]["dataset"]``) + a grains Labels layer + a grain
number, whose patterns *Sum grain* adds as such an image layer. *Find peaks* runs
:func:`virtual_aperture.find_bragg_peaks` with the thresholds set here and shows the peaks as an
editable Points layer (add/delete by hand); *Index* reads that layer back and runs
:func:`virtual_aperture.index_tilt_series` (or :func:`index_zone_axis` for one pattern) in a
napari ``thread_worker`` with progress; the cell, Bravais candidates and indexed fraction are
shown in the dock and the predicted spots of every tilt are overlaid as another Points layer.

As the Index tab of the workspace (``workspace=`` the controller) it works in the diffraction
viewer: a grain handed on from the Grains tab (summed with the descan fit) arrives as a
``patterns: <name>`` layer there, and peaks and predicted spots are drawn over it in Å⁻¹.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..peak_points import peaks_to_points, points_to_peaks
from .background import CANCELLED, Failure, start_worker

META_KEY = "virtual_aperture"
PEAKS_NAME = "Bragg peaks"
PRED_NAME = "predicted spots"


def _spin(lo: float, hi: float, val: float, step: float, decimals: int = 3, special: str | None = None):
    s = QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setDecimals(decimals)
    s.setSingleStep(step)
    s.setValue(val)
    if special:
        s.setSpecialValueText(special)
    return s


class IndexingWidget(QWidget):
    """Dock widget for peak finding and indexing of one grain's summed patterns."""

    def __init__(
        self, napari_viewer: Any = None, parent: QWidget | None = None, *, workspace: Any = None
    ) -> None:
        super().__init__(parent)
        self.workspace = workspace
        # the viewer whose layers hold the patterns, peaks and predicted spots
        self.viewer = workspace.diffraction if workspace is not None else napari_viewer
        self.peaks = None  # list[PeakList] as last found
        self.result = None
        self._worker = None
        self._cancel = None  # the running job's CancelToken
        self.setObjectName("va-indexing")
        form = QFormLayout()
        self.source_combo = QComboBox()
        form.addRow("Patterns / navigator", self.source_combo)
        row = QHBoxLayout()
        self.labels_combo = QComboBox()
        self.grain_spin = QSpinBox()
        self.grain_spin.setRange(1, 1_000_000)
        self.sum_btn = QPushButton("Sum grain")
        self.sum_btn.clicked.connect(self.sum_grain)
        row.addWidget(self.labels_combo)
        row.addWidget(self.grain_spin)
        row.addWidget(self.sum_btn)
        form.addRow("Grains, grain #", row)
        self.pixel_spin = _spin(0.0, 1.0, 0.0, 0.0005, 5, "from dataset")
        form.addRow("Pixel size (Å⁻¹/px)", self.pixel_spin)
        self.kv_spin = _spin(1.0, 1000.0, 300.0, 10.0, 1)
        form.addRow("Beam energy (kV)", self.kv_spin)
        self.tilts_edit = QLineEdit()
        self.tilts_edit.setPlaceholderText("from dataset, or START STOP STEP, or one angle per pattern")
        form.addRow("Tilt angles (°)", self.tilts_edit)
        self.axis_spin = _spin(-360.0, 360.0, 0.0, 1.0, 2)
        form.addRow("Tilt axis (°)", self.axis_spin)
        self.threshold_spin = _spin(1.0, 1000.0, 6.0, 0.5, 1)
        form.addRow("Peak S/N threshold", self.threshold_spin)
        self.radius_spin = _spin(0.0, 50.0, 0.0, 0.5, 1, "Gaussian")
        form.addRow("Disk radius (px)", self.radius_spin)
        self.exclude_spin = _spin(0.0, 500.0, 4.0, 1.0, 1)
        form.addRow("Exclude centre (px)", self.exclude_spin)
        self.bg_spin = _spin(0.0, 200.0, 8.0, 1.0, 1)
        form.addRow("Background σ (px)", self.bg_spin)
        self.cell_edit = QLineEdit()
        self.cell_edit.setPlaceholderText("optional: a b c α β γ [centring] or CIF path")
        form.addRow("Known cell", self.cell_edit)
        self.ellipticity_check = QCheckBox("refine detector ellipticity (no ring standard)")
        form.addRow("", self.ellipticity_check)
        self.lattices_spin = QSpinBox()  # max_lattices: a contaminated aperture holds neighbours
        self.lattices_spin.setRange(1, 5)
        self.lattices_spin.setToolTip("index up to this many lattices; the dominant one is used")
        form.addRow("lattices", self.lattices_spin)
        buttons = QHBoxLayout()
        self.find_btn = QPushButton("Find peaks")
        self.find_btn.clicked.connect(self.find_peaks)
        self.index_btn = QPushButton("Index")
        self.index_btn.clicked.connect(self.run_indexing)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        buttons.addWidget(self.find_btn)
        buttons.addWidget(self.index_btn)
        buttons.addWidget(self.cancel_btn)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.report)
        if self.viewer is not None:
            self.viewer.layers.events.inserted.connect(self._refresh)
            self.viewer.layers.events.removed.connect(self._refresh)
        if workspace is not None:
            self.labels_combo.setVisible(False)
            self.grain_spin.setVisible(False)
            self.sum_btn.setText("Sum selected grain (descan-compensated)")
            label = form.labelForField(row)
            if label is not None:
                label.setText("Grain")
            workspace.model.grain_handed.connect(self.show_handed)
        self._refresh()

    # ---- workspace ------------------------------------------------------------------------------
    def show_handed(self, grain: Any) -> Any:
        """A grain handed on by the workspace: its per-tilt patterns become the source layer."""
        pats = np.asarray(grain.patterns, dtype=np.float32)
        name = f"patterns: {grain.name}"
        cal = grain.calibration
        px = (cal.pixel_size if cal is not None else None) or 1.0
        for layer in [
            ly
            for ly in self.viewer.layers
            if (ly.metadata or {}).get(META_KEY, {}).get("role") == "grain-patterns"
        ]:
            self.viewer.layers.remove(layer)
        geo = self._k_geometry(pats.ndim, px)
        hi = float(np.percentile(pats, 99.9)) or 1.0
        layer = self.viewer.add_image(
            pats,
            name=name,
            colormap="magma",
            gamma=0.5,
            contrast_limits=(0.0, hi),
            metadata={META_KEY: {"role": "grain-patterns", "grain": grain.label, "calibration": cal}},
            **geo,
        )
        self._refresh()
        if pats.ndim == 3 and self.workspace is not None:  # show the tilt the workspace shows
            self.viewer.dims.set_current_step(0, min(int(self.workspace.model.tilt), len(pats) - 1))
        self.source_combo.setCurrentIndex(self.source_combo.findText(layer.name))
        if cal is not None:
            if cal.pixel_size:
                self.pixel_spin.setValue(cal.pixel_size)
            self.kv_spin.setValue(cal.beam_energy_kv)
            self.axis_spin.setValue(cal.tilt_axis_deg)
        how = "descan-compensated" if grain.meta.get("descan") else "no descan fit in the calibration"
        self.status.setText(f"{grain.name}: {len(pats)} summed pattern(s) ({how}); Find peaks, then Index")
        self.peaks = None
        return layer

    @staticmethod
    def _k_geometry(ndim: int, px: float) -> dict:
        """scale and units of a diffraction-space layer: Å⁻¹ on the detector axes."""
        scale = (1.0,) * (ndim - 2) + (px, px)
        units = ("pixel",) * (ndim - 2) + ("1/angstrom", "1/angstrom")
        return {"scale": scale, "units": units}

    def _geometry_of_source(self, ndim: int) -> dict:
        layer = self._layer(self.source_combo.currentText())
        if layer is None or self.workspace is None:
            return {}
        px = float(layer.scale[-1])
        return self._k_geometry(ndim, px)

    # ---- layers ---------------------------------------------------------------------------------
    def _refresh(self, *_: Any) -> None:
        if self.viewer is None:
            return
        cur_s, cur_l = self.source_combo.currentText(), self.labels_combo.currentText()
        self.source_combo.clear()
        self.labels_combo.clear()
        for layer in self.viewer.layers:
            kind = type(layer).__name__
            role = (layer.metadata or {}).get(META_KEY, {}).get("role")
            if self.workspace is not None and role != "grain-patterns":
                continue  # the diffraction viewer's own layers are display copies, not data
            if kind == "Image" and layer.data.ndim in (2, 3, 4):
                self.source_combo.addItem(layer.name)
            elif kind == "Labels":
                self.labels_combo.addItem(layer.name)
        for combo, cur in ((self.source_combo, cur_s), (self.labels_combo, cur_l)):
            i = combo.findText(cur)
            if i >= 0:
                combo.setCurrentIndex(i)

    def _layer(self, name: str):
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def _dataset(self):
        layer = self._layer(self.source_combo.currentText())
        meta = getattr(layer, "metadata", {}) or {}
        return meta.get(META_KEY, {}).get("dataset") if layer is not None else None

    def _patterns(self) -> np.ndarray:
        layer = self._layer(self.source_combo.currentText())
        if layer is None:
            raise ValueError("choose an image layer of summed patterns")
        if self._dataset() is not None or (layer.metadata or {}).get(META_KEY, {}).get("role") == "navigator":
            raise ValueError(
                "the chosen layer is a navigator: press 'Sum grain' first, then index its patterns"
            )
        arr = np.asarray(layer.data, dtype=float)
        return arr[None] if arr.ndim == 2 else arr

    def _calibration(self, n: int):
        from virtual_aperture import Calibration

        layer = self._layer(self.source_combo.currentText())
        base = (layer.metadata or {}).get(META_KEY, {}).get("calibration") if layer is not None else None
        cal = base if base is not None else Calibration()
        changes: dict[str, Any] = {
            "beam_energy_kv": self.kv_spin.value(),
            "tilt_axis_deg": self.axis_spin.value(),
        }
        if self.pixel_spin.value() > 0:
            changes["pixel_size"] = self.pixel_spin.value()
        text = self.tilts_edit.text().replace(",", " ").split()
        if text:
            from virtual_aperture.model.tilts import parse_tilt_angles

            changes["tilt_angles_deg"] = parse_tilt_angles(text, n)
        elif cal.tilt_angles_deg is None or len(cal.tilt_angles_deg) != n:
            changes["tilt_angles_deg"] = tuple(float(i) for i in range(n)) if n > 1 else None
            if n > 1:
                raise ValueError(f"enter {n} tilt angles (or START STOP STEP)")
        cal = cal.replace(**changes)
        if cal.pixel_size is None:
            raise ValueError("set the pixel size (Å⁻¹ per pixel)")
        return cal

    # ---- actions ------------------------------------------------------------------------------
    def sum_grain(self):
        """Sum the patterns of the chosen grain (Labels == grain #) in a worker; adds an image layer."""
        if self.workspace is not None:  # the workspace sums (with descan) and hands the grain here
            actions = self.workspace.panels.get("actions")
            return None if actions is None else actions.hand_off()
        ds = self._dataset()
        labels = self._layer(self.labels_combo.currentText())
        if ds is None or labels is None:
            self.status.setText("choose a navigator layer (opened dataset) and a grains Labels layer")
            return None
        grain = int(self.grain_spin.value())
        lab = np.asarray(labels.data)
        mask = (lab == grain).astype(np.int32)
        if not mask.any():
            self.status.setText(f"grain {grain} is not in the labels layer {labels.name!r}")
            return None

        def work(progress, cancel):
            from virtual_aperture import aperture_sums

            from ..live import descan_map

            return aperture_sums(ds, mask, shifts=descan_map(ds), progress=progress, cancel=cancel)[1].sum

        def done(sums):
            sums = np.asarray(sums, dtype=np.float32)
            layer = self.viewer.add_image(
                sums,
                name=f"grain {grain} patterns",
                colormap="magma",
                gamma=0.5,
                contrast_limits=(0, float(np.percentile(sums, 99.9)) or 1.0),
                metadata={
                    META_KEY: {"role": "grain-patterns", "grain": grain, "calibration": ds.calibration}
                },
            )
            self.source_combo.setCurrentIndex(self.source_combo.findText(layer.name))
            if ds.calibration.pixel_size:
                self.pixel_spin.setValue(ds.calibration.pixel_size)
            self.kv_spin.setValue(ds.calibration.beam_energy_kv)
            self.axis_spin.setValue(ds.calibration.tilt_axis_deg)
            self.status.setText(f"summed grain {grain}: {sums.shape}")

        return self._start(work, done, "summing")

    def find_peaks(self) -> bool:
        """Find Bragg peaks on every pattern and show them as an editable Points layer."""
        from virtual_aperture import find_bragg_peaks

        try:
            pats = self._patterns()
            cal = self._calibration(len(pats))
            r = self.radius_spin.value()
            self.peaks = find_bragg_peaks(
                pats,
                template=r if r > 0 else None,
                threshold=self.threshold_spin.value(),
                exclude_center_radius=self.exclude_spin.value(),
                sigma_background=self.bg_spin.value(),
                calibration=cal,
                center="beam",
            )
        except ValueError as exc:
            self.status.setText(str(exc))
            return False
        pts = peaks_to_points(self.peaks, ndim=self._layer(self.source_combo.currentText()).data.ndim)
        if PEAKS_NAME in self.viewer.layers:
            self.viewer.layers.remove(PEAKS_NAME)
        ndim = pts.shape[1] if len(pts) else (3 if len(self.peaks) > 1 else 2)
        self.viewer.add_points(
            pts,
            name=PEAKS_NAME,
            size=8,
            face_color="transparent",
            border_color="lime",
            border_width=0.15,
            ndim=ndim,
            **self._geometry_of_source(ndim),
        )
        n = sum(len(p) for p in self.peaks)
        self.status.setText(
            f"{n} peaks in {len(self.peaks)} pattern(s); edit the '{PEAKS_NAME}' layer, then Index"
        )
        return True

    def edited_peaks(self, calibration=None):
        """The Points layer read back as one PeakList per pattern (hand edits included)."""
        layer = self._layer(PEAKS_NAME)
        if layer is None or self.peaks is None:
            raise ValueError("find peaks first")
        return points_to_peaks(layer.data, self.peaks, calibration=calibration)

    def _known_cell(self):
        text = self.cell_edit.text().split()
        if not text:
            return None, "P"
        if len(text) == 1:
            return text[0], "P"
        if len(text) not in (6, 7):
            raise ValueError(
                "known cell: six numbers a b c α β γ, optionally a centring letter, or a CIF path"
            )
        return tuple(float(v) for v in text[:6]), (text[6].upper() if len(text) == 7 else "P")

    def run_indexing(self):
        """Index the (edited) peaks in a thread_worker; returns the worker (None on bad input)."""
        from virtual_aperture import index_tilt_series, index_zone_axis

        try:
            if self.peaks is None:
                raise ValueError("find peaks first")
            cal = self._calibration(len(self.peaks))
            peaks = self.edited_peaks(cal)
            known, centring = self._known_cell()
            refine_ell = self.ellipticity_check.isChecked()
            n_lattices = int(self.lattices_spin.value())
        except ValueError as exc:
            self.status.setText(str(exc))
            return None

        def work(progress, cancel):
            if len(peaks) == 1:
                return index_zone_axis(peaks[0], calibration=cal, cell=known, centring=centring)
            return index_tilt_series(
                peaks,
                calibration=cal,
                known_cell=known,
                centring=centring,
                refine_ellipticity=refine_ell,
                max_lattices=n_lattices,
                progress=progress,
                cancel=cancel,
            )

        return self._start(work, self._show_result, "indexing")

    def _start(self, fn, on_done, what: str):
        """Run ``fn(progress, cancel)`` in a ``thread_worker`` (:func:`.background.run_reporting`);
        ``on_done`` gets its result on the GUI thread."""
        from virtual_aperture.compute import CancelToken

        self._cancel = CancelToken()
        self.progress.setRange(0, 0)  # busy
        for b in (self.find_btn, self.index_btn, self.sum_btn):
            b.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.status.setText(f"{what}…")
        outcome = {"ok": False}

        def finish(*_: Any) -> None:
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if outcome["ok"] else 0)  # not "100 %" after an error
            for b in (self.find_btn, self.index_btn, self.sum_btn):
                b.setEnabled(True)
            self.cancel_btn.setEnabled(False)
            self._worker = None

        def returned(result: Any) -> None:
            if result is CANCELLED:
                self.status.setText(f"{what} cancelled")
            elif isinstance(result, Failure):
                self.status.setText(f"{what} failed: {result}")
            else:
                outcome["ok"] = True
                on_done(result)

        self._worker = start_worker(
            lambda progress, cancel: fn(progress, cancel),
            cancel=self._cancel,
            on_result=returned,
            on_progress=self._on_progress,
            on_error=lambda exc: self.status.setText(f"{what} failed: {exc}"),
            on_finished=finish,
        )
        return self._worker

    def cancel(self) -> None:
        """Ask the running job to stop at its next check."""
        if self._cancel is not None:
            self._cancel.cancel()

    def _on_progress(self, value) -> None:
        done, total = value
        if total:
            self.progress.setRange(0, int(total))
            self.progress.setValue(int(done))

    def _show_result(self, result) -> None:
        from ..indexing_text import indexing_text

        self.result = result
        report, status = indexing_text(result)
        self.report.setPlainText(report)
        self.status.setText(status)
        if hasattr(result, "summary"):
            self._overlay(result)

    def _overlay(self, result) -> None:
        pats = self._patterns()
        rows = []
        d_min = 1.0 / max(float(np.nanmax(result.peaks.g)) if np.isfinite(result.peaks.g).any() else 1.0, 0.2)
        for t in range(len(pats)):
            pred = result.predict(t, d_min=min(d_min, 2.0), detector_shape=pats.shape[1:])
            rows.append(np.column_stack([np.full(len(pred["positions"]), t), pred["positions"]]))
        pts = np.concatenate(rows) if rows else np.zeros((0, 3))
        if PRED_NAME in self.viewer.layers:
            self.viewer.layers.remove(PRED_NAME)
        self.viewer.add_points(
            pts,
            name=PRED_NAME,
            size=5,
            face_color="transparent",
            border_color="cyan",
            border_width=0.1,
            ndim=3,
            **self._geometry_of_source(3),
        )
