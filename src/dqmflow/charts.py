"""Figures of merit of one histogram as Vega-Lite specifications, drawn by the web page's browser.

Vega-Lite (A. Satyanarayan, D. Moritz, K. Wongsuphasawat, J. Heer, "Vega-Lite: A Grammar of
Interactive Graphics", IEEE TVCG 23 (2017) 341, doi:10.1109/TVCG.2016.2599030) turns a JSON
specification (data + encoding) into an SVG in the browser; the site ships its JavaScript
(``dqmflow/site_assets``), so the pages work offline and from ``file://``. The workflow writes
these small files in milliseconds instead of drawing PNGs: the figures of merit change with every
added run, so their drawing was most of the cost of an update. In the browser each point tells
its values (tooltips), and the menu of a figure saves it as SVG or PNG.

Every function returns one specification (a JSON-ready dict; :func:`write_chart` writes it):

* :func:`roc_chart`: ROC curves with their ±1σ bootstrap bands (:func:`dqmflow.metrics.bootstrap_roc`),
  AUC ± std in the legend, the max TPR·(1−FPR) working point marked.
* :func:`sic_chart`: significance improvement characteristic, SIC = TPR / sqrt(FPR) against TPR
  (J. H. Collins, K. Howe, B. Nachman, arXiv:1805.02664; drawn as in sk_cathode,
  https://github.com/uhh-pd-ml/sk_cathode, ``sk_cathode/utils/evaluation_functions.py``).
* :func:`confusion_chart`: 2x2 confusion matrices at chosen working points.
* :func:`score_chart`: score counts of good/bad/unlabelled runs and of the run sets; the binning is
  set by the calibration and test runs, never by low-statistics outliers.
* :func:`latent_chart`: the runs in a model's latent space.

Only numpy and pandas are imported (no matplotlib): the job that writes them starts quickly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dqmflow.metrics import RocResult

__all__ = [
    "CHARTS",
    "SUFFIX",
    "confusion_chart",
    "latent_chart",
    "roc_chart",
    "score_chart",
    "sic_chart",
    "write_chart",
]

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
#: File name ending of a chart specification (the site embeds these, and copies PNG figures).
SUFFIX = ".vl.json"
#: matplotlib's tab10 colours, so that an algorithm has the colour it has in the PNG figures.
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
GOOD, BAD, UNLABELLED, LOW_STATS, TRAIN = "#1f77b4", "#d62728", "#737373", "#8c8c8c", "#bfbfbf"
SPLIT_COLORS = {"train": "#2ca02c", "calibration": "#ff7f0e", "test": "#9467bd"}
MAX_COLUMNS = 8  # algorithms drawn side by side in the score distributions
_HEADROOM = 0.58  # the histograms use the lower part of a panel, its legend the rest
_SINGLE = {"width": 380, "height": 320}
_TITLE_CHARS = 75
_BASES = ("algorithm basis: calibration + test runs", "run-set basis: runs not labelled bad")
_BINNING_SPLITS: tuple[tuple[str, ...] | None, ...] = (("calibration", "test"), ("train", "calibration", "test"), None)


# --------------------------------------------------------------------------------------------- helpers


def wrap_lines(text: object, width: int = 80) -> list[str]:
    """``text`` wrapped at ``/`` and whitespace into lines of at most ``width`` characters.

    Tokens longer than a line are cut; existing newlines are kept.
    """
    width = max(int(width), 8)
    lines: list[str] = []
    for paragraph in str(text).split("\n"):
        line = ""
        for piece in re.split(r"(?<=[/\s])", paragraph):
            token = piece
            while len(token) > width:
                if line.strip():
                    lines.append(line.rstrip())
                line = ""
                lines.append(token[:width])
                token = token[width:]
            if line.strip() and len(line) + len(token.rstrip()) > width:
                lines.append(line.rstrip())
                line = token.lstrip()
            else:
                line += token
        lines.append(line.rstrip())
    return lines


#: The legend colour of an algorithm without a curve (its entry says why): no symbol.
NO_CURVE = "rgba(0,0,0,0)"


def score_text(value: float) -> str:
    """A score or threshold for a tooltip: 4 significant digits, ``+inf``, ``n/a`` for NaN."""
    v = float(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "+inf" if v > 0 else "−inf"
    return f"{v:.4g}"


def palette(n: int) -> list[str]:
    """``n`` colours, those of matplotlib's tab10 in turn."""
    return [TAB10[i % len(TAB10)] for i in range(n)]


def _num(value: Any, digits: int = 6) -> float | None:
    """A number for JSON: ``digits`` significant digits, ``None`` for NaN and ±inf."""
    v = float(value)
    return float(f"{v:.{digits}g}") if math.isfinite(v) else None


def _nums(values: Any, digits: int = 6) -> list[float | None]:
    return [_num(v, digits) for v in np.asarray(values, dtype=np.float64).ravel()]


