"""The beta-binomial test (AutoDQM): its pulls, trials factor, references and model jobs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats

from dqmflow.algorithms import get_algorithm, load_config
from dqmflow.algorithms.base import build_params
from dqmflow.algorithms.beta_binomial import bin_pulls, max_pull_sigma, select_references
from dqmflow.models import ChunkScores, Preprocessing, score_chunk, train_chunk
from tests.test_algorithms import synthetic
from tests.test_models import PHI, QUALITY, outputs


def autodqm_pull(k: float, n: float, r: float, big_r: float, tol: float) -> float:
    """AutoDQM's definition, written out with scipy.stats.betabinom for one bin and one reference."""
    scale = (1 + (r * tol**2) ** 2) ** -0.5

    def prob(x: float) -> float:
        return float(stats.betabinom.pmf(x, n, r * scale + 1, (big_r - r) * scale + 1))

    mean = n * r / big_r
    best = max(prob(min(np.ceil(mean), n)), prob(max(np.floor(mean), 0)))
    ratio = min(prob(k) / best, 1.0)
    return float(np.sqrt(stats.chi2.isf(ratio, 1)) * np.sign(k / n - r / big_r))


@pytest.mark.parametrize(
    ("k", "r", "tol"), [(30, 30, 0.0), (45, 30, 0.0), (12, 30, 0.01), (700, 500, 0.01), (0, 20, 0)]
)
def test_a_bin_pull_is_autodqm_s_beta_binomial_significance(k: int, r: int, tol: float) -> None:
    counts = np.array([[k, 1000.0 - k]])
    refs = np.array([[[r, 1000.0 - r]]])
    pulls, used = bin_pulls(counts, refs, tol)
    assert used.all()
    assert pulls[0, 0] == pytest.approx(autodqm_pull(k, 1000, r, 1000, tol), rel=1e-6, abs=1e-6)


def test_the_tolerance_floors_the_precision_of_high_statistics_bins() -> None:
    counts = np.array([[1.02e6, 1e6]])  # a 1% excess in a bin of a million entries
    refs = np.array([[[1e6, 1e6]]])
    exact = abs(bin_pulls(counts, refs, 0.0)[0][0, 0])
    floored = abs(bin_pulls(counts, refs, 0.01)[0][0, 0])
    assert exact > 5 and floored < exact / 3


def test_several_references_are_averaged_bin_by_bin() -> None:
    counts = np.array([[100.0, 100.0]])
    agreeing, disagreeing = [100.0, 100.0], [160.0, 40.0]
    one = abs(bin_pulls(counts, np.array([[disagreeing]]), 0.0)[0][0, 0])
    mixed = abs(bin_pulls(counts, np.array([[agreeing, disagreeing]]), 0.0)[0][0, 0])
    assert mixed < one / 2, "one good reference among several keeps a bin from being flagged"
    # A reference with no entries carries no information and is ignored.
    np.testing.assert_allclose(
        bin_pulls(counts, np.array([[agreeing, [0.0, 0.0]]]), 0.0)[0], bin_pulls(counts, np.array([[agreeing]]), 0.0)[0]
    )


def test_max_pull_is_corrected_for_the_number_of_bins() -> None:
    z = np.array([4.0, 4.0, 4.0, 40.0])
    bins = np.array([1, 100, 10_000, 10_000])
    corrected = max_pull_sigma(z, bins)
    assert corrected[0] == pytest.approx(4.0, rel=1e-9)
    p = stats.chi2.sf(16, 1)
    assert corrected[1] == pytest.approx(np.sqrt(stats.chi2.isf(1 - (1 - p) ** 100, 1)), rel=1e-6)
    assert corrected[2] < corrected[1] < 4.0
    assert 38 < corrected[3] < 40, "no underflow or cap for a dead sector"


