"""Check tab: is the selected grain one crystal? (coherence score and disagreeing positions).

Uses :func:`virtual_aperture.grains.similarity.grain_coherence` (correlation of each member
pattern with the grain mean) and ``neighbour_dissimilarity`` (how different each position is
from its neighbours: high along grain boundaries).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QDoubleSpinBox, QFormLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from virtual_aperture.compute.executor import check_cancel

from ..reader import META_KEY


class CheckPanel(QWidget):
    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = controller.model
        self.threshold = QDoubleSpinBox(minimum=-1.0, maximum=1.0, singleStep=0.05, decimals=2)
        self.threshold.setValue(0.5)
        self.threshold.setToolTip(
            "member positions whose correlation with the grain mean is below this are flagged"
        )
        self.check_btn = QPushButton("Check selected grain")
        self.check_btn.clicked.connect(lambda: self.check_grain())
        self.dissim_btn = QPushButton("Show neighbour dissimilarity")
        self.dissim_btn.clicked.connect(lambda: self.show_dissimilarity())
        self.result = QLabel("")
        self.result.setWordWrap(True)
        form = QFormLayout()
        form.addRow("flag correlation below", self.threshold)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.check_btn)
        lay.addWidget(self.result)
        lay.addWidget(self.dissim_btn)
        lay.addStretch(1)
        self.score: float | None = None
        self.correlation: np.ndarray | None = None
        self.outputs: dict[str, Any] = {}

    def _layer(self, name: str, data: np.ndarray, kind: str, **kw: Any) -> Any:
        """The output layer ``name`` (found by its role, never by its name), created or updated.

        The active layer stays what it was (the grains), so the next stroke never paints into it.
        """
        viewer, nav = self.controller.viewer, self.controller.navigator
        active = viewer.layers.selection.active
        layer = self.outputs.get(name)
        if layer is not None and layer in viewer.layers:
            layer.data = data
            return layer
        add = viewer.add_labels if kind == "labels" else viewer.add_image
        layer = self.outputs[name] = add(
            data,
            name=name,
            scale=nav.scale,
            units=nav.units,
            axis_labels=nav.axis_labels,
            metadata={META_KEY: {"role": name}},
            **kw,
        )
        if active is not None and active in viewer.layers:
            viewer.layers.selection.active = active
        return layer

    def check_grain(self, label: int | None = None) -> Any:
        c = self.controller
        label = label or self.model.selected
        tilt = self.model.tilt
        if c.grains is None or label <= 0:
            return None
        mask = np.asarray(c.grains.data[tilt] if c.dataset.is_tilt_series else c.grains.data) == label
        if mask.sum() < 2:
            self.result.setText(f"grain {label} needs at least 2 positions at tilt {tilt + 1}")
            return None
        data = c.dataset
        thr = self.threshold.value()

        def work(progress: Any, cancel: Any) -> tuple:
            from virtual_aperture.grains.similarity import grain_coherence

            progress(0, 1)
            score, corr = grain_coherence(data, mask, tilt=tilt)
            progress(1, 1)
            return label, tilt, float(score), np.asarray(corr)

        def done(result: tuple) -> None:
            label, tilt, score, corr = result
            self.score, self.correlation = score, corr
            bad = mask & np.isfinite(corr) & (corr < thr)
            name = self.model.grain_names.get(label, f"grain {label}")
            self.result.setText(
                f"{name} (tilt {tilt + 1}): coherence {score:.3f}; {int(bad.sum())} of {int(mask.sum())} "
                f"positions correlate below {thr:.2f} with the grain mean (red overlay)"
            )
            full = np.zeros(c.grains.data.shape, np.uint8)
            if c.dataset.is_tilt_series:
                full[tilt] = bad
            else:
                full[...] = bad
            layer = self._layer("disagreeing positions", full, "labels", opacity=0.9)
            layer.colormap = {None: "transparent", 0: "transparent", 1: "red"}

        return c.jobs.start(f"check grain {label}", work, done)

    def show_dissimilarity(self) -> Any:
        c = self.controller
        if c.dataset is None:
            return None
        data, n, model = c.dataset, self.model.n_tilts, self.model

        def work(progress: Any, cancel: Any) -> np.ndarray:
            from virtual_aperture.grains.similarity import neighbour_dissimilarity

            client = model.client()
            out = []
            for t in range(n):
                check_cancel(cancel)
                progress(t, n)
                out.append(np.asarray(neighbour_dissimilarity(data, tilt=t, client=client), dtype=np.float32))
            progress(n, n)
            return np.stack(out) if c.dataset.is_tilt_series else out[0]

        def done(image: np.ndarray) -> None:
            self._layer(
                "neighbour dissimilarity", image, "image", colormap="inferno", visible=True, opacity=0.7
            )

        return c.jobs.start("neighbour dissimilarity", work, done)
