"""Non-negative matrix factorisation of unit-area histograms (CMS ML4DQM tools).

A histogram is approximated by a non-negative combination of ``n_components`` non-negative
templates learned from the training runs, ``x ~ w H``; the score is a loss between the histogram
and its reconstruction ``w H`` (scaled to unit area). Unlike PCA, every template and weight is non-negative, so the
reconstruction is itself a histogram-like shape. Method: D. D. Lee and H. S. Seung, *Nature* 401
(1999) 788; scikit-learn's ``NMF`` (coordinate descent, ``nndsvda`` initialisation: deterministic).
Scoring solves for ``w`` with the learned ``H`` fixed (``non_negative_factorization``).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Self

import numpy as np

from dqmflow.algorithms.base import NotEnoughData, ReconstructionAlgorithm, param, register
from dqmflow.algorithms.losses import LossName
from dqmflow.preprocess import HistogramSet


@register("nmf")
class NMF(ReconstructionAlgorithm):
    """NMF reconstruction of unit-area histograms (same contract as PCA)."""

    @dataclasses.dataclass(frozen=True)
    class Params:
        n_components: int = param(3, "number of non-negative templates", minimum=1)
        max_iter: int = param(500, "coordinate-descent iterations (fit and scoring)", minimum=10)
        loss: LossName = param("sse", "score: loss between histogram and reconstruction")
        top_n: int = param(10, "bins of the top-n losses (mse_top_n, chi2_top_n)", minimum=1)

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.components_: np.ndarray | None = None

    def fit(self, data: HistogramSet) -> Self:
        train = data.training
        k = self.params.n_components
        if len(train) <= k:
            raise NotEnoughData(
                f"{data.name.column}: NMF with {k} components needs more than {k} training runs, got {len(train)}"
            )
        from sklearn.decomposition import NMF as SkNMF

        x = np.clip(train.normalised.reshape(len(train), -1), 0.0, None)
        model = SkNMF(n_components=min(k, x.shape[1]), init="nndsvda", max_iter=self.params.max_iter, random_state=0)
        with warnings.catch_warnings():  # not converged within max_iter: the templates are still usable
            warnings.simplefilter("ignore")
            model.fit(x)
        self.components_ = np.asarray(model.components_)
        return self

    def latent(self, data: HistogramSet) -> np.ndarray:
        """The runs' non-negative weights on the templates."""
        if self.components_ is None:
            raise RuntimeError("NMF model is not fitted")
        from sklearn.decomposition import non_negative_factorization

        x = np.clip(data.normalised.reshape(len(data), -1), 0.0, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            weights, _, _ = non_negative_factorization(
                x, H=self.components_, n_components=len(self.components_), update_H=False,
                max_iter=self.params.max_iter,
            )  # fmt: skip
        return np.asarray(weights)

    def reconstruct(self, data: HistogramSet) -> np.ndarray:
        if self.components_ is None:
            raise RuntimeError("NMF model is not fitted")
        reco = self.latent(data) @ self.components_
        total = reco.sum(axis=1, keepdims=True)  # a shape: unit area, as every reconstruction
        reco = np.divide(reco, total, out=np.zeros_like(reco), where=total > 0)
        return reco.reshape(data.counts.shape)

    def save(self, directory: Path) -> None:
        if self.components_ is None:
            raise RuntimeError("NMF model is not fitted")
        np.savez(directory / "nmf.npz", components=self.components_)
        (directory / "summary.json").write_text(json.dumps({"n_components": len(self.components_)}))

    @classmethod
    def load(cls, directory: Path, params: Params) -> Self:
        model = cls(params)
        with np.load(directory / "nmf.npz") as stored:
            model.components_ = stored["components"]
        return model