def test_references_follow_the_strategy_and_never_the_run_itself() -> None:
    pool = np.array([10, 20, 30, 40, 50])
    entries = np.array([1.0, 5.0, 2.0, 9.0, 4.0])
    index = select_references(np.array([35, 30, 5]), np.zeros(3), pool, entries, "previous_good", 2)
    assert pool[index].tolist() == [[20, 30], [10, 20], [10, 20]]  # before; itself excluded; after when none before
    index = select_references(np.array([10]), np.array([0.0]), pool, entries, "previous_good", 9)
    assert sorted(pool[index[index >= 0]]) == [20, 30, 40, 50] and (index < 0).sum() == 5
    index = select_references(np.array([30, 99]), np.array([2.0, 8.0]), pool, entries, "similar_entries", 2)
    assert sorted(pool[index[0]]) == [10, 50] and sorted(pool[index[1]]) == [20, 40]
    index = select_references(np.array([20, 60]), np.zeros(2), np.array([20, 40]), np.zeros(2), "fixed_runs", 2)
    assert index[0].tolist() == [1, -1] and index[1].tolist() == [0, 1]


def test_detects_dead_region_in_1d_and_2d_and_does_not_flag_poisson_noise(rng) -> None:
    from dqmflow.metrics import roc_auc

    cls = get_algorithm("beta_binomial")
    for statistic in ("chi2", "max_pull"):
        for shape in [(40,), (8, 5)]:
            data = synthetic(rng, shape=shape)
            model = cls(build_params(cls, {"statistic": statistic}, "t")).fit(data)
            test = data.split == "test"
            assert roc_auc(model.score(data)[test], data.labels[test])[2] > 0.99
    # Pure Poisson noise: a trials-corrected max pull above 3 sigma is as rare as it claims (p = 0.27%).
    good = synthetic(rng, n=400, n_bad=0)
    scores = cls(build_params(cls, {"statistic": "max_pull", "tolerance": 0.0}, "t")).fit(good).score(good)
    assert np.mean(scores > 3.0) <= 0.01, np.sort(scores)[-5:]


def test_a_model_stores_its_pool_not_the_counts(rng, tmp_path: Path) -> None:
    from dqmflow.preprocess import HistogramSet

    big = synthetic(rng, n=200, n_bad=10, shape=(60, 50))
    cls = get_algorithm("beta_binomial")
    model = cls(build_params(cls, {}, "t")).fit(big)
    model.save(tmp_path)
    assert sum(f.stat().st_size for f in tmp_path.iterdir()) < 10_000, "a few kB for 200 runs x 3000 bins"
    again = cls.load(tmp_path, model.params)
    np.testing.assert_allclose(again.score(big), model.score(big))
    # A run whose references were not loaded is not scored (the model job loads them).
    alone = big.subset(big.runs == big.runs[-1])
    assert isinstance(alone, HistogramSet) and np.isnan(again.score(alone)).all()
    needed = again.runs_needed(alone.runs, alone.entries)
    with_refs = big.subset(np.isin(big.runs, [*needed, big.runs[-1]]))
    assert len(needed) == 4
    assert again.score(with_refs)[-1] == pytest.approx(model.score(big)[-1])


def test_fixed_reference_runs_are_validated(rng) -> None:
    cls = get_algorithm("beta_binomial")
    data = synthetic(rng, n=20, n_bad=2)
    with pytest.raises(ValueError, match="needs reference_runs"):
        cls(build_params(cls, {"reference": "fixed_runs"}, "t"))
    model = cls(build_params(cls, {"reference": "fixed_runs", "reference_runs": [1003, 1005]}, "t")).fit(data)
    assert model.pool_runs_.tolist() == [1003, 1005]
    from dqmflow.algorithms.base import ConfigError

    with pytest.raises(ConfigError, match=r"reference_runs\[1\] must be an integer"):
        build_params(cls, {"reference_runs": [1003, "x"]}, "t")


