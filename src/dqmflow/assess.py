"""Assessment of one algorithm config over all histograms, and the per-dataset summary.

Evaluation runs are those of the ``test`` split labelled good (0) or bad (1): bad runs are never
trained on, and good training runs would bias the false-alarm rate low. Low-statistics runs
(below ``min_entries``) and runs where the histogram is missing are left out of the metrics
and counted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from dqmflow.metrics import EFFICIENCIES, bootstrap_roc, false_alarm_rates, run_level_scores
from dqmflow.names import HistogramName
from dqmflow.plots import plot_reconstructions, plot_roc, plot_run_level, plot_score_distributions
from dqmflow.scores import check_score_table

__all__ = ["assess_algorithm", "latex_table", "read_reconstructions", "summarise"]


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
    ):
        text = text.replace(char, repl)
    return text


def latex_table(far: pd.DataFrame, algorithm: str) -> str:
    """False-alarm rates (± bootstrap std) per histogram and detection efficiency, as LaTeX."""
    effs = sorted(far["efficiency"].unique())
    header = " & ".join(f"FAR @ {e:.0%}".replace("%", r"\%") for e in effs)
    lines = [
        r"\begin{tabular}{l" + "c" * len(effs) + "}",
        r"\hline",
        f"Histogram & {header} \\\\",
        r"\hline",
    ]
    for histogram, group in far.groupby("histogram", sort=True):
        cells = []
        for eff in effs:
            row = group[group["efficiency"] == eff].iloc[0]
            value, err = row["false_alarm_rate"], row["false_alarm_rate_std"]
            cells.append("--" if np.isnan(value) else f"${value:.3f} \\pm {err:.3f}$")
        lines.append(f"{_latex_escape(HistogramName.from_column(histogram).short)} & {' & '.join(cells)} \\\\")
    lines += [r"\hline", r"\end{tabular}"]
    caption = f"% dqmflow: false-alarm rate at fixed detection efficiency, algorithm {algorithm}"
    return caption + "\n" + "\n".join(lines) + "\n"


def read_reconstructions(path: str | Path) -> tuple[str, dict[str, Any], pd.DataFrame]:
    """A score job's reconstruction file: (histogram, {shape, edges}, rows by run)."""
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {})[b"dqmflow"])
    return str(meta["histogram"]), meta, table.to_pandas().set_index("run_number")


