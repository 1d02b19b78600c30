"""Matplotlib figures of the assessment (PNG, headless Agg backend).

Every public function draws one figure and writes it to ``path`` (parent folders are created) at
100 dpi, cropped to what is drawn. Figures are 600-900 px wide for a single panel, with fonts of
at least 9 pt; legends sit outside the curves (beside the axes, above the figure, or in headroom
kept free above the histograms). Titles may be long histogram paths: they are wrapped at ``/``
and spaces, and drawn literally (``$`` does not start mathtext).

The figures of merit of each histogram (ROC, SIC, confusion matrices, score distributions, latent
spaces) are drawn by the web page from Vega-Lite specifications (:mod:`dqmflow.charts`); these
are the PNG figures: the reconstructions of the most anomalous runs and the run-level summary
figures of the Snakemake report.

Drawing is the cost of an assessment's figures, so (measured on ``bench/assess.py``): no pyplot
and no layout engine; one draw per figure (:func:`_save`); figures keep their figure, axes and
colour bars from one call to the next of the same layout (:func:`_kept_figure`: reconstructions
2x faster, the same bytes); text lines are rendered once per process (:class:`_TextCache`).

* :func:`plot_run_level`: run-level ROC curves with their ±1σ bootstrap bands
  (:func:`dqmflow.metrics.bootstrap_roc`), AUC ± std in the legend.
* :func:`plot_reconstructions`: the most anomalous runs against their reconstruction.
* :func:`plot_flags`: number of flagged histograms per good and bad run, as in AutoDQM_ML
  (https://github.com/AutoDQM/AutoDQM_ML, ``combined_plot_all_csvs/plot_merged_df.py``).
* :func:`plot_pvalue_calibration`: p-values of good runs not trained on (should be uniform).
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, cast

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backend_bases import GraphicsContextBase
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.colorbar import Colorbar
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, fontManager, get_font
from matplotlib.gridspec import GridSpec
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator
from matplotlib.transforms import Bbox, ScaledTranslation
from matplotlib.typing import RcKeyType
from PIL import Image, PngImagePlugin

from dqmflow.charts import counts_note, fmt, log_y, roc_band, valid, wrap_lines
from dqmflow.metrics import RocResult

__all__ = ["plot_flags", "plot_pvalue_calibration", "plot_reconstructions", "plot_run_level"]

PathLike = str | os.PathLike[str]

DPI = 100
# Style of every figure: applied with ``matplotlib.rc_context`` around each call (the global rcParams
# of the process are left alone); built once at import.
_STYLE: dict[RcKeyType, Any] = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "legend.framealpha": 0.85,
    "figure.titlesize": 11,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "text.usetex": False,
    "image.interpolation": "nearest",
    # A fixed title position: automatic placement measures every tick label of the row (a third of the time).
    "axes.titley": 1.0,
}
GOOD, BAD, UNLABELLED = "tab:blue", "tab:red", "0.45"
LABEL_NAMES = {0: "good", 1: "bad"}
_LINE = 0.17  # inches per line of 10 pt text
# Single-panel figures (ROC, SIC): axes of 5 x 4 inches, legend to the right (~800 px in all).
_SINGLE_WIDTH, _SINGLE_HEIGHT, _SINGLE_TITLE_CHARS = 5.0, 4.0, 75
_TITLE_PAD = 0.1  # inches between an axes and its title


# --------------------------------------------------------------------------------------------- helpers


class _TextCache:
    """Rendered text lines, kept for the life of the process (tick labels, axis labels and legend
    entries repeat from figure to figure).

    Matplotlib >= 3.10 renders text glyph by glyph through Python, which was 40% of the drawing
    time; this renders a line once as one bitmap (FreeType, as ``get_text_width_height_descent``
    lays it out) and pastes it, as matplotlib < 3.10 did. Any failure (a changed private API)
    switches it off for the process: text is then drawn by matplotlib itself.
    """

    enabled = True
    _MAX = 4096

    def __init__(self) -> None:
        self.lines: dict[tuple[Any, ...], tuple[np.ndarray, float, float, float]] = {}

    def bitmap(self, prop: FontProperties, text: str, dpi: float, antialiased: bool) -> tuple[Any, ...]:
        flags = get_hinting_flag()
        paths = tuple(fontManager._find_fonts_by_props(prop))
        size = prop.get_size_in_points()
        key = (paths, size, dpi, text, antialiased, flags)
        hit = self.lines.get(key)
        if hit is None:
            font = get_font(list(paths))
            font.clear()
            font.set_size(size, dpi)
            font.set_text(text, 0.0, flags=flags)
            font.draw_glyphs_to_bitmap(antialiased=antialiased)
            xo, yo = font.get_bitmap_offset()
            hit = (np.array(font.get_image(), dtype=np.uint8), font.get_descent() / 64.0, xo / 64.0, yo / 64.0)
            if len(self.lines) >= self._MAX:
                self.lines.clear()
            self.lines[key] = hit
        return hit


_TEXT = _TextCache()


_Heights = tuple[float, float, float] | tuple[None, None, None]
_HEIGHTS: dict[tuple[Any, ...], _Heights] = {}


class _Renderer(RendererAgg):
    """Agg renderer drawing plain (non-mathtext) text from :data:`_TEXT`, with the line heights of
    a font kept (matplotlib reads them from the font file for every text it lays out)."""

    def _get_font_height_metrics(self, prop: FontProperties) -> _Heights:
        """(ascent, descent, line gap) in pixels, as ``matplotlib.text.Text._get_layout`` computes them
        when a renderer has no such method; (None, None, None) lets it measure "lp" instead."""
        paths = tuple(fontManager._find_fonts_by_props(prop))
        size = prop.get_size_in_points()
        key = (paths, size, self.dpi)
        hit = _HEIGHTS.get(key)
        if hit is None:
            font = get_font(list(paths))
            head = font.get_sfnt_table("head")
            os2, hhea = font.get_sfnt_table("OS/2"), font.get_sfnt_table("hhea")
            hit = (None, None, None)
            if head is not None:
                scale = 1 / head["unitsPerEm"] * size * self.dpi / 72
                if os2 is not None:
                    hit = (os2["sTypoAscender"] * scale, -os2["sTypoDescender"] * scale, os2["sTypoLineGap"] * scale)
                elif hhea is not None:
                    hit = (hhea["ascent"] * scale, -hhea["descent"] * scale, hhea["lineGap"] * scale)
            _HEIGHTS[key] = hit
        return hit

    def draw_text(
        self,
        gc: GraphicsContextBase,
        x: float,
        y: float,
        s: str,
        prop: FontProperties,
        angle: float,
        ismath: bool | str = False,
        mtext: Any = None,
    ) -> None:
        if not ismath and _TextCache.enabled:
            try:
                image, descent, xo, yo = _TEXT.bitmap(prop, s, self.dpi, bool(gc.get_antialiased()))
                xd, yd = descent * math.sin(math.radians(angle)), descent * math.cos(math.radians(angle))
                self._renderer.draw_text_image(image, round(x + xo + xd), round(y + yo + yd) + 1, angle, gc)
                return
            except (AttributeError, TypeError, ValueError, RuntimeError):
                _TextCache.enabled = False
        super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)


class _Canvas(FigureCanvasAgg):
    def get_renderer(self) -> RendererAgg:
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key:
            self.renderer = _Renderer(w, h, self.figure.dpi)
            self._lastKey = key  # type: ignore[assignment]
        return self.renderer


# Room drawn around the axes grid (inches: left, bottom, right, top) for tick labels, titles and
# legends outside it; the PNG is then cropped to what was drawn. Content reaching the edge of this
# room is drawn again the slow way (``bbox_inches="tight"``).
_ROOM = (1.3, 1.1, 4.2, 2.6)
_PNG_INFO = PngImagePlugin.PngInfo()
_PNG_INFO.add_text("Software", f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/")


class _Discard(io.RawIOBase):
    def write(self, data: Any) -> int:
        return len(data)


def _save(fig: Figure, path: PathLike) -> None:
    """Write ``fig`` as PNG (100 dpi) cropped to what is drawn, with a margin of 0.1 inch.

    One draw, on a canvas with room around the axes grid, then cropped to the drawn pixels: the
    same picture as ``savefig(bbox_inches="tight")``, which draws the figure twice (once to
    measure it). RGB, as every figure is opaque.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A kept figure keeps its canvas, and with it the renderer and its cache of text sizes.
    canvas = fig.canvas if isinstance(fig.canvas, _Canvas) else _Canvas(fig)
    left, bottom, right, top = _ROOM
    width, height = fig.get_size_inches()
    room = Bbox.from_extents(-left, -bottom, width + right, height + top)
    fig.savefig(cast(IO[bytes], _Discard()), format="rgba", dpi=DPI, bbox_inches=room)
    renderer = canvas.renderer
    w, h = int(renderer.width), int(renderer.height)
    pixels = np.frombuffer(renderer.buffer_rgba(), dtype=np.uint32).reshape(h, w)
    ink = pixels != pixels[0, 0]
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if len(rows) == 0 or rows[0] == 0 or cols[0] == 0 or rows[-1] == h - 1 or cols[-1] == w - 1:
        fig.savefig(target, dpi=DPI, bbox_inches="tight", format="png")  # did not fit in the room
        return
    pad = round(float(matplotlib.rcParams["savefig.pad_inches"]) * DPI)
    box = (max(cols[0] - pad, 0), max(rows[0] - pad, 0), min(cols[-1] + 1 + pad, w), min(rows[-1] + 1 + pad, h))
    image = Image.frombuffer("RGBA", (w, h), renderer.buffer_rgba(), "raw", "RGBA", 0, 1)
    image.crop(box).convert("RGB").save(target, format="png", compress_level=3, dpi=(DPI, DPI), pnginfo=_PNG_INFO)