def _digits(values: Any, step: float | None = None) -> int:
    """Significant digits that resolve ``values`` to better than a thousandth of ``step`` (default:
    of their spread), at least 4: scores of 1000 ± 3 need 8 where 0.5 ± 0.3 need 4."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return 4
    step = float(v.max() - v.min()) if step is None else step
    if step <= 0:
        return 4
    return max(4, math.ceil(math.log10(max(float(np.abs(v).max()), step) / step)) + 4)


def _lookup(key: str, table: list[dict[str, Any]], fields: list[str]) -> dict[str, Any]:
    """A transform that adds ``fields`` to each row from ``table`` by ``key``: rows carry a small
    index instead of repeating long legend texts (a chart of 2,000 runs stays tens of kB)."""
    return {"lookup": key, "from": {"data": {"values": table}, "key": key, "fields": fields}}


def _corners(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points of a polyline that are not inside a straight run (the first and the
    last point, and every point where the direction changes): the same line, drawn with fewer
    points (``roc_curve(drop_intermediate=True)`` does this for a ROC curve)."""
    if len(x) <= 2:
        return np.arange(len(x))
    dx, dy = np.diff(x), np.diff(y)
    turn = dx[:-1] * dy[1:] - dy[:-1] * dx[1:] != 0
    return np.r_[0, np.flatnonzero(turn) + 1, len(x) - 1]


def _title(title: str, *notes: str) -> dict[str, Any]:
    lines = wrap_lines(title, _TITLE_CHARS)
    out: dict[str, Any] = {"text": lines if len(lines) > 1 else lines[0], "anchor": "start", "fontSize": 13}
    notes = tuple(n for n in notes if n)
    if notes:
        out["subtitle"] = list(notes)
    return out


def _spec(title: dict[str, Any], body: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "description": description,
        "title": title,
        **body,
        "config": {"view": {"stroke": "#888"}, "axis": {"grid": True, "gridOpacity": 0.35, "labelFontSize": 11,
                                                       "titleFontSize": 12, "titleFontWeight": "normal"},
                   "legend": {"labelFontSize": 11, "labelLimit": 460}},
    }  # fmt: skip


def _message(text: str, x: float = 0.5, y: float = 0.5, *, alone: bool = False) -> dict[str, Any]:
    """A layer that writes ``text`` at data coordinates (x, y); ``alone``: the only layer of a
    chart, drawn without axes."""
    axis = {"axis": None, "scale": {"domain": [0, 1]}} if alone else {}
    return {
        "data": {"values": [{"x": x, "y": y, "text": text}]},
        "mark": {"type": "text", "fontSize": 14, "color": "#57606a"},
        "encoding": {"x": {"field": "x", "type": "quantitative", **axis},
                     "y": {"field": "y", "type": "quantitative", **axis}, "text": {"field": "text"}},
    }  # fmt: skip


def write_chart(spec: Mapping[str, Any], path: str | Path) -> None:
    """Write ``spec`` as compact JSON to ``path`` (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, separators=(",", ":"), ensure_ascii=False, allow_nan=False), encoding="utf-8")


# ------------------------------------------------------------------------------------------ ROC and SIC


def valid(result: RocResult) -> bool:
    """A result with an AUC and a curve (good and bad runs)."""
    return bool(np.isfinite(result.auc)) and len(np.asarray(result.fpr)) > 0


def fmt(value: float, spec: str = ".3f") -> str:
    return format(value, spec) if np.isfinite(value) else "n/a"


def counts_note(results: Mapping[str, RocResult]) -> tuple[str, bool]:
    """("n good, m bad runs", True) when all results share these counts, else ("", False)."""
    pairs = {(r.n_good, r.n_bad) for r in results.values()}
    if len(pairs) == 1:
        n_good, n_bad = pairs.pop()
        return f"{n_good} good, {n_bad} bad runs", True
    return "", False


def roc_band(result: RocResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FPR grid, TPR low, TPR high): the bootstrap mean ± std of the TPR, where defined."""
    grid, mean, std = (np.asarray(a, dtype=np.float64) for a in (result.grid, result.tpr_mean, result.tpr_std))
    ok = np.isfinite(grid) & np.isfinite(mean) & np.isfinite(std)
    return grid[ok], np.clip(mean[ok] - std[ok], 0, 1), np.clip(mean[ok] + std[ok], 0, 1)


def sic_curve(result: RocResult) -> tuple[np.ndarray, np.ndarray]:
    """(TPR, SIC = TPR / sqrt(FPR)) of the ROC points with FPR > 0 (sk_cathode drops FPR = 0)."""
    fpr = np.asarray(result.fpr, dtype=np.float64)
    tpr = np.asarray(result.tpr, dtype=np.float64)
    keep = (fpr > 0) & np.isfinite(fpr) & np.isfinite(tpr)
    return tpr[keep], tpr[keep] / np.sqrt(fpr[keep])


