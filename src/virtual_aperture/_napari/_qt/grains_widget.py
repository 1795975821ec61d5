"""Crowded-agglomerate dock: propose grains, check boundaries, track across tilts, separate overlaps.

Every computation runs in a napari ``thread_worker`` (progress bar, Cancel) and calls the Qt-free
library (:mod:`virtual_aperture.grains`); layers are touched only in the ``returned`` callback.
Proposals land in a Labels layer named ``"grains"`` (created if absent; ``(tilt, y, x)`` for a
tilt series) that the user accepts or edits with napari's usual Labels tools.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .background import CANCELLED, Failure, start_worker

META_KEY = "virtual_aperture"
GRAINS_LAYER = "grains"
DISSIMILARITY_LAYER = "neighbour dissimilarity"
CRYSTALS_LAYER = "crystals (vectors)"


class GrainsWidget(QWidget):
    """Dock widget for automatic grain proposals and their checks."""

    def __init__(
        self, napari_viewer: Any = None, parent: QWidget | None = None, *, workspace: Any = None
    ) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        #: the workspace controller when this is the Propose tab (dataset, tilt and grains from it)
        self.workspace = workspace
        self.proposal = None
        self.tracks = None
        self.clusters = None
        self._worker = None
        from virtual_aperture.compute import CancelToken

        self._token_type = CancelToken
        self._cancel = CancelToken()

        self.dataset_combo = QComboBox()
        self.min_size = QSpinBox(minimum=1, maximum=10**6, value=20)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.05, 0.95)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(0.6)
        self.bin = QSpinBox()
        self.bin.setRange(0, 64)
        self.bin.setSpecialValueText("auto")
        form = QFormLayout()
        form.addRow("dataset", self.dataset_combo)
        form.addRow("min size (positions)", self.min_size)
        form.addRow("similarity threshold", self.threshold)
        form.addRow("detector bin", self.bin)

        self.propose_btn = QPushButton("Propose grains")
        self.dissim_btn = QPushButton("Neighbour dissimilarity")
        self.coherence_btn = QPushButton("Check selected grain")
        self.track_btn = QPushButton("Track across tilts")
        self.vectors_btn = QPushButton("Separate overlapping grains (vectors)")
        self.sum_btn = QPushButton("Sum selected crystal")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        grid = QGridLayout()
        for i, b in enumerate(
            (
                self.propose_btn,
                self.dissim_btn,
                self.coherence_btn,
                self.track_btn,
                self.vectors_btn,
                self.sum_btn,
            )
        ):
            grid.addWidget(b, i // 2, i % 2)
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["tilt", "grain", "size", "confidence"])
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(grid)
        row = QGridLayout()
        row.addWidget(self.progress, 0, 0)
        row.addWidget(self.cancel_btn, 0, 1)
        lay.addLayout(row)
        lay.addWidget(self.status)
        lay.addWidget(self.table)

        self.propose_btn.clicked.connect(self.propose)
        self.dissim_btn.clicked.connect(self.dissimilarity)
        self.coherence_btn.clicked.connect(self.check_selected)
        self.track_btn.clicked.connect(self.track)
        self.vectors_btn.clicked.connect(self.separate)
        self.sum_btn.clicked.connect(self.sum_selected_crystal)
        self.cancel_btn.clicked.connect(self.cancel)
        if workspace is not None:  # the Check tab has these (one neighbour dissimilarity, not two)
            for b in (self.dissim_btn, self.coherence_btn):
                b.setVisible(False)
            self.dataset_combo.setVisible(False)
            form.labelForField(self.dataset_combo).setVisible(False)
        if self.viewer is not None:
            for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
                ev.connect(self._refresh_datasets)
        self._refresh_datasets()

    # ---- dataset and layers ------------------------------------------------------------
    def _dataset_layers(self) -> list:
        if self.viewer is None:
            return []
        return [
            ly
            for ly in self.viewer.layers
            if isinstance(ly.metadata.get(META_KEY), dict)
            and ly.metadata[META_KEY].get("dataset") is not None
        ]

    def _refresh_datasets(self, *_: Any) -> None:
        current = self.dataset_combo.currentText()
        names = [ly.name for ly in self._dataset_layers()]
        self.dataset_combo.clear()
        self.dataset_combo.addItems(names)
        if current in names:
            self.dataset_combo.setCurrentText(current)

    def _source_layer(self):
        layers = {ly.name: ly for ly in self._dataset_layers()}
        return layers.get(self.dataset_combo.currentText()) or next(iter(layers.values()), None)

    def dataset(self):
        """The dataset of the chosen layer (None if no layer carries one)."""
        if self.workspace is not None:
            return self.workspace.dataset
        layer = self._source_layer()
        return None if layer is None else layer.metadata[META_KEY]["dataset"]

    def _current_tilt(self) -> int:
        ds = self.dataset()
        if ds is None or not ds.is_tilt_series:
            return 0
        if self.workspace is not None:
            return self.workspace.model.tilt
        return int(self.viewer.dims.current_step[0]) if self.viewer is not None else 0

    def _scale(self, ndim: int) -> tuple:
        layer = self._source_layer()
        scale = tuple(layer.scale) if layer is not None else (1.0,) * ndim
        return scale[-ndim:] if len(scale) >= ndim else (1.0,) * (ndim - len(scale)) + scale

    def _geometry(self, ndim: int) -> dict:
        """scale (and units, when the source layer has them) for a new scan-space layer."""
        geo: dict = {"scale": self._scale(ndim)}
        layer = self._source_layer()
        units = tuple(getattr(layer, "units", ()) or ()) if layer is not None else ()
        if len(units) >= ndim:
            geo["units"] = tuple(str(u) for u in units[-ndim:])
        return geo

    def _grains_layer(self) -> Any:
        """The workspace's grains layer, or (standalone) the layer named "grains"."""
        if self.workspace is not None:
            return self.workspace.grains
        return self.viewer.layers[GRAINS_LAYER] if GRAINS_LAYER in self.viewer.layers else None

    def _set_labels(self, name: str, data: np.ndarray) -> Any:
        ws = self.workspace
        if ws is not None and name == GRAINS_LAYER and ws.grains is not None:
            ws.grains.data = np.asarray(data, dtype=ws.grains.data.dtype)  # the live sums follow
            return ws.grains
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = data
        else:
            try:
                layer = self.viewer.add_labels(data, name=name, **self._geometry(data.ndim))
            except TypeError:  # napari without layer units
                layer = self.viewer.add_labels(data, name=name, scale=self._scale(data.ndim))
        return layer

    # ---- worker plumbing ---------------------------------------------------------------
    def _run(self, fn: Callable[[Callable, Any], Any], on_result: Callable[[Any], None], label: str):
        """Run ``fn(progress, cancel)`` in a thread worker yielding progress; returns the worker."""
        if self._worker is not None:
            self.status.setText("busy: wait for the running job or cancel it")
            return None
        if not self._cancel.cancelled:  # a pre-set token (tests) cancels the next job at once
            self._cancel = self._token_type()
        cancel = self._cancel

        def returned(r: Any) -> None:
            if r is CANCELLED or isinstance(r, Failure):
                self.status.setText("cancelled" if r is CANCELLED else f"error: {r}")
                self.progress.setValue(0)  # not "100 %" after a cancel or a refusal
                return
            self.progress.setValue(self.progress.maximum())
            on_result(r)

        def errored(exc: BaseException) -> None:
            self.status.setText(f"error: {exc}")
            self.progress.setValue(0)

        self.cancel_btn.setEnabled(True)
        self.progress.setValue(0)
        self.status.setText(f"{label} …")
        self._worker = start_worker(
            lambda progress, cancel: fn(progress, cancel),
            cancel=cancel,
            on_result=returned,
            on_progress=self._on_progress,
            on_error=errored,
            on_finished=self._on_finished,
        )
        return self._worker

    def cancel(self) -> None:
        self._cancel.cancel()
        self.status.setText("cancelling …")

    def _on_progress(self, value) -> None:
        done, total = value
        self.progress.setMaximum(max(int(total), 1))
        self.progress.setValue(int(done))

    def _on_finished(self) -> None:
        self.cancel_btn.setEnabled(False)
        self._worker = None
        if self._cancel.cancelled:
            self._cancel = self._token_type()

    def _need_dataset(self):
        if self.dataset() is None:
            self.status.setText("open a 4D/5D dataset first (no layer carries one)")
        return self.dataset()

    # ---- actions -------------------------------------------------------------------------
    def propose(self):
        """Propose grains for the whole dataset (every tilt of a series) into the "grains" layer."""
        from virtual_aperture.grains import propose_grains

        ds = self._need_dataset()
        if ds is None:
            return None
        kw = {
            "min_size": self.min_size.value(),
            "threshold": self.threshold.value(),
            "binning": self.bin.value() or None,
        }
        return self._run(
            lambda p, c: propose_grains(ds, progress=p, cancel=c, **kw), self._on_proposal, "proposing grains"
        )

    def _on_proposal(self, prop) -> None:
        self.proposal = prop
        layer = self._set_labels(GRAINS_LAYER, prop.labels)
        rows = prop.table()
        try:  # hover read-out of each grain's confidence
            ids = sorted({g for _, g, _, _ in rows})
            conf = {g: np.mean([c for _, gg, _, c in rows if gg == g]) for g in ids}
            layer.features = {"index": [0, *ids], "confidence": [np.nan, *(conf[g] for g in ids)]}
        except Exception:  # noqa: BLE001 - older napari without label features
            pass
        self.table.setHorizontalHeaderLabels(["tilt", "grain", "size", "confidence"])
        self._fill_table(rows)
        self.status.setText(
            f"{prop.n_grains} grain(s) proposed: edit the '{GRAINS_LAYER}' layer to accept/correct"
        )

    def _fill_table(self, rows) -> None:
        self.table.setRowCount(len(rows))
        for i, (t, g, size, conf) in enumerate(rows):
            for j, v in enumerate(
                (t, g, size, conf if isinstance(conf, (int, np.integer)) else f"{conf:.2f}")
            ):
                self.table.setItem(i, j, QTableWidgetItem(str(v)))

    def dissimilarity(self):
        """Add the neighbour-dissimilarity map of the current tilt (bright along boundaries)."""
        from virtual_aperture.grains import neighbour_dissimilarity

        ds = self._need_dataset()
        if ds is None:
            return None
        tilt = self._current_tilt()

        def done(img) -> None:
            if DISSIMILARITY_LAYER in self.viewer.layers:
                self.viewer.layers[DISSIMILARITY_LAYER].data = img
            else:
                kw = dict(name=DISSIMILARITY_LAYER, colormap="magma", contrast_limits=(0.0, 1.0))
                try:
                    self.viewer.add_image(img, **kw, **self._geometry(2))
                except TypeError:  # napari without layer units
                    self.viewer.add_image(img, **kw, scale=self._scale(2))
            self.status.setText(f"neighbour dissimilarity of tilt {tilt + 1}: bright = boundary")

        return self._run(lambda p, c: neighbour_dissimilarity(ds, tilt=tilt), done, "dissimilarity")

    def check_selected(self):
        """Coherence of the grain selected in the "grains" layer (on the current tilt)."""
        from virtual_aperture.grains import grain_coherence

        ds = self._need_dataset()
        layer = self._grains_layer()
        if ds is None or layer is None:
            self.status.setText("no 'grains' layer to check")
            return None
        tilt = self._current_tilt()
        lab = np.asarray(layer.data)
        lab = lab[tilt] if lab.ndim == 3 else lab
        gid = int(layer.selected_label)
        mask = lab == gid
        if not mask.any():
            self.status.setText(f"grain {gid} is not painted on tilt {tilt + 1}")
            return None

        def done(res) -> None:
            score, _ = res
            verdict = "one crystal" if score > 0.8 else "mixed or noisy: check its boundary"
            self.status.setText(f"grain {gid}: coherence {score:.2f} ({verdict})")

        return self._run(lambda p, c: grain_coherence(ds, mask, tilt=tilt), done, "checking")

    def track(self):
        """Give each grain of the "grains" layer one id through the tilt series."""
        from virtual_aperture.grains import track_grains

        ds = self._need_dataset()
        layer = self._grains_layer()
        if ds is None or layer is None:
            self.status.setText("propose or paint grains first")
            return None
        labels = np.asarray(layer.data)
        if labels.ndim != 3:
            self.status.setText("tracking needs a tilt series (tilt, y, x) grains layer")
            return None

        def done(tracks) -> None:
            self.tracks = tracks
            relabelled = tracks.relabel()
            self._set_labels(GRAINS_LAYER, relabelled)
            rows = []
            for t in range(relabelled.shape[0]):
                ids, counts = np.unique(relabelled[t][relabelled[t] > 0], return_counts=True)
                rows += [
                    (t, int(i), int(n), tracks.scores.get((t, int(i)), 1.0)) for i, n in zip(ids, counts)
                ]
            self._fill_table(rows)
            self.status.setText(f"{len(tracks.track_ids)} track(s); confidence column = link score")

        return self._run(lambda p, c: track_grains(labels, ds, cancel=c), done, "tracking")

    def separate(self):
        """Cluster diffraction vectors of the current tilt into crystals (footprints may overlap)."""
        from virtual_aperture.grains import cluster_vectors, find_vectors

        ds = self._need_dataset()
        if ds is None:
            return None
        tilt = self._current_tilt()

        def fn(p, c):
            vec = find_vectors(ds, tilt=tilt, progress=p, cancel=c)
            return cluster_vectors(vec, scan_shape=ds.scan_shape)

        def done(vc) -> None:
            self.clusters = vc
            foot = vc.footprints
            # largest first, smaller crystals painted on top so overlapped ones stay visible
            lab = np.zeros(ds.scan_shape, np.int32)
            for i in range(len(foot)):
                lab[foot[i]] = i + 1
            self._set_labels(CRYSTALS_LAYER, lab).visible = True
            overl = foot.sum(axis=0) > 1 if len(foot) else np.zeros(ds.scan_shape, bool)
            rows = [
                (tilt, i + 1, int(c.footprint.sum()), len(c.reflections)) for i, c in enumerate(vc.crystals)
            ]
            self._fill_table(rows)
            self.table.setHorizontalHeaderLabels(["tilt", "crystal", "size", "reflections"])
            self.status.setText(
                f"{len(vc)} crystal(s) by vector clustering; {int(overl.sum())} positions "
                "with overlapping crystals. Select one and 'Sum selected crystal'."
            )

        return self._run(fn, done, "finding diffraction vectors")

    def sum_selected_crystal(self):
        """Vector-selective sum of the crystal selected in the crystals layer → image layer."""
        from virtual_aperture.grains import vector_selective_sum

        ds = self._need_dataset()
        if ds is None or self.clusters is None or CRYSTALS_LAYER not in self.viewer.layers:
            self.status.setText("run 'Separate overlapping grains' first")
            return None
        cid = int(self.viewer.layers[CRYSTALS_LAYER].selected_label)
        if not 1 <= cid <= len(self.clusters):
            self.status.setText(f"select a crystal label 1…{len(self.clusters)}")
            return None
        crystal = self.clusters.crystals[cid - 1]
        tilt = self._current_tilt()

        def done(pattern) -> None:
            name, img = f"crystal {cid} pattern (log)", np.log1p(pattern)
            ws = self.workspace
            # a pattern belongs in diffraction space: the workspace's diffraction canvas, in Å⁻¹
            viewer = ws.diffraction if ws is not None else self.viewer
            geo = ws.k_geometry(2) if ws is not None else {}
            title = f"{int(crystal.footprint.sum())} positions, {len(crystal.reflections)} reflections"
            if name in viewer.layers:
                viewer.layers[name].data = img
                viewer.layers[name].metadata["title"] = title
                viewer.layers[name].visible = True
            else:
                viewer.add_image(img, name=name, colormap="viridis", metadata={"title": title}, **geo)
            self.status.setText(
                f"crystal {cid}: summed {int(crystal.footprint.sum())} positions, "
                f"{len(crystal.reflections)} reflections kept"
            )

        return self._run(
            lambda p, c: vector_selective_sum(ds, crystal.footprint, crystal.reflections, tilt=tilt),
            done,
            "summing",
        )

    def shutdown(self) -> None:  # closing the dock cancels a running job
        self._cancel.cancel()