def _grid(
    nrows: int,
    ncols: int,
    *,
    width: float,
    height: float,
    wgap: float = 0.0,
    hgap: float = 0.0,
) -> tuple[Figure, GridSpec]:
    """A figure whose axes grid fills it: panels of ``width`` x ``height`` inches, gaps in inches.

    No layout engine runs (constrained layout cost a third of the drawing time): the gaps are
    chosen for the labels they hold, and tick labels, titles and legends outside the grid are
    taken in by the crop of :func:`_save`. The figure is not registered with pyplot.
    """
    fig = Figure(
        figsize=(ncols * width + (ncols - 1) * wgap, nrows * height + (nrows - 1) * hgap),
        dpi=DPI,
    )
    grid = fig.add_gridspec(
        nrows, ncols, left=0.0, right=1.0, bottom=0.0, top=1.0, wspace=wgap / width, hspace=hgap / height
    )
    return fig, grid


_REUSED: dict[tuple[Any, ...], tuple[Figure, list[Axes]]] = {}
_COLORBARS: dict[Axes, Colorbar] = {}  # the colour bar of each map axes of a kept figure


def _kept_figure(key: tuple[Any, ...], build: Callable[[], tuple[Figure, list[Axes]]]) -> tuple[Figure, list[Axes]]:
    """The figure and axes ``build()`` made for ``key`` the first time, kept and given back as new
    (see :func:`_reused_axes`) every later time."""
    kept = _REUSED.get(key)
    if kept is None:
        _REUSED[key] = kept = build()
        return kept
    fig, axes = kept
    for artist in [*fig.texts, *fig.legends]:
        artist.remove()
    for ax in axes:
        for artist in [*ax.lines, *ax.patches, *ax.collections, *ax.texts, *ax.images]:
            artist.remove()
        if ax.legend_ is not None:
            ax.legend_.remove()
        ax.set_xscale("linear")
        ax.set_yscale("linear")
        ax.set_title("")
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.ignore_existing_data_limits = True
        ax.set_autoscale_on(True)
        ax.set_prop_cycle(None)
        ax.set_visible(True)
    return fig, axes