def sic_band(result: RocResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TPR mean, SIC low, SIC high) from the bootstrap mean ± std of the TPR on the FPR grid.

    Only grid points with FPR ≥ 1/n_good are kept: below one good run the FPR is not resolved and
    1/sqrt(FPR) of an interpolated TPR would only show the interpolation.
    """
    grid, mean, std = (np.asarray(a, dtype=np.float64) for a in (result.grid, result.tpr_mean, result.tpr_std))
    floor = 1.0 / result.n_good if result.n_good > 0 else np.inf
    keep = (grid > 0) & (grid >= floor) & np.isfinite(grid) & np.isfinite(mean) & np.isfinite(std)
    root = np.sqrt(grid[keep])
    lo = np.clip(mean[keep] - std[keep], 0, 1) / root
    hi = np.clip(mean[keep] + std[keep], 0, 1) / root
    return mean[keep], lo, hi


def _curve_rows(part: str, c: int, x: Any, y: Any, **extra: Any) -> list[dict[str, Any]]:
    """Rows of curve ``c`` (its legend entry and algorithm come from a lookup), 4 significant digits."""
    columns = {"x": _nums(x, 4), "y": _nums(y, 4), **{k: _nums(v, 4) for k, v in extra.items()}}
    names = list(columns)
    return [
        {"part": part, "c": c, "i": i, **dict(zip(names, values, strict=True))}
        for i, values in enumerate(zip(*columns.values(), strict=True))
    ]


def _curves_chart(
    rows: list[dict[str, Any]],
    curves: list[dict[str, Any]],
    entries: list[tuple[str, str]],
    title: dict[str, Any],
    axes: tuple[dict[str, Any], dict[str, Any]],
    reference: Sequence[tuple[float | None, float | None]],
    tooltip: list[dict[str, Any]],
    empty: str,
    description: str,
) -> dict[str, Any]:
    """Curves (part ``curve``) with bands (``band``: lo/hi), seed bands (``seeds``) and marked
    points (``point``) of several algorithms, one legend entry each, a grey dotted ``reference``
    line (its (x, y) points: a random score), and ``empty`` written in the middle when no curve is
    drawn. ``curves`` names each curve index (``c``:
    its legend entry ``curve`` and its ``algorithm``). Marks are clipped to the axes (a SIC band can
    reach far above the curves). Each point of a curve shows ``tooltip`` on hover: a line is one
    SVG path, whose hover would show its first point, so invisible points carry the tooltips."""
    x, y = axes
    color = {"field": "curve", "type": "nominal", "title": None,
             "scale": {"domain": [e for e, _ in entries], "range": [c for _, c in entries]},
             "legend": {"symbolType": "stroke", "symbolOpacity": 1, "symbolStrokeWidth": 2.5}}  # fmt: skip
    y_band = {**y, "field": "lo", "stack": None}
    names = _lookup("c", curves, ["curve", "algorithm"])

    def _filter(part: str) -> list[dict[str, Any]]:
        return [{"filter": f"datum.part === '{part}'"}, names]

    layers: list[dict[str, Any]] = [
        {"transform": _filter("band"), "mark": {"type": "area", "opacity": 0.2, "clip": True},
         "encoding": {"x": x, "y": y_band, "y2": {"field": "hi"}, "color": color}},
        {"transform": _filter("seeds"), "mark": {"type": "area", "opacity": 0.12, "clip": True},
         "encoding": {"x": x, "y": y_band, "y2": {"field": "hi"}, "color": color}},
        {"transform": _filter("curve"), "mark": {"type": "line", "strokeWidth": 1.8, "clip": True},
         "encoding": {"x": x, "y": y, "color": color, "order": {"field": "i"}}},
        {"transform": _filter("curve"), "mark": {"type": "point", "filled": True, "size": 50, "opacity": 0.001,
                                                 "clip": True},
         "encoding": {"x": x, "y": y, "color": color, "tooltip": tooltip}},
        {"transform": _filter("point"),
         "mark": {"type": "point", "filled": True, "size": 70, "opacity": 1, "stroke": "black", "strokeWidth": 1,
                  "clip": True},
         "encoding": {"x": x, "y": y, "color": color, "tooltip": tooltip}},
        {"data": {"values": [{"x": rx, "y": ry} for rx, ry in reference]},
         "mark": {"type": "line", "strokeDash": [2, 3], "color": "grey", "strokeWidth": 1},
         "encoding": {"x": x, "y": y}},
    ]  # fmt: skip
    if not any(row["part"] == "curve" for row in rows):
        layers.append(_message(empty, 0.5, 0.5))
    return _spec(title, {**_SINGLE, "data": {"values": rows}, "layer": layers}, description)


def roc_chart(results: Mapping[str, RocResult], title: str) -> dict[str, Any]:
    """ROC curves of several algorithms (keys: algorithm names) on the same runs.

    Each curve has its ±1σ bootstrap band and its max-pseudo-AUC working point (the point maximising
    TPR·(1-FPR)) marked; the legend gives AUC ± bootstrap std. A seed ensemble's result also shows
    the 68% band over seeds (lighter) and the AUC's median and band over seeds. Results with a NaN
    AUC (no good or no bad run) are listed as "needs good and bad runs". Tooltips: the score
    threshold of each corner of a curve (the points between corners are no better operating points).
    """
    note, shared = counts_note(results)
    rows: list[dict[str, Any]] = []
    entries: list[tuple[str, str]] = []
    curves: list[dict[str, Any]] = []
    for k, ((name, res), color) in enumerate(zip(results.items(), palette(len(results)), strict=True)):
        counts = "" if shared else f" ({res.n_good} good, {res.n_bad} bad)"
        if not valid(res):
            entries.append((f"{name}: needs good and bad runs{counts}", NO_CURVE))
            continue
        entry = f"{name}: AUC {res.auc:.3f} ± {fmt(res.auc_std)}"
        if len(res.seed_aucs):
            median, lo, hi = res.seed_band
            entry += f"; seeds: {median:.3f} [{lo:.3f}, {hi:.3f}] (68%, {len(res.seed_aucs)} seeds)"
            rows += _curve_rows("seeds", k, res.grid, res.seed_tpr[1], lo=res.seed_tpr[1], hi=res.seed_tpr[2])
        entry += counts
        entries.append((entry, color))
        curves.append({"c": k, "curve": entry, "algorithm": name})
        grid, lo_band, hi_band = roc_band(res)
        rows += _curve_rows("band", k, grid, lo_band, lo=lo_band, hi=hi_band)
        fpr, tpr = np.asarray(res.fpr, dtype=np.float64), np.asarray(res.tpr, dtype=np.float64)
        thresholds = np.asarray(res.thresholds, dtype=np.float64)
        if len(thresholds) != len(fpr):
            thresholds = np.full(len(fpr), np.nan)
        keep = _corners(fpr, tpr)
        curve = _curve_rows("curve", k, fpr[keep], tpr[keep])
        for row, threshold in zip(curve, thresholds[keep], strict=True):
            row["threshold"] = score_text(threshold)
        best = int(np.argmax(tpr * (1 - fpr)))
        point = _curve_rows("point", k, [fpr[best]], [tpr[best]])
        point[0]["threshold"] = score_text(thresholds[best])
        rows += curve + point
    x = {"field": "x", "type": "quantitative", "title": "false-alarm rate (fraction of good runs flagged)",
         "scale": {"domain": [0, 1], "nice": False}}  # fmt: skip
    y = {"field": "y", "type": "quantitative", "title": "detection efficiency (fraction of bad runs flagged)",
         "scale": {"domain": [0, 1.02], "nice": False}}  # fmt: skip
    tooltip = [
        {"field": "algorithm", "title": "algorithm"},
        {"field": "x", "title": "false-alarm rate", "format": ".3f"},
        {"field": "y", "title": "detection efficiency", "format": ".3f"},
        {"field": "threshold", "title": "flagged at score ≥"},
    ]
    return _curves_chart(
        rows,
        curves,
        entries,
        _title(title, note, "bands: ±1σ bootstrap · ●: max TPR·(1−FPR) · dotted: random"),
        (x, y),
        [(0.0, 0.0), (1.0, 1.0)],
        tooltip,
        "needs good and bad runs",
        f"ROC curves of {len(results)} algorithms on {title}",
    )


def sic_chart(results: Mapping[str, RocResult], title: str) -> dict[str, Any]:
    """Significance improvement characteristic, SIC = TPR / sqrt(FPR) against TPR.

    Convention of sk_cathode (``sic_curve``) after J. H. Collins, K. Howe and B. Nachman,
    arXiv:1805.02664: ROC points with FPR = 0 are dropped. The band is the SIC of the bootstrap
    TPR mean ± std on the FPR grid (FPR ≥ 1/n_good), drawn at the mean TPR. A random score follows
    SIC = sqrt(TPR) (dotted).
    """
    note, shared = counts_note(results)
    rows: list[dict[str, Any]] = []
    entries: list[tuple[str, str]] = []
    top = 1.0
    curves: list[dict[str, Any]] = []
    for k, ((name, res), color) in enumerate(zip(results.items(), palette(len(results)), strict=True)):
        counts = "" if shared else f" ({res.n_good} good, {res.n_bad} bad)"
        if not valid(res):
            entries.append((f"{name}: needs good and bad runs{counts}", NO_CURVE))
            continue
        tpr, sic = sic_curve(res)
        if not len(sic):
            entries.append((f"{name}: no ROC point with a false alarm{counts}", NO_CURVE))
            continue
        best = int(np.argmax(sic))
        entry = f"{name}: max SIC {sic[best]:.2f} at TPR {tpr[best]:.2f}{counts}"
        entries.append((entry, color))
        curves.append({"c": k, "curve": entry, "algorithm": name})
        x_band, lo, hi = sic_band(res)
        rows += _curve_rows("band", k, x_band, lo, lo=lo, hi=hi)
        keep = _corners(tpr, sic)
        rows += _curve_rows("curve", k, tpr[keep], sic[keep])
        top = max(top, float(sic.max()))
    grid = np.linspace(0.0, 1.0, 51)
    x = {"field": "x", "type": "quantitative", "title": "detection efficiency TPR (fraction of bad runs flagged)",
         "scale": {"domain": [0, 1], "nice": False}}  # fmt: skip
    y = {"field": "y", "type": "quantitative", "title": "SIC = TPR / √FPR",
         "scale": {"domain": [0, _num(1.1 * top)], "nice": False}}  # fmt: skip
    tooltip = [
        {"field": "algorithm", "title": "algorithm"},
        {"field": "x", "title": "detection efficiency", "format": ".3f"},
        {"field": "y", "title": "SIC", "format": ".3f"},
    ]
    return _curves_chart(
        rows,
        curves,
        entries,
        _title(title, note, "bands: ±1σ bootstrap · dotted: random (SIC = √TPR)"),
        (x, y),
        [(_num(v), _num(math.sqrt(v))) for v in grid],
        tooltip,
        "no ROC point with a false alarm" if any(map(valid, results.values())) else "needs good and bad runs",
        f"SIC curves of {len(results)} algorithms on {title}",
    )


# ------------------------------------------------------------------------------------------- confusion


def row_fractions(matrix: np.ndarray) -> np.ndarray:
    """Each row of a confusion matrix divided by its sum (NaN for an empty row)."""
    m = np.asarray(matrix, dtype=np.float64)
    rows = m.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rows > 0, m / np.where(rows > 0, rows, 1.0), np.nan)


def confusion_chart(matrices: Sequence[tuple[str, np.ndarray]], title: str) -> dict[str, Any]:
    """Confusion matrices, one panel per working point (e.g. "max TPR·(1-FPR)", "FAR 5%").

    Each matrix is [[TN, FP], [FN, TP]] (``sklearn.metrics.confusion_matrix`` order): rows are the
    true class (good, bad), columns the prediction (good, bad). Cells show the count and the
    fraction of the row; the colour is the row fraction.

    Raises ``ValueError`` if a matrix is not 2x2.
    """
    items = [(str(name), np.asarray(m, dtype=np.float64)) for name, m in matrices]
    for name, m in items:
        if m.shape != (2, 2):
            raise ValueError(f"confusion matrix {name!r} has shape {m.shape}, expected (2, 2)")
    head = _title(title, "colour: fraction of the true class")
    if not items:
        return _spec(head, {**_SINGLE, "height": 60, "layer": [_message("no working point", alone=True)]},
                     f"no confusion matrix of {title}")  # fmt: skip
    rows = []
    for name, m in items:
        frac = row_fractions(m)
        totals = m.sum(axis=1)
        for i, true in enumerate(("good", "bad")):
            for j, predicted in enumerate(("good", "bad")):
                f = frac[i, j]
                rows.append({
                    "matrix": name, "true": f"{true} ({totals[i]:.0f})", "true_class": true, "predicted": predicted,
                    "count": int(m[i, j]), "fraction": _num(f) if np.isfinite(f) else 0.0,
                    "share": f"{f:.1%}" if np.isfinite(f) else "–", "dark": bool(np.isfinite(f) and f > 0.6),
                })  # fmt: skip
    cell = {"x": {"field": "predicted", "type": "nominal", "sort": ["good", "bad"], "title": "predicted",
                  "axis": {"labelAngle": 0}},
            "y": {"field": "true", "type": "nominal", "title": "true (runs)",
                  "sort": {"field": "i_true", "op": "min"}}}  # fmt: skip
    for row in rows:
        row["i_true"] = 0 if row["true_class"] == "good" else 1
    text_color = {"condition": {"test": "datum.dark", "value": "white"}, "value": "black"}
    tooltip = [{"field": "matrix", "title": "working point"}, {"field": "true_class", "title": "true"},
               {"field": "predicted"}, {"field": "count", "title": "runs"},
               {"field": "share", "title": "of the true class"}]  # fmt: skip
    panel = {
        "width": 150,
        "height": 120,
        "layer": [
            {"mark": "rect", "encoding": {**cell, "color": {"field": "fraction", "type": "quantitative",
                                                            "scale": {"scheme": "blues", "domain": [0, 1]},
                                                            "title": "fraction", "legend": None},
                                          "tooltip": tooltip}},
            {"mark": {"type": "text", "fontSize": 13, "dy": -8},
             "encoding": {**cell, "text": {"field": "count"}, "color": text_color}},
            {"mark": {"type": "text", "fontSize": 11, "dy": 9},
             "encoding": {**cell, "text": {"field": "share"}, "color": text_color}},
        ],
    }  # fmt: skip
    body = {
        "data": {"values": rows},
        "facet": {"field": "matrix", "type": "nominal", "sort": [name for name, _ in items],
                  "header": {"title": None, "labelFontSize": 12, "labelLimit": 240}},
        "columns": min(len(items), 4),
        "spec": panel,
        "resolve": {"scale": {"y": "independent"}, "axis": {"y": "independent"}},
    }  # fmt: skip
    return _spec(head, body, f"{len(items)} confusion matrices of {title}")


# --------------------------------------------------------------------------------- score distributions


@dataclass(frozen=True)
class Binning:
    edges: np.ndarray
    log: bool


@dataclass(frozen=True)
class Counts:
    counts: np.ndarray
    underflow: int
    overflow: int

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.underflow + self.overflow

    def legend(self, name: str) -> str:
        """``name: runs (n below, m above range)``."""
        outside = [f"{n} {side}" for n, side in ((self.underflow, "below"), (self.overflow, "above")) if n]
        head = f"{name}: {self.total}"
        return f"{head} ({', '.join(outside)} range)" if outside else head


def score_binning(scores: np.ndarray, splits: np.ndarray, max_bins: int = 40) -> Binning:
    """Bin edges of one algorithm's scores, set by the runs that matter and robust to outliers.

    The range is the 0.5-99.5 percentile (taken at data points) of the finite scores of the
    calibration and test runs; without such runs, of the train runs too; and only if no other run
    has a finite score, of all runs (low statistics included). Low-statistics runs, +-inf and
    extreme scores thus never set the binning: they are counted as under/overflow. Logarithmic
    bins when all reference scores are positive and span more than two decades.
    """
    s = np.asarray(scores, dtype=np.float64)
    sp = np.asarray(splits).astype(str)
    finite = np.isfinite(s)
    ref = s[:0]
    for allowed in _BINNING_SPLITS:
        mask = finite if allowed is None else finite & np.isin(sp, allowed)
        if mask.any():
            ref = s[mask]
            break
    if len(ref) == 0:
        return Binning(np.linspace(0.0, 1.0, 11), False)
    lo = float(np.percentile(ref, 0.5, method="lower"))
    hi = float(np.percentile(ref, 99.5, method="higher"))
    n_bins = int(np.clip(round(2 * np.sqrt(len(ref))), 10, max_bins))
    if lo > 0 and hi / lo > 100:
        return Binning(np.geomspace(lo, hi, n_bins + 1), True)
    if hi <= lo:
        pad = 0.05 * abs(lo) if lo != 0 else 0.5
        lo, hi = lo - pad, hi + pad
    return Binning(np.linspace(lo, hi, n_bins + 1), False)


def count(values: np.ndarray, edges: np.ndarray) -> Counts:
    """Histogram of ``values`` in ``edges`` with under/overflow counts (NaN left out, ±inf outside)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    below, above = v < edges[0], v > edges[-1]
    counts, _ = np.histogram(v[~(below | above)], bins=edges)
    return Counts(counts, int(below.sum()), int(above.sum()))


