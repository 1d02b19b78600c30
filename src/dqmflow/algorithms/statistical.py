"""Statistical tests of a run's histogram against reference histograms (CMS AutoDQM).

The reference is chosen by ``reference``:

* ``mean_of_training``: the sum of all training runs (other than the run itself);
* ``previous_good``: the ``n_references`` training runs closest before the run (after it, when
  there are none before), summed; AutoDQM found that several references help;
* ``fixed_run``: one run, ``reference_run``, which must be in the training set.

Tests: ``ks`` (Kolmogorov-Smirnov distance between normalised cumulative distributions; for 2D the
larger of the distances of the x and y projections) and ``chi2`` (mean squared pull over non-empty
bins, pull = (d - s r) / sqrt(d + s^2 r) with s the data/reference normalisation ratio, as in
AutoDQM's pull-value plugin). Reference: AutoDQM, arXiv:2501.13789.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np

from dqmflow.algorithms.base import Algorithm, NotEnoughData, param, register
from dqmflow.preprocess import HistogramSet, normalise


class ReferenceTest(Algorithm):
    """Shared reference selection; subclasses define :meth:`statistic`."""

    reconstruction_label = "reference"

    @dataclasses.dataclass(frozen=True)
    class Params:
        reference: Literal["mean_of_training", "previous_good", "fixed_run"] = param(
            "mean_of_training", "how the reference histogram is chosen"
        )
        n_references: int = param(1, "previous_good: number of reference runs summed", minimum=1)
        reference_run: int | None = param(None, "fixed_run: the reference run number")

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        if params.reference == "fixed_run" and params.reference_run is None:
            raise ValueError("reference: fixed_run needs reference_run")
        self.ref_runs_: np.ndarray | None = None
        self.ref_total_: np.ndarray | None = None
        self.ref_counts_: np.ndarray | None = None  # per reference run: previous_good only

    def fit(self, data: HistogramSet) -> Self:
        train = data.training
        if len(train) == 0:
            raise NotEnoughData(f"{data.name.column}: no training run to take a reference from")
        if self.params.reference == "fixed_run":
            keep = train.runs == self.params.reference_run
            if not keep.any():
                raise NotEnoughData(
                    f"{data.name.column}: reference run {self.params.reference_run} "
                    "is not a training run (bad, low statistics, missing or in the test split)"
                )
            train = train.subset(keep)
        order = np.argsort(train.runs)
        self.ref_runs_, self.ref_total_ = train.runs[order], train.counts.sum(axis=0)
        # Only previous_good needs every reference run's counts; the model keeps no more than that.
        self.ref_counts_ = train.counts[order] if self.params.reference == "previous_good" else None
        return self

    def references(self, data: HistogramSet) -> np.ndarray:
        """The summed raw reference counts for every run of ``data``."""
        if self.ref_runs_ is None or self.ref_total_ is None:
            raise RuntimeError("test is not fitted")
        refs, n = self.ref_runs_, len(self.ref_runs_)
        if self.params.reference == "previous_good":
            if self.ref_counts_ is None:
                raise RuntimeError("previous_good needs the reference runs' counts")
            cumulative = np.concatenate(
                [np.zeros((1, *self.ref_counts_.shape[1:])), np.cumsum(self.ref_counts_, axis=0)]
            )
            k = self.params.n_references
            end = np.searchsorted(refs, data.runs, side="left")  # references before the run
            start = np.maximum(end - k, 0)
            none_before = end == 0  # then the k references after it
            start = np.where(none_before, np.searchsorted(refs, data.runs, side="right"), start)
            end = np.where(none_before, np.minimum(start + k, n), end)
            return cumulative[end] - cumulative[start]
        out = np.broadcast_to(self.ref_total_, data.counts.shape).copy()
        if self.params.reference == "mean_of_training" and n > 1:
            own = np.isin(data.runs, refs)  # a training run is compared with the others
            out[own] -= data.counts[own]
        return out

    def reconstruct(self, data: HistogramSet) -> np.ndarray:
        return normalise(self.references(data))

    def score(self, data: HistogramSet) -> np.ndarray:
        return self.statistic(data.counts, self.references(data))

    def statistic(self, counts: np.ndarray, refs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def save(self, directory: Path) -> None:
        if self.ref_runs_ is None or self.ref_total_ is None:
            raise RuntimeError("test is not fitted")
        arrays: dict[str, Any] = {"runs": self.ref_runs_, "total": self.ref_total_}
        if self.ref_counts_ is not None:
            arrays["counts"] = self.ref_counts_
        np.savez_compressed(directory / "reference.npz", **arrays)
        (directory / "summary.json").write_text(json.dumps({"reference_runs": len(self.ref_runs_)}))

    @classmethod
    def load(cls, directory: Path, params: Params) -> Self:
        model = cls(params)
        with np.load(directory / "reference.npz") as stored:
            model.ref_runs_ = stored["runs"]
            model.ref_counts_ = stored["counts"] if "counts" in stored.files else None
            if "total" in stored.files:
                model.ref_total_ = stored["total"]
            elif model.ref_counts_ is not None:
                model.ref_total_ = model.ref_counts_.sum(axis=0)
        return model


def _ks(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ca, cb = np.cumsum(normalise(a), axis=1), np.cumsum(normalise(b), axis=1)
    return np.abs(ca - cb).max(axis=1)


@register("ks")
class KolmogorovSmirnov(ReferenceTest):
    """Kolmogorov-Smirnov distance to the reference (2D: max over the x and y projections)."""

    def statistic(self, counts: np.ndarray, refs: np.ndarray) -> np.ndarray:
        if counts.ndim == 2:
            return _ks(counts, refs)
        return np.maximum(_ks(counts.sum(axis=2), refs.sum(axis=2)), _ks(counts.sum(axis=1), refs.sum(axis=1)))


@register("chi2")
class Chi2(ReferenceTest):
    """Mean squared pull between data and scaled reference over non-empty bins (AutoDQM).

    The pull is ``(d - s r) / sqrt(max(d, s r) + s^2 r)``: AutoDQM's data variance ``d`` (Neyman's)
    is zero in an empty bin, where the pull squared would be the reference count ``r`` itself,
    growing with the reference's statistics (a reference summed over 19 runs made one empty tail
    bin worth a pull of 14). Where the data count is below its expectation ``s r``, the
    expectation is its variance (Pearson's), as Poisson counts have; above it, the data count.
    """

    def statistic(self, counts: np.ndarray, refs: np.ndarray) -> np.ndarray:
        d = counts.reshape(len(counts), -1)
        r = refs.reshape(len(refs), -1)
        nd, nr = d.sum(axis=1, keepdims=True), r.sum(axis=1, keepdims=True)
        s = np.divide(nd, nr, out=np.zeros_like(nd), where=nr > 0)
        var = np.maximum(d, s * r) + s**2 * r
        filled = var > 0
        pull2 = np.divide((d - s * r) ** 2, var, out=np.zeros_like(d), where=filled)
        n = filled.sum(axis=1)
        chi2 = np.divide(pull2.sum(axis=1), n, out=np.zeros(len(d)), where=n > 0)
        # A run that is empty where its reference is not is maximally different.
        chi2[(nd[:, 0] == 0) & (nr[:, 0] > 0)] = np.inf
        return chi2