def assess_algorithm(
    scores: pd.DataFrame,
    algorithm: str,
    out_dir: str | Path,
    plots_dir: str | Path,
    *,
    reco_files: Sequence[str | Path] = (),
    n_bootstrap: int = 200,
    efficiencies: Sequence[float] = EFFICIENCIES,
    n_example_runs: int = 4,
    alpha: float = 0.01,
    seed: int = 0,
    reco_label: str = "reconstruction",
) -> pd.DataFrame:
    """Metrics, tables and figures of one algorithm config; returns the per-histogram metrics.

    ``scores`` is the long score table (:mod:`dqmflow.scores`), from dqmflow or any other tool;
    only the rows of ``algorithm`` are used. ``reco_files`` are the score jobs' reconstruction
    files: with them, the most anomalous runs are drawn against their reconstruction (a
    statistical test's "reconstruction" is its reference, named by ``reco_label``).
    """
    out, plots = Path(out_dir), Path(plots_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots.mkdir(parents=True, exist_ok=True)
    scores = check_score_table(scores[scores["algorithm"] == algorithm].reset_index(drop=True))
    if "label" not in scores.columns:
        scores = scores.assign(label=-1)
    if "split" not in scores.columns:
        scores = scores.assign(split="test")
    recos: dict[str, tuple[dict[str, Any], pd.DataFrame]] = {}
    for path in reco_files:
        histogram, meta, rows = read_reconstructions(path)
        recos[histogram] = (meta, rows)
    metric_rows, far_frames, top_frames = [], [], []
    for histogram, frame in scores.groupby("histogram", sort=True):
        histogram = str(histogram)
        name = HistogramName.from_column(histogram)
        evaluation = frame[(frame["split"] == "test") & frame["label"].isin((0, 1))]
        roc = bootstrap_roc(evaluation["score"].to_numpy(), evaluation["label"].to_numpy(), n_bootstrap, seed)
        far = false_alarm_rates(
            evaluation["score"].to_numpy(), evaluation["label"].to_numpy(), efficiencies, n_bootstrap, seed
        )
        far.insert(0, "histogram", histogram)
        far.insert(1, "algorithm", algorithm)
        far_frames.append(far)
        scored = frame[frame["split"] != "missing"]
        good = scored[scored["label"] == 0]["score"]
        bad = scored[scored["label"] == 1]["score"]
        wp = roc.best_working_point if not np.isnan(roc.auc) else (np.nan, np.nan)
        row = {
            "histogram": histogram,
            "algorithm": algorithm,
            "auc": roc.auc,
            "auc_std": roc.auc_std,
            "n_good": roc.n_good,
            "n_bad": roc.n_bad,
            "n_low_stats": int((frame["split"] == "low_stats").sum()),
            "n_missing": int((frame["split"] == "missing").sum()),
            "score_mean": scored["score"].replace(np.inf, np.nan).mean(),
            "score_std": scored["score"].replace(np.inf, np.nan).std(),
            "score_mean_good": good.replace(np.inf, np.nan).mean(),
            "score_mean_bad": bad.replace(np.inf, np.nan).mean(),
            "best_wp_fpr": wp[0],
            "best_wp_tpr": wp[1],
        }
        for _, f in far.iterrows():
            row[f"far_at_{round(f['efficiency'] * 100)}"] = f["false_alarm_rate"]
        metric_rows.append(row)

        candidates = scored[scored["split"] != "train"].sort_values("score", ascending=False, kind="stable")
        top = candidates.head(5)[["run_number", "label", "split", "score"]].copy()
        top.insert(0, "histogram", histogram)
        top.insert(1, "rank", np.arange(1, len(top) + 1))
        top_frames.append(top)

        title = f"{name.column}  [{algorithm}]"
        slug = name.slug
        plot_roc(roc, title, plots / "roc" / f"{slug}.png", label=algorithm)
        plot_score_distributions(scored, title, plots / "scores" / f"{slug}.png")
        if histogram in recos:
            meta, rows = recos[histogram]
            _plot_examples(rows, meta, candidates, n_example_runs, title, reco_label, plots / "reco" / f"{slug}.png")

    metrics = pd.DataFrame(metric_rows)
    metrics.to_csv(out / "metrics.csv", index=False)
    far_all = pd.concat(far_frames, ignore_index=True) if far_frames else pd.DataFrame()
    far_all.to_csv(out / "false_alarm.csv", index=False)
    (out / "false_alarm.tex").write_text(latex_table(far_all, algorithm) if len(far_all) else "% no data\n")
    (pd.concat(top_frames, ignore_index=True) if top_frames else pd.DataFrame()).to_csv(
        out / "top_runs.csv", index=False
    )

    if "year" not in scores.columns:
        scores = scores.assign(year=-1)
    ranking = run_level_scores(scores, alpha=alpha)
    ranking.insert(0, "algorithm", algorithm)
    ranking.insert(1, "rank", np.arange(1, len(ranking) + 1))
    ranking.to_csv(out / "run_ranking.csv", index=False)
    run_level = _run_level_metrics(ranking, n_bootstrap, seed)
    plot_run_level(run_level, f"run level [{algorithm}]", plots / "run_level.png")
    rows = [
        {
            "algorithm": algorithm,
            "combination": k,
            "auc": v.auc,
            "auc_std": v.auc_std,
            "n_good": v.n_good,
            "n_bad": v.n_bad,
        }
        for k, v in run_level.items()
    ]
    pd.DataFrame(rows).to_csv(out / "run_level.csv", index=False)
    return metrics


def _plot_examples(
    reco: pd.DataFrame,
    meta: dict[str, Any],
    candidates: pd.DataFrame,
    n_example_runs: int,
    title: str,
    reco_label: str,
    path: Path,
) -> None:
    """The most anomalous runs that have a stored reconstruction, against it."""
    shape = tuple(meta["shape"])
    runs = [int(r) for r in candidates["run_number"] if int(r) in reco.index][:n_example_runs]
    rows = reco.loc[runs] if runs else reco.iloc[:0]
    originals = np.stack([np.asarray(v, np.float64).reshape(shape) for v in rows["original"]]) if runs else None
    have_reco = bool(runs) and rows["reconstruction"].notna().all()
    recos = np.stack([np.asarray(v, np.float64).reshape(shape) for v in rows["reconstruction"]]) if have_reco else None
    plot_reconstructions(
        originals if originals is not None else np.zeros((0, *shape)),
        recos,
        [np.asarray(e) for e in meta["edges"]],
        runs,
        rows["score"].tolist(),
        f"most anomalous runs: {title}",
        path,
        reco_label,
    )


def _run_level_metrics(ranking: pd.DataFrame, n_bootstrap: int, seed: int) -> dict:
    usable = (
        ~ranking["is_train"].astype(bool) & ~ranking["low_stats"].astype(bool) & ~ranking["unreadable"].astype(bool)
    )
    evaluation = ranking[usable & ranking["label"].isin((0, 1))]
    labels = evaluation["label"].to_numpy()
    out = {
        "fisher": bootstrap_roc(evaluation["fisher"].to_numpy(), labels, n_bootstrap, seed),
        "min p": bootstrap_roc(evaluation["neg_log10_min_p"].to_numpy(), labels, n_bootstrap, seed),
        "n flagged": bootstrap_roc(evaluation["n_flagged"].to_numpy(dtype=float), labels, n_bootstrap, seed),
    }
    return out


def summarise(
    metric_files: Mapping[str, str | Path],
    run_level_files: Mapping[str, str | Path],
    ranking_files: Mapping[str, str | Path],
    out_dir: str | Path,
) -> pd.DataFrame:
    """Tables across algorithms: AUC per histogram and algorithm, run-level AUCs, run ranking."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = pd.concat([pd.read_csv(p) for p in metric_files.values()], ignore_index=True)
    auc = metrics.pivot(index="histogram", columns="algorithm", values="auc")
    auc.to_csv(out / "auc_by_histogram.csv")
    run_level = pd.concat([pd.read_csv(p) for p in run_level_files.values()], ignore_index=True)
    run_level.to_csv(out / "run_level_auc.csv", index=False)
    ranking = pd.concat([pd.read_csv(p) for p in ranking_files.values()], ignore_index=True)
    ranking.to_csv(out / "run_ranking.csv", index=False)
    return metrics
