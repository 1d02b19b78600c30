"""Beta-binomial test of every bin against several good reference runs (CMS AutoDQM).

Method (AutoDQM, arXiv:2501.13789, its ``beta_binomial`` plugin): in one bin the data hold ``k``
of the run's ``n`` entries and a reference run ``r`` of its ``R``. The probability of ``k`` is the
beta-binomial ``P(k | n, a = r + 1, b = R - r + 1)``: a binomial whose bin fraction is unknown but
measured by the reference (uniform prior), so a low-statistics reference widens the expectation.
Dividing by the largest probability, at the expected count ``n r / R``, gives a *relative
likelihood* ``λ`` in (0, 1] (1 = perfect agreement). With several references, ``λ`` is averaged
over them bin by bin (``n_references``; AutoDQM found that more references help).

**Tolerance floor.** Real detectors vary by about a percent between good runs, more than the
Poisson precision of a bin with millions of entries. As in AutoDQM, the reference counts of each
bin are scaled by ``(1 + (r tol²)²)^(-1/2)`` (``tolerance``, default 0.01) before computing ``λ``,
so no bin is trusted beyond a relative precision of about ``tol``.

**p-to-sigma convention.** ``λ`` is read as a two-sided p-value: the bin's pull is
``z = Φ⁻¹(1 - λ/2)`` (equivalently ``sqrt(χ²₁ isf(λ))``, AutoDQM's ``Sigmas``), signed by whether the
data fraction is above or below the references' mean fraction. It is computed from ``log λ``
(``scipy.special.ndtri_exp``), so it neither underflows nor saturates (AutoDQM floors ``λ`` at
1e-300, i.e. 37.5 sigma).

**Scores** (``statistic``), over the *used* bins (non-empty in the data or any reference):

* ``chi2``: the mean of ``z²``; with ``entries_scaling`` divided by ``n^(1/3)``, the variant of the
  paper that removes most of its growth with the run's statistics;
* ``max_pull``: the largest ``|z|``, corrected for the number of bins looked at (trials factor):
  its p-value ``p = 2 Φ(-|z|)`` becomes ``1 - (1 - p)^N`` (Šidák) and is turned back into sigma.

**References** (``reference``), never the run being scored:

* ``previous_good``: the ``n_references`` pool runs closest before the run (the nearest after it
  fill up when there are too few before);
* ``similar_entries``: the ``n_references`` pool runs closest in entries, a proxy for luminosity
  and pile-up;
* ``fixed_runs``: the runs of ``reference_runs`` (any readable run, e.g. a golden run).

The *pool* (``reference_pool``) is ``training`` (the runs the model is fitted on) or ``good``
(those and every run labelled good, in any split, with at least the smallest training entries).
It is fixed when the model is trained; runs relabelled bad (or no longer readable) since then
leave it at scoring. A model stores only the pool's run numbers and entries: the reference counts
are read from the histogram storage when scoring (the model job loads the references of the runs
it scores), so a model of a large 2D map over thousands of runs stays a few kB.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Self

import numpy as np
from scipy.special import betaln, gammaln, log_ndtr, ndtri_exp

from dqmflow.algorithms.base import Algorithm, NotEnoughData, param, register
from dqmflow.metadata import BAD, GOOD
from dqmflow.preprocess import HistogramSet, normalise
from dqmflow.runtable import RunTable

__all__ = ["BetaBinomial", "bin_pulls", "max_pull_sigma", "select_references"]

LOG2 = float(np.log(2.0))
#: Runs scored per vectorised step (runs x references x bins arrays).
RUNS_PER_STEP = 64


def _log_pmf(x: np.ndarray, n: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log P(x | n, a, b) of the beta-binomial, without the x-independent terms of n."""
    return betaln(x + a, n - x + b) - gammaln(x + 1) - gammaln(n - x + 1)


