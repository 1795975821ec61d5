"""Solve dock widget: merged reflections → charge flipping → atoms, shown in the viewer.

*Solve grain* runs the whole chain on a grain of the dataset in the viewer (``grain_chain``). Or
load a SHELX ``.hkl`` (with cell and space group typed in) or ``.ins`` (+ ``.hkl`` beside it), or
receive reflections from another widget through :meth:`SolveWidget.set_reflections`; set the
space group, composition, number of starts, δ factor and d_min; *Solve* runs
:func:`virtual_aperture.solve_structure` in a napari ``thread_worker`` (progress bar, Cancel).
The result goes to its own 3D window (:class:`~.structure_view.StructureView`, never the
real-space viewer): the potential map as a volume (iso-surface rendering), the atoms as Points
coloured by element and the unit-cell box as lines (all in Å, Cartesian).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
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

from virtual_aperture.compute import CancelToken
from virtual_aperture.crystal.geometry import direct_basis

from .background import CANCELLED, Failure, start_worker
from .grain_chain import GrainChainBox
from .solve_all import SolveAllBox

ELEMENT_COLOURS = {
    "Zr": "cyan",
    "Ti": "silver",
    "Au": "gold",
    "O": "red",
    "N": "blue",
    "C": "gray",
    "S": "yellow",
    "X": "magenta",
}


class SolveWidget(QWidget):
    """Dock widget running :func:`~virtual_aperture.solve_structure` and showing the result."""

    def __init__(
        self, napari_viewer: Any = None, parent: QWidget | None = None, *, workspace: Any = None
    ) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        #: the workspace controller when this is the Solve tab of the workspace (grains from its model)
        self.workspace = workspace
        #: the 3D window of the solved structure (made on the first solution)
        self.structure = None
        self.reflections = None
        self.solution = None
        self._worker = None
        self._cancel = CancelToken()  # a fresh one per job (new_token)
        self.setObjectName("va-solve")
        form = QFormLayout()
        row = QHBoxLayout()
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("reflections .hkl or .ins")
        self.browse_btn = QPushButton("…")
        self.browse_btn.clicked.connect(self._browse)
        self.load_btn = QPushButton("Load")
        self.load_btn.clicked.connect(self.load)
        row.addWidget(self.path_edit)
        row.addWidget(self.browse_btn)
        row.addWidget(self.load_btn)
        form.addRow("Reflections", row)
        self.cell_edit = QLineEdit()
        self.cell_edit.setPlaceholderText("a b c α β γ (Å, °)")
        form.addRow("Cell", self.cell_edit)
        self.sg_edit = QLineEdit()
        self.sg_edit.setPlaceholderText("e.g. P 21 21 21")
        form.addRow("Space group", self.sg_edit)
        self.comp_edit = QLineEdit()
        self.comp_edit.setPlaceholderText("e.g. Zr6 O32 C48 (optional)")
        form.addRow("Composition", self.comp_edit)
        self.starts_spin = QSpinBox()
        self.starts_spin.setRange(1, 64)
        self.starts_spin.setValue(4)
        form.addRow("Random starts", self.starts_spin)
        self.delta_spin = QDoubleSpinBox()
        self.delta_spin.setRange(0.5, 2.0)
        self.delta_spin.setSingleStep(0.05)
        self.delta_spin.setValue(1.2)
        form.addRow("δ factor (k·σ)", self.delta_spin)
        self.dmin_spin = QDoubleSpinBox()
        self.dmin_spin.setRange(0.0, 5.0)
        self.dmin_spin.setSingleStep(0.05)
        self.dmin_spin.setSpecialValueText("all data")
        form.addRow("d_min (Å)", self.dmin_spin)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        form.addRow("Seed", self.seed_spin)
        buttons = QHBoxLayout()
        self.run_btn = QPushButton("Solve")
        self.run_btn.clicked.connect(self.run)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        buttons.addWidget(self.run_btn)
        buttons.addWidget(self.cancel_btn)
        self.progress = QProgressBar()
        self.status = QLabel("no reflections loaded")
        self.status.setWordWrap(True)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        lay = QVBoxLayout(self)
        self.chain = GrainChainBox(self)
        lay.addWidget(self.chain)
        self.all_grains = SolveAllBox(self)
        lay.addWidget(self.all_grains)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.report)

    # ------------------------------------------------------------------ input
    def _browse(self) -> None:  # pragma: no cover - interactive dialog
        path, _ = QFileDialog.getOpenFileName(self, "Reflections", "", "SHELX (*.hkl *.ins *.res)")
        if path:
            self.path_edit.setText(path)
            self.load()

    def _cell(self) -> tuple[float, ...] | None:
        text = self.cell_edit.text().replace(",", " ").split()
        if not text:
            return None
        if len(text) != 6:
            raise ValueError(f"cell needs 6 numbers (a b c α β γ), got {len(text)}")
        return tuple(float(v) for v in text)

    def load(self) -> bool:
        """Read the file named in the path field; returns False (with the error shown) on failure."""
        from virtual_aperture.crystal.export import read_hkl, read_ins

        path = Path(self.path_edit.text().strip())
        try:
            if path.suffix.lower() in (".ins", ".res"):
                info = read_ins(path)
                self.cell_edit.setText(" ".join(f"{v:g}" for v in info["cell"]))
                self.sg_edit.setText(info["space_group"])
                if info["unit"]:
                    self.comp_edit.setText(" ".join(f"{e}{n:g}" for e, n in info["unit"].items()))
                refl = read_hkl(
                    path.with_suffix(".hkl"),
                    cell=info["cell"],
                    space_group=info["space_group"],
                    wavelength=info["wavelength"],
                )
            else:
                cell = self._cell()
                if cell is None:
                    raise ValueError("type the cell (a b c α β γ) before loading a .hkl file")
                refl = read_hkl(path, cell=cell, space_group=self.sg_edit.text().strip() or "P 1")
        except (ValueError, OSError) as exc:
            self.status.setText(f"error: {exc}")
            return False
        self.set_reflections(refl)
        return True

    def set_reflections(self, reflections) -> None:
        """Use ``reflections`` (a :class:`~virtual_aperture.crystal.reflections.Reflections`),
        e.g. from the workspace."""
        self.reflections = reflections
        self.cell_edit.setText(" ".join(f"{v:g}" for v in reflections.cell))
        if reflections.space_group != "P 1" or not self.sg_edit.text().strip():
            self.sg_edit.setText(reflections.space_group)
        self.status.setText(f"{len(reflections)} reflections, d ≥ {reflections.d.min():.2f} Å")

    # ------------------------------------------------------------------ run
    def _params(self) -> dict:
        from virtual_aperture.crystal.reflections import check_cell_matches_space_group, parse_space_group

        if self.reflections is None:
            raise ValueError("load reflections first")
        cell = self._cell() or self.reflections.cell
        sg = parse_space_group(self.sg_edit.text().strip() or self.reflections.space_group)
        check_cell_matches_space_group(cell, sg)
        comp = self.comp_edit.text().strip() or None
        if comp:
            from virtual_aperture.crystal.atoms import parse_formula

            parse_formula(comp)
        return {
            "reflections": self.reflections.replace(cell=cell, space_group=sg.hm),
            "composition": comp,
            "starts": self.starts_spin.value(),
            "delta_factor": self.delta_spin.value(),
            "d_min": self.dmin_spin.value() or None,
            "seed": self.seed_spin.value(),
        }

    def run(self):
        """Start solving in a ``thread_worker``; returns the worker (None if the input is bad)."""
        from virtual_aperture.crystal.solve import solve_structure

        try:
            params = self._params()
        except ValueError as exc:
            self.status.setText(f"error: {exc}")
            return None
        self.new_token()
        self.run_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.status.setText("charge flipping …")
        self._worker = start_worker(
            solve_structure,
            cancel=self._cancel,
            on_result=self._on_result,
            on_progress=self._on_progress,
            on_error=self._on_error,
            on_finished=self._on_finished,
            **params,
        )
        return self._worker

    def new_token(self) -> Any:
        """A fresh :class:`~virtual_aperture.compute.CancelToken` for the next job (the one job
        the Solve tab runs at a time: Solve, Solve grain or Solve all grains)."""
        self._cancel = CancelToken()
        return self._cancel

    def cancel(self) -> None:
        self._cancel.cancel()
        self.status.setText("cancelling …")

    def _on_progress(self, value) -> None:
        done, total = value
        self.progress.setMaximum(max(int(total), 1))
        self.progress.setValue(int(done))

    def _on_error(self, exc: Exception) -> None:
        self.status.setText(f"error: {exc}")
        self.progress.setValue(0)

    def _on_finished(self) -> None:
        self.run_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)
        self._worker = None

    def _on_result(self, sol) -> None:
        if sol is CANCELLED or isinstance(sol, Failure):
            self.status.setText("cancelled" if sol is CANCELLED else f"error: {sol}")
            self.progress.setValue(0)
            return
        self.solution = sol
        rep = sol.report()
        ph = rep["phasing"]
        lines = [
            sol.message,
            f"space group {sol.space_group}, cell {tuple(round(v, 3) for v in sol.cell)}",
            f"R1 = {'n/a' if sol.r1 is None else f'{sol.r1:.3f}'}; R_CF = {ph['r_cf']:.3f}; "
            f"symmetry agreement = {ph['symmetry_agreement']}; "
            f"converged starts {ph['n_converged_starts']}/{ph['n_starts']}",
        ]
        lines += [
            f"{a.label:6s} {a.element:2s} {a.x:8.4f} {a.y:8.4f} {a.z:8.4f}  h={a.height:6.1f}"
            for a in sol.atoms
        ]
        self.report.setPlainText("\n".join(lines))
        self.status.setText("solved" if sol.converged else "no solution")
        self.show_solution(sol)

    # ------------------------------------------------------------------ display
    def structure_viewer(self):
        """The ViewerModel of the solved-structure window (created on first use)."""
        if self.structure is None:
            from .structure_view import StructureView

            self.structure = StructureView(self)  # its own top-level window, owned by this widget
        return self.structure.viewer

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt name
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        self._cancel.cancel()
        if self.structure is not None:
            self.structure.close_viewer()
            self.structure = None

    def show_solution(self, sol) -> None:
        """Add (or replace) the potential, atoms and unit-cell layers for ``sol`` in the 3D window."""
        viewer = self.structure_viewer()
        A = direct_basis(sol.cell)  # columns a, b, c in Å
        grid = np.array(sol.potential.shape)
        # napari data axes are (a, b, c) grid indices → Cartesian (x, y, z) Å through this affine
        affine = np.eye(4)
        affine[:3, :3] = A / grid[None, :]
        for name in ("potential", "atoms", "unit cell"):
            if name in viewer.layers:
                viewer.layers.remove(name)
        vmax = float(np.percentile(sol.potential, 99.9))
        viewer.add_image(
            sol.potential,
            name="potential",
            affine=affine,
            rendering="iso",
            iso_threshold=0.5 * vmax,
            colormap="viridis",
            blending="additive",
        )
        if sol.atoms:
            xyz = np.array([a.xyz for a in sol.atoms]) @ A.T
            colours = [ELEMENT_COLOURS.get(a.element, "white") for a in sol.atoms]
            viewer.add_points(
                xyz,
                name="atoms",
                size=0.6,
                face_color=colours,
                properties={"label": [a.label for a in sol.atoms], "element": [a.element for a in sol.atoms]},
                text={"string": "{label}", "size": 8, "color": "white"},
            )
        corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float) @ A.T
        edges = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]
        viewer.add_shapes(
            [corners[[a, b]] for a, b in edges],
            shape_type="line",
            name="unit cell",
            edge_color="white",
            edge_width=0.05,
        )
        self.structure.present()
