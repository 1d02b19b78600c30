"""Figures of merit: ROC/AUC with bootstrap bands, false-alarm rates, run-level verdicts.

* ROC and AUC on runs labelled good (0) and bad (1); scores of +-inf are clipped to just beyond
  the finite range, NaN scores are left out. Uncertainties come from bootstrap resampling of the
  runs (B. Efron, *Ann. Statist.* 7 (1979) 1): the band is the mean +- 1 standard deviation of the
  TPR on a fixed FPR grid, the AUC error the standard deviation of the resampled AUCs. This
  ignores training variance (retrain with several seeds for that).
* False-alarm rate at a detection efficiency e: the threshold is the score that keeps at least a
  fraction e of the bad runs; the false-alarm rate is the fraction of good runs at or above it.
* Run level: every histogram score is turned into an empirical p-value against the training
  (good) runs of that histogram, p = (1 + #{train >= s}) / (1 + n_train), and the p-values of a
  run are combined by Fisher's method, -2 sum ln p (R. A. Fisher, 1932), by the smallest p, and
  by counting histograms with p below ``alpha`` (AutoDQM_ML's "N histograms flagged"). A
  histogram missing from a run counts as maximally anomalous.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "EFFICIENCIES",
    "RocResult",
    "bootstrap_roc",
    "clip_infinite",
    "empirical_pvalues",
    "false_alarm_rates",
    "roc_auc",
    "run_level_scores",
]

EFFICIENCIES = (0.5, 0.9, 0.95, 0.99)
FPR_GRID = np.linspace(0.0, 1.0, 201)


def clip_infinite(scores: np.ndarray) -> np.ndarray:
    """Replace +-inf by values just beyond the finite range (NaN stays NaN)."""
    scores = np.asarray(scores, dtype=np.float64).copy()
    finite = scores[np.isfinite(scores)]
    lo, hi = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
    margin = max(hi - lo, abs(hi), 1.0) * 0.01
    scores[scores == np.inf] = hi + margin
    scores[scores == -np.inf] = lo - margin
    return scores


def _usable(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = clip_infinite(scores)
    labels = np.asarray(labels)
    keep = np.isfinite(scores) & np.isin(labels, (0, 1))
    return scores[keep], labels[keep].astype(int)


def _roc_sorted(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last_of_tie]
    fps = last_of_tie + 1 - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """ROC curve (FPR, TPR) and AUC; tied scores form one step (trapezoid rule, as scikit-learn)."""
    s, y = _usable(scores, labels)
    if len(np.unique(y)) < 2:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0]), float("nan")
    return _roc_sorted(s, y)


@dataclass(frozen=True)
class RocResult:
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float
    auc_std: float
    grid: np.ndarray
    tpr_mean: np.ndarray
    tpr_std: np.ndarray
    n_good: int
    n_bad: int

    @property
    def best_working_point(self) -> tuple[float, float]:
        """(FPR, TPR) maximising TPR * (1 - FPR)."""
        i = int(np.argmax(self.tpr * (1 - self.fpr)))
        return float(self.fpr[i]), float(self.tpr[i])


def bootstrap_roc(scores: np.ndarray, labels: np.ndarray, n_bootstrap: int = 200, seed: int = 0) -> RocResult:
    """ROC, AUC and their ±1σ bootstrap band (resampling good and bad runs separately)."""
    s, y = _usable(scores, labels)
    fpr, tpr, auc = roc_auc(s, y)
    n_good, n_bad = int((y == 0).sum()), int((y == 1).sum())
    if np.isnan(auc):
        nan = np.full_like(FPR_GRID, np.nan)
        return RocResult(fpr, tpr, auc, float("nan"), FPR_GRID, nan, nan, n_good, n_bad)
    rng = np.random.default_rng(seed)
    good, bad = s[y == 0], s[y == 1]
    aucs, tprs = [], []
    for _ in range(n_bootstrap):
        g = rng.choice(good, size=n_good, replace=True)
        b = rng.choice(bad, size=n_bad, replace=True)
        bf, bt, ba = roc_auc(np.concatenate([g, b]), np.r_[np.zeros(n_good), np.ones(n_bad)])
        aucs.append(ba)
        tprs.append(np.interp(FPR_GRID, bf, bt))
    tprs_arr = np.asarray(tprs)
    return RocResult(
        fpr, tpr, auc, float(np.std(aucs)), FPR_GRID, tprs_arr.mean(axis=0), tprs_arr.std(axis=0), n_good, n_bad
    )


def _far(good: np.ndarray, bad: np.ndarray, efficiency: float) -> float:
    k = int(np.ceil(efficiency * len(bad)))
    threshold = np.sort(bad)[::-1][max(k - 1, 0)]
    return float((good >= threshold).mean())


def false_alarm_rates(
    scores: np.ndarray,
    labels: np.ndarray,
    efficiencies: Sequence[float] = EFFICIENCIES,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """False-alarm rate (and bootstrap std) at each detection efficiency."""
    s, y = _usable(scores, labels)
    good, bad = s[y == 0], s[y == 1]
    rows = []
    rng = np.random.default_rng(seed)
    for eff in efficiencies:
        if len(good) == 0 or len(bad) == 0:
            rows.append({"efficiency": eff, "false_alarm_rate": np.nan, "false_alarm_rate_std": np.nan})
            continue
        boot = [_far(rng.choice(good, len(good)), rng.choice(bad, len(bad)), eff) for _ in range(n_bootstrap)]
        rows.append(
            {"efficiency": eff, "false_alarm_rate": _far(good, bad, eff), "false_alarm_rate_std": float(np.std(boot))}
        )
    return pd.DataFrame(rows)


def empirical_pvalues(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """p = (1 + #{reference >= s}) / (1 + n_reference) for each score (NaN stays NaN)."""
    ref = np.sort(clip_infinite(reference)[np.isfinite(clip_infinite(reference))])
    scores = np.asarray(scores, dtype=np.float64)
    above = len(ref) - np.searchsorted(ref, scores, side="left")
    p = (1.0 + above) / (1.0 + len(ref))
    p[np.isnan(scores)] = np.nan
    return p


def run_level_scores(scores: pd.DataFrame, alpha: float = 0.01) -> pd.DataFrame:
    """Combine one algorithm's histogram scores into one row per run.

    ``scores`` is the long table (run_number, histogram, score, label, split, ...) of one
    algorithm. Returns per run: label, ``is_train``, ``low_stats``, ``fisher``, ``min_p``,
    ``n_flagged`` (p < ``alpha``) and ``worst_histogram``, most anomalous first (smallest p,
    then largest Fisher combination). A run with no histogram at all (its file could not be read:
    ``unreadable``) has no verdict (NaN) and is listed last: a fetch failure is not an anomaly.
    """
    columns = ["run_number", "label", "year", "is_train", "low_stats", "unreadable", "fisher", "min_p", "n_flagged",
               "worst_histogram", "neg_log10_min_p"]  # fmt: skip
    groups = list(scores.groupby("histogram", sort=True))
    n_ref = max((int((g["split"] == "train").sum()) for _, g in groups), default=0)
    floor = 1.0 / (1.0 + n_ref)  # the smallest p-value any histogram can reach
    parts = []
    for histogram, group in groups:
        ref = group.loc[group["split"] == "train", "score"].to_numpy()
        p = empirical_pvalues(group["score"].to_numpy(), ref) if len(ref) else np.full(len(group), np.nan)
        p = np.where(group["split"].to_numpy() == "missing", floor, p)
        parts.append(pd.DataFrame({"run_number": group["run_number"].to_numpy(), "histogram": histogram, "p": p}))
    if not parts:
        return pd.DataFrame(columns=columns)
    pvals = pd.concat(parts, ignore_index=True)
    wide = pvals.pivot(index="run_number", columns="histogram", values="p")
    logp = np.log(wide.to_numpy(dtype=np.float64))
    per_run = scores.groupby("run_number").agg(
        label=("label", "first"),
        year=("year", "first"),
        is_train=("split", lambda s: bool((s == "train").any())),
        low_stats=("split", lambda s: bool((s == "low_stats").any())),
        unreadable=("split", lambda s: bool((s == "missing").all())),
    )
    out = pd.DataFrame(index=wide.index)
    out["fisher"] = -2.0 * np.nansum(logp, axis=1)
    out["min_p"] = np.nanmin(np.where(np.isnan(logp), np.inf, wide.to_numpy()), axis=1)
    out["n_flagged"] = (wide.to_numpy() < alpha).sum(axis=1)
    filled = np.where(np.isnan(logp), np.inf, logp)
    out["worst_histogram"] = np.asarray(wide.columns)[np.argmin(filled, axis=1)]
    out = per_run.join(out).reset_index()
    out.loc[out["unreadable"], ["fisher", "min_p"]] = np.nan
    out.loc[out["unreadable"], "n_flagged"] = 0
    out.loc[out["unreadable"], "worst_histogram"] = ""
    out["neg_log10_min_p"] = -np.log10(out["min_p"])
    return out.sort_values(["min_p", "fisher"], ascending=[True, False], kind="stable", ignore_index=True)[columns]