def _reused_axes(
    kind: str,
    nrows: int,
    ncols: int,
    *,
    width: float,
    height: float,
    wgap: float = 0.0,
    hgap: float = 0.0,
) -> tuple[Figure, list[Axes]]:
    """The axes (row by row) of a :func:`_grid` figure kept for figures of this ``kind`` and layout.

    Creating the axes and their ticks was a third of the time of a figure; a kept figure comes
    back as new: every artist added by the last figure removed, linear scales with their default
    tick locators and formatters, automatic limits, no titles, labels or legends. Callers set
    the scales, limits, labels and titles they use, as on a new figure, and draw it with
    :func:`_save` (which does not close it).
    """

    def build() -> tuple[Figure, list[Axes]]:
        fig, grid = _grid(nrows, ncols, width=width, height=height, wgap=wgap, hgap=hgap)
        return fig, [fig.add_subplot(grid[i, j]) for i in range(nrows) for j in range(ncols)]

    return _kept_figure((kind, nrows, ncols, width, height, wgap, hgap), build)


def _lines(text: str) -> int:
    return text.count("\n") + 1 if text else 0


def _title_space(title: str) -> float:
    """Inches taken by an axes title of this text above its axes."""
    return _TITLE_PAD + _LINE * _lines(title) if title else 0.0


def drawable_text(text: str) -> str:
    """``text`` if matplotlib can draw it (its mathtext parses); otherwise the same words without
    mathtext, so that an odd ROOT title costs its formatting, never the figure."""
    from matplotlib.mathtext import MathTextParser

    segments = re.split(r"(?<!\\)\$", text)
    try:
        for math in segments[1::2]:
            MathTextParser("path").parse(f"${math}$")
        if len(segments) % 2 == 0:  # an unpaired $
            raise ValueError(text)
    except ValueError:
        plain = re.sub(r"\\mathrm\{|[{}]|(?<!\\)\$", "", text).replace("\\ ", " ")
        return _escape(re.sub(r"\\([#&%_^~$])", r"\1", plain))
    return text


def _escape(text: object) -> str:
    """``text`` as matplotlib should draw it literally (``$`` would start mathtext)."""
    return str(text).replace("$", r"\$")


def _wrap(text: object, width: int = 80) -> str:
    """Wrap ``text`` at ``/`` and whitespace into lines of at most ``width`` characters (escaped)."""
    return _escape("\n".join(wrap_lines(text, width)))


def _label(name: object, width: int = 46) -> str:
    """A legend label: wrapped, escaped, and not hidden by matplotlib (labels starting with ``_`` are)."""
    text = _wrap(name, width)
    return " " + text if text.startswith("_") else text