def bin_pulls(counts: np.ndarray, refs: np.ndarray, tolerance: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Signed pulls of every bin and which bins are used.

    ``counts``: runs x bins (raw data counts); ``refs``: runs x references x bins (raw reference
    counts; a reference with no entries is ignored). Returns (pulls, used), both runs x bins.
    """
    k = counts[:, None, :]
    n = counts.sum(axis=1)[:, None, None]
    big_r = refs.sum(axis=2, keepdims=True)
    valid = big_r[..., 0] > 0  # runs x references
    safe_r = np.where(big_r > 0, big_r, 1.0)
    scale = (1.0 + (refs * tolerance**2) ** 2) ** -0.5
    a, b = refs * scale + 1.0, (big_r - refs) * scale + 1.0
    mean = n * refs / safe_r
    up = np.clip(np.ceil(mean), 0.0, n)
    down = np.clip(np.floor(mean), 0.0, n)
    best = np.maximum(_log_pmf(up, n, a, b), _log_pmf(down, n, a, b))
    log_lambda = np.minimum(_log_pmf(k, n, a, b) - best, 0.0)
    log_lambda = np.where(valid[..., None], log_lambda, -np.inf)
    n_valid = valid.sum(axis=1)[:, None]
    with np.errstate(divide="ignore"):
        top = log_lambda.max(axis=1)
        finite_top = np.where(np.isfinite(top), top, 0.0)
        mean_lambda = (
            finite_top
            + np.log(np.exp(log_lambda - finite_top[:, None, :]).sum(axis=1))
            - np.log(np.maximum(n_valid, 1))
        )
    z = -ndtri_exp(np.minimum(mean_lambda - LOG2, -LOG2))  # two-sided: λ = 1 gives 0 sigma
    fractions = np.where(valid[..., None], refs / safe_r, 0.0).sum(axis=1) / np.maximum(n_valid, 1)
    sign = np.sign(counts / np.maximum(n[:, 0], 1.0) - fractions)
    used = (counts + refs.sum(axis=1)) > 0
    with np.errstate(invalid="ignore"):  # runs without a usable reference: 0 x inf, masked below
        pulls = np.where(used & (n_valid > 0), sign * z, 0.0)
    return pulls, used & (n_valid > 0)


def max_pull_sigma(max_abs_pull: np.ndarray, n_bins: np.ndarray) -> np.ndarray:
    """The largest |pull| of ``n_bins`` bins as a trials-corrected significance (Šidák)."""
    log_p = LOG2 + log_ndtr(-np.abs(max_abs_pull))  # two-sided p-value of one bin
    p = np.exp(log_p)
    n = np.maximum(n_bins, 1).astype(np.float64)
    with np.errstate(divide="ignore"):
        exact = np.log(-np.expm1(n * np.log1p(-np.minimum(p, 1.0 - 1e-16))))
    log_corrected = np.where(n * p < 1e-8, np.log(n) + log_p, exact)
    return -ndtri_exp(np.minimum(log_corrected - LOG2, -LOG2))


def select_references(
    runs: np.ndarray,
    entries: np.ndarray,
    pool_runs: np.ndarray,
    pool_entries: np.ndarray,
    strategy: str,
    n_references: int,
) -> np.ndarray:
    """Indices into the (run-sorted) pool of every run's references, runs x ``n_references``,
    -1 where the pool has too few runs. A run is never its own reference."""
    m, k = len(runs), n_references
    out = np.full((m, k), -1, dtype=np.int64)
    if len(pool_runs) == 0:  # every pool run left (relabelled bad, unreadable): nothing to compare with
        return out
    if strategy == "fixed_runs":
        for i, run in enumerate(runs):
            chosen = np.flatnonzero(pool_runs != run)[:k]
            out[i, : len(chosen)] = chosen
        return out
    if strategy == "similar_entries":
        distance = np.abs(entries[:, None] - pool_entries[None, :])
        distance[runs[:, None] == pool_runs[None, :]] = np.inf
        if distance.shape[1] > k:  # the k nearest, without sorting the whole pool
            nearest = np.argpartition(distance, k - 1, axis=1)[:, :k]
            order = np.take_along_axis(
                nearest, np.argsort(np.take_along_axis(distance, nearest, axis=1), axis=1), axis=1
            )
        else:
            order = np.argsort(distance, axis=1, kind="stable")[:, :k]
        taken = np.take_along_axis(distance, order, axis=1)
        out[:, : order.shape[1]] = np.where(np.isfinite(taken), order, -1)
        return out
    # previous_good: the k pool runs before the run, filled up with the nearest after it
    end = np.searchsorted(pool_runs, runs, side="left")
    is_member = (end < len(pool_runs)) & (pool_runs[np.minimum(end, len(pool_runs) - 1)] == runs)
    after = end + is_member
    n_before = np.minimum(end, k)
    j = np.arange(k)[None, :]
    before_index = end[:, None] - n_before[:, None] + j
    after_index = after[:, None] + (j - n_before[:, None])
    index = np.where(j < n_before[:, None], before_index, after_index)
    return np.where(index < len(pool_runs), index, -1)


@register("beta_binomial")
class BetaBinomial(Algorithm):
    """Beta-binomial pulls against ``n_references`` good reference runs (see the module docstring)."""

    reconstruction_label = "references"

    @dataclasses.dataclass(frozen=True)
    class Params:
        statistic: Literal["chi2", "max_pull"] = param("chi2", "score: mean pull² or trials-corrected max |pull|")
        n_references: int = param(4, "reference runs averaged bin by bin", minimum=1)
        reference: Literal["previous_good", "similar_entries", "fixed_runs"] = param(
            "previous_good", "how the references of a run are chosen"
        )
        reference_pool: Literal["training", "good"] = param(
            "training", "runs references come from: the training runs, or also every run labelled good"
        )
        reference_runs: tuple[int, ...] = param((), "fixed_runs: the reference run numbers")
        tolerance: float = param(0.01, "relative precision floor of a bin (AutoDQM's tol)", 0.0, 1.0)
        entries_scaling: bool = param(False, "chi2: divide by n_entries^(1/3) (the paper's variant)")

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        if params.reference == "fixed_runs" and not params.reference_runs:
            raise ValueError("reference: fixed_runs needs reference_runs")
        self.pool_runs_ = np.zeros(0, dtype=np.int64)
        self.pool_entries_ = np.zeros(0)
        self.excluded_ = np.zeros(0, dtype=np.int64)  # pool runs relabelled bad or unreadable since

    # -- fitting: choose the pool ---------------------------------------------------------------
    def fit(self, data: HistogramSet) -> Self:
        p = self.params
        train = data.split == "train"
        if p.reference == "fixed_runs":
            pool = np.isin(data.runs, p.reference_runs) & (data.split != "missing") & (data.entries > 0)
            if not pool.any():
                raise NotEnoughData(
                    f"{data.name.column}: none of the reference runs {list(p.reference_runs)} has this histogram"
                )
        else:
            pool = train.copy()
            if p.reference_pool == "good" and train.any():
                floor = data.entries[train].min()
                usable = np.isin(data.split, ("train", "calibration", "test")) & (data.entries >= floor)
                pool |= usable & (data.labels == GOOD)
            if pool.sum() < 2:
                raise NotEnoughData(
                    f"{data.name.column}: beta_binomial needs at least 2 reference runs, got {int(pool.sum())}"
                )
        order = np.argsort(data.runs[pool], kind="stable")
        self.pool_runs_ = data.runs[pool][order].astype(np.int64)
        self.pool_entries_ = data.entries[pool][order].astype(np.float64)
        return self

    # -- scoring --------------------------------------------------------------------------------
    def _pool(self) -> tuple[np.ndarray, np.ndarray]:
        keep = ~np.isin(self.pool_runs_, self.excluded_)
        return self.pool_runs_[keep], self.pool_entries_[keep]

    def bind(self, table: RunTable, column: str) -> str:
        """Drop pool runs now labelled bad, unreadable or without this histogram (no entries): a
        run then takes the next reference instead. Returns a digest of the pool the scores use."""
        present = dict(zip(table.runs.tolist(), range(len(table)), strict=True))
        rows = np.array([present.get(int(r), -1) for r in self.pool_runs_], dtype=np.int64)
        gone = rows < 0
        ok = np.ones(len(rows), dtype=bool)
        entries = table.entries.get(column, np.full(len(table), np.nan))[rows[~gone]]
        ok[~gone] = (
            (table.labels[rows[~gone]] != BAD)
            & (table.split[rows[~gone]] != "missing")
            & (np.nan_to_num(entries, nan=0.0) > 0)
        )
        self.excluded_ = self.pool_runs_[gone | ~ok]
        signatures = np.where(gone, "", table.signatures[np.maximum(rows, 0)].astype(str))
        text = "\n".join(f"{r}|{s}" for r, s, keep in zip(self.pool_runs_, signatures, ok & ~gone, strict=True) if keep)
        return hashlib.sha1(f"{self.params}\n{text}".encode()).hexdigest()

    def _reference_index(self, runs: np.ndarray, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pool_runs, pool_entries = self._pool()
        index = select_references(
            runs, entries, pool_runs, pool_entries, self.params.reference, self.params.n_references
        )
        return pool_runs, index

    def runs_needed(self, runs: np.ndarray, entries: np.ndarray) -> np.ndarray:
        """The reference runs that scoring ``runs`` (with these entries) reads."""
        pool_runs, index = self._reference_index(np.asarray(runs), np.asarray(entries, dtype=np.float64))
        return np.unique(pool_runs[index[index >= 0]])

    def _reference_rows(self, data: HistogramSet) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``data`` holding every run's references (runs x n_references; -1 where the pool
        has too few runs) and which runs can be scored: every reference chosen is in ``data``,
        with entries, and there is at least one."""
        pool_runs, index = self._reference_index(data.runs, data.entries)
        order = np.argsort(data.runs, kind="stable")
        sorted_runs = data.runs[order]
        wanted = pool_runs[np.maximum(index, 0)] if len(pool_runs) else np.zeros(index.shape, dtype=np.int64)
        at = np.minimum(np.searchsorted(sorted_runs, wanted), max(len(sorted_runs) - 1, 0))
        found = (sorted_runs[at] == wanted) if len(sorted_runs) else np.zeros(index.shape, dtype=bool)
        rows = np.where(index < 0, -1, np.where(found, order[at] if len(order) else -2, -2))
        totals = data.counts.reshape(len(data), int(np.prod(data.shape))).sum(axis=1)
        empty = (rows >= 0) & (totals[np.maximum(rows, 0)] == 0) if len(data) else np.zeros(rows.shape, dtype=bool)
        complete = (rows != -2).all(axis=1) & (rows >= 0).any(axis=1) & ~empty.any(axis=1)
        return rows, complete

    @staticmethod
    def _gather(flat: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Reference counts (runs x references x bins, zero where absent) of a few runs."""
        return np.where((rows >= 0)[..., None], flat[np.maximum(rows, 0)], 0.0)

    def _by_step(self, data: HistogramSet, compute: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """``compute(counts, references)`` over :data:`RUNS_PER_STEP` runs at a time (runs x bins
        and runs x references x bins), so that memory stays runs-per-step x references x bins
        whatever the number of runs; rows of runs that cannot be scored are NaN."""
        rows, complete = self._reference_rows(data)
        flat = data.counts.reshape(len(data), int(np.prod(data.shape))).astype(np.float64)
        parts = [
            compute(flat[start : start + RUNS_PER_STEP], self._gather(flat, rows[start : start + RUNS_PER_STEP]))
            for start in range(0, max(len(data), 1), RUNS_PER_STEP)  # one empty step for no runs
        ]
        out = np.concatenate(parts).astype(np.float64)
        out[~complete] = np.nan
        return out

    def _score(self, counts: np.ndarray, refs: np.ndarray) -> np.ndarray:
        pulls, used = bin_pulls(counts, refs, self.params.tolerance)
        n_used = used.sum(axis=1)
        if self.params.statistic == "max_pull":
            return np.where(n_used > 0, max_pull_sigma(np.abs(pulls).max(axis=1), n_used), 0.0)
        chi2 = np.divide((pulls**2).sum(axis=1), n_used, out=np.zeros(len(n_used)), where=n_used > 0)
        return chi2 / np.cbrt(np.maximum(counts.sum(axis=1), 1.0)) if self.params.entries_scaling else chi2

    def score(self, data: HistogramSet) -> np.ndarray:
        """One score per run; NaN for a run whose references are not all in ``data`` (or empty)."""
        return self._by_step(data, self._score)

    def pulls(self, data: HistogramSet) -> np.ndarray:
        """Signed pull of every bin of every run (the shape of ``data.counts``; NaN rows as in
        :meth:`score`)."""
        tolerance = self.params.tolerance
        return self._by_step(data, lambda counts, refs: bin_pulls(counts, refs, tolerance)[0]).reshape(
            data.counts.shape
        )

    def reconstruct(self, data: HistogramSet) -> np.ndarray:
        """The mean of the unit-area references (what the run is compared with)."""

        def mean_reference(counts: np.ndarray, refs: np.ndarray) -> np.ndarray:
            return normalise(normalise(refs.reshape(-1, refs.shape[-1])).reshape(refs.shape).mean(axis=1))

        return self._by_step(data, mean_reference).reshape(data.counts.shape)

    # -- storage --------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        np.savez(directory / "pool.npz", runs=self.pool_runs_, entries=self.pool_entries_)
        summary = {
            "reference_pool": len(self.pool_runs_),
            "first": int(self.pool_runs_[0]),
            "last": int(self.pool_runs_[-1]),
        }
        (directory / "summary.json").write_text(json.dumps(summary))

    @classmethod
    def load(cls, directory: Path, params: Params) -> Self:
        model = cls(params)
        with np.load(directory / "pool.npz") as stored:
            model.pool_runs_ = stored["runs"].astype(np.int64)
            model.pool_entries_ = stored["entries"].astype(np.float64)
        return model
