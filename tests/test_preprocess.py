from __future__ import annotations

from pathlib import Path

import numpy as np

from dqmflow.demo import plan_runs
from dqmflow.names import HistogramName
from dqmflow.preprocess import assign_split, load_histogram, normalise
from tests.conftest import SMALL


def test_split_is_a_stable_function_of_the_run() -> None:
    runs = range(300000, 302000)
    splits = [assign_split(r, 0, 0.5) for r in runs]
    assert 0.45 < splits.count("train") / len(splits) < 0.55
    assert splits == [assign_split(r, 0, 0.5) for r in runs]  # no dependence on the other runs
    assert splits != [assign_split(r, 1, 0.5) for r in runs]


def test_normalise_unit_area_and_empty_stays_zero() -> None:
    counts = np.array([[1.0, 3.0], [0.0, 0.0]])
    np.testing.assert_allclose(normalise(counts), [[0.25, 0.75], [0.0, 0.0]])
    maps = np.ones((2, 3, 4))
    np.testing.assert_allclose(normalise(maps).sum(axis=(1, 2)), 1.0)


def test_load_histogram_splits(merged_demo: Path) -> None:
    name = HistogramName("CSC", "/Run summary/CSCOfflineMonitor/Occupancy/hORecHits")
    data = load_histogram(merged_demo, name, min_entries=10_000, train_fraction=0.5, seed=0)
    plans = {p.run: p for p in plan_runs(SMALL)}
    assert data.counts.shape == (len(plans), 36, 18)
    assert not np.any((data.labels == 1) & (data.split == "train")), "bad runs are never trained on"
    short = {r for r, p in plans.items() if p.lumi < 0.1}
    assert set(data.runs[data.split == "low_stats"]) == short
    assert set(data.split) <= {"train", "test", "low_stats"}
    assert (data.entries[data.split == "train"] >= 10_000).all()
    np.testing.assert_allclose(data.training.normalised.sum(axis=(1, 2)), 1.0)
    stricter = load_histogram(merged_demo, name, min_entries=1e9)
    assert (stricter.split == "low_stats").all()


def test_an_empty_histogram_in_a_full_run_is_evaluated_not_cut(merged_demo: Path) -> None:
    empty = [p for p in plan_runs(SMALL) if p.anomaly == "empty_histogram" and p.lumi > 0.1]
    name = HistogramName("L1T", "/Run summary/L1TStage2EMTF/emtfTrackQualityVsMode")
    data = load_histogram(merged_demo, name)
    for plan in empty:
        i = list(data.runs).index(plan.run)
        assert data.entries[i] == 0 and data.split[i] == "test"