def _suptitle(fig: Figure, title: str, *, clearance: float = 0.0, width: int | None = None) -> None:
    """The figure title, centred ``clearance`` inches above the axes grid (which fills the figure)."""
    chars = width if width is not None else max(40, int(float(fig.get_figwidth()) * 10))
    offset = ScaledTranslation(0.0, clearance + 0.08, fig.dpi_scale_trans)
    fig.text(0.5, 1.0, _wrap(title, chars), ha="center", va="bottom", fontsize=11, transform=fig.transFigure + offset)


def _placeholder(title: str, message: str, path: PathLike) -> None:
    """A small figure with a framed message (kept ≥ 600 px wide, like the others)."""
    with matplotlib.rc_context(_STYLE):
        fig, grid = _grid(1, 1, width=6.2, height=1.5)
        ax = fig.add_subplot(grid[0, 0])
        _message(ax, message)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        _suptitle(fig, title)
        _save(fig, path)


def _message(ax: Axes, text: str) -> None:
    ax.text(
        0.5,
        0.5,
        _escape(text),
        ha="center",
        va="center",
        transform=ax.transAxes,
        fontsize=11,
        color="0.25",
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.7", "alpha": 0.9},
    )


def _plain(value: float, _pos: int | None = None) -> str:
    return f"{value:g}"


def _log_scale(ax: Axes, which: str) -> None:
    """Log scale on axis ``which`` ("x" or "y") with plain decade labels (1, 10, 1e+06), no minor ticks.

    Mathtext labels and minor ticks cost a quarter of the drawing time of a score panel.
    """
    axis: Axis
    if which == "x":
        ax.set_xscale("log")
        axis = ax.xaxis
    else:
        ax.set_yscale("log")
        axis = ax.yaxis
    axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_locator(NullLocator())


def _colors(n: int) -> list[Any]:
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ------------------------------------------------------------------------------------------ ROC and SIC


def _draw_rocs(
    fig: Figure,
    ax: Axes,
    results: Mapping[str, RocResult],
    title: str,
    *,
    mark_working_point: bool,
    xlabel: str,
    ylabel: str,
) -> None:
    note, shared = counts_note(results)
    drawn = 0
    for (name, res), color in zip(results.items(), _colors(len(results)), strict=True):
        counts = "" if shared else f" ({res.n_good} good, {res.n_bad} bad)"
        if not valid(res):
            ax.plot([], [], ls="", label=_label(f"{name}: needs good and bad runs{counts}"))
            continue
        band_x, band_lo, band_hi = roc_band(res)
        if len(band_x):
            ax.fill_between(band_x, band_lo, band_hi, color=color, alpha=0.2, lw=0)
        auc = f"AUC {res.auc:.3f} ± {fmt(res.auc_std)}"
        if len(res.seed_aucs):  # a seed ensemble: the median over seeds and its 68% band, hatched
            median, lo, hi = res.seed_band
            ax.fill_between(res.grid, res.seed_tpr[1], res.seed_tpr[2], facecolor="none", edgecolor=color,
                            hatch="///", lw=0, alpha=0.6)  # fmt: skip
            auc += f"; seeds: {median:.3f} [{lo:.3f}, {hi:.3f}] (68%, {len(res.seed_aucs)} seeds)"
        ax.plot(res.fpr, res.tpr, color=color, lw=1.8, label=_label(f"{name}: {auc}{counts}"))
        if mark_working_point:
            fpr_wp, tpr_wp = res.best_working_point
            ax.plot(fpr_wp, tpr_wp, "o", ms=7, mfc=color, mec="black", mew=1.0, zorder=5)
        drawn += 1
    if drawn == 0:
        _message(ax, "needs good and bad runs")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    handles, _ = ax.get_legend_handles_labels()
    if mark_working_point and drawn:
        handles.append(Line2D([], [], ls="", marker="o", mfc="white", mec="black", label="max TPR·(1−FPR)"))
    handles.append(Line2D([], [], ls=":", color="grey", label="random"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02))
    _suptitle(fig, f"{title}\n{note}" if note else title, width=_SINGLE_TITLE_CHARS)


def plot_run_level(results: Mapping[str, RocResult], title: str, path: PathLike) -> None:
    """Run-level ROC curves, one per way of combining histogram scores (or per algorithm).

    Legend "name: AUC x ± y"; ±1σ bootstrap bands; the diagonal is a random verdict.
    """
    with matplotlib.rc_context(_STYLE):
        fig, (ax,) = _reused_axes("roc", 1, 1, width=_SINGLE_WIDTH, height=_SINGLE_HEIGHT)
        _draw_rocs(
            fig,
            ax,
            results,
            title,
            mark_working_point=False,
            xlabel="fraction of good runs flagged",
            ylabel="fraction of bad runs flagged",
        )
        _save(fig, path)


# ------------------------------------------------------------------------------------- reconstructions