def test_model_jobs_load_references_when_scoring_new_runs_only(demo_store: Path, tmp_path: Path) -> None:
    """Incremental scoring reads each new run's references from storage and gives the scores a
    full scoring gives; relabelling a reference run bad rescores and drops it."""
    config = load_config(Path(__file__).resolve().parents[1] / "config" / "algorithms" / "beta_binomial.yaml")
    prep = Preprocessing()
    runs_path, storage = demo_store / "runs.parquet", demo_store / "data" / "L1T.parquet"
    models = outputs(tmp_path, [QUALITY, PHI], "models")
    infos = train_chunk(runs_path, storage, config, prep, models, tmp_path / "rec.json")
    assert {i["status"] for i in infos.values()} == {"trained"}

    def score(runs: Path, name: str) -> ChunkScores:
        return score_chunk(runs, storage, config, prep, models, outputs(tmp_path / name, [QUALITY, PHI], "s", ".p"),
                           outputs(tmp_path / name, [QUALITY, PHI], "r", ".p"), record=tmp_path / "rec.json",
                           cache=tmp_path / "cache.parquet", n_reconstructed=3)  # fmt: skip

    first = score(runs_path, "a")
    frame = first.table.to_pandas()
    scored = frame[frame["split"].isin(["train", "calibration", "test"])]
    assert scored["score"].notna().all()
    table = pq.read_table(runs_path).to_pandas()
    changed = int(table.loc[table["split"] == "test", "run_number"].iloc[-1])
    table.loc[table["run_number"] == changed, "signature"] = "/eos/reprocessed.root|1|2"
    table.to_parquet(tmp_path / "runs.parquet", index=False)
    again = score(tmp_path / "runs.parquet", "b")
    assert again.scored_runs == 1
    pd.testing.assert_frame_equal(first.table.to_pandas(), again.table.to_pandas())
    reco = pd.read_parquet(tmp_path / "b" / "r" / f"{PHI.slug}.p")
    assert len(reco) >= 3 and all(np.isclose(np.sum(r), 1.0, rtol=1e-4) for r in reco["reconstruction"])
    # A training run relabelled bad leaves the pool: every run is scored again without it.
    pool = np.load(models[PHI.column] / "pool.npz")["runs"]
    table.loc[table["run_number"] == int(pool[0]), "label"] = 1
    table.to_parquet(tmp_path / "runs.parquet", index=False)
    third = score(tmp_path / "runs.parquet", "c")
    assert third.scored_runs == len(table)


def test_excluded_or_empty_references_give_nan_or_the_next_reference_never_a_fake_score(rng) -> None:
    from dqmflow.runtable import RunTable

    data = synthetic(rng, n=40, n_bad=4)
    cls = get_algorithm("beta_binomial")
    model = cls(build_params(cls, {}, "t")).fit(data)
    column = data.name.column

    def table(labels: np.ndarray, entries: np.ndarray) -> RunTable:
        n = len(data)
        return RunTable(data.runs, data.years, labels, data.split, {column: entries}, np.full(n, "f", dtype=object))

    full = model.score(data)
    # A reference without this histogram leaves the pool: the runs after it take the next one.
    lost = int(model.pool_runs_[5])
    entries = data.entries.copy()
    entries[data.runs == lost] = np.nan
    model.bind(table(data.labels, entries), column)
    assert lost not in model.runs_needed(data.runs, data.entries)
    assert np.isfinite(model.score(data)).all()
    # Every reference relabelled bad: nothing to compare with, every run NaN (no crash, no zero).
    model.bind(table(np.ones(len(data), dtype=int), data.entries), column)
    assert len(model.runs_needed(data.runs, data.entries)) == 0 and np.isnan(model.score(data)).all()
    # An empty reference histogram: the runs using it are not scored.
    model.bind(table(data.labels, data.entries), column)
    np.testing.assert_allclose(model.score(data), full)
    counts = data.counts.copy()
    counts[data.runs == int(model.pool_runs_[0])] = 0.0
    emptied = dataclasses.replace(data, counts=counts)
    scores = model.score(emptied)
    assert np.isnan(scores).any() and np.isfinite(scores).sum() > len(data) // 2


def test_no_runs_to_score_gives_empty_results(rng) -> None:
    """A batch where every run lacks the histogram leaves nothing to score: empty, not a crash."""
    data = synthetic(rng, n=30, n_bad=3, shape=(6, 5))
    cls = get_algorithm("beta_binomial")
    model = cls(build_params(cls, {}, "t")).fit(data)
    none = data.subset(np.zeros(len(data), dtype=bool))
    assert model.score(none).shape == (0,) and model.reconstruct(none).shape == (0, 6, 5)