def log_y(histograms: Sequence[np.ndarray], ratio: float = 20.0) -> bool:
    """Log y when the largest bin is ≥ ``ratio`` times the smallest non-empty one (small groups vanish)."""
    if not histograms:
        return False
    values = np.concatenate([np.asarray(h, dtype=np.float64).ravel() for h in histograms])
    positive = values[values > 0]
    return bool(len(positive)) and float(positive.max()) >= ratio * float(positive.min())


def _score_panel(
    groups: Sequence[tuple[str, np.ndarray, str, bool]], binning: Binning, title: list[str], y_title: str | None
) -> dict[str, Any]:
    """One panel of step histograms (counts) of ``groups`` = (name, scores, colour, filled)."""
    edges = binning.edges
    digits = _digits(edges, float(np.diff(edges).min()))  # a thousandth of the narrowest bin
    rows: list[dict[str, Any]] = []
    entries: list[tuple[str, str]] = []
    names: list[dict[str, Any]] = []
    drawn: list[np.ndarray] = []
    for g, (name, values, color, filled) in enumerate(groups):
        c = count(values, edges)
        if c.total == 0:
            continue
        entry = c.legend(name)
        entries.append((entry, color))
        names.append({"g": g, "group": entry, "filled": filled})
        drawn.append(c.counts)
        # A step outline: down to zero at both ends, one point per bin start, the last edge closing it.
        xs = [edges[0], *edges[:-1], edges[-1], edges[-1]]
        ys = [0, *c.counts, c.counts[-1], 0]
        lows = [edges[0], *edges[:-1], edges[-2], edges[-2]]
        highs = [edges[1], *edges[1:], edges[-1], edges[-1]]
        for i, (at, n, lo, hi) in enumerate(zip(xs, ys, lows, highs, strict=True)):
            rows.append({"g": g, "i": i, "x": _num(at, digits), "n": int(n), "lo": _num(lo, digits),
                         "hi": _num(hi, digits)})  # fmt: skip
    last = len(edges) + 1  # the index of a step outline's last point (back at zero)
    log = log_y(drawn)
    peak = max([float(h.max()) for h in drawn] + [1.0])
    y_scale: dict[str, Any]
    if log:
        bottom = 0.5
        top = 10 ** (math.log10(bottom) + (math.log10(peak) - math.log10(bottom)) / _HEADROOM)
        base = bottom
        for row in rows:
            row["y"] = max(row["n"], bottom)  # an empty bin sits on the axis
        y_scale = {"type": "log", "domain": [bottom, _num(top)], "nice": False}
        y_axis: dict[str, Any] = {"values": [10**k for k in range(int(math.log10(top)) + 1)], "format": "d"}
    else:
        base = 0
        for row in rows:
            row["y"] = row["n"]
        y_scale = {"domain": [0, _num(peak / _HEADROOM)], "nice": False}
        y_axis = {"tickMinStep": 1, "format": "d"}
    x: dict[str, Any] = {"field": "x", "type": "quantitative", "title": "anomaly score",
         "scale": {"type": "log", "domain": _nums([edges[0], edges[-1]], digits), "nice": False} if binning.log
         else {"domain": _nums([edges[0], edges[-1]], digits), "nice": False, "zero": False}}  # fmt: skip
    y: dict[str, Any] = {"field": "y", "type": "quantitative", "title": y_title, "scale": y_scale, "axis": y_axis}
    legend_color = {"field": "group", "type": "nominal", "title": None,
             "scale": {"domain": [e for e, _ in entries], "range": [c for _, c in entries]},
             "legend": {"orient": "top-right", "fillColor": "rgba(255,255,255,0.85)", "padding": 3,
                        "labelFontSize": 10, "symbolType": "stroke", "labelLimit": 240, "symbolOpacity": 1,
                        "symbolStrokeWidth": 2}}  # fmt: skip
    group = _lookup("g", names, ["group", "filled"])
    tooltip = [{"field": "group", "title": "runs"}, {"field": "lo", "title": "score from", "format": ".4g"},
               {"field": "hi", "title": "to", "format": ".4g"},
               {"field": "n", "title": "runs in the bin"}]  # fmt: skip
    layers: list[dict[str, Any]] = [
        {"transform": [group, {"filter": f"datum.filled && datum.i > 0 && datum.i < {last}"}],  # one point per x
         "mark": {"type": "area", "interpolate": "step-after", "opacity": 0.3},
         "encoding": {"x": x, "y": {**y, "stack": None}, "y2": {"datum": base}, "color": legend_color}},
        {"transform": [group], "mark": {"type": "line", "interpolate": "step-after", "strokeWidth": 1.6},
         "encoding": {"x": x, "y": y, "color": legend_color, "order": {"field": "i"}}},
        # Each bin shows its runs on hover (a line is one SVG path: its hover would show its first point).
        {"transform": [group, {"filter": f"datum.i > 0 && datum.i < {last - 1}"}],
         "mark": {"type": "rect", "opacity": 0.001},
         "encoding": {"x": {**x, "field": "lo"}, "x2": {"field": "hi"}, "y": {**y, "stack": None},
                      "y2": {"datum": base}, "tooltip": tooltip}},
    ]  # fmt: skip
    if not drawn:
        layers = [_message("no runs", _num(np.mean(edges[[0, -1]])) or 0.0, 0.5)]
        layers[0]["encoding"]["x"] = x
        layers[0]["encoding"]["y"] = {**y, "scale": {"domain": [0, 1]}}
    elif not any(h.any() for h in drawn):
        middle = 0.5 * float(y_scale["domain"][1] or 1)
        message = _message("all runs outside the range (no finite score)", _num(np.mean(edges[[0, -1]])) or 0.0, middle)
        message["encoding"]["x"] = x
        message["encoding"]["y"] = y
        layers.append(message)
    for layer in layers:
        if layer["mark"]["type"] == "text":
            layer["mark"]["fontSize"] = 11
    return {"width": 220, "height": 160, "title": {"text": title, "fontSize": 11, "fontWeight": "normal"},
            "data": {"values": rows}, "layer": layers}  # fmt: skip