def _edges(edges: Sequence[np.ndarray], axis: int, n: int) -> np.ndarray:
    """Bin edges of ``axis`` if usable (n + 1 increasing finite values), else bin indices."""
    if axis < len(edges):
        e = np.asarray(edges[axis], dtype=np.float64).ravel()
        if len(e) == n + 1 and np.all(np.isfinite(e)) and np.all(np.diff(e) > 0):
            return e
    return np.arange(n + 1, dtype=np.float64)


def _run_caption(run: int, score: float, label: int | None, entries: float | None) -> str:
    """Panel title of one run: run number, label, entries, score."""
    name = LABEL_NAMES.get(int(label), "unlabelled") if label is not None else "unlabelled"
    parts = [f"run {run}", name]
    if entries is not None:
        parts.append(f"{entries:,.0f} entries" if np.isfinite(entries) else "? entries")
    return " · ".join(parts) + f"\nscore {float(score):.3g}"


def _caption_color(label: int | None) -> str:
    return {0: GOOD, 1: BAD}.get(int(label), "black") if label is not None else "black"


def _is_empty(image: np.ndarray) -> bool:
    finite = np.asarray(image)[np.isfinite(image)]
    return len(finite) == 0 or not np.any(finite != 0)


def _uniform(e: np.ndarray) -> bool:
    widths = np.diff(e)
    return bool(np.allclose(widths, widths[0], rtol=1e-6, atol=0.0))


def _draw_map(
    fig: Figure,
    ax: Axes,
    image: np.ndarray,
    ex: np.ndarray,
    ey: np.ndarray,
    *,
    cmap: str | Colormap,
    vmin: float,
    vmax: float,
    colorbar_label: str,
    empty_text: str | None,
    colorbars: dict[Axes, Colorbar] | None = None,
) -> None:
    """One 2D map with its colour bar; ``empty_text`` is written in the panel if given. With
    ``colorbars`` (kept with a kept figure, by axes), the colour bar an axes already has is
    updated instead of made again (a new one cost a third of a map figure)."""
    values = np.ma.masked_invalid(np.asarray(image, dtype=np.float64).T)
    if _uniform(ex) and _uniform(ey):
        mappable: Any = ax.imshow(
            values,
            origin="lower",
            aspect="auto",
            extent=(ex[0], ex[-1], ey[0], ey[-1]),
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            interpolation="nearest",
        )
    else:
        mappable = ax.pcolormesh(ex, ey, values, cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
    kept = None if colorbars is None else colorbars.get(ax)
    if kept is None:
        cax = ax.inset_axes((1.03, 0.0, 0.05, 1.0))
        bar = fig.colorbar(mappable, cax=cax, label=colorbar_label)
        if colorbars is not None:
            colorbars[ax] = bar
    else:
        kept.update_normal(mappable)
        kept.set_label(colorbar_label)
    ax.grid(False)
    if empty_text:
        _message(ax, empty_text)


def _finite_max(*arrays: np.ndarray) -> float:
    values = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    values = values[np.isfinite(values)]
    return float(values.max()) if len(values) else 0.0


def plot_reconstructions(
    originals: np.ndarray,
    reconstructions: np.ndarray | None,
    edges: Sequence[np.ndarray],
    runs: Sequence[int],
    scores: Sequence[float],
    title: str,
    path: PathLike,
    *,
    reco_label: str = "reconstruction",
    labels: Sequence[int] | None = None,
    entries: Sequence[float] | None = None,
    xlabel: str = "",
    ylabel: str = "",
) -> None:
    """Unit-area histograms of the given runs against their reconstruction (or reference).

    ``originals`` is (n_runs, nx) for 1D or (n_runs, nx, ny) for 2D histograms, ``reconstructions``
    the same shape or None. Each panel title gives the run number, its label (good, bad,
    unlabelled), its entries and its score.

    * 1D: per run the histogram (solid step) and the reconstruction (dashed), with a residual
      panel (run - reconstruction) below.
    * 2D: per run a row original | reconstruction | difference (diverging, symmetric scale), every
      map with a colour bar; original and reconstruction share one colour scale. An all-zero map
      says "empty".

    ``edges`` are the bin edges per axis (bin indices are used if they do not match the shape);
    ``xlabel``/``ylabel`` name the axes (default "x"/"y"), as matplotlib text: mathtext between
    ``$`` signs, a literal ``$`` written ``\\$`` (:func:`dqmflow.assess.root_text` makes them
    from ROOT's titles). No run gives a small "no run to show"
    figure. Raises ``ValueError`` if the array shapes do not match the runs.
    """
    n = len(runs)
    if n == 0:
        _placeholder(title, "no run to show", path)
        return
    orig = np.asarray(originals, dtype=np.float64)
    reco = None if reconstructions is None else np.asarray(reconstructions, dtype=np.float64)
    if orig.ndim not in (2, 3) or orig.shape[0] != n or len(scores) != n:
        raise ValueError(f"originals {orig.shape} and {len(scores)} scores do not match {n} runs (1D or 2D)")
    if reco is not None and reco.shape != orig.shape:
        raise ValueError(f"reconstructions {reco.shape} do not match originals {orig.shape}")
    for name, seq in (("labels", labels), ("entries", entries)):
        if seq is not None and len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} values for {n} runs")
    captions = [
        _run_caption(
            int(runs[i]),
            float(scores[i]),
            None if labels is None else int(labels[i]),
            None if entries is None else float(entries[i]),
        )
        for i in range(n)
    ]
    colors = [_caption_color(None if labels is None else int(labels[i])) for i in range(n)]
    with matplotlib.rc_context(_STYLE):
        if orig.ndim == 2:
            fig, clearance = _reconstructions_1d(orig, reco, edges, captions, colors, reco_label, xlabel, ylabel)
        else:
            fig, clearance = _reconstructions_2d(orig, reco, edges, captions, colors, reco_label, xlabel, ylabel)
        _suptitle(fig, title, clearance=clearance)
        _save(fig, path)


