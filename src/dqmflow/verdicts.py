"""Run verdicts: calibrated p-values per (histogram, algorithm), combined per run.

The question a shift leader asks is "which runs are bad, and which histograms say so?". Scores
of different histograms and algorithms live on unrelated scales, so every score is first turned
into an **empirical p-value** against reference runs that no model was trained on, then the
p-values of a run are **combined** into one run score, and that score is calibrated once more
against the reference runs into the run's p-value and flag.

Reference runs
    ``calibration``: the run table's calibration split (good runs kept out of training).
    ``good``: runs labelled good (0) outside the training split, for score tables without a
    calibration split (e.g. another tool's). ``all``: every run not labelled bad, for tables
    without labels (anomalies then dilute the reference). ``auto`` picks the first that exists.

Empirical p-values, leave-one-out
    With ``n`` reference scores, a reference run is compared with the other ``n - 1``
    (leave-one-out): ``p = (1 + #{others >= s}) / n``. Every other run is compared with the
    same ``n - 1`` runs on average over which reference is left out:
    ``p = (1 + c (n - 1) / n) / n`` with ``c = #{reference >= s}``. So every run's reference has
    the same size and the same floor ``1 / n``: the floor alone never separates bad from good runs.

Graded tail
    Scores beyond every reference sit at the floor. Their p-value is extrapolated with an
    exponential tail fitted to the largest 10% of the reference (log scores when all are
    positive, i.e. a Pareto tail), as in T. Knijnenburg et al., *Bioinformatics* 25 (2009) i161,
    so that runs far beyond the reference rank above runs just beyond it. Its scale is at least
    ``(max - median) / ln(n / 2)`` of the reference, the scale an exponential tail gives the body:
    with few reference runs (17 calibration runs fit 3 tail points) the fit alone can be so steep
    that noise just beyond the reference ranks with a huge excess (a DT test of 60 runs: run-level
    AUC 0.906 without the bound, 0.99 with it; the 400-run demo is unchanged). A ``+inf`` score
    (maximally anomalous: an empty histogram) gets a p-value below every other of the whole table, so
    that it also leads a run's drivers ahead of any extrapolated finite score; a histogram
    missing from a run gets the floor (suspicious, but no measurement).

Outliers among the reference runs
    A reference run is presumed good; one that is not (an anomaly nobody listed as bad: with
    only ``bad_runs`` listed every other run is good) would blind the test, since every run
    below it gets a large p-value and the tail scale grows with it. The largest reference scores
    are left out of the reference when the tail of the others puts them beyond the largest
    other score with probability below ``1e-5`` (Dixon's gap test with the exponential tail
    above; at most 10% of the reference, but 2 from 8 reference runs on, the most first so that
    two outliers do not mask each other): they are compared with the rest like any other run,
    and named in the problems. A ``+inf`` reference score (an empty histogram in a run presumed
    good) is an outlier too, unless more are than that share allows (a histogram that good runs
    often leave empty). A histogram missing from a run keeps the floor of the whole reference.
    At run level, outliers are left out only while at least ``1 / false_alarm_rate`` reference
    runs remain, so that a run can still be flagged.
    Measured on clean references (4,000 draws each): log-normal or normal scores lose a score in
    at most 0.35% of the tests with 5-10 reference runs and none from 17 on; Pareto-tailed scores
    (the heaviest the tail model expects) in about 1% with 5-10 runs, 0.1% with 17. A dead muon
    wedge in a run listed good (an L1T test of 62 runs, 14 reference runs) scored 17-330x the
    largest other reference score: gap probabilities 1e-21 to 1e-53; with it in the reference a
    bad run with the same wedge fell from rank 3 (flagged) to 11. The same holds for the
    run-level scores.

Combiners (scores: larger = more anomalous)
    ``cauchy``: the Cauchy combination test, ``T = sum_i w_i tan((1/2 - p_i) pi)``, valid under
    arbitrary dependence between tests (Y. Liu and J. Xie, *JASA* 115 (2020) 393); weights give
    each histogram one unit, shared by its algorithms. p-values above 1/2 are truncated to 1/2:
    otherwise the terms of histograms that agree with the reference (p near 1, tan -> -inf)
    cancel the evidence of the one that does not. It is the default: measured on the demo truth
    (227 runs no model trained on, 55 anomalous; 62 calibration runs; 15 histograms x 6
    algorithm configs), its run-level AUC is 0.973, Fisher 0.976, min-p 0.972, harmonic mean
    0.973, n_flags 0.960, Stouffer 0.962, one algorithm alone 0.929-0.981 (an earlier
    measurement with 5 algorithms: untruncated Cauchy 0.60).
    ``harmonic_mean``: the weighted harmonic mean p-value (D. J. Wilson, *PNAS* 116 (2019) 1195).
    ``fisher`` (R. A. Fisher, 1932) and ``stouffer`` (``scipy.stats.combine_pvalues``) assume
    independent tests. ``min_p``: the smallest p with the Sidak trials correction
    ``1 - (1 - p_min)^m`` (Tippett). ``n_flags``: AutoDQM_ML's number of (histogram, algorithm)
    tests flagged at ``alpha`` (never below the p-value floor, so that the count does not go blind
    with fewer than ``1 / alpha`` reference runs), ties broken by the Cauchy score.

The combined score of every run is turned into the run's p-value against the reference runs'
combined scores (leave-one-out as above) and a run is flagged when that p-value is at most the
chosen false-alarm rate on good runs. Nothing here is fitted on labels: labels only evaluate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from dqmflow.metrics import clip_infinite
from dqmflow.runtable import reference_mask, runs_to_flag

__all__ = [
    "COMBINERS",
    "DEFAULT_COMBINER",
    "REFERENCES",
    "VerdictError",
    "Verdicts",
    "combine",
    "empirical_pvalues",
    "evaluated_run_scores",
    "failed_algorithms",
    "histogram_pvalues",
    "lift_infinite",
    "reference_mode",
    "reference_outliers",
    "run_verdicts",
]

log = logging.getLogger(__name__)

Combiner = Literal["cauchy", "harmonic_mean", "fisher", "stouffer", "min_p", "n_flags"]
Reference = Literal["auto", "calibration", "good", "all"]
COMBINERS: tuple[Combiner, ...] = ("cauchy", "harmonic_mean", "fisher", "stouffer", "min_p", "n_flags")
REFERENCES: tuple[Reference, ...] = ("auto", "calibration", "good", "all")
DEFAULT_COMBINER: Combiner = "cauchy"
_TAIL_FRACTION = 0.1
_TAIL_MIN = 3
#: A reference score whose gap above the others has a smaller tail probability is an outlier.
_OUTLIER_P = 1e-5
#: At most this share of the reference (at least one score) is left out as outliers.
_OUTLIER_FRACTION = 0.1
#: p-values are clipped here before combining (Cauchy terms 1/(p pi) must not overflow when summed).
_P_MIN = 1e-150


class VerdictError(ValueError):
    """The score table cannot give calibrated verdicts (e.g. no good runs to compare with)."""


def _column(frame: pd.DataFrame, name: str, default: object) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(default, index=frame.index)


def reference_mode(frame: pd.DataFrame, reference: Reference = "auto") -> Reference:
    """The reference actually used for ``frame`` (resolves ``auto``; raises :class:`VerdictError`).
    A table without any score (histograms found in no file) needs no reference: ``auto`` gives
    ``calibration`` there, and no run gets a p-value."""
    if "score" in frame.columns and not frame["score"].notna().any():
        return "calibration" if reference == "auto" else reference
    split = _column(frame, "split", "").to_numpy()
    label = _column(frame, "label", -1).to_numpy()
    has_calibration = bool((split == "calibration").any())
    has_good = bool(reference_mask(split, label, "good").any())
    if reference == "auto":
        if has_calibration:
            return "calibration"
        if has_good:
            return "good"
        raise VerdictError(
            "no good runs to calibrate against: the score table has neither a 'calibration' split nor "
            "runs labelled good (label 0) outside the training split; label some good runs, or use every "
            "run as reference with reference='all' (command line: --reference all)"
        )
    if reference == "calibration" and not has_calibration:
        raise VerdictError("reference 'calibration' asked for, but no run has split 'calibration'")
    if reference == "good" and not has_good:
        raise VerdictError("reference 'good' asked for, but no run outside the training split is labelled good (0)")
    return reference


def _reference_rows(frame: pd.DataFrame, mode: Reference) -> np.ndarray:
    return reference_mask(_column(frame, "split", "").to_numpy(), _column(frame, "label", -1).to_numpy(), mode)


def _transform(reference: np.ndarray) -> tuple[np.ndarray, bool]:
    finite = reference[np.isfinite(reference)]
    use_log = len(finite) > 0 and bool((finite > 0).all())
    return (np.log(finite) if use_log else finite), use_log


def _tail_scale(t_ref: np.ndarray) -> float:
    """Scale of the exponential tail of the sorted (transformed) reference ``t_ref`` (at least 3):
    the mean excess of its largest 10% (at least 3, at most all but one) over the next score; at
    least ``(max - median) / ln(n / 2)``, what the body implies for an exponential tail (few tail
    points close together would give a steep tail in which noise just beyond the reference
    scores as far as a huge excess). NaN with fewer than 2 tail points."""
    k = min(max(_TAIL_MIN, int(np.ceil(_TAIL_FRACTION * len(t_ref)))), len(t_ref) - 1)
    if k < 2:
        return float("nan")
    beta = float(np.mean(t_ref[-k:] - t_ref[-k - 1]))
    return max(beta, float(t_ref[-1] - np.median(t_ref)) / np.log(max(len(t_ref) / 2, 2.0)))


def reference_outliers(scores: np.ndarray, is_reference: np.ndarray, keep: int = 0) -> np.ndarray:
    """The reference scores to leave out as outliers (module doc): a mask over ``scores``. At
    least ``keep`` reference scores stay (the run level keeps enough to flag at its false-alarm
    rate)."""
    s = np.asarray(scores, dtype=np.float64)
    ref_all = np.asarray(is_reference, dtype=bool) & ~np.isnan(s)
    out = np.zeros(len(s), dtype=bool)
    n_all = int(ref_all.sum())
    cap = min(max(1 if n_all < 8 else 2, int(_OUTLIER_FRACTION * n_all)), n_all - keep)
    infinite = ref_all & (s == np.inf)  # an empty histogram in a run presumed good
    if infinite.any():
        if infinite.sum() > cap:  # a histogram often empty in good runs: that is its normal state
            return out
        out |= infinite
        cap -= int(infinite.sum())
    ref_mask = ref_all & np.isfinite(s)
    ref = np.sort(s[ref_mask])
    t_ref, _ = _transform(ref)  # the same order: every score is finite
    n = len(t_ref)
    for j in range(cap, 0, -1):  # the most outliers first: two close ones must not mask each other
        body = t_ref[: n - j]
        if len(body) < _TAIL_MIN + 1:
            continue
        beta = _tail_scale(body)
        gap = float(t_ref[n - j] - body[-1])
        if np.isfinite(beta) and beta > 0 and np.exp(-gap / beta) < _OUTLIER_P:
            out |= ref_mask & (s >= ref[n - j])
            break
    return out


def empirical_pvalues(scores: np.ndarray, is_reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Leave-one-out empirical p-values of ``scores`` and their graded-tail version (module doc).

    ``is_reference`` marks the reference scores (NaN ones are ignored). Returns
    ``(p, p_graded, n)``; with fewer than 2 reference scores every p-value is NaN.
    """
    s = np.asarray(scores, dtype=np.float64)
    ref_mask = np.asarray(is_reference, dtype=bool) & ~np.isnan(s)
    ref = np.sort(s[ref_mask])
    n = len(ref)
    nan = np.full(len(s), np.nan)
    if n < 2:
        return nan, nan.copy(), n
    count = n - np.searchsorted(ref, s, side="left")  # reference scores >= s (a reference run counts itself)
    p = np.where(ref_mask, count / n, (1.0 + count * (n - 1) / n) / n)
    p[np.isnan(s)] = np.nan
    graded = p.copy()
    t_ref, use_log = _transform(ref)
    if len(t_ref) >= 3:
        beta = _tail_scale(t_ref)
        if np.isfinite(beta) and beta > 0:
            # the largest reference score each run is compared with: a reference run's own is left out
            largest = np.full(len(s), t_ref[-1])
            is_max = ref_mask & (s >= ref[-1])
            largest[is_max] = t_ref[-2]
            finite = np.isfinite(s) & ((s > 0) if use_log else True)
            t = np.full(len(s), -np.inf)
            t[finite] = np.log(s[finite]) if use_log else s[finite]
            beyond = finite & (t > largest)
            # never 0: an empty histogram (+inf) must still rank above any finite score (lift_infinite)
            graded[beyond] = np.maximum(np.exp(-(t[beyond] - largest[beyond]) / beta) / n, np.finfo(float).tiny)
    infinite = s == np.inf
    if infinite.any():  # maximally anomalous: as anomalous as the most anomalous finite score, at least
        graded[infinite] = min(float(np.nanmin(graded[~infinite], initial=1.0 / n)), 1.0 / n)
    return p, graded, n