def score_chart(frame: pd.DataFrame | None, title: str) -> dict[str, Any]:
    """Score distributions (counts of runs) of several algorithms on one histogram.

    ``frame`` has columns ``algorithm``, ``score``, ``label`` (1 bad, 0 good, -1 unknown) and
    ``split`` (train, calibration, test, low_stats, missing). One column of panels per algorithm
    (at most 8; further algorithms are named in the title):

    * top, algorithm basis: good, bad and unlabelled runs among the calibration and test runs;
    * bottom, run-set basis: train, calibration and test runs that are not bad, and the
      low-statistics runs apart (grey, filled).

    Binning per algorithm from :func:`score_binning` (low-statistics runs and outliers never set
    it); runs outside the range, +inf included, are counted in the legend. Log x when the scores
    are positive and span more than two decades, log y when small groups would vanish.
    """
    if frame is None or len(frame) == 0 or "score" not in frame.columns:
        return _spec(
            _title(title),
            {**_SINGLE, "height": 60, "layer": [_message("no scores", alone=True)]},
            f"no scores of {title}",
        )
    data = pd.DataFrame(
        {
            "algorithm": frame["algorithm"].astype(str) if "algorithm" in frame.columns else "",
            "score": pd.to_numeric(frame["score"], errors="coerce").astype(np.float64),
            "label": (
                pd.to_numeric(frame["label"], errors="coerce").fillna(-1).astype(int)
                if "label" in frame.columns
                else -1
            ),
            "split": frame["split"].astype(str) if "split" in frame.columns else "test",
        }
    )
    algorithms = [str(a) for a in pd.unique(data["algorithm"])]
    shown, hidden = algorithms[:MAX_COLUMNS], algorithms[MAX_COLUMNS:]
    tops, bottoms = [], []
    for j, algorithm in enumerate(shown):
        sub = data[data["algorithm"] == algorithm]
        score, label, split = sub["score"].to_numpy(), sub["label"].to_numpy(), sub["split"].to_numpy()
        binning = score_binning(score, split)
        evaluated = np.isin(split, ("calibration", "test"))
        top = [
            ("good", score[evaluated & (label == 0)], GOOD, False),
            ("bad", score[evaluated & (label == 1)], BAD, False),
            ("unlabelled", score[evaluated & ~np.isin(label, (0, 1))], UNLABELLED, False),
        ]
        not_bad = label != 1
        bottom = [
            ("train", score[(split == "train") & not_bad], SPLIT_COLORS["train"], False),
            ("calibration", score[(split == "calibration") & not_bad], SPLIT_COLORS["calibration"], False),
            ("test", score[(split == "test") & not_bad], SPLIT_COLORS["test"], False),
            ("low statistics", score[split == "low_stats"], LOW_STATS, True),
        ]
        y_title = "runs" if j == 0 else None
        tops.append(_score_panel(top, binning, [*wrap_lines(algorithm, 34), _BASES[0]], y_title))
        bottoms.append(_score_panel(bottom, binning, [_BASES[1]], y_title))
    independent = {"scale": {"x": "independent", "y": "independent", "color": "independent"},
                   "legend": {"color": "independent"}}  # fmt: skip
    more = f"{len(hidden)} more algorithms not shown: {', '.join(hidden)}" if hidden else ""
    body = {
        "vconcat": [{"hconcat": tops, "resolve": independent}, {"hconcat": bottoms, "resolve": independent}],
        "resolve": independent,
    }
    return _spec(_title(title, more), body, f"score distributions of {len(shown)} algorithms on {title}")