def _reconstructions_1d(
    orig: np.ndarray,
    reco: np.ndarray | None,
    edges: Sequence[np.ndarray],
    captions: Sequence[str],
    colors: Sequence[str],
    reco_label: str,
    xlabel: str,
    ylabel: str,
) -> tuple[Figure, float]:
    """Panels of 1D runs (with residuals); returns the figure and the inches used above its grid."""
    n, nx = orig.shape
    ex = _edges(edges, 0, nx)
    ncols = 2 if n == 4 else min(n, 3)
    nrows = math.ceil(n / ncols)
    title_space = max(_title_space(c) for c in captions)
    main, residual, gap = 2.0, 0.7, 0.08
    height = main + residual + gap if reco is not None else main
    width, hgap = max(3.2, 5.6 / ncols), 0.55 + title_space

    def build() -> tuple[Figure, list[Axes]]:  # per run: the histogram's axes, then its residual's
        fig, grid = _grid(nrows, ncols, width=width, height=height, wgap=0.95, hgap=hgap)
        axes = []
        for i in range(n):
            cell = grid[divmod(i, ncols)]
            if reco is None:
                axes.append(fig.add_subplot(cell))
                continue
            inner = cell.subgridspec(2, 1, height_ratios=(main, residual), hspace=gap / (height / 2))
            ax = fig.add_subplot(inner[0])
            axes += [ax, fig.add_subplot(inner[1], sharex=ax)]
        return fig, axes

    fig, axes = _kept_figure(("reco_1d", n, reco is not None, width, height, hgap), build)
    x_text, y_text = drawable_text(xlabel or "x"), drawable_text(ylabel or "fraction of entries")
    for i in range(n):
        if reco is not None:
            ax, res = axes[2 * i], axes[2 * i + 1]
            diff = orig[i] - reco[i]
            ax.stairs(reco[i], ex, lw=1.5, ls="--", color="tab:orange", zorder=3)
            res.stairs(diff, ex, lw=1.2, color="tab:purple", baseline=0.0)
            res.axhline(0.0, color="grey", lw=0.8)
            lim = _finite_max(np.abs(diff))
            res.set_ylim(-1.15 * lim if lim > 0 else -1.0, 1.15 * lim if lim > 0 else 1.0)
            res.yaxis.set_major_locator(MaxNLocator(3, symmetric=True))
            res.set_xlabel(x_text)
            res.set_ylabel("residual", fontsize=9)
            ax.tick_params(labelbottom=False)
        else:
            ax = axes[i]
            ax.set_xlabel(x_text)
        ax.stairs(orig[i], ex, lw=1.6, color="black", zorder=2)
        ax.set_xlim(ex[0], ex[-1])
        if _finite_max(np.abs(orig[i]), *([] if reco is None else [np.abs(reco[i])])) == 0:
            ax.set_ylim(0.0, 1.0)
        ax.set_ylabel(y_text)
        ax.set_title(_escape(captions[i]), color=colors[i])
        if _is_empty(orig[i]):
            _message(ax, "empty")
    handles = [Line2D([], [], color="black", lw=1.6, label="run")]
    if reco is not None:
        handles.append(Line2D([], [], color="tab:orange", lw=1.5, ls="--", label=_label(reco_label)))
        handles.append(Line2D([], [], color="tab:purple", lw=1.2, label=_label(f"residual: run − {reco_label}")))
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        bbox_transform=fig.transFigure + ScaledTranslation(0.0, title_space, fig.dpi_scale_trans),
        ncols=len(handles),
        frameon=False,
        borderaxespad=0.0,
    )
    return fig, title_space + 0.3


