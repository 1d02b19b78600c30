from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dqmflow.algorithms import load_config
from dqmflow.demo import plan_runs
from dqmflow.models import Preprocessing, collect_scores, score_model, train_model
from dqmflow.names import HistogramName
from tests.conftest import REPO, SMALL

QUALITY = HistogramName("L1T", "/Run summary/L1TStage2EMTF/emtfTrackQualityVsMode")


def test_train_and_score_every_run(merged_demo: Path, tmp_path: Path) -> None:
    config = load_config(REPO / "config" / "algorithms" / "pca_5.yaml")
    prep = Preprocessing()
    info = train_model(merged_demo, QUALITY, config, prep, tmp_path / "model")
    assert info["status"] == "trained" and info["runs"]["train"] > 5
    assert json.loads((tmp_path / "model" / "model.json").read_text())["tag"] == "pca_5"
    frame = score_model(merged_demo, QUALITY, config, prep, tmp_path / "model", tmp_path / "s.parquet")
    assert len(frame) == len(plan_runs(SMALL))
    empty = {p.run for p in plan_runs(SMALL) if p.anomaly == "empty_histogram" and p.lumi > 0.1}
    assert empty, "the small demo has an empty-histogram anomaly"
    rows = frame.set_index("run_number").loc[sorted(empty)]
    assert np.isinf(rows["score"]).all() and (rows["split"] == "test").all()
    full = pd.read_parquet(tmp_path / "s.parquet")
    assert full["reconstruction"].notna().sum() == frame["score"].notna().sum()
    collected = collect_scores([tmp_path / "s.parquet"], tmp_path / "all.parquet")
    assert "reconstruction" not in collected.columns and len(collected) == len(frame)


def test_untrainable_histogram_is_recorded_and_scored_nan(merged_demo: Path, tmp_path: Path) -> None:
    config = load_config(REPO / "config" / "algorithms" / "pca_5.yaml")
    prep = Preprocessing(train_fraction=0.01)  # almost no training run: PCA with 5 components cannot fit
    info = train_model(merged_demo, QUALITY, config, prep, tmp_path / "model")
    assert info["status"] == "failed" and "training runs" in info["error"]
    frame = score_model(merged_demo, QUALITY, config, prep, tmp_path / "model", tmp_path / "s.parquet")
    assert len(frame) == len(plan_runs(SMALL)) and frame["score"].isna().all()
    never_read = HistogramName("L1T", "/Run summary/NoSuchFolder/h")
    info = train_model(merged_demo, never_read, config, prep, tmp_path / "m2")
    assert info["status"] == "failed" and "was not read from any file" in info["error"]
    frame = score_model(merged_demo, never_read, config, prep, tmp_path / "m2", tmp_path / "s2.parquet")
    assert (frame["split"] == "missing").all() and len(frame) == len(plan_runs(SMALL))
