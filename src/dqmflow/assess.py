"""Assessment: per-histogram figures of merit, run verdicts, tables, figures and the web page.

It reads only the long score table (:mod:`dqmflow.scores`), from dqmflow or any other tool, plus
(for figures) the optional reconstruction files of dqmflow's score jobs. Two steps:

1. :func:`assess_histograms`, for a chunk of histograms (all algorithms): ROC/AUC with bootstrap
   bands, false-alarm rates at fixed efficiencies, confusion matrices at working points, the most
   anomalous runs, the calibrated p-values (:mod:`dqmflow.verdicts`) and the histograms' figures.
2. :func:`assess_dataset`, over all chunks: run verdicts (``verdicts.csv``), run-level figures
   of merit of every combiner and algorithm, the summary tables (CSV, LaTeX, HTML) and figures.

Evaluation runs are the runs labelled good (0) or bad (1) that no model trained on (split
``test`` or ``calibration``; every labelled run for tables without a split); low-statistics runs
and runs where the histogram is missing are left out of the metrics and counted.

On the command line (``python -m dqmflow.assess`` or ``dqmflow``)::

    dqmflow SCORES.parquet|csv [...] --out DIR

runs both steps and writes ``DIR/verdicts.csv``, the tables, ``DIR/plots/`` and ``DIR/site/``.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import importlib.util
import json
import logging
import os
import pickle
import re
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from dqmflow.arrowio import read_parquet
from dqmflow.charts import CHARTS, SUFFIX, write_chart
from dqmflow.metrics import EFFICIENCIES, RocResult, bootstrap_roc, clip_infinite, false_alarm_rates, with_seeds
from dqmflow.names import slugify
from dqmflow.scores import ScoreTableError, check_score_table
from dqmflow.verdicts import (
    COMBINERS,
    DEFAULT_COMBINER,
    REFERENCES,
    Combiner,
    Reference,
    VerdictError,
    Verdicts,
    combiner_figures,
    evaluated_run_scores,
    histogram_pvalues,
    lift_infinite,
    reference_mode,
    run_verdicts,
)

__all__ = [
    "ChunkAssessment",
    "Settings",
    "assess_dataset",
    "assess_histograms",
    "latex_table",
    "main",
    "read_chunk",
    "read_chunks",
    "read_reconstructions",
    "read_score_files",
    "write_chunk",
    "write_site",
]

log = logging.getLogger(__name__)
PlotPolicy = Literal["matter", "all", "none"]
FLOAT_FORMAT = "%.6g"


@dataclass(frozen=True)
class Settings:
    """Assessment settings (the ``assessment:`` block of the workflow config)."""

    n_bootstrap: int = 200
    efficiencies: tuple[float, ...] = EFFICIENCIES
    n_example_runs: int = 4
    n_top: int = 5
    alpha: float = 0.01
    false_alarm_rate: float = 0.05
    combiner: Combiner = DEFAULT_COMBINER
    reference: Reference = "auto"
    plots: PlotPolicy = "matter"
    reco_runs: tuple[int, ...] = ()
    n_driving: int = 5
    seed: int = 0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Settings from a config mapping; unknown keys (used by other steps) are ignored."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in known}
        return cls(**kwargs)


@dataclass
class ChunkAssessment:
    """What :func:`assess_histograms` found for a chunk of histograms."""

    metrics: pd.DataFrame
    false_alarm: pd.DataFrame
    confusion: pd.DataFrame
    top_runs: pd.DataFrame
    pvalues: pd.DataFrame
    figures: pd.DataFrame = field(default_factory=pd.DataFrame)
    """histogram, algorithm ("" = all), kind, file (relative to the plots folder), runs drawn."""
    figure_plan: list[FigureCall] = field(default_factory=list)
    """The figures to draw (:func:`draw_figures`), when :func:`assess_histograms` was asked not to
    draw them itself (``plots_dir=None, plan_figures=True``)."""


# ----------------------------------------------------------------------------- reading


def read_reconstructions(path: str | Path) -> tuple[str, dict[str, Any], pd.DataFrame]:
    """A score job's reconstruction file: (histogram, {shape, edges}, rows by run)."""
    table = read_parquet(path)
    meta = json.loads((table.schema.metadata or {})[b"dqmflow"])
    return str(meta["histogram"]), meta, table.to_pandas().set_index("run_number")


_SCORE_SUFFIX = re.compile(r"^(?P<histogram>.+)_score_(?P<algorithm>[^/]+)$")
_RUN_COLUMNS = ("run_number", "run", "Run", "RunNumber", "run_num")
_NOT_SCORED = -99.0


def _canonical_histogram(name: str) -> str:
    """``L1T/Run summary/x`` and ``L1T//Run summary/x`` are the same histogram (AutoDQM spellings)."""
    name = name.strip()
    if "/" in name and "//" not in name:
        subsystem, rest = name.split("/", 1)
        return f"{subsystem}//{rest}"
    return name


_NOT_A_NUMBER = {"", "nan", "na", "n/a", "none", "null"}


def _run_text(value: Any) -> str:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return str(int(number)) if pd.notna(number) and float(number).is_integer() else str(value)


def _refuse_words(raw: pd.Series, numbers: pd.Series, runs: pd.Series | None, where: str) -> None:
    """A score cell that is text (not a number, not empty or NaN) is a mistake: named, not dropped."""
    text = raw[numbers.isna() & raw.notna()]
    words = text[~text.astype(str).str.strip().str.lower().isin(_NOT_A_NUMBER)]
    if len(words):
        run = f" (run {_run_text(runs[words.index[0]])})" if runs is not None else ""
        raise ScoreTableError(f"{where}: {words.iloc[0]!r}{run} is not a number ({len(words)} such cells)")


_LABELS = {"bad": 1, "good": 0, "unknown": -1, "": -1, "true": 1, "false": 0, "1": 1, "0": 0, "-1": -1}


