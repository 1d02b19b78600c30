from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dqmflow.demo import plan_runs
from dqmflow.names import HistogramName
from dqmflow.preprocess import load_batch, normalise
from dqmflow.runtable import assign_split, build_run_table
from tests.conftest import SMALL

OCCUPANCY = HistogramName("CSC", "/Run summary/CSCOfflineMonitor/Occupancy/hORecHits")
SEGMENTS = HistogramName("CSC", "/Run summary/CSCOfflineMonitor/Segments/hSnSegments")


def test_split_is_a_stable_function_of_the_run() -> None:
    runs = range(300000, 302000)
    splits = [assign_split(r, 0, 0.5, 0.2) for r in runs]
    assert 0.45 < splits.count("train") / len(splits) < 0.55
    assert 0.15 < splits.count("calibration") / len(splits) < 0.25
    assert splits == [assign_split(r, 0, 0.5, 0.2) for r in runs]  # no dependence on the other runs
    assert splits != [assign_split(r, 1, 0.5, 0.2) for r in runs]
    # Without a calibration share, train is the same and calibration runs become test.
    assert [s == "train" for s in splits] == [assign_split(r, 0, 0.5) == "train" for r in runs]


def test_normalise_unit_area_and_empty_stays_zero() -> None:
    counts = np.array([[1.0, 3.0], [0.0, 0.0]])
    np.testing.assert_allclose(normalise(counts), [[0.25, 0.75], [0.0, 0.0]])
    maps = np.ones((2, 3, 4))
    np.testing.assert_allclose(normalise(maps).sum(axis=(1, 2)), 1.0)


def test_run_table_decides_one_split_per_run(demo_store: Path) -> None:
    runs = pd.read_parquet(demo_store / "runs.parquet").set_index("run_number")
    plans = {p.run: p for p in plan_runs(SMALL)}
    assert set(runs.index) == set(plans)
    assert set(runs["split"]) <= {"train", "calibration", "test", "low_stats", "missing"}
    assert not ((runs["label"] == 1) & runs["split"].isin(("train", "calibration"))).any(), "bad runs only in test"
    assert set(runs.index[runs["split"] == "low_stats"]) == {r for r, p in plans.items() if p.lumi < 0.1}
    assert f"{OCCUPANCY.column}_entries" in runs.columns


def test_run_table_rejects_fractions_that_leave_no_test_run(demo_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be below 1"):
        build_run_table(
            demo_store / "entries.parquet", tmp_path / "r.parquet", train_fraction=0.8, calibration_fraction=0.2
        )


def test_load_batch_reads_several_histograms_of_the_same_runs(demo_store: Path) -> None:
    batch = load_batch(
        demo_store / "runs.parquet", demo_store / "data" / "CSC.parquet", [OCCUPANCY.column, SEGMENTS.column]
    )
    plans = {p.run: p for p in plan_runs(SMALL)}
    occupancy = batch[OCCUPANCY.column]
    assert occupancy.counts.shape == (len(plans), 36, 18)
    assert batch[SEGMENTS.column].counts.ndim == 2 and list(batch[SEGMENTS.column].runs) == list(occupancy.runs)
    assert not np.any((occupancy.labels == 1) & (occupancy.split == "train")), "bad runs are never trained on"
    assert (occupancy.entries[occupancy.split == "train"] >= 10_000).all()
    np.testing.assert_allclose(occupancy.training.normalised.sum(axis=(1, 2)), 1.0)
    stricter = load_batch(demo_store / "runs.parquet", demo_store / "data" / "CSC.parquet", [OCCUPANCY.column],
                          min_entries=1e9)  # fmt: skip
    assert not (stricter[OCCUPANCY.column].split == "train").any()


def test_an_empty_histogram_in_a_full_run_is_evaluated_not_trained(demo_store: Path) -> None:
    empty = [p for p in plan_runs(SMALL) if p.anomaly == "empty_histogram" and p.lumi > 0.1]
    name = HistogramName("L1T", "/Run summary/L1TStage2EMTF/emtfTrackQualityVsMode")
    data = load_batch(demo_store / "runs.parquet", demo_store / "data" / "L1T.parquet", [name.column])[name.column]
    for plan in empty:
        i = list(data.runs).index(plan.run)
        assert data.entries[i] == 0 and data.split[i] == "test"


def test_a_histogram_no_file_contained_is_reported_never_read(demo_store: Path) -> None:
    column = "CSC//Run summary/NoSuchFolder/h"
    batch = load_batch(demo_store / "runs.parquet", demo_store / "data" / "CSC.parquet", [OCCUPANCY.column, column])
    assert batch.never_read == (column,) and batch.columns == [OCCUPANCY.column]
