"""Shared matplotlib helpers: headless figures, calibrated image panels, scale bars, encoding.

Every image panel has its axes in physical units (``extent``), a scale bar, a colour bar and a
title. The Agg backend is used explicitly (no display, no Qt): this module sits below the
workflow and the napari widgets.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np

#: one colour per lattice / grain highlight (colour-blind-safe Okabe–Ito order)
COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")


def new_figure(width: float, height: float):
    """A Matplotlib Figure on the Agg canvas (never pyplot: no global state, no GUI backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def nice_length(span: float) -> float:
    """A round length (1, 2 or 5 × 10ⁿ) close to a fifth of ``span``."""
    if not (math.isfinite(span) and span > 0):
        return 1.0
    target = span / 5
    e = math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * 10**e <= target:
            return m * 10**e
    return 10**e


def fmt_length(v: float) -> str:
    return f"{v:g}"


def add_scale_bar(ax, span: float, unit: str, *, colour: str = "white") -> float:
    """Draw a scale bar of a round length (in the axes' data units) in the lower left; returns it."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length = nice_length(span)
    bar = AnchoredSizeBar(
        ax.transData,
        length,
        f"{fmt_length(length)} {unit}",
        "lower left",
        pad=0.4,
        color=colour,
        frameon=False,
        size_vertical=span / 120,
        fontproperties={"size": 8},
    )
    ax.add_artist(bar)
    return length


def display_limits(image: np.ndarray, *, log: bool = False, percentiles=(0.5, 99.8)) -> tuple[float, float]:
    img = np.asarray(image, dtype=np.float64)
    if log:
        img = np.log10(np.clip(img, 0, None) + 1.0)
    finite = img[np.isfinite(img)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, percentiles)
    return float(lo), float(hi if hi > lo else lo + 1.0)


def image_panel(
    fig,
    ax,
    image: np.ndarray,
    *,
    pixel: float,
    unit: str,
    title: str,
    label: str,
    log: bool = False,
    center: tuple[float, float] | None = None,
    cmap: str = "gray",
    colourbar: bool = True,
    limits: tuple[float, float] | None = None,
):
    """Show ``image`` with axes in ``unit`` (``pixel`` units per pixel), a scale bar, a colour bar
    (``label``) and a title. ``center`` (row, col) puts the origin there (diffraction), else the
    image starts at 0 (real space); ``limits`` (as :func:`display_limits` gives them) shares one
    colour scale between panels. Returns the AxesImage."""
    from matplotlib.colors import LogNorm, Normalize

    img = np.asarray(image, dtype=np.float64)
    ny, nx = img.shape
    cy, cx = (-0.5, -0.5) if center is None else center
    extent = ((-0.5 - cx) * pixel, (nx - 0.5 - cx) * pixel, (ny - 0.5 - cy) * pixel, (-0.5 - cy) * pixel)
    if log:
        lo, hi = limits or display_limits(img, log=True)
        norm = LogNorm(
            vmin=max(10**lo - 1, 1e-3 * max(10**hi - 1, 1e-12), 1e-12), vmax=max(10**hi - 1, 1e-12)
        )
        shown = np.where(np.isfinite(img) & (img > 0), img, norm.vmin)
    else:
        norm = Normalize(*(limits or display_limits(img)))
        shown = img
    im = ax.imshow(shown, cmap=cmap, norm=norm, extent=extent, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    axis = "k" if center is not None else ""
    ax.set_xlabel(f"{axis}x ({unit})" if axis else f"x ({unit})", fontsize=8)
    ax.set_ylabel(f"{axis}y ({unit})" if axis else f"y ({unit})", fontsize=8)
    ax.tick_params(labelsize=7)
    add_scale_bar(ax, abs(extent[1] - extent[0]), unit)
    if colourbar:
        cb = fig.colorbar(im, ax=ax, shrink=0.85)
        cb.set_label(label, fontsize=8)
        cb.ax.tick_params(labelsize=7)
    return im


def to_png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def to_data_uri(fig) -> str:
    return "data:image/png;base64," + base64.b64encode(to_png_bytes(fig)).decode("ascii")


def image_figure(
    image: np.ndarray,
    *,
    pixel: float,
    unit: str,
    title: str,
    label: str,
    log: bool = False,
    center: tuple[float, float] | None = None,
    size: float = 5.0,
):
    """One calibrated image as a whole figure (the CLI's PNG previews)."""
    fig = new_figure(size + 1.2, size)
    image_panel(
        fig,
        fig.add_subplot(),
        image,
        pixel=pixel,
        unit=unit,
        title=title,
        label=label,
        log=log,
        center=center,
    )
    return fig
