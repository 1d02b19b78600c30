"""Principal component analysis of unit-area histograms (AutoDQM_ML's PCA).

The histogram is projected on the first ``n_components`` principal components of the training
runs and reconstructed from them; the score is a loss between histogram and reconstruction.
Method: I. T. Jolliffe, *Principal Component Analysis* (2002); applied to DQM in
AutoDQM_ML (CMS, arXiv:2501.13789).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Self

import numpy as np

from dqmflow.algorithms.base import NotEnoughData, ReconstructionAlgorithm, param, register
from dqmflow.algorithms.losses import LossName
from dqmflow.preprocess import HistogramSet


@register("pca")
class PCA(ReconstructionAlgorithm):
    """PCA reconstruction of unit-area histograms."""

    @dataclasses.dataclass(frozen=True)
    class Params:
        n_components: int = param(2, "number of principal components kept", minimum=1)
        loss: LossName = param("sse", "score: loss between histogram and reconstruction")
        top_n: int = param(10, "bins averaged by the mse_top_n loss", minimum=1)

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None
        self.explained_variance_ratio_: np.ndarray | None = None

    def fit(self, data: HistogramSet) -> Self:
        train = data.training
        k = self.params.n_components
        if len(train) <= k:
            raise NotEnoughData(
                f"{data.name.column}: PCA with {k} components needs more than {k} training runs, got {len(train)}"
            )
        x = train.normalised.reshape(len(train), -1)
        from sklearn.decomposition import PCA as SkPCA

        # "auto" picks a truncated solver (covariance eigendecomposition or randomised SVD) when
        # only a few components of many runs x bins are kept; seeded, so refits are identical.
        model = SkPCA(n_components=min(k, x.shape[1]), svd_solver="auto", random_state=0).fit(x)
        self.mean_, self.components_ = model.mean_, model.components_
        self.explained_variance_ratio_ = model.explained_variance_ratio_
        return self

    def latent(self, data: HistogramSet) -> np.ndarray:
        """The runs' coordinates on the principal components."""
        if self.mean_ is None or self.components_ is None:
            raise RuntimeError("PCA model is not fitted")
        return np.asarray((data.normalised.reshape(len(data), -1) - self.mean_) @ self.components_.T)

    def reconstruct(self, data: HistogramSet) -> np.ndarray:
        if self.components_ is None:
            raise RuntimeError("PCA model is not fitted")
        return (self.latent(data) @ self.components_ + self.mean_).reshape(data.counts.shape)

    def save(self, directory: Path) -> None:
        if self.mean_ is None or self.components_ is None or self.explained_variance_ratio_ is None:
            raise RuntimeError("PCA model is not fitted")
        np.savez(
            directory / "pca.npz",
            mean=self.mean_,
            components=self.components_,
            explained_variance_ratio=self.explained_variance_ratio_,
        )
        (directory / "summary.json").write_text(
            json.dumps({"explained_variance_ratio": self.explained_variance_ratio_.tolist()}, indent=1)
        )

    @classmethod
    def load(cls, directory: Path, params: Params) -> Self:
        model = cls(params)
        with np.load(directory / "pca.npz") as stored:
            model.mean_ = stored["mean"]
            model.components_ = stored["components"]
            model.explained_variance_ratio_ = stored["explained_variance_ratio"]
        return model
