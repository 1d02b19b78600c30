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
from typing import Literal, Self

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
        self.ref_counts_: np.ndarray | None = None

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
        self.ref_runs_, self.ref_counts_ = train.runs[order], train.counts[order]
        return self

    def references(self, data: HistogramSet) -> np.ndarray:
        """The summed raw reference counts for every run of ``data``."""
        if self.ref_runs_ is None or self.ref_counts_ is None:
            raise RuntimeError("test is not fitted")
        refs, counts = self.ref_runs_, self.ref_counts_
        total = counts.sum(axis=0)
        out = np.empty(data.counts.shape)
        for i, run in enumerate(data.runs):
            if self.params.reference == "previous_good":
                before = np.flatnonzero(refs < run)[::-1][: self.params.n_references]
                if len(before) == 0:
                    before = np.flatnonzero(refs > run)[: self.params.n_references]
                out[i] = counts[before].sum(axis=0)
            elif self.params.reference == "mean_of_training":
                own = np.flatnonzero(refs == run)
                out[i] = total - counts[own].sum(axis=0) if len(refs) > len(own) else total
            else:
                out[i] = total
        return out

    def reconstruct(self, data: HistogramSet) -> np.ndarray:
        return normalise(self.references(data))

    def score(self, data: HistogramSet) -> np.ndarray:
        return self.statistic(data.counts, self.references(data))

    def statistic(self, counts: np.ndarray, refs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def save(self, directory: Path) -> None:
        if self.ref_runs_ is None or self.ref_counts_ is None:
            raise RuntimeError("test is not fitted")
        np.savez_compressed(directory / "reference.npz", runs=self.ref_runs_, counts=self.ref_counts_)
        (directory / "summary.json").write_text(json.dumps({"reference_runs": len(self.ref_runs_)}))

    @classmethod
    def load(cls, directory: Path, params: Params) -> Self:
        model = cls(params)
        with np.load(directory / "reference.npz") as stored:
            model.ref_runs_, model.ref_counts_ = stored["runs"], stored["counts"]
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
    """Mean squared pull between data and scaled reference over non-empty bins (AutoDQM)."""

    def statistic(self, counts: np.ndarray, refs: np.ndarray) -> np.ndarray:
        d = counts.reshape(len(counts), -1)
        r = refs.reshape(len(refs), -1)
        nd, nr = d.sum(axis=1, keepdims=True), r.sum(axis=1, keepdims=True)
        s = np.divide(nd, nr, out=np.zeros_like(nd), where=nr > 0)
        var = d + s**2 * r
        filled = var > 0
        pull2 = np.divide((d - s * r) ** 2, var, out=np.zeros_like(d), where=filled)
        n = filled.sum(axis=1)
        chi2 = np.divide(pull2.sum(axis=1), n, out=np.zeros(len(d)), where=n > 0)
        # A run that is empty where its reference is not is maximally different.
        chi2[(nd[:, 0] == 0) & (nr[:, 0] > 0)] = np.inf
        return chi2