def _reconstructions_2d(
    orig: np.ndarray,
    reco: np.ndarray | None,
    edges: Sequence[np.ndarray],
    captions: Sequence[str],
    colors: Sequence[str],
    reco_label: str,
    xlabel: str,
    ylabel: str,
) -> tuple[Figure, float]:
    """Rows of 2D maps (original | reconstruction | difference); returns the figure and its top space."""
    n, nx, ny = orig.shape
    ex, ey = _edges(edges, 0, nx), _edges(edges, 1, ny)
    ncols = 3 if reco is not None else 1
    title_space = max(_title_space(c) for c in captions)
    # 1.5 inch between panels: colour bar with its ticks and label, then the next panel's y labels.
    width = 2.5 if reco is not None else 4.6
    fig, axes = _reused_axes("reco_2d", n, ncols, width=width, height=2.2, wgap=1.5, hgap=0.55 + title_space)
    reco_text = _escape(reco_label)
    x_text, y_text = drawable_text(xlabel or "x"), drawable_text(ylabel or "y")
    for i in range(n):
        maps = [orig[i]] if reco is None else [orig[i], reco[i]]
        top = _finite_max(*maps)
        low = min(0.0, -_finite_max(*[-m for m in maps]))
        vmax = top if top > low else low + 1.0
        panels: list[tuple[np.ndarray, str, str | None, str]] = [
            (orig[i], captions[i], "empty" if _is_empty(orig[i]) else None, "fraction of entries")
        ]
        if reco is not None:
            panels.append((reco[i], reco_text, "empty" if _is_empty(reco[i]) else None, "fraction of entries"))
            diff = orig[i] - reco[i]
            note = None
            if _is_empty(diff):
                note = "empty" if _is_empty(orig[i]) and _is_empty(reco[i]) else "no difference"
            panels.append((diff, f"run − {reco_text}", note, "difference"))
        for j, (image, name, note, bar) in enumerate(panels):
            ax = axes[i * ncols + j]
            if j == 2:
                lim = _finite_max(np.abs(image)) or 1.0
                kwargs: dict[str, Any] = {"cmap": "RdBu_r", "vmin": -lim, "vmax": lim}
            else:
                kwargs = {"cmap": "viridis", "vmin": low, "vmax": vmax}
            _draw_map(fig, ax, image, ex, ey, colorbar_label=bar, empty_text=note, colorbars=_COLORBARS, **kwargs)
            ax.set_title(_escape(name), color=colors[i] if j == 0 else "black")
            ax.set_xlabel(x_text)
            ax.set_ylabel(y_text)
    return fig, title_space


# ---------------------------------------------------------------------------------------------- flags


def _flag_values(counts: pd.DataFrame, label: int | None) -> np.ndarray:
    """Non-negative integer flag counts of the runs with ``label`` (None: neither good nor bad)."""
    labels = pd.to_numeric(counts["label"], errors="coerce").fillna(-1).to_numpy()
    flags = pd.to_numeric(counts["n_flags"], errors="coerce").to_numpy(dtype=np.float64)
    mask = ~np.isin(labels, (0, 1)) if label is None else labels == label
    values = flags[mask]
    return values[np.isfinite(values) & (values >= 0)].astype(np.int64)


def _at_least(n_flags: np.ndarray, n_max: int) -> np.ndarray:
    """Fraction of runs with ≥ N flags for N = 0 ... n_max + 1 (NaN without runs)."""
    values = np.asarray(n_flags, dtype=np.int64)
    if len(values) == 0:
        return np.full(n_max + 2, np.nan)
    histogram = np.bincount(np.clip(values, 0, n_max + 1), minlength=n_max + 2)
    return histogram[::-1].cumsum()[::-1] / len(values)


def plot_flags(counts: pd.DataFrame, title: str, path: PathLike) -> None:
    """Number of flagged histograms per run, good runs against bad runs (AutoDQM_ML style).

    ``counts`` has columns ``run_number``, ``label`` (0 good, 1 bad, -1 unlabelled) and ``n_flags``
    (histograms flagged in that run). Left: distribution (counts of runs, integer bins) per class;
    right: fraction of the runs of each class with at least N flags, against N, as in AutoDQM_ML's
    "fraction of good/bad runs with at least N histogram flags".
    """
    if counts is None or len(counts) == 0:
        _placeholder(title, "no run", path)
        return
    groups = [
        ("good", _flag_values(counts, 0), GOOD, "-"),
        ("bad", _flag_values(counts, 1), BAD, "-"),
        ("unlabelled", _flag_values(counts, None), UNLABELLED, "--"),
    ]
    groups = [g for g in groups if len(g[1])]
    if not groups:
        _placeholder(title, "no run with a flag count", path)
        return
    n_max = max(int(g[1].max()) for g in groups)
    edges = np.arange(-0.5, n_max + 1.5)
    with matplotlib.rc_context(_STYLE):
        fig, grid = _grid(1, 2, width=4.0, height=3.0, wgap=0.95)
        left, right = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
        hists = []
        handles = []
        for name, values, color, ls in groups:
            h = np.bincount(values, minlength=n_max + 1)
            hists.append(h)
            left.stairs(h, edges, color=color, lw=1.7, ls=ls)
            n_range = np.arange(n_max + 2)
            fractions = _at_least(values, n_max)
            right.plot(n_range, fractions, color=color, ls=ls, lw=1.7, marker="o", ms=3.5, drawstyle="steps-post")
            handles.append(Line2D([], [], color=color, ls=ls, lw=1.7, label=f"{name} runs ({len(values)})"))
        if log_y(hists):
            _log_scale(left, "y")
            left.set_ylim(0.5, None)
        else:
            left.set_ylim(0, None)
            left.yaxis.set_major_locator(MaxNLocator(integer=True))
        left.set(xlabel="histograms flagged in the run", ylabel="runs", xlim=(-0.5, n_max + 0.5))
        right.set(
            xlabel="N (histograms flagged)",
            ylabel="fraction of runs with ≥ N flags",
            xlim=(0, n_max + 1),
            ylim=(0, 1.03),
        )
        for ax in (left, right):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            bbox_transform=fig.transFigure + ScaledTranslation(0.0, 0.05, fig.dpi_scale_trans),
            ncols=len(handles),
            frameon=False,
            borderaxespad=0.0,
        )
        _suptitle(fig, title, clearance=0.3)
        _save(fig, path)


