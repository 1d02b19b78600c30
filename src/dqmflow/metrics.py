"""Figures of merit: ROC/AUC with bootstrap bands, false-alarm rates, run-level verdicts.

* ROC and AUC on runs labelled good (0) and bad (1); scores of +-inf are clipped to just beyond
  the finite range, NaN scores are left out. Uncertainties come from bootstrap resampling of the
  runs (B. Efron, *Ann. Statist.* 7 (1979) 1): the band is the mean +- 1 standard deviation of the
  TPR on a fixed FPR grid, the AUC error the standard deviation of the resampled AUCs. This
  ignores training variance (retrain with several seeds for that).
* False-alarm rate at a detection efficiency e: the threshold is the score that keeps at least a
  fraction e of the bad runs; the false-alarm rate is the fraction of good runs at or above it.
* Run verdicts (p-values against reference runs, combined per run) live in
  :mod:`dqmflow.verdicts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

__all__ = [
    "EFFICIENCIES",
    "RocResult",
    "bootstrap_roc",
    "clip_infinite",
    "false_alarm_rates",
    "roc_auc",
    "with_seeds",
]

EFFICIENCIES = (0.5, 0.9, 0.95, 0.99)
#: Fewest good and bad runs for a ROC/AUC to be reported (else NaN).
MIN_RUNS = 2
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


def _roc(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    from sklearn.metrics import auc, roc_curve

    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    return fpr, tpr, thresholds, float(auc(fpr, tpr))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """ROC curve (FPR, TPR) and AUC (``sklearn.metrics.roc_curve``; tied scores form one step)."""
    s, y = _usable(scores, labels)
    if len(np.unique(y)) < 2:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0]), float("nan")
    fpr, tpr, _, area = _roc(s, y)
    return fpr, tpr, area


def _auc_and_curve(s: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """AUC (Mann-Whitney U, equal to the trapezoid ROC area with ties) and TPR on ``FPR_GRID``,
    fast enough for hundreds of bootstrap resamples."""
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last_of_tie]
    fps = last_of_tie + 1 - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return float(np.trapezoid(tpr, fpr)), np.interp(FPR_GRID, fpr, tpr)


def _aucs_and_curves(samples: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_auc_and_curve` of every row of ``samples`` (same ``labels`` for every row), with the
    sorting and counting done for all rows at once: the same numbers, bit for bit."""
    n_rows, n = samples.shape
    order = np.argsort(-samples, axis=1, kind="mergesort")
    s = np.take_along_axis(samples, order, axis=1)
    # A ROC point after the last run of every tie, and (0, 0) in front of each row.
    point = np.ones((n_rows, n + 1), dtype=bool)
    point[:, 1:-1] = np.diff(s, axis=1) != 0
    tps = np.zeros((n_rows, n + 1))
    tps[:, 1:] = np.cumsum(labels[order], axis=1)
    fps = np.arange(n + 1) - tps
    tpr = (tps / tps[:, -1:])[point]
    fpr = (fps / fps[:, -1:])[point]
    ends = np.cumsum(point.sum(axis=1))
    starts = ends - point.sum(axis=1)
    # np.trapezoid's terms; summed per row by the same reduction over the same values
    terms = np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0
    aucs = np.empty(n_rows)
    curves = np.empty((n_rows, len(FPR_GRID)))
    for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        aucs[i] = np.add.reduce(terms[a : b - 1])
        curves[i] = np.interp(FPR_GRID, fpr[a:b], tpr[a:b])
    return aucs, curves


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
    thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Score thresholds of the ROC points (``>= threshold`` is flagged); first one is +inf."""
    seed_aucs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """AUC of each training seed of a seed ensemble (empty otherwise)."""
    seed_tpr: np.ndarray = field(default_factory=lambda: np.zeros((3, 0)))
    """Median, 16th and 84th percentile over seeds of the TPR on ``grid`` (3 x grid; empty otherwise)."""

    @property
    def seed_band(self) -> tuple[float, float, float]:
        """AUC over seeds: (median, 16th, 84th percentile); NaN without seeds."""
        if len(self.seed_aucs) == 0:
            return float("nan"), float("nan"), float("nan")
        lo, median, hi = np.percentile(self.seed_aucs, [16, 50, 84])
        return float(median), float(lo), float(hi)

    @property
    def best_working_point(self) -> tuple[float, float]:
        """(FPR, TPR) maximising TPR * (1 - FPR)."""
        i = int(np.argmax(self.tpr * (1 - self.fpr)))
        return float(self.fpr[i]), float(self.tpr[i])


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Dense ranks of ``scores`` (equal scores, equal ranks), as int16 when they fit: they order
    and tie the runs as the scores do, and NumPy sorts 16-bit integers by radix sort."""
    ranks = np.unique(scores, return_inverse=True)[1].reshape(-1)
    return ranks.astype(np.int16) if len(ranks) and ranks.max() < 2**15 else ranks


