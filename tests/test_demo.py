from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import uproot

from dqmflow.demo import ANOMALIES, HISTOGRAMS, DemoSpec, demo_contents, demo_datasets, plan_runs, write_demo
from dqmflow.metadata import load_contents, load_datasets
from tests.conftest import REPO, SMALL


def test_default_demo_config_matches_the_generator() -> None:
    spec = DemoSpec()
    plans = plan_runs(spec)
    assert json.loads((REPO / "config/demo/datasets.json").read_text()) == demo_datasets(spec, plans)
    assert json.loads((REPO / "config/demo/contents.json").read_text()) == demo_contents()
    assert len(load_contents(REPO / "config/demo/contents.json")) == len(HISTOGRAMS)
    datasets = load_datasets(REPO / "config/demo/datasets.json")
    assert datasets.bad_runs == {p.run for p in plans if p.anomaly}


def test_demo_size_and_variety() -> None:
    plans = plan_runs(DemoSpec())
    assert len(plans) == 320 and {p.year for p in plans} == {2017, 2018}
    assert sum(1 for s in HISTOGRAMS if len(s.edges) == 1) >= 10
    assert sum(1 for s in HISTOGRAMS if len(s.edges) == 2) >= 3
    assert {s.subsystem for s in HISTOGRAMS} == {"CSC", "L1T"}
    assert all(len(s.axis_titles) == len(s.edges) and all(s.axis_titles) for s in HISTOGRAMS), "axis titles"
    kinds = {p.anomaly for p in plans if p.anomaly}
    assert kinds == set(ANOMALIES)
    assert any(p.lumi < 0.1 for p in plans), "some low-statistics runs"
    assert len({p.era for p in plans}) >= 4


def test_demo_is_deterministic_and_follows_the_dqm_gui_convention(demo_tree: Path, tmp_path: Path) -> None:
    files = sorted((demo_tree / "DQMGUI_data").rglob("*.root"))
    plan = plan_runs(SMALL)[0]
    expected = f"Run{plan.year}/SingleMuon/R{plan.run // 100:07d}xx/DQM_V0001_R{plan.run:09d}__SingleMuon__" \
               f"Run{plan.year}{plan.era}-{plan.processing}__DQMIO.root"  # fmt: skip
    assert (demo_tree / "DQMGUI_data" / expected).exists()
    write_demo(tmp_path, SMALL)
    again = sorted((tmp_path / "DQMGUI_data").rglob("*.root"))
    assert [f.name for f in files] == [f.name for f in again]
    key = f"DQMData/Run {plan.run}/L1T/Run summary/L1TStage2EMTF/emtfTrackEta"
    with uproot.open(demo_tree / "DQMGUI_data" / expected) as a, uproot.open(tmp_path / "DQMGUI_data" / expected) as b:
        np.testing.assert_array_equal(a[key].values(), b[key].values())
        assert a[key].classname == "TH1F"
        assert a[key.replace("emtfTrackEta", "emtfTrackOccupancy")].classname == "TH2F"
        # ROOT axis titles (TAxis fTitle) are written as DQM has them
        assert a[key].member("fXaxis").member("fTitle") == "track #eta"
        rechits = f"DQMData/Run {plan.run}/CSC/Run summary/CSCOfflineMonitor/Occupancy/hORecHits"
        axes = [a[rechits].member(m).member("fTitle") for m in ("fXaxis", "fYaxis")]
        assert axes == ["chamber", "station-ring"]
        eta = a[key].values()
        centers = a[key].axis().centers()
        assert eta[np.abs(centers) < 1.1].sum() == 0, "EMTF sees no tracks in the barrel"


def test_truth_lists_affected_histograms(demo_tree: Path) -> None:
    truth = pd.read_csv(demo_tree / "truth.csv", keep_default_na=False)
    per_run = truth[truth["histogram"] == ""]
    assert len(per_run) == len(plan_runs(SMALL))
    affected = truth[truth["histogram"] != ""]
    columns = {s.name.column for s in HISTOGRAMS}
    assert set(affected["histogram"]) <= columns
    for row in affected.itertuples():
        assert row.anomaly in ANOMALIES