def _labels(values: pd.Series, where: str) -> pd.Series:
    """Labels as 1 (bad), 0 (good), -1 (unknown); accepts numbers, booleans and good/bad words."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(np.int64)
    numeric = pd.to_numeric(values, errors="coerce")
    words = values.astype(str).str.strip().str.lower().map(_LABELS)
    out = numeric.where(numeric.notna(), words)
    odd = values[out.isna() & values.notna()]
    if len(odd):
        raise ScoreTableError(f"{where}: label {odd.iloc[0]!r} is none of 1/0/-1, bad/good/unknown, true/false")
    return out.fillna(-1).astype(np.int64)


def _long_from_wide(frame: pd.DataFrame, algorithm: str, where: str) -> pd.DataFrame:
    run_column = next((c for c in _RUN_COLUMNS if c in frame.columns), None)
    if run_column is None:
        raise ScoreTableError(
            f"{where}: neither a long score table (run_number, histogram, algorithm, score) nor a wide one "
            f"(a run column named one of {list(_RUN_COLUMNS)} and one column per histogram)"
        )
    keep = {"label", "split", "year"} & set(frame.columns)
    candidates = [c for c in frame.columns if c != run_column and c not in keep]
    # Histogram columns are paths ("L1T//Run summary/..."); when some are, the other columns
    # (era, lumi, entries, ...) describe the run and are left out.
    paths = [c for c in candidates if "/" in str(c)]
    # AutoDQM_ML's training output also holds the histograms and their reconstructions
    # (``<histogram>_reco_<algorithm>``): when score columns are there, only they are scores.
    scored = [c for c in candidates if _SCORE_SUFFIX.match(str(c))]
    value_columns = scored or paths or candidates
    ignored = sorted(set(candidates) - set(value_columns), key=str)
    if ignored:
        log.info("%s: columns %s are not histogram paths: left out", where, ignored)
    if not value_columns:
        raise ScoreTableError(f"{where}: no histogram columns besides {run_column!r}")
    parts = []
    for column in value_columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().all() and frame[column].notna().any():
            raise ScoreTableError(f"{where}: column {column!r} holds no numbers; is it a histogram score column?")
        _refuse_words(frame[column], values, frame[run_column], f"{where}: column {column!r}")
        match = _SCORE_SUFFIX.match(str(column))
        histogram, algo = (match["histogram"], match["algorithm"]) if match else (str(column), algorithm)
        part = pd.DataFrame(
            {
                "run_number": frame[run_column].to_numpy(),
                "histogram": _canonical_histogram(histogram),
                "algorithm": algo,
                "score": values.to_numpy(dtype=np.float64),
            }
        )
        for extra in sorted(keep):
            part[extra] = frame[extra].to_numpy()
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def read_score_files(paths: Sequence[str | Path], algorithm: str | None = None) -> pd.DataFrame:
    """Read long or wide score tables (parquet or CSV) into one checked long table.

    Long: ``run_number, histogram, algorithm, score[, label, split, year, ...]``. Wide (e.g.
    AutoDQM's per-run CSVs): a run column and one column per histogram (``Subsystem/Run summary/..``
    or ``Subsystem//Run summary/..``; ``<histogram>_score_<algorithm>`` names the algorithm too),
    the algorithm otherwise from ``algorithm`` or the file name. ``-99`` and NaN mean not scored.
    """
    frames = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"score table {path} does not exist")
        try:
            frame = pd.read_csv(path) if path.suffix.lower() in (".csv", ".txt") else pd.read_parquet(path)
        except (ValueError, OSError) as err:
            raise ScoreTableError(f"{path}: cannot be read as CSV or parquet: {err}") from err
        if len(frame) == 0:
            raise ScoreTableError(f"{path}: the score table is empty (no rows)")
        if len(frame.columns) == 1 and ";" in str(frame.columns[0]):
            head = str(frame.columns[0])[:60]
            raise ScoreTableError(f"{path}: one column named {head!r}...: separate with ',', not ';'")
        no_algorithm = {"histogram", "score"} <= set(frame.columns) and "algorithm" not in frame.columns
        if {"histogram", "score"} <= set(frame.columns):
            if no_algorithm:
                frame = frame.assign(algorithm=algorithm or path.stem)
                log.info("%s: no 'algorithm' column: every row is algorithm %r", path, algorithm or path.stem)
            unnamed = frame["histogram"].isna() | (frame["histogram"].astype(str).str.strip() == "")
            if unnamed.any():
                row = int(np.flatnonzero(unnamed.to_numpy())[0])
                raise ScoreTableError(f"{path}: row {row + 2} (line of the file) has no histogram name")
            frame = frame.assign(histogram=frame["histogram"].astype(str).map(_canonical_histogram))
        else:
            frame = _long_from_wide(frame, algorithm or path.stem, str(path))
        if "run_number" in frame.columns:
            runs = pd.to_numeric(frame["run_number"], errors="coerce")
            odd = runs.isna() | (runs != runs.round())
            if odd.any():
                first = frame["run_number"][odd].iloc[0]
                raise ScoreTableError(f"{path}: run numbers must be integers, not '{first}' ({int(odd.sum())} rows)")
            frame["run_number"] = runs.astype(np.int64)
        if "score" in frame.columns:
            score = pd.to_numeric(frame["score"], errors="coerce").astype(np.float64)
            _refuse_words(frame["score"], score, frame.get("run_number"), f"{path}: column 'score'")
            frame["score"] = score.where(score != _NOT_SCORED)
        if "label" in frame.columns:
            frame["label"] = _labels(frame["label"], str(path))
        try:
            frames.append(check_score_table(frame, where=str(path)))
        except ScoreTableError as err:
            if no_algorithm and "several scores" in str(err):
                raise ScoreTableError(f"{err}; the table has no 'algorithm' column: does it hold several?") from err
            raise
    table = pd.concat(frames, ignore_index=True)
    where = " + ".join(str(p) for p in paths)
    if "label" in table.columns:
        counts = table.groupby("run_number")["label"].nunique()
        mixed = counts[counts > 1]
        if len(mixed):
            run = int(mixed.index[0])
            values = sorted(int(v) for v in table.loc[table["run_number"] == run, "label"].unique())
            raise ScoreTableError(
                f"{where}: run {run} has the labels {values} on different rows ({len(mixed)} runs like it): "
                "a label is per run"
            )
    return check_score_table(table, where=where)


# ----------------------------------------------------------------------------- per histogram


def _evaluation(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["label"].isin((0, 1)) & frame["split"].isin(("test", "calibration"))]


def _confusion(scores: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    from sklearn.metrics import confusion_matrix

    return np.asarray(confusion_matrix(labels, (scores >= threshold).astype(int), labels=[0, 1]))


def _working_points(
    scores: np.ndarray, labels: np.ndarray, roc: RocResult, false_alarm_rate: float
) -> list[tuple[str, float]]:
    if np.isnan(roc.auc):
        return []
    s = clip_infinite(scores)
    ok = np.isfinite(s)
    s, y = s[ok], labels[ok]
    best = int(np.argmax(roc.tpr * (1 - roc.fpr)))
    points = [("max TPR·(1-FPR)", float(roc.thresholds[best]))]
    good = np.sort(s[y == 0])
    for rate in sorted({0.01, false_alarm_rate}):
        if len(good):
            # the lowest threshold that flags at most ``rate`` of the good runs
            k = int(np.floor(rate * len(good)))
            threshold = np.nextafter(good[-k - 1], np.inf) if k < len(good) else good[0]
            points.append((f"FAR {rate:.0%}", float(threshold)))
    return points


def _top_runs(frame: pd.DataFrame, n_top: int) -> pd.DataFrame:
    candidates = frame[~frame["split"].isin(("train", "low_stats", "missing")) & frame["score"].notna()]
    columns = ["run_number", "label", "split", "score", "p_value"]
    return candidates.sort_values(["score", "run_number"], ascending=[False, True], kind="stable").head(n_top)[columns]


def _matters(pvalues: pd.DataFrame, threshold: float) -> bool:
    """Does this (histogram, algorithm) flag a run that no model trained on, after the trials
    correction over the run's histograms (p <= alpha / n_histograms, Bonferroni)?"""
    scored = pvalues[~pvalues["split"].isin(("train", "low_stats", "missing"))]
    return bool((scored["p_graded"] <= threshold).any())


def assess_histograms(
    scores: pd.DataFrame,
    plots_dir: str | Path | None,
    settings: Settings = Settings(),
    *,
    reco_files: Mapping[tuple[str, str], str | Path] | None = None,
    reco_labels: Mapping[str, str] | None = None,
    reference: Reference | None = None,
    n_histograms: int | None = None,
    figure_cache: str | Path | None = None,
    plan_figures: bool = False,
) -> ChunkAssessment:
    """Figures of merit, p-values and figures of the histograms of ``scores`` (all algorithms).

    ``reco_files`` maps (histogram, algorithm) to dqmflow's reconstruction files: with them the
    most anomalous runs (and ``settings.reco_runs``) are drawn against their reconstruction (a
    statistical test's "reconstruction" is its reference, named by ``reco_labels[algorithm]``).
    ``plots_dir=None`` or ``settings.plots == "none"`` draws nothing; ``plots == "matter"`` draws
    the figures of a histogram only if one of its algorithms flags a run not trained on at
    ``alpha / n_histograms`` (the trials correction over a run's histograms; ``n_histograms``
    defaults to the histograms of ``scores``, give the dataset's total when ``scores`` is a chunk),
    and its reconstructions only for those algorithms and the runs in ``settings.reco_runs``.
    ``figure_cache`` is a folder kept between runs (:class:`FigureCache`). With
    ``plan_figures`` (and ``plots_dir=None``) nothing is drawn: the result's ``figure_plan`` lists
    the figures for :func:`draw_figures` (the workflow draws them in their own job, beside the run
    verdicts, which need only the tables).
    """
    scores = check_score_table(scores.reset_index(drop=True))
    if "label" not in scores.columns:
        scores = scores.assign(label=-1)
    if "split" not in scores.columns:
        scores = scores.assign(split="test")
    mode = reference_mode(scores, reference or settings.reference)
    pvalues = histogram_pvalues(scores, mode)
    scores = scores.assign(p_value=pvalues["p_graded"].to_numpy(), n_reference=pvalues["n_reference"].to_numpy())
    recos: dict[tuple[str, str], tuple[dict[str, Any], pd.DataFrame]] = {}
    for (histogram, algorithm), path in (reco_files or {}).items():
        stored, meta, rows = read_reconstructions(path)
        if stored != histogram:
            raise ValueError(f"{path} holds reconstructions of {stored!r}, not of {histogram!r}")
        recos[(histogram, algorithm)] = (meta, rows)
    draw = (plots_dir is not None or plan_figures) and settings.plots != "none"
    if plots_dir is not None:
        Path(plots_dir).mkdir(parents=True, exist_ok=True)  # a job's output, even when nothing is drawn
    cache = FigurePlan() if plan_figures else FigureCache(figure_cache if draw else None)
    threshold = settings.alpha / max(n_histograms or scores["histogram"].nunique(), 1)
    flagging = {
        key: settings.plots == "all" or _matters(group, threshold)
        for key, group in pvalues.groupby(["histogram", "algorithm"], sort=False)
    }
    plots = Path(plots_dir) if plots_dir is not None and not plan_figures else Path()  # a plan's paths are relative
    metric_rows: list[dict[str, Any]] = []
    far_frames, confusion_rows, top_frames, figure_rows = [], [], [], []
    for histogram, hframe in scores.groupby("histogram", sort=True):
        histogram = str(histogram)
        rocs: dict[str, RocResult] = {}
        matrices: list[tuple[str, np.ndarray]] = []
        best_auc, best_matrices = -1.0, []
        for algorithm, frame in hframe.groupby("algorithm", sort=True):
            algorithm = str(algorithm)
            evaluation = _evaluation(frame)
            s, y = evaluation["score"].to_numpy(), evaluation["label"].to_numpy()
            roc = bootstrap_roc(s, y, settings.n_bootstrap, settings.seed)
            seed_columns = [c for c in frame.columns if str(c).startswith("score_seed_") and frame[c].notna().any()]
            if len(seed_columns) >= 2:
                roc = with_seeds(roc, evaluation[seed_columns].to_numpy(dtype=np.float64), y)
            rocs[algorithm] = roc
            far = false_alarm_rates(s, y, settings.efficiencies, settings.n_bootstrap, settings.seed)
            far.insert(0, "histogram", histogram)
            far.insert(1, "algorithm", algorithm)
            far_frames.append(far)
            scored = frame[~frame["split"].isin(("missing",))]
            finite = scored["score"].replace([np.inf, -np.inf], np.nan)
            evaluated = evaluation["score"].replace([np.inf, -np.inf], np.nan)  # the runs of the AUC
            labelled = evaluation["label"]
            row: dict[str, Any] = {
                "histogram": histogram,
                "algorithm": algorithm,
                "auc": roc.auc,
                "auc_std": roc.auc_std,
                "n_good": roc.n_good,
                "n_bad": roc.n_bad,
                "n_low_stats": int((frame["split"] == "low_stats").sum()),
                "n_missing": int((frame["split"] == "missing").sum()),
                "n_reference": int(frame["n_reference"].max()),
                "score_mean": finite.mean(),
                "score_std": finite.std(),
                "score_mean_good": evaluated[labelled == 0].mean(),
                "score_mean_bad": evaluated[labelled == 1].mean(),
                "n_infinite_good": int(np.isposinf(evaluation["score"][labelled == 0]).sum()),
                "n_infinite_bad": int(np.isposinf(evaluation["score"][labelled == 1]).sum()),
            }
            if len(roc.seed_aucs):
                row["auc_seed_median"], row["auc_seed_lo"], row["auc_seed_hi"] = roc.seed_band
                row["n_seeds"] = len(roc.seed_aucs)
            wp = roc.best_working_point if not np.isnan(roc.auc) else (np.nan, np.nan)
            row["best_wp_fpr"], row["best_wp_tpr"] = wp
            for _, f in far.iterrows():
                row[f"far_at_{round(f['efficiency'] * 100)}"] = f["false_alarm_rate"]
            clipped = clip_infinite(s)
            ok = np.isfinite(clipped) & np.isin(y, (0, 1))
            here = []
            for name, threshold in _working_points(s, y, roc, settings.false_alarm_rate):
                matrix = _confusion(clipped[ok], y[ok].astype(int), threshold)
                (tn, fp), (fn, tp) = matrix
                confusion_rows.append(
                    {"histogram": histogram, "algorithm": algorithm, "working_point": name, "threshold": threshold,
                     "tn": tn, "fp": fp, "fn": fn, "tp": tp}
                )  # fmt: skip
                here.append((f"{algorithm}: {name}", matrix))
            if not np.isnan(roc.auc) and roc.auc > best_auc:
                best_auc, best_matrices = roc.auc, here
            metric_rows.append(row)
            top = _top_runs(frame, settings.n_top)
            top.insert(0, "histogram", histogram)
            top.insert(1, "algorithm", algorithm)
            top.insert(2, "rank", np.arange(1, len(top) + 1))
            top_frames.append(top)
        matrices = best_matrices
        drawn = {str(a) for a in hframe["algorithm"].unique() if flagging.get((histogram, a), False)}
        if draw and (drawn or settings.reco_runs):
            figure_rows += _histogram_figures(
                histogram, hframe, rocs, matrices, recos, reco_labels or {}, settings, plots, drawn, cache
            )
    if isinstance(cache, FigureCache):
        cache.close()
    metrics = pd.DataFrame(metric_rows)
    keep = ["run_number", "histogram", "algorithm", "score", "p_value", "p_graded", "n_reference", "reference_outlier"]
    return ChunkAssessment(
        metrics=metrics,
        false_alarm=pd.concat(far_frames, ignore_index=True) if far_frames else pd.DataFrame(),
        confusion=pd.DataFrame(confusion_rows),
        top_runs=pd.concat(top_frames, ignore_index=True) if top_frames else pd.DataFrame(),
        pvalues=pvalues[keep + [c for c in ("label", "split", "year", "entries") if c in pvalues.columns]],
        figures=pd.DataFrame(figure_rows, columns=["histogram", "algorithm", "kind", "file", "runs"]),
        figure_plan=cache.calls if isinstance(cache, FigurePlan) else [],
    )


@dataclass(frozen=True)
class FigureCall:
    """One figure to draw: ``dqmflow.plots.<function>(*args, plots_dir / file, **kwargs)``, or a
    chart to write: ``dqmflow.charts.<function>(*args, **kwargs)`` as ``plots_dir / file``."""

    function: str
    file: str  # relative to the plots folder
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class FigurePlan:
    """Takes :class:`FigureCache`'s place when another job draws the figures: records each
    figure asked for (``path`` relative to the plots folder) instead of drawing it."""

    def __init__(self) -> None:
        self.calls: list[FigureCall] = []

    def draw(self, function: str, path: Path, *args: Any, **kwargs: Any) -> None:
        self.calls.append(FigureCall(function, str(path), tuple(args), dict(kwargs)))


def write_figure_plan(plan: Sequence[FigureCall], path: str | Path) -> None:
    """Save a chunk's figure plan for :func:`draw_figures` in another process (a pickle: the
    plotting functions' own arguments, data frames and ROC results included; read back only by
    the same installation of dqmflow)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(pickle.dumps(list(plan), protocol=5))


def draw_figures(
    plan: Sequence[FigureCall] | str | Path, plots_dir: str | Path, figure_cache: str | Path | None = None
) -> tuple[int, int]:
    """Draw the figures of ``plan`` (or of the plan file at that path) into ``plots_dir``, copying
    those whose inputs are unchanged from ``figure_cache`` (:class:`FigureCache`), and write its
    charts; returns (PNG figures drawn, PNG figures copied from the cache)."""
    calls: list[FigureCall] = pickle.loads(Path(plan).read_bytes()) if isinstance(plan, (str, Path)) else list(plan)
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    if not calls:
        return 0, 0
    cache = FigureCache(figure_cache)
    for call in calls:
        cache.draw(call.function, plots_dir / call.file, *call.args, **call.kwargs)
    cache.close()
    return cache.drawn, cache.hits


class FigureCache:
    """Figures kept between runs of a job, by a hash of everything drawn (data, titles, the
    plotting code): a figure whose inputs did not change (e.g. the most anomalous runs of a
    histogram after a few runs were added) is copied instead of drawn again. ``None`` folder:
    no cache. Entries not used by a run are removed at :meth:`close`. Charts (Vega-Lite
    specifications, :mod:`dqmflow.charts`) cost milliseconds: they are always written, and
    matplotlib is imported only when a PNG figure is drawn."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.used: set[str] = set()
        self.hits = 0
        self.drawn = 0
        self.charts = 0
        self._code = ""
        if self.folder is not None:  # the plotting code is part of every key (read, not imported)
            self.folder.mkdir(parents=True, exist_ok=True)
            code = hashlib.sha256()
            for module in ("dqmflow.plots", "dqmflow.charts"):  # plots uses the charts' helpers
                spec = importlib.util.find_spec(module)
                assert spec is not None and spec.origin is not None
                code.update(Path(spec.origin).read_bytes())
            self._code = code.hexdigest()

    def draw(self, function: str, path: Path, *args: Any, **kwargs: Any) -> None:
        """``dqmflow.plots.<function>(*args, path, **kwargs)`` unless the same figure is in the cache;
        ``dqmflow.charts.<function>(*args, **kwargs)`` written to ``path`` for a chart."""
        if function in CHARTS:
            write_chart(CHARTS[function](*args, **kwargs), path)
            self.charts += 1
            return
        from dqmflow import plots

        if self.folder is None:
            getattr(plots, function)(*args, path, **kwargs)
            self.drawn += 1
            return
        blob = pickle.dumps((function, args, sorted(kwargs.items()), self._code), protocol=5)
        key = hashlib.sha256(blob).hexdigest()[:32]
        cached = self.folder / f"{key}.png"
        self.used.add(cached.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if cached.exists():
            shutil.copyfile(cached, path)
            self.hits += 1
            return
        getattr(plots, function)(*args, path, **kwargs)
        self.drawn += 1
        tmp = cached.with_suffix(".tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, cached)

    def close(self) -> None:
        """Remove the cache entries this run did not use, and log what it drew, copied and wrote."""
        log.info("figures: %d drawn, %d unchanged (copied from the cache); %d charts written", self.drawn,
                 self.hits, self.charts)  # fmt: skip
        if self.folder is None:
            return
        for stale in self.folder.glob("*.png"):
            if stale.name not in self.used:
                stale.unlink()


def _histogram_figures(
    histogram: str,
    frame: pd.DataFrame,
    rocs: Mapping[str, RocResult],
    matrices: Sequence[tuple[str, np.ndarray]],
    recos: Mapping[tuple[str, str], tuple[dict[str, Any], pd.DataFrame]],
    reco_labels: Mapping[str, str],
    settings: Settings,
    plots: Path,
    flagging: set[str],
    cache: FigureCache | FigurePlan,
) -> list[dict[str, Any]]:
    slug = slugify(histogram)
    folder = plots / slug
    rows: list[dict[str, Any]] = []

    def add(kind: str, algorithm: str = "", runs: Sequence[int] = (), suffix: str = ".png") -> Path:
        name = f"{kind}{suffix}" if not algorithm else f"{kind}_{algorithm}{suffix}"
        rows.append(
            {"histogram": histogram, "algorithm": algorithm, "kind": kind, "file": f"{slug}/{name}",
             "runs": " ".join(str(r) for r in runs)}
        )  # fmt: skip
        return folder / name

    title = histogram
    if flagging:
        if any(not np.isnan(r.auc) for r in rocs.values()):
            cache.draw("roc_chart", add("roc", suffix=SUFFIX), rocs, title)
            cache.draw("sic_chart", add("sic", suffix=SUFFIX), rocs, title)
        if matrices:
            cache.draw("confusion_chart", add("confusion", suffix=SUFFIX), matrices, title)
        columns = ["algorithm", "score", "label", "split"]
        cache.draw("score_chart", add("scores", suffix=SUFFIX), frame[columns].reset_index(drop=True), title)
    if {"latent_1", "latent_2"} <= set(frame.columns):
        for algorithm, aframe in frame.groupby("algorithm", sort=True):
            if str(algorithm) in flagging and aframe["latent_1"].notna().any():
                columns = ["run_number", "latent_1", "latent_2", "score", "label", "split"]
                latent = aframe[columns].reset_index(drop=True)
                cache.draw(
                    "latent_chart", add("latent", str(algorithm), suffix=SUFFIX), latent, f"{title}  [{algorithm}]"
                )
    labels = dict(zip(frame["run_number"], frame["label"], strict=False))
    entries = dict(zip(frame["run_number"], frame["entries"], strict=False)) if "entries" in frame.columns else {}
    for algorithm, aframe in frame.groupby("algorithm", sort=True):
        algorithm = str(algorithm)
        if (histogram, algorithm) not in recos:
            continue
        meta, rows_by_run = recos[(histogram, algorithm)]
        if not meta.get("shape"):
            continue
        stored = aframe[aframe["run_number"].isin(rows_by_run.index)]  # the runs with a reconstruction
        candidates = _top_runs(stored, len(stored))["run_number"].astype(int).tolist() if algorithm in flagging else []
        wanted = candidates[: settings.n_example_runs]
        wanted += [int(r) for r in settings.reco_runs if int(r) in rows_by_run.index and int(r) not in wanted]
        if not wanted:
            continue
        shape = tuple(meta["shape"])
        chosen = rows_by_run.loc[wanted]
        originals = np.stack([np.asarray(v, np.float64).reshape(shape) for v in chosen["original"]])
        have = chosen["reconstruction"].notna().all()
        reconstructions = (
            np.stack([np.asarray(v, np.float64).reshape(shape) for v in chosen["reconstruction"]]) if have else None
        )
        cache.draw(
            "plot_reconstructions",
            add("reco", algorithm, wanted),
            originals,
            reconstructions,
            [np.asarray(e) for e in meta["edges"]],
            wanted,
            chosen["score"].tolist(),
            f"{title}  [{algorithm}]",
            reco_label=reco_labels.get(algorithm, "reconstruction"),
            labels=[int(labels.get(r, -1)) for r in wanted],
            xlabel=_axis_title(meta, 0),
            ylabel=_axis_title(meta, 1),
            entries=[float(entries.get(r, np.nan)) for r in wanted] if entries else None,
        )
    return rows


_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "Gamma": "Γ", "delta": "δ", "Delta": "Δ", "epsilon": "ε",
    "varepsilon": "ε", "zeta": "ζ", "eta": "η", "theta": "θ", "Theta": "Θ", "iota": "ι", "kappa": "κ",
    "lambda": "λ", "Lambda": "Λ", "mu": "μ", "nu": "ν", "xi": "ξ", "omicron": "ο", "pi": "π", "Pi": "Π",
    "rho": "ρ", "sigma": "σ", "Sigma": "Σ", "tau": "τ", "upsilon": "υ", "Upsilon": "Υ", "phi": "φ",
    "varphi": "φ", "Phi": "Φ", "chi": "χ", "psi": "ψ", "Psi": "Ψ", "omega": "ω", "Omega": "Ω",
    "pm": "±", "mp": "∓", "times": "×", "circ": "°", "deg": "°", "infty": "∞", "leq": "≤", "geq": "≥",
    "neq": "≠", "approx": "≈", "sim": "~", "rightarrow": "→", "leftarrow": "←", "cdot": "·", "ell": "ℓ",
    "partial": "∂", "sum": "Σ",
}  # fmt: skip
# Longest first: ROOT reads #DeltaR as Δ then R, #etai#eta as η, i, η.
_ROOT_SYMBOL = re.compile(r"#(" + "|".join(sorted(_GREEK, key=len, reverse=True)) + r")")
_ROOT_STYLES = ("it", "bf", "rm", "mathrm", "bar", "hat", "tilde", "vec", "dot", "font", "color", "bold")
_MATH_SPECIAL = re.compile(r"[#&%{}$\\^_~]")


def root_text(title: str) -> str:
    """A ROOT title (TLatex: ``#chi^{2}/ndof``, ``p_{T} [GeV]``, ``#Delta#phi``) as matplotlib
    text: symbols as Unicode letters, ``^{...}``/``_{...}`` (nested too) as upright mathtext
    super- and subscripts, styles (``#it{}``, ``#bf{}``, ...) and unknown commands dropped to
    their text, a literal ``$`` escaped. Figures check it once more before drawing
    (:func:`dqmflow.plots.drawable_text`)."""
    text = _ROOT_SYMBOL.sub(lambda m: _GREEK[m.group(1)], title)
    text = _root_command(text, "sqrt", lambda inner: "√" + (inner if len(inner) == 1 else f"({inner})"))
    for style in _ROOT_STYLES:
        text = _root_command(text, style, lambda inner: inner)
    text = re.sub(r"#(?=[A-Za-z])", "", text)  # an unknown command: its name, as text
    out: list[str] = []
    math: list[str] = []  # adjacent scripts (E_{T}^{miss}) make one math run
    for marker, part in _scripts(text):
        if marker:
            math.append(f"{marker}{{{_math_inner(part)}}}")
            continue
        if math:
            out.append("$" + "".join(math) + "$")
            math = []
        out.append(part.replace("$", r"\$"))
    if math:
        out.append("$" + "".join(math) + "$")
    return "".join(out)


def _scripts(text: str) -> Iterator[tuple[str, str]]:
    """``text`` cut into runs of plain text ``("", run)`` and super- or subscripts ``("^" or
    "_", inside)``, braces matched (an unclosed one stays plain text)."""
    i = start = 0
    while i < len(text):
        if text[i] in "_^" and text[i + 1 : i + 2] == "{" and (end := _closing(text, i + 1)) > 0:
            if start < i:
                yield "", text[start:i]
            yield text[i], text[i + 2 : end]
            i = start = end + 1
        else:
            i += 1
    if start < len(text):
        yield "", text[start:]


def _closing(text: str, start: int) -> int:
    """Index of the brace closing the one at ``start``; -1 if it never closes."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return -1


def _root_command(text: str, name: str, render: Callable[[str], str]) -> str:
    """Every ``#name{...}`` (``#name[...]{...}`` too) replaced by ``render(inner)``, braces matched."""
    pattern = re.compile(rf"#{name}(\[[^\]]*\])?\{{")
    while (m := pattern.search(text)) is not None:
        end = _closing(text, m.end() - 1)
        inner = text[m.end() : end] if end > 0 else text[m.end() :]
        text = text[: m.start()] + render(inner) + (text[end + 1 :] if end > 0 else "")
    return text


def _math_inner(text: str) -> str:
    """The inside of a super- or subscript as mathtext: nested scripts kept, every run of text
    upright (``\\mathrm``), its spaces kept and characters mathtext cannot take left out."""
    return "".join(f"{marker}{{{_math_inner(part)}}}" if marker else _upright(part) for marker, part in _scripts(text))


def _upright(run: str) -> str:
    said = _MATH_SPECIAL.sub("", run).replace(" ", r"\ ")
    return rf"\mathrm{{{said}}}" if said else ""


def _axis_title(meta: Mapping[str, Any], axis: int) -> str:
    """The ROOT axis title stored with the reconstructions ("" when unknown), as matplotlib text
    (:func:`root_text`)."""
    titles = meta.get("axis_titles") or []
    return root_text(str(titles[axis])) if axis < len(titles) else ""


CHUNK_FILES = {
    "metrics": "metrics.csv",
    "false_alarm": "false_alarm.csv",
    "confusion": "confusion.csv",
    "top_runs": "top_runs.csv",
    "figures": "figures.csv",
    "pvalues": "pvalues.parquet",
}


def write_chunk(result: ChunkAssessment, out: Mapping[str, str | Path]) -> None:
    """Write a chunk's tables to the paths ``out[name]`` (names of :data:`CHUNK_FILES`)."""
    for name in CHUNK_FILES:
        path = Path(out[name])
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = getattr(result, name)
        if name == "pvalues":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False, float_format=FLOAT_FORMAT)


def read_chunk(paths: Mapping[str, str | Path]) -> ChunkAssessment:
    """Read back what :func:`write_chunk` wrote."""
    tables = {}
    for name in CHUNK_FILES:
        path = Path(paths[name])
        if name == "pvalues":
            tables[name] = pd.read_parquet(path)
        else:
            tables[name] = pd.read_csv(path, keep_default_na=True) if path.stat().st_size > 1 else pd.DataFrame()
    return ChunkAssessment(**tables)


def read_chunks(tables: Mapping[str, Sequence[str | Path]]) -> list[ChunkAssessment]:
    """Read several chunks: ``tables[name]`` lists every chunk's file of that name, in chunk order."""
    counts = {name: len(tables[name]) for name in CHUNK_FILES}
    if len(set(counts.values())) != 1:
        raise ValueError(f"every chunk needs each of {list(CHUNK_FILES)}; got {counts}")
    n = next(iter(counts.values()))
    return [read_chunk({name: tables[name][i] for name in CHUNK_FILES}) for i in range(n)]


# ----------------------------------------------------------------------------- per dataset


def _latex_escape(text: str) -> str:
    for char, repl in (
        ("\\", r"\textbackslash{}"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("%", r"\%"),
        ("&", r"\&"),
        ("$", r"\$"),
        ("{", r"\{"),
        ("}", r"\}"),
        ("~", r"\textasciitilde{}"),
        ("^", r"\textasciicircum{}"),
    ):
        text = text.replace(char, repl)
    return text


def latex_table(far: pd.DataFrame) -> str:
    """False-alarm rates (± bootstrap std) per histogram, algorithm and detection efficiency, as LaTeX
    (full histogram paths, breakable at ``/``)."""
    if len(far) == 0:
        return "% dqmflow: no false-alarm rates (no labelled good and bad runs)\n"
    effs = sorted(far["efficiency"].unique())
    header = " & ".join(f"FAR @ {e:.0%}".replace("%", r"\%") for e in effs)
    lines = [
        r"\begin{tabular}{p{0.45\linewidth}l" + "c" * len(effs) + "}",
        r"\hline",
        f"Histogram & Algorithm & {header} \\\\",
        r"\hline",
    ]
    for (histogram, algorithm), group in far.groupby(["histogram", "algorithm"], sort=True):
        cells = []
        for eff in effs:
            row = group[group["efficiency"] == eff].iloc[0]
            value, err = row["false_alarm_rate"], row["false_alarm_rate_std"]
            cells.append("--" if np.isnan(value) else f"${value:.3f} \\pm {err:.3f}$")
        path = _latex_escape(str(histogram)).replace("/", r"/\allowbreak{}")
        lines.append(f"{path} & {_latex_escape(str(algorithm))} & {' & '.join(cells)} \\\\")
    lines += [r"\hline", r"\end{tabular}"]
    return "% dqmflow: false-alarm rate at fixed detection efficiency (± bootstrap std)\n" + "\n".join(lines) + "\n"


def _far_html(far: pd.DataFrame) -> str:
    if len(far) == 0:
        return "<p>No false-alarm rates: no labelled good and bad runs.</p>\n"
    table = far.assign(
        cell=[
            "–" if np.isnan(v) else f"{v:.3f} ± {e:.3f}"
            for v, e in zip(far["false_alarm_rate"], far["false_alarm_rate_std"], strict=True)
        ],
        efficiency=[f"FAR @ {e:.0%}" for e in far["efficiency"]],
    ).pivot_table(index=["histogram", "algorithm"], columns="efficiency", values="cell", aggfunc="first")
    return str(table.rename_axis(columns=None).reset_index().to_html(index=False, escape=True))


def _run_level_rocs(run_scores: pd.DataFrame, table: pd.DataFrame, columns: Sequence[str], settings: Settings) -> dict:
    evaluation = evaluated_run_scores(run_scores, table)
    return {
        c: bootstrap_roc(evaluation[c].to_numpy(np.float64), evaluation["label"].to_numpy(), settings.n_bootstrap)
        for c in columns
    }


SUMMARY_FIGURES = {"run_level": "run_level.png", "flags": "flags.png", "pvalues": "pvalues.png"}


def assess_dataset(
    chunks: Sequence[ChunkAssessment],
    out: Mapping[str, str | Path],
    settings: Settings = Settings(),
    *,
    figures: Mapping[str, str | Path] | None = None,
) -> Verdicts:
    """Run verdicts and summary over every chunk of histograms of one dataset.

    ``out`` maps the names of :data:`OUTPUTS` (``verdicts, run_scores, run_level, metrics, auc,
    false_alarm, false_alarm_tex, false_alarm_html, confusion, top_runs, summary_html,
    problems``: one line per problem of the verdicts, empty without) to paths;
    ``figures`` maps those of :data:`SUMMARY_FIGURES` to paths (none drawn without it).
    """
    pvalues = pd.concat([c.pvalues for c in chunks], ignore_index=True)
    if len(pvalues) == 0:
        raise VerdictError("no scores to assess: the score table is empty")
    verdicts = run_verdicts(
        pvalues,
        pvalues=pvalues,
        combiner=settings.combiner,
        reference=settings.reference,
        false_alarm_rate=settings.false_alarm_rate,
        alpha=settings.alpha,
        n_driving=settings.n_driving,
    )
    table = verdicts.table
    for path in out.values():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out["verdicts"], index=False, float_format=FLOAT_FORMAT)
    verdicts.run_scores.to_csv(out["run_scores"], index=False, float_format=FLOAT_FORMAT)
    score_columns = [c for c in verdicts.run_scores.columns if c not in ("run_number", "reference")]
    run_level = combiner_figures(verdicts.run_scores, table, score_columns, settings.false_alarm_rate)
    run_level.to_csv(out["run_level"], index=False, float_format=FLOAT_FORMAT)
    metrics = pd.concat([c.metrics for c in chunks], ignore_index=True)
    metrics.to_csv(out["metrics"], index=False, float_format=FLOAT_FORMAT)
    if len(metrics):
        auc = metrics.pivot(index="histogram", columns="algorithm", values="auc")
        auc.to_csv(out["auc"], float_format=FLOAT_FORMAT)
    else:
        Path(out["auc"]).write_text("histogram\n")
    far = pd.concat([c.false_alarm for c in chunks], ignore_index=True)
    far.to_csv(out["false_alarm"], index=False, float_format=FLOAT_FORMAT)
    Path(out["false_alarm_tex"]).write_text(latex_table(far))
    Path(out["false_alarm_html"]).write_text(_far_html(far))
    confusion = pd.concat([c.confusion for c in chunks], ignore_index=True)
    confusion.to_csv(out["confusion"], index=False, float_format=FLOAT_FORMAT)
    top_runs = pd.concat([c.top_runs for c in chunks], ignore_index=True)
    top_runs.to_csv(out["top_runs"], index=False, float_format=FLOAT_FORMAT)
    Path(out["summary_html"]).write_text(_summary_html(verdicts, run_level, metrics, far))
    Path(out["problems"]).write_text("".join(f"{problem}\n" for problem in verdicts.problems))
    if figures is not None:
        _summary_figures(verdicts, score_columns, settings, {k: Path(v) for k, v in figures.items()})
    return verdicts


def _html_table(frame: pd.DataFrame) -> str:
    formatters = {c: (lambda v: f"{v:.3g}") for c in frame.columns if pd.api.types.is_float_dtype(frame[c])}
    return str(frame.to_html(index=False, escape=True, na_rep="–", formatters=formatters, border=0))


def _summary_html(verdicts: Verdicts, run_level: pd.DataFrame, metrics: pd.DataFrame, far: pd.DataFrame) -> str:
    """The tables of the assessment as one HTML page (the Snakemake report shows HTML inline)."""
    table = verdicts.table
    flagged = table[table["flagged"]][["rank", "run_number", "score", "p_value", "label", "split", "histograms"]]
    apart = table[table["listing"] != "ranked"][["run_number", "listing", "label"]]
    auc = metrics.pivot(index="histogram", columns="algorithm", values="auc").reset_index() if len(metrics) else metrics
    parts = [
        "<html><head><meta charset='utf-8'><style>body{font-family:sans-serif;font-size:13px}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}"
        "</style></head><body>",
        f"<h2>Flagged runs ({len(flagged)} of {len(table)})</h2>",
        f"<p>Combiner {verdicts.combiner}; reference: {verdicts.n_reference_runs} {verdicts.reference} runs; "
        f"false-alarm rate {verdicts.false_alarm_rate:g}. All runs: verdicts.csv.</p>",
        _html_table(flagged),
        "<h2>Runs listed apart (low statistics, unreadable)</h2>",
        _html_table(apart),
        "<h2>Run-level AUC (labelled runs no model trained on)</h2>",
        _html_table(run_level),
        "<h2>AUC per histogram and algorithm</h2>",
        _html_table(auc),
        "<h2>False-alarm rate at fixed detection efficiency</h2>",
        _far_html(far),
    ]
    if verdicts.problems:
        parts += ["<h2>Problems</h2><ul>", *(f"<li>{html.escape(p)}</li>" for p in verdicts.problems), "</ul>"]
    return "\n".join([*parts, "</body></html>\n"])


def _summary_figures(
    verdicts: Verdicts, score_columns: Sequence[str], settings: Settings, paths: Mapping[str, Path]
) -> None:
    from dqmflow import plots as draw

    table = verdicts.table
    combiners = [c for c in score_columns if "[" not in c]
    per_algorithm = [c for c in score_columns if "[" in c]
    draw.plot_run_level(
        {
            **{
                f"all algorithms, {c}": r
                for c, r in _run_level_rocs(verdicts.run_scores, table, combiners, settings).items()
            },
            **_run_level_rocs(verdicts.run_scores, table, per_algorithm, settings),
        },
        "run verdicts: ROC per combiner (all algorithms) and per algorithm",
        paths["run_level"],
    )
    used = table[(table["listing"] == "ranked") & (table.get("split", "test") != "train")]
    title = "histograms flagged per run (runs no model was trained on)"
    draw.plot_flags(used[["run_number", "label", "n_flags"]], title, paths["flags"])
    pv = verdicts.pvalues
    good_out_of_sample = pv[(pv.get("label", -1) == 0) & (pv.get("split", "test") == "test")].dropna(subset="p_value")
    draw.plot_pvalue_calibration(
        good_out_of_sample["p_value"].to_numpy(),
        "p-values of every test of the good test runs (flat if calibrated)",
        paths["pvalues"],
        n_runs=int(good_out_of_sample["run_number"].nunique()),
    )


# ----------------------------------------------------------------------------- command line


def _probability(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1), not {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dqmflow",
        description="Assess anomaly scores of DQM histograms: calibrated run verdicts, figures of merit, "
        "figures and a web page. Works on any long score table (run_number, histogram, algorithm, score"
        "[, label, split, year]) or wide table (a run column and one column per histogram).",
    )
    parser.add_argument("scores", nargs="+", type=Path, help="score tables (.parquet or .csv)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--algorithm", help="algorithm name for wide tables (default: the file name)")
    parser.add_argument("--combiner", choices=COMBINERS, default=DEFAULT_COMBINER)
    parser.add_argument(
        "--reference",
        choices=REFERENCES,
        default="auto",
        help="reference runs of the p-values: the calibration split, good runs (leave-one-out), or every "
        "run not labelled bad (default auto: calibration if present, else good runs)",
    )
    parser.add_argument(
        "--false-alarm-rate", type=_probability, default=0.05, help="flag runs at this rate of good runs, in (0, 1)"
    )
    parser.add_argument("--alpha", type=_probability, default=0.01, help="p-value of a flagged histogram, in (0, 1)")
    parser.add_argument("--n-bootstrap", type=int, default=200)
    parser.add_argument("--plots", choices=("matter", "all", "none"), default="matter")
    parser.add_argument("--no-site", action="store_true", help="do not write the web page")
    parser.add_argument("--runs", type=int, nargs="*", default=[], help="runs to always show")
    return parser


OUTPUTS = {
    "verdicts": "verdicts.csv",
    "run_scores": "run_scores.csv",
    "run_level": "run_level_auc.csv",
    "metrics": "metrics.csv",
    "auc": "auc_by_histogram.csv",
    "false_alarm": "false_alarm.csv",
    "false_alarm_tex": "false_alarm.tex",
    "false_alarm_html": "false_alarm.html",
    "confusion": "confusion.csv",
    "top_runs": "top_runs.csv",
    "summary_html": "summary.html",
    "problems": "problems.txt",
}


def main(argv: Sequence[str] | None = None) -> int:
    """``dqmflow SCORES... --out DIR`` (see :func:`_parser`); returns the exit status."""
    args = _parser().parse_args(argv)
    settings = Settings(
        n_bootstrap=args.n_bootstrap,
        alpha=args.alpha,
        false_alarm_rate=args.false_alarm_rate,
        combiner=args.combiner,
        reference=args.reference,
        plots=args.plots,
        reco_runs=tuple(args.runs),
    )
    out: Path = args.out
    try:
        scores = read_score_files(args.scores, args.algorithm)
        unknown = sorted(set(args.runs) - set(scores["run_number"]))
        if unknown:
            print(f"dqmflow: warning: --runs {unknown} are not in the score tables: not shown", file=sys.stderr)
        chunk = assess_histograms(scores, out / "plots", settings)
        figures = {k: out / "plots" / v for k, v in SUMMARY_FIGURES.items()} if args.plots != "none" else None
        verdicts = assess_dataset([chunk], {k: out / v for k, v in OUTPUTS.items()}, settings, figures=figures)
    except (ScoreTableError, VerdictError, FileNotFoundError) as err:
        print(f"dqmflow: error: {err}", file=sys.stderr)
        return 2
    report_verdicts(verdicts, pd.read_csv(out / OUTPUTS["run_level"]), print)
    if not args.no_site:
        try:
            index = write_site(
                out / "site",
                verdicts.table,
                [chunk],
                [out / "plots"],
                title="dqmflow: " + ", ".join(p.name for p in args.scores),
                summary_figures=figures or {},
                tables={name: out / OUTPUTS[name] for name in ("verdicts", "metrics", "false_alarm_tex", "top_runs")},
                problems=verdicts.problems,
            )
        except FileNotFoundError as err:  # a figure, a table or the page's JavaScript
            print(f"dqmflow: error: {err}", file=sys.stderr)
            return 2
        print(f"web page: {index}")
    if verdicts.table["score"].isna().all():
        print("dqmflow: error: no run got a verdict (no usable p-value)", file=sys.stderr)
        return 1
    return 0


def report_verdicts(verdicts: Verdicts, run_level: pd.DataFrame, say: Any) -> None:
    """The terminal summary: flagged runs, the reference, run-level AUCs, problems."""
    table = verdicts.table
    ranked = table[table["listing"] == "ranked"]
    say(
        f"{len(table)} runs: {int(table['flagged'].sum())} flagged at a false-alarm rate of "
        f"{verdicts.false_alarm_rate:g} ({verdicts.combiner} combination; reference: {verdicts.n_reference_runs} "
        f"{verdicts.reference} runs); {int((table['listing'] == 'low_stats').sum())} low-statistics and "
        f"{int((table['listing'] == 'unreadable').sum())} unreadable runs listed apart"
    )
    for _, row in ranked[ranked["flagged"]].head(10).iterrows():
        say(f"  run {row['run_number']}: p = {row['p_value']:.2g}, driven by {row['histograms'] or '-'}")
    rated = run_level.dropna(subset=["auc"])
    if len(rated):
        caught = [c for c in rated.columns if c.startswith("caught_at_far")]
        for _, row in rated.iterrows():
            extra = f", bad runs caught at FAR {verdicts.false_alarm_rate:g}: {row[caught[0]]:.2f}" if caught else ""
            say(f"  run-level AUC {row['run_score']}: {row['auc']:.3f}{extra}")
    for problem in verdicts.problems:
        say(f"WARNING: {problem}")


_FIGURE_TITLES = {
    "roc": "ROC",
    "sic": "significance improvement",
    "confusion": "confusion matrices",
    "scores": "score distributions",
    "reco": "most anomalous runs",
    "latent": "latent space",
    "run_level": "run verdicts: ROC",
    "flags": "histograms flagged per run",
    "pvalues": "p-value calibration",
}


def write_site(
    site_dir: str | Path,
    verdicts: pd.DataFrame,
    chunks: Sequence[ChunkAssessment],
    plots_dirs: Sequence[str | Path],
    *,
    title: str,
    summary_figures: Mapping[str, str | Path] = {},
    tables: Mapping[str, str | Path] = {},
    problems: Sequence[str] = (),
    run_problems: Mapping[int, str] = {},
) -> Path:
    """The web page (``site_dir/index.html``) from verdicts and the chunks' tables and figures
    (``plots_dirs[i]`` holds the figures of ``chunks[i]``); ``problems`` (of the verdicts) are
    shown at the top of the front page, ``run_problems`` (why a run's file could not be read) on
    the run's page."""
    from dqmflow.site import Figure, build_site

    histogram_figures: dict[str, list[Figure]] = {}
    run_figures: dict[int, list[Figure]] = {}
    for chunk, folder in zip(chunks, plots_dirs, strict=True):
        for row in chunk.figures.itertuples(index=False):
            algorithm = "" if pd.isna(row.algorithm) else str(row.algorithm)
            name = _FIGURE_TITLES.get(str(row.kind), str(row.kind)) + (f" [{algorithm}]" if algorithm else "")
            figure = Figure(Path(folder) / str(row.file), name, str(row.histogram))
            histogram_figures.setdefault(str(row.histogram), []).append(figure)
            runs = "" if pd.isna(row.runs) else str(row.runs)
            for run in runs.split():
                run_figures.setdefault(int(run), []).append(figure)
    summary = [Figure(Path(p), _FIGURE_TITLES.get(k, k)) for k, p in summary_figures.items() if Path(p).exists()]
    return build_site(
        site_dir,
        title=title,
        verdicts=verdicts,
        pvalues=lift_infinite(pd.concat([c.pvalues for c in chunks], ignore_index=True)).assign(
            p_value=lambda f: f["p_graded"]
        ),
        metrics=pd.concat([c.metrics for c in chunks], ignore_index=True),
        top_runs=pd.concat([c.top_runs for c in chunks], ignore_index=True),
        summary_figures=summary,
        histogram_figures=histogram_figures,
        run_figures=run_figures,
        tables={k: Path(v) for k, v in tables.items()},
        problems=problems,
        run_problems=run_problems,
    )


if __name__ == "__main__":
    raise SystemExit(main())