def histogram_pvalues(scores: pd.DataFrame, reference: Reference = "auto") -> pd.DataFrame:
    """p-values of every (run, histogram, algorithm) row of a long score table.

    Returns the rows with columns ``run_number, histogram, algorithm, score, p_value, p_graded,
    n_reference`` (plus ``label``, ``split`` when present). A histogram missing from a run
    (split ``missing``) gets the floor ``1/n`` (suspicious for that run); a (histogram,
    algorithm) with fewer than 2 reference scores gets NaN (no verdict from it).
    """
    mode = reference_mode(scores, reference)
    frame = scores.reset_index(drop=True)
    is_ref = _reference_rows(frame, mode)
    p = np.full(len(frame), np.nan)
    graded = np.full(len(frame), np.nan)
    n_ref = np.zeros(len(frame), dtype=np.int64)
    missing = _column(frame, "split", "").to_numpy() == "missing"
    outlier = np.zeros(len(frame), dtype=bool)
    score = frame["score"].to_numpy()
    for _, index in frame.groupby(["histogram", "algorithm"], sort=False).indices.items():
        outlier[index] = reference_outliers(score[index], is_ref[index])
        gp, gg, n = empirical_pvalues(score[index], is_ref[index] & ~outlier[index])
        if n >= 2:  # the floor of the whole reference, outliers included, as every other test's
            floor = 1.0 / (n + int(outlier[index].sum()))
            gp[missing[index]] = floor
            gg[missing[index]] = floor
        p[index], graded[index], n_ref[index] = gp, gg, n
    keep = [
        c
        for c in ("run_number", "histogram", "algorithm", "score", "label", "split", "year", "entries")
        if c in frame.columns
    ]
    out = frame[keep].copy()
    out["p_value"] = p
    out["p_graded"] = graded
    out["n_reference"] = n_ref
    out["reference_outlier"] = outlier
    return lift_infinite(out)