def _resamples(good: np.ndarray, bad: np.ndarray, n_bootstrap: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_bootstrap`` bootstrap resamples (rows) of the good and of the bad runs' scores, each
    resampled apart (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 6), drawn
    in two calls: the same ``seed`` gives the ROC band and the false-alarm rates the same
    resamples."""
    rng = np.random.default_rng(seed)
    return (
        good[rng.integers(0, len(good), (n_bootstrap, len(good)))],
        bad[rng.integers(0, len(bad), (n_bootstrap, len(bad)))],
    )


def bootstrap_roc(scores: np.ndarray, labels: np.ndarray, n_bootstrap: int = 200, seed: int = 0) -> RocResult:
    """ROC, AUC and their ±1σ bootstrap band (resampling good and bad runs separately)."""
    s, y = _usable(scores, labels)
    n_good, n_bad = int((y == 0).sum()), int((y == 1).sum())
    if min(n_good, n_bad) < MIN_RUNS:  # one run of a kind gives a curve, but no measurement
        nan = np.full_like(FPR_GRID, np.nan)
        return RocResult(np.array([0.0, 1.0]), np.array([0.0, 1.0]), float("nan"), float("nan"), FPR_GRID, nan, nan,
                         n_good, n_bad)  # fmt: skip
    fpr, tpr, thresholds, auc = _roc(s, y)
    ranks = _ranks(s)  # order and ties are all a ROC depends on; small integers sort 10x faster
    goods, bads = _resamples(ranks[y == 0], ranks[y == 1], n_bootstrap, seed)
    aucs, tprs = _aucs_and_curves(np.concatenate([goods, bads], axis=1), np.r_[np.zeros(n_good), np.ones(n_bad)])
    return RocResult(
        fpr, tpr, auc, float(np.std(aucs)), FPR_GRID, tprs.mean(axis=0), tprs.std(axis=0), n_good, n_bad, thresholds
    )


def with_seeds(result: RocResult, seed_scores: np.ndarray, labels: np.ndarray) -> RocResult:
    """``result`` with the AUC and ROC of every seed of an ensemble (``seed_scores``: runs x seeds),
    summarised as the median and the 68% band over seeds (sk_cathode's convention)."""
    aucs, tprs = [], []
    for k in range(seed_scores.shape[1]):
        s, y = _usable(seed_scores[:, k], labels)
        if min(int((y == 0).sum()), int((y == 1).sum())) < MIN_RUNS:
            continue
        auc, tpr = _auc_and_curve(s, y)
        aucs.append(auc)
        tprs.append(tpr)
    if len(aucs) < 2:
        return result
    band = np.percentile(np.asarray(tprs), [50, 16, 84], axis=0)
    return replace(result, seed_aucs=np.asarray(aucs), seed_tpr=band)


def _far(good: np.ndarray, sorted_bad: np.ndarray, efficiency: float) -> np.ndarray:
    """False-alarm rate of each row of ``good`` at the threshold that keeps a fraction ``efficiency``
    of the same row of ``sorted_bad`` (each row sorted; 1D arrays: one rate)."""
    good, sorted_bad = np.atleast_2d(good), np.atleast_2d(sorted_bad)
    k = int(np.ceil(efficiency * sorted_bad.shape[1]))
    threshold = sorted_bad[:, sorted_bad.shape[1] - 1 - max(k - 1, 0)]
    return np.asarray((good >= threshold[:, None]).mean(axis=1))


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
    if len(good) == 0 or len(bad) == 0:
        return pd.DataFrame(
            {"efficiency": list(efficiencies), "false_alarm_rate": np.nan, "false_alarm_rate_std": np.nan}
        )
    ranks = _ranks(np.r_[good, bad])  # thresholds only compare scores: their ranks do the same
    good, bad = ranks[: len(good)], ranks[len(good) :]
    goods, bads = _resamples(good, bad, n_bootstrap, seed)  # the ROC band's resamples, for every efficiency
    bads.sort(axis=1)
    bad = np.sort(bad)
    rows = [
        {
            "efficiency": eff,
            "false_alarm_rate": float(_far(good, bad, eff)[0]),
            "false_alarm_rate_std": float(np.std(_far(goods, bads, eff))),
        }
        for eff in efficiencies
    ]
    return pd.DataFrame(rows)