# ---------------------------------------------------------------------------------------- latent space


def latent_chart(frame: pd.DataFrame, title: str) -> dict[str, Any]:
    """Runs in the model's latent space (first two coordinates: PCA components, the autoencoder's
    bottleneck), coloured by run set: training runs, good and bad runs not trained on, unlabelled
    and low-statistics runs. With a one-dimensional latent space, the score is the y axis.
    Tooltips name each run.

    ``frame`` columns: ``latent_1``, ``latent_2`` (may be all NaN), ``score``, ``label``, ``split``,
    optionally ``run_number``.
    """
    data = frame[np.isfinite(frame["latent_1"].to_numpy(dtype=np.float64))]
    if len(data) == 0:
        message = _message("no run has latent coordinates", alone=True)
        return _spec(_title(title), {**_SINGLE, "height": 60, "layer": [message]}, f"no latent space of {title}")
    two_d = bool(np.isfinite(data["latent_2"].to_numpy(dtype=np.float64)).any())
    y_column, y_title = ("latent_2", "latent coordinate 2") if two_d else ("score", "anomaly score")
    split, label = data["split"].to_numpy(), data["label"].to_numpy()
    unseen = ~np.isin(split, ("train", "low_stats", "missing"))
    groups = [
        ("training runs", split == "train", TRAIN, "circle"),
        ("good, not trained on", unseen & (label == 0), GOOD, "circle"),
        ("unlabelled", unseen & (label == -1), UNLABELLED, "square"),
        ("bad", unseen & (label == 1), BAD, "diamond"),
        ("low statistics", split == "low_stats", LOW_STATS, "cross"),
    ]
    runs = data["run_number"].to_numpy() if "run_number" in data.columns else np.full(len(data), -1)
    x_values, y_values, scores = (data[c].to_numpy(dtype=np.float64) for c in ("latent_1", y_column, "score"))
    x_digits, y_digits = _digits(x_values), _digits(y_values)
    rows: list[dict[str, Any]] = []
    entries: list[tuple[str, str, str]] = []
    names: list[dict[str, Any]] = []
    for g, (name, mask, color, shape) in enumerate(groups):
        if not mask.any():
            continue
        entry = f"{name} ({int(mask.sum())})"
        entries.append((entry, color, shape))
        names.append({"g": g, "group": entry})
        for run, x, y, s in zip(runs[mask], x_values[mask], y_values[mask], scores[mask], strict=True):
            rows.append({"g": g, "run": int(run), "x": _num(x, x_digits), "y": _num(y, y_digits),
                         "score": score_text(s)})  # fmt: skip
    log = not two_d and bool((data["score"] > 0).all())
    scale = {"domain": [e for e, _, _ in entries]}
    body = {
        **_SINGLE,
        "data": {"values": rows},
        "transform": [_lookup("g", names, ["group"])],
        "mark": {"type": "point", "filled": True, "size": 30, "opacity": 0.85},
        "encoding": {
            "x": {"field": "x", "type": "quantitative", "title": "latent coordinate 1", "scale": {"zero": False}},
            "y": {"field": "y", "type": "quantitative", "title": y_title,
                  "scale": {"type": "log"} if log else {"zero": False}},
            "color": {"field": "group", "type": "nominal", "title": None,
                      "scale": {**scale, "range": [c for _, c, _ in entries]}},
            "shape": {"field": "group", "type": "nominal", "title": None,
                      "scale": {**scale, "range": [s for _, _, s in entries]}},
            "tooltip": [{"field": "run", "title": "run"}, {"field": "group", "title": "runs"},
                        {"field": "score", "title": "score"}],
        },
    }  # fmt: skip
    return _spec(_title(title), body, f"latent space of {title}")


#: The chart functions by name, as a figure plan names them.
CHARTS = {f.__name__: f for f in (roc_chart, sic_chart, confusion_chart, score_chart, latent_chart)}