def lift_infinite(pvalues: pd.DataFrame) -> pd.DataFrame:
    """``pvalues`` with the graded p-value of every ``+inf`` score (an empty histogram) below
    every other of the table, so that it leads its run's drivers ahead of any extrapolated finite
    score. Idempotent; apply it again to p-values computed by chunks of histograms and joined."""
    score = pvalues["score"].to_numpy(dtype=np.float64)
    graded = pvalues["p_graded"].to_numpy(dtype=np.float64)
    infinite = (score == np.inf) & ~np.isnan(graded)
    others = ~infinite & ~np.isnan(graded)
    if not infinite.any() or not others.any():
        return pvalues
    lifted = graded.copy()
    lifted[infinite] = np.minimum(graded[infinite], np.nextafter(graded[others].min(), 0.0))
    return pvalues.assign(p_graded=lifted)


def _weights(columns: pd.MultiIndex) -> np.ndarray:
    """One unit of weight per histogram, shared by its algorithms."""
    histograms = columns.get_level_values("histogram")
    per_histogram = pd.Series(histograms).map(pd.Series(histograms).value_counts())
    return 1.0 / per_histogram.to_numpy(dtype=np.float64)


def _cauchy_terms(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p < 1e-15, 1.0 / (p * np.pi), np.tan((0.5 - p) * np.pi))