# -------------------------------------------------------------------------------------------- p-values


def _pvalue_bins(n: int) -> np.ndarray:
    """Edges on [0, 1]: about 10 runs per bin, between 5 and 20 bins."""
    k = int(np.clip(n // 10, 5, 20))
    return np.linspace(0.0, 1.0, k + 1)


def _ks_statistic(pvalues: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between the empirical CDF of ``pvalues`` and the uniform CDF."""
    p = np.sort(np.asarray(pvalues, dtype=np.float64))
    n = len(p)
    if n == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - p), np.max(p - (i - 1) / n)))


def plot_pvalue_calibration(pvalues: np.ndarray, title: str, path: PathLike, n_runs: int | None = None) -> None:
    """Calibration of the empirical p-values on good runs that were not trained on.

    Left: histogram (counts of p-values) on [0, 1] with the flat expectation and its ±1σ binomial
    band. Right: empirical CDF against the diagonal, with the asymptotic 95% Kolmogorov-Smirnov
    band (±1.358/√n) and the KS distance D in the legend. NaN p-values are left out.

    ``n_runs``: the p-values are the tests (histogram x algorithm) of that many runs. Tests of one
    run are correlated, so the bands take the runs as the independent units (the binomial band of
    ``n_runs`` scaled to the counts, the KS band of ``n_runs``): wider than for independent tests,
    and honest when a run's tests move together.
    """
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    p = p[np.isfinite(p)]
    if len(p) == 0:
        _placeholder(title, "no p-value (needs good runs that were not trained on)", path)
        return
    n = len(p)
    edges = _pvalue_bins(n)
    k = len(edges) - 1
    counts, _ = np.histogram(np.clip(p, 0.0, 1.0), bins=edges)
    units = min(n_runs, n) if n_runs else n
    expected = n / k
    sigma = n / units * math.sqrt(units * (1 / k) * (1 - 1 / k))
    what = f"{n} p-values of {units} good runs" if units < n else f"good runs ({n})"
    counted = "p-values" if units < n else "runs"
    with matplotlib.rc_context(_STYLE):
        fig, grid = _grid(1, 2, width=4.0, height=3.0, wgap=0.95)
        left, right = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
        band_kw: dict[str, Any] = {"color": "grey", "alpha": 0.25, "lw": 0}
        left.fill_between([0, 1], expected - sigma, expected + sigma, label="flat ± 1σ", **band_kw)
        left.axhline(expected, color="grey", ls="--", lw=1)
        left.stairs(counts, edges, color=GOOD, lw=1.8, label=what)
        left.set(xlabel="p-value", ylabel=counted, xlim=(0, 1), ylim=(0, max(counts.max(), expected + sigma) / 0.7))
        left.legend(loc="upper right")
        x = np.r_[0.0, np.sort(p), 1.0]
        y = np.r_[0.0, np.arange(1, n + 1) / n, 1.0]
        band = 1.358 / math.sqrt(units)
        diag = np.array([0.0, 1.0])
        right.fill_between(
            diag, np.clip(diag - band, 0, 1), np.clip(diag + band, 0, 1), label=f"95% KS band ({units} runs)", **band_kw
        )
        right.plot(diag, diag, ls=":", color="grey", lw=1, label="uniform")
        right.plot(x, y, drawstyle="steps-post", color=GOOD, lw=1.8, label=f"empirical CDF, D = {_ks_statistic(p):.3f}")
        right.set(xlabel="p-value", ylabel=f"fraction of {counted} with p ≤ x", xlim=(0, 1), ylim=(0, 1.02))
        right.legend(loc="upper left")
        _suptitle(fig, title)
        _save(fig, path)
