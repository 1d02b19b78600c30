"""Seed ensembles: one model per seed, the median score with a 68% band, AUC over seeds."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd
import pytest

from dqmflow.algorithms import base
from dqmflow.algorithms.base import AlgorithmConfig, ConfigError, ReconstructionAlgorithm, load_config, param
from dqmflow.assess import Settings, assess_histograms
from dqmflow.models import Preprocessing, score_chunk, train_chunk
from dqmflow.preprocess import HistogramSet
from tests.conftest import REPO
from tests.test_algorithms import synthetic
from tests.test_models import PHI, QUALITY, outputs


class SubsampledMean(ReconstructionAlgorithm):
    """A stochastic reconstruction: the mean shape of a seeded random half of the training runs."""

    name = "subsampled_mean_test"

    @dataclasses.dataclass(frozen=True)
    class Params:
        seed: int = param(0, "which half of the training runs")
        loss: str = param("sse", "loss")
        top_n: int = param(5, "bins of the top-n losses", minimum=1)

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.mean_: np.ndarray | None = None

    def fit(self, data: HistogramSet) -> Self:
        train = data.training
        pick = np.random.default_rng(self.params.seed).random(len(train)) < 0.5
        self.mean_ = train.normalised[pick].mean(axis=0)
        return self

    def reconstruct(self, data: HistogramSet) -> np.ndarray:
        assert self.mean_ is not None
        return np.broadcast_to(self.mean_, data.counts.shape).copy()

    def save(self, directory: Path) -> None:
        assert self.mean_ is not None
        np.save(directory / "mean.npy", self.mean_)

    @classmethod
    def load(cls, directory: Path, params: Params) -> Self:
        model = cls(params)
        model.mean_ = np.load(directory / "mean.npy")
        return model


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> type[SubsampledMean]:
    base.get_algorithm("pca")  # fill the registry first
    monkeypatch.setitem(base.REGISTRY, SubsampledMean.name, SubsampledMean)
    return SubsampledMean


def test_seeds_are_validated_when_the_config_is_read(tmp_path: Path, registered: type) -> None:
    path = tmp_path / "ens.yaml"
    path.write_text("algorithm: subsampled_mean_test\nseeds: [1, 2, 3]\n")
    config = load_config(path)
    assert config.seeds == (1, 2, 3) and config.as_dict()["seeds"] == [1, 2, 3]
    for text, message in [
        ("algorithm: pca\nseeds: [1, 2]\n", "pca is not stochastic"),
        ("algorithm: subsampled_mean_test\nseeds: [1]\n", "at least two different integers"),
        ("algorithm: subsampled_mean_test\nseeds: [1, 1]\n", "at least two different integers"),
        ("algorithm: subsampled_mean_test\nseeds: 3\n", "seeds must be a list of integers"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(path)
    assert "seeds" not in load_config(REPO / "config" / "algorithms" / "autoencoder.yaml").as_dict()


def test_an_ensemble_scores_the_median_with_a_band_and_every_seed(
    demo_store: Path, tmp_path: Path, registered: type
) -> None:
    config = AlgorithmConfig("ens", registered.name, registered.Params(), seeds=(4, 5, 6))
    names = [QUALITY, PHI]
    models = outputs(tmp_path, names, "models")
    runs, storage = demo_store / "runs.parquet", demo_store / "data" / "L1T.parquet"
    prep = Preprocessing()
    infos = train_chunk(runs, storage, config, prep, models, tmp_path / "rec.json")
    assert {i["status"] for i in infos.values()} == {"trained"}
    assert all((models[n.column] / f"seed_{s}" / "mean.npy").exists() for n in names for s in (4, 5, 6))
    args = (outputs(tmp_path, names, "scores", ".parquet"), outputs(tmp_path, names, "reco", ".parquet"))
    frame = score_chunk(runs, storage, config, prep, models, *args, record=tmp_path / "rec.json",
                        cache=tmp_path / "cache.parquet").table.to_pandas()  # fmt: skip
    seeds = frame[["score_seed_4", "score_seed_5", "score_seed_6"]].to_numpy()
    scored = np.isfinite(seeds).all(axis=1) & np.isfinite(frame["score"].to_numpy())  # empty histograms: +inf
    assert scored.mean() > 0.8
    np.testing.assert_allclose(frame["score"].to_numpy()[scored], np.median(seeds[scored], axis=1))
    assert (frame["score_lo"][scored] <= frame["score"][scored]).all()
    assert (frame["score"][scored] <= frame["score_hi"][scored]).all()
    assert (seeds[scored].std(axis=1) > 0).mean() > 0.5, "different seeds give different scores"
    empty = np.isinf(frame["score"].to_numpy())
    assert empty.any(), "the demo has empty histograms"
    band = frame.loc[empty, ["score_lo", "score_hi"]].to_numpy()
    assert np.isposinf(seeds[empty]).all() and np.isposinf(band).all(), "an empty histogram is +inf for every seed"
    again = score_chunk(runs, storage, config, prep, models, *args, record=tmp_path / "rec.json",
                        cache=tmp_path / "cache.parquet")  # fmt: skip
    assert again.scored_runs == 0, "an unchanged ensemble reuses every score, seeds included"
    pd.testing.assert_frame_equal(again.table.to_pandas(), frame)


def test_the_assessment_reports_auc_over_seeds_next_to_the_bootstrap(rng: np.random.Generator) -> None:
    data = synthetic(rng, n=160, n_bad=30)
    runs = data.runs
    rows = []
    for seed in range(5):
        noise = np.random.default_rng(seed).normal(0, 0.5 + 0.3 * seed, len(runs))
        rows.append(data.labels * 2.0 + rng.normal(size=len(runs)) + noise)
    seeds = np.stack(rows, axis=1)
    table = pd.DataFrame(
        {
            "run_number": runs,
            "histogram": "T//Run summary/h",
            "algorithm": "ens",
            "score": np.median(seeds, axis=1),
            "label": data.labels,
            "split": np.where(data.split == "train", "calibration", "test"),
        }
    )
    for k in range(5):
        table[f"score_seed_{k}"] = seeds[:, k]
    result = assess_histograms(table, None, Settings(n_bootstrap=20))
    row = result.metrics.iloc[0]
    assert row["n_seeds"] == 5
    assert row["auc_seed_lo"] < row["auc_seed_median"] < row["auc_seed_hi"]
    assert row["auc_seed_lo"] > 0.6 and row["auc_seed_hi"] <= 1.0