def _neg_log10_cauchy(t: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(t > 1e15, 1.0 / (t * np.pi), 0.5 - np.arctan(t) / np.pi)
        return -np.log10(p)


def _fisher_log_sf(statistic: np.ndarray, m: np.ndarray) -> np.ndarray:
    """log P(chi2 with 2m degrees of freedom >= statistic), also far in the tail where
    ``scipy.stats.chi2.logsf`` underflows to -inf (a run whose 1,000 histograms all have the
    smallest p-value): with an even number of degrees of freedom the survival function is the
    Poisson sum exp(-x) sum_{k<m} x^k / k!, x = statistic / 2, summed here in logs."""
    from scipy import special, stats

    log_sf = np.asarray(stats.chi2.logsf(statistic, 2 * m), dtype=np.float64)
    for i in np.flatnonzero(np.isneginf(log_sf)):
        x, k = float(statistic[i]) / 2.0, np.arange(int(m[i]))
        log_sf[i] = -x + float(special.logsumexp(k * np.log(x) - special.gammaln(k + 1.0)))
    return log_sf


def combine(
    pvalues: np.ndarray,
    combiner: Combiner,
    *,
    weights: np.ndarray | None = None,
    alpha: float = 0.01,
    floor: float = 0.0,
) -> np.ndarray:
    """Combine a (runs x tests) matrix of p-values (NaN = no test) into one score per run.

    Larger = more anomalous; a run without any p-value gets NaN. ``weights`` (per test) are
    used by ``cauchy`` and ``harmonic_mean``; ``alpha`` and ``floor`` by ``n_flags``.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    present = ~np.isnan(p)
    m = present.sum(axis=1)
    w = np.ones(p.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    wmat = np.where(present, w, 0.0)
    wsum = wmat.sum(axis=1)
    out = np.full(len(p), np.nan)
    rows = m > 0
    if not rows.any():
        return out
    safe = np.where(present, np.clip(p, _P_MIN, 1.0), 1.0)
    if combiner == "cauchy":
        safe = np.minimum(safe, 0.5)
        t = (wmat * np.where(present, _cauchy_terms(safe), 0.0)).sum(axis=1) / np.where(wsum > 0, wsum, 1.0)
        out[rows] = _neg_log10_cauchy(t[rows])
    elif combiner == "harmonic_mean":
        hmp = wsum / (wmat / safe).sum(axis=1)
        out[rows] = -np.log10(hmp[rows])
    elif combiner in ("fisher", "stouffer"):
        from scipy import stats  # here only: importing scipy.stats costs an assessment job 0.5 s

        inner = np.minimum(safe, 1.0 - 1e-12)  # Stouffer: p = 1 would be a z-score of -inf
        result = stats.combine_pvalues(np.where(present, inner, np.nan), method=combiner, axis=1, nan_policy="omit")
        if combiner == "fisher":
            out[rows] = -_fisher_log_sf(result.statistic[rows], m[rows]) / np.log(10)
        else:
            out[rows] = result.statistic[rows]
    elif combiner == "min_p":
        pmin = np.where(present, safe, 1.0).min(axis=1)
        with np.errstate(divide="ignore"):
            log_sidak = np.log(-np.expm1(m * np.log1p(-np.minimum(pmin, 1 - 1e-16))))
        out[rows] = -log_sidak[rows] / np.log(10)
    elif combiner == "n_flags":
        threshold = max(alpha, floor)
        flags = (np.where(present, p, 1.0) <= threshold * (1 + 1e-9)).sum(axis=1)
        tie = np.nan_to_num(combine(p, "cauchy", weights=weights), nan=0.0)
        out[rows] = flags[rows] + 1.0 - 1.0 / (1.0 + np.maximum(tie[rows], 0.0))
    else:
        raise ValueError(f"unknown combiner {combiner!r}; choose one of {list(COMBINERS)}")
    return out


@dataclass
class Verdicts:
    """Run verdicts of one score table (see :func:`run_verdicts`)."""

    table: pd.DataFrame
    """One row per run: rank, run_number, score, p_value, flagged, histograms, n_flags, ...; ranked
    runs first (most anomalous first), then low-statistics runs, then unreadable runs."""
    run_scores: pd.DataFrame
    """One row per run: every combiner's score, over all algorithms and per algorithm."""
    pvalues: pd.DataFrame
    """The long p-value table (:func:`histogram_pvalues`)."""
    reference: Reference
    n_reference_runs: int
    combiner: Combiner
    false_alarm_rate: float
    problems: list[str] = field(default_factory=list)


def _run_info(frame: pd.DataFrame) -> pd.DataFrame:
    split = _column(frame, "split", "test")
    grouped = pd.DataFrame(
        {
            "run_number": frame["run_number"].to_numpy(),
            "label": _column(frame, "label", -1).to_numpy(),
            "split": split.to_numpy(),
            "is_train": (split == "train").to_numpy(),
            "low_stats": (split == "low_stats").to_numpy(),
            "missing": (split == "missing").to_numpy(),
            "calibration": (split == "calibration").to_numpy(),
        }
    ).groupby("run_number", sort=True)
    info = grouped.agg(
        label=("label", "max"),
        is_train=("is_train", "any"),
        low_stats=("low_stats", "any"),
        unreadable=("missing", "all"),
        calibration=("calibration", "any"),
    )
    run_split = grouped["split"].agg(lambda s: _run_split(set(s)))
    info["split"] = run_split
    if "year" in frame.columns:
        info["year"] = frame.groupby("run_number")["year"].first()
    return info


def _run_split(splits: set[str]) -> str:
    for name in ("missing", "low_stats", "calibration", "train", "test"):
        if splits == {name}:
            return name
    for name in ("low_stats", "calibration", "train", "test"):
        if name in splits:
            return name
    return ""


def _empirical_run_p(
    score: np.ndarray, is_reference: np.ndarray, false_alarm_rate: float
) -> tuple[np.ndarray, int, np.ndarray]:
    """Run p-values, the number of reference runs and the reference runs left out as outliers
    (never so many that fewer than 1 / false_alarm_rate remain: a run could no longer be flagged)."""
    ok = ~np.isnan(score)
    outlier = reference_outliers(score, is_reference & ok, keep=runs_to_flag(false_alarm_rate))
    p, _, n = empirical_pvalues(score, is_reference & ok & ~outlier)
    return p, n, outlier


def _why_no_score(rows: pd.DataFrame) -> str:
    """Why a (histogram, algorithm) has no score, from its rows of the score table."""
    if "split" not in rows.columns:
        return "the score table has none for it"
    split = rows["split"]
    if (split == "missing").all():
        return "it is missing from every file (see the fetch report)"
    read = split != "missing"
    if (split[read] == "low_stats").all():
        most = float(_column(rows, "entries", np.nan)[read].max())
        entries = f" (at most {most:,.0f} entries)" if np.isfinite(most) else ""
        return f"every run is below preprocessing.min_entries{entries}: lower it to use this histogram"
    return "its model could not be trained or gave no score (see its model.json and the train job's log)"


def _outlier_problems(pvalues: pd.DataFrame, run_level: pd.Index) -> list[str]:
    """One line per reference run left out as an outlier: of the run scores, or of histograms."""
    lines = []
    if "reference_outlier" in pvalues.columns:
        rows = pvalues[pvalues["reference_outlier"].fillna(False).astype(bool)]
        for run, group in rows.groupby("run_number", sort=True):
            tests = [f"{h} [{a}]" for h, a in zip(group["histogram"], group["algorithm"], strict=True)]
            shown = ", ".join(tests[:3]) + (f" and {len(tests) - 3} more" if len(tests) > 3 else "")
            lines.append(
                f"reference run {run} (not labelled bad) scores far beyond the other reference runs in {shown}: "
                "left out of their reference and judged like any other run; check the run, and its label (bad_runs)"
            )
    for run in run_level:
        lines.append(
            f"reference run {run} (not labelled bad) has a run score far beyond the other reference runs: "
            "left out of the run-level calibration; check the run, and its label (bad_runs)"
        )
    return lines


def _driving(
    pvalues: pd.DataFrame,
    runs: pd.Index,
    n_driving: int,
    flag_threshold: float,
    list_threshold: float,
    flagged: set[int],
) -> tuple[pd.Series, pd.Series]:
    """Per run: the histograms that drive its verdict, and the number of histograms flagged.

    A histogram is flagged (``n_flags``) at ``p <= flag_threshold``. The drivers are the
    histograms (with the algorithms that see it) whose smallest p-value passes ``list_threshold``
    (the trials correction over the run's histograms, as for drawing a histogram's figures), most
    significant first and at most ``n_driving``; a ``flagged`` run none passes lists its most
    significant one (what its verdict rests on), another run none.
    """
    ordered = pvalues.dropna(subset=["p_graded"]).sort_values(["run_number", "p_graded"], kind="stable")
    best = ordered.drop_duplicates(["run_number", "histogram"])
    flagged_hist = best[best["p_graded"] <= flag_threshold * (1 + 1e-9)]
    n_flags = flagged_hist.groupby("run_number").size().reindex(runs, fill_value=0)
    algos = (
        ordered[ordered["p_graded"] <= list_threshold * (1 + 1e-9)]
        .groupby(["run_number", "histogram"], sort=False)["algorithm"]
        .agg(lambda a: ", ".join(dict.fromkeys(a)))
    )
    top = best.groupby("run_number", sort=False).head(n_driving)
    entries: dict[int, list[str]] = {}
    for run, histogram, algorithm, pg in zip(
        top["run_number"], top["histogram"], top["algorithm"], top["p_graded"], strict=True
    ):
        if pg > list_threshold * (1 + 1e-9) and (entries.get(int(run)) or int(run) not in flagged):
            continue
        names = algos.get((run, histogram), algorithm)
        entries.setdefault(int(run), []).append(f"{histogram} [{names}]")
    text = pd.Series({run: "; ".join(v) for run, v in entries.items()}, dtype=object).reindex(runs, fill_value="")
    return text, n_flags


def run_verdicts(
    scores: pd.DataFrame,
    *,
    combiner: Combiner = DEFAULT_COMBINER,
    reference: Reference = "auto",
    false_alarm_rate: float = 0.05,
    alpha: float = 0.01,
    n_driving: int = 5,
    pvalues: pd.DataFrame | None = None,
) -> Verdicts:
    """Calibrated verdicts of every run of a long score table (module docstring).

    ``scores`` holds ``run_number, histogram, algorithm, score`` and optionally ``label``,
    ``split``, ``year``; ``pvalues`` may be given when already computed (by chunks of
    histograms) with :func:`histogram_pvalues`. A (histogram, algorithm) that no run has (every
    row ``missing`` or NaN) is a configuration problem: it is left out and listed in
    ``problems``.
    """
    if not 0 < false_alarm_rate < 1:
        raise ValueError(f"false_alarm_rate must lie in (0, 1), not {false_alarm_rate}")
    mode = reference_mode(scores, reference)
    pv = histogram_pvalues(scores, mode) if pvalues is None else lift_infinite(pvalues)
    problems: list[str] = []
    valid = pv.groupby(["histogram", "algorithm"], sort=True)["score"].apply(lambda s: bool(s.notna().any()))
    for histogram, algorithm in valid[~valid].index:
        rows = scores[(scores["histogram"] == histogram) & (scores["algorithm"] == algorithm)]
        problems.append(f"histogram {histogram!r} [{algorithm}] has no score in any run: {_why_no_score(rows)}")
    unusable = pv.groupby(["histogram", "algorithm"], sort=True)["n_reference"].max()
    for (histogram, algorithm), n in unusable[(unusable < 2) & valid].items():
        problems.append(f"histogram {histogram!r} [{algorithm}] has {n} reference run(s): no p-value (need 2)")
    usable = pv.set_index(["histogram", "algorithm"]).index.isin(unusable[(unusable >= 2) & valid].index)
    pv_used = pv[usable]
    info = _run_info(scores)
    wide = pv_used.pivot_table(
        index="run_number", columns=["histogram", "algorithm"], values="p_graded", aggfunc="first", dropna=False
    ).reindex(info.index)
    n_ref_runs = int(pv_used["n_reference"].max()) if len(pv_used) else 0
    floor = 1.0 / n_ref_runs if n_ref_runs else 0.0
    weights = _weights(wide.columns) if len(wide.columns) else np.zeros(0)
    matrix = wide.to_numpy(dtype=np.float64)
    run_ref = _reference_runs(info, mode)
    run_scores = pd.DataFrame(index=info.index)
    for name in COMBINERS:
        run_scores[name] = combine(matrix, name, weights=weights, alpha=alpha, floor=floor)
    algorithms = sorted(set(pv_used["algorithm"]))
    if len(algorithms) > 1:
        for algorithm in algorithms:
            cols = np.asarray(wide.columns.get_level_values("algorithm") == algorithm)
            sub = matrix[:, cols]
            run_scores[f"{combiner}[{algorithm}]"] = combine(
                sub, combiner, weights=weights[cols] * 0 + 1.0, alpha=alpha, floor=floor
            )
    score = run_scores[combiner].to_numpy()
    p_run, n_runs_ref, run_outliers = _empirical_run_p(score, run_ref, false_alarm_rate)
    problems += _outlier_problems(pv_used, info.index[run_outliers])
    if n_runs_ref and false_alarm_rate < 1.0 / n_runs_ref:
        problems.append(
            f"only {n_runs_ref} reference runs: no run can be flagged at a false-alarm rate of "
            f"{false_alarm_rate:g} (needs at least {runs_to_flag(false_alarm_rate)}): add runs, raise "
            "preprocessing.calibration_fraction, or raise assessment.false_alarm_rate"
        )
    n_histograms = max(int(pv["histogram"].nunique()), 1)  # as the assessment counts them for figures
    # the false-alarm rate holds for runs like the reference runs: never for short ones
    flagged = (p_run <= false_alarm_rate * (1 + 1e-9)) & ~info["unreadable"].to_numpy() & ~info["low_stats"].to_numpy()
    flagged_runs = {int(r) for r in info.index[flagged]}
    driving, n_flags = _driving(pv_used, info.index, n_driving, max(alpha, floor), alpha / n_histograms, flagged_runs)
    table = pd.DataFrame(
        {
            "run_number": info.index.to_numpy(),
            "score": score,
            "p_value": p_run,
            "flagged": flagged,
            "histograms": driving.to_numpy(),
            "n_flags": n_flags.to_numpy(),
            "label": info["label"].to_numpy(),
            "split": info["split"].to_numpy(),
            "low_stats": info["low_stats"].to_numpy(),
            "unreadable": info["unreadable"].to_numpy(),
        }
    )
    if "year" in info.columns:
        table["year"] = info["year"].to_numpy()
    # a run without any readable histogram has no measurement: no score, no drivers, no flags
    table.loc[table["unreadable"], ["score", "p_value"]] = np.nan
    table.loc[table["unreadable"], "histograms"] = ""
    table.loc[table["unreadable"], "n_flags"] = 0
    run_scores.loc[info["unreadable"].to_numpy()] = np.nan
    table["listing"] = np.select(
        [table["unreadable"], table["low_stats"]], ["unreadable", "low_stats"], default="ranked"
    )
    order = {"ranked": 0, "low_stats": 1, "unreadable": 2}
    table = table.assign(_order=table["listing"].map(order), _neg=-table["score"].fillna(-np.inf))
    table = table.sort_values(["_order", "_neg", "run_number"], kind="stable").drop(columns=["_order", "_neg"])
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table = table.reset_index(drop=True)
    run_scores = run_scores.reset_index()
    run_scores.insert(1, "reference", run_ref & ~run_outliers)  # the runs the calibration used
    return Verdicts(
        table=table,
        run_scores=run_scores,
        pvalues=pv,
        reference=mode,
        n_reference_runs=n_runs_ref,
        combiner=combiner,
        false_alarm_rate=false_alarm_rate,
        problems=problems,
    )


def _reference_runs(info: pd.DataFrame, mode: Reference) -> np.ndarray:
    usable = ~info["is_train"] & ~info["low_stats"] & ~info["unreadable"] & (info["label"] != 1)
    if mode == "calibration":
        usable &= info["calibration"]
    elif mode == "good":
        usable &= info["label"] == 0
    return usable.to_numpy(dtype=bool)


def evaluation_runs(table: pd.DataFrame) -> pd.Series:
    """Runs that measure run-level performance: labelled, never trained on, readable, not short."""
    split = table["split"] if "split" in table.columns else pd.Series("test", index=table.index)
    return (
        table["label"].isin((0, 1))
        & (split != "train")
        & ~table.get("low_stats", False)
        & ~table.get("unreadable", False)
    )


def evaluated_run_scores(run_scores: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The run scores of the evaluation runs (:func:`evaluation_runs`), with their label."""
    merged = table[["run_number", "label", "split", "low_stats", "unreadable"]].merge(run_scores, on="run_number")
    return merged[evaluation_runs(merged)]


def caught_at(scores: np.ndarray, labels: np.ndarray, false_alarm_rate: float) -> tuple[float, float]:
    """(fraction of bad runs caught, threshold) when flagging ``false_alarm_rate`` of the good runs."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    good, bad = s[(y == 0) & ~np.isnan(s)], s[(y == 1) & ~np.isnan(s)]
    if len(good) == 0 or len(bad) == 0:
        return float("nan"), float("nan")
    threshold = float(np.quantile(good, 1.0 - false_alarm_rate, method="higher"))
    return float((bad > threshold).mean()), threshold


#: Fewest labelled runs of each kind (never trained on) for a run-level AUC to be measured.
MIN_EVALUATION_RUNS = 2


def combiner_figures(
    run_scores: pd.DataFrame, table: pd.DataFrame, columns: Sequence[str], false_alarm_rate: float = 0.05
) -> pd.DataFrame:
    """AUC (scikit-learn) and bad runs caught at a false-alarm rate, per run-score column; NaN
    with the reason in ``note`` when there are too few labelled runs (never a made-up 0.5)."""
    from sklearn.metrics import roc_auc_score

    evaluation = evaluated_run_scores(run_scores, table)
    rows = []
    for column in columns:
        s = evaluation[column].to_numpy(dtype=np.float64)
        y = evaluation["label"].to_numpy()
        ok = ~np.isnan(s)
        n_good, n_bad = int((y[ok] == 0).sum()), int((y[ok] == 1).sum())
        measurable = min(n_good, n_bad) >= MIN_EVALUATION_RUNS
        ranked = clip_infinite(s[ok])  # +inf: above every finite score (AUC depends on the order only)
        auc = float(roc_auc_score(y[ok], ranked)) if measurable else float("nan")
        caught = caught_at(s, y, false_alarm_rate)[0] if measurable else float("nan")
        note = (
            ""
            if measurable
            else (
                f"not measured: needs at least {MIN_EVALUATION_RUNS} good and {MIN_EVALUATION_RUNS} bad labelled runs "
                f"that no model trained on, has {n_good} good and {n_bad} bad"
            )
        )
        rows.append(
            {
                "run_score": column,
                "auc": auc,
                f"caught_at_far_{false_alarm_rate:g}": caught,
                "n_good": n_good,
                "n_bad": n_bad,
                "note": note,
            }
        )
    return pd.DataFrame(rows)


def failed_algorithms(pvalues: pd.DataFrame) -> list[str]:
    """Algorithm configs without a single score (every model failed, or none was trained)."""
    scored = pvalues.groupby("algorithm", sort=True)["score"].apply(lambda s: bool(s.notna().any()))
    return [str(a) for a in scored[~scored].index]
