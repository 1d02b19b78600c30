from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from dqmflow.metrics import (
    bootstrap_roc,
    clip_infinite,
    empirical_pvalues,
    false_alarm_rates,
    roc_auc,
    run_level_scores,
)


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_scikit_learn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=300), 1)
    labels = rng.integers(0, 2, size=300)
    assert roc_auc(scores, labels)[2] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_infinite_scores_are_clipped_and_nan_and_unlabelled_dropped() -> None:
    clipped = clip_infinite(np.array([1.0, np.inf, -np.inf, np.nan, 3.0]))
    assert clipped[1] > 3.0 and clipped[2] < 1.0 and np.isnan(clipped[3])
    scores = np.array([0.1, 0.2, np.inf, np.nan, 5.0])
    labels = np.array([0, 0, 1, 1, -1])
    assert roc_auc(scores, labels)[2] == 1.0


def test_bootstrap_band_and_auc_error() -> None:
    rng = np.random.default_rng(1)
    good, bad = rng.normal(0, 1, 200), rng.normal(1.5, 1, 50)
    result = bootstrap_roc(np.r_[good, bad], np.r_[np.zeros(200), np.ones(50)], n_bootstrap=300, seed=2)
    assert 0.8 < result.auc < 0.9
    assert 0.01 < result.auc_std < 0.05
    assert np.all(result.tpr_std >= 0) and result.tpr_mean[-1] == pytest.approx(1.0)
    assert (result.n_good, result.n_bad) == (200, 50)
    fpr, tpr = result.best_working_point
    assert 0 < fpr < 1 and 0 < tpr < 1
    only_good = bootstrap_roc(good, np.zeros(200))
    assert np.isnan(only_good.auc)


def test_false_alarm_rate_at_fixed_efficiency() -> None:
    good = np.arange(10.0)  # 0..9
    bad = np.array([5.5, 7.5, 8.5, 20.0])
    table = false_alarm_rates(np.r_[good, bad], np.r_[np.zeros(10), np.ones(4)], (0.5, 0.75, 1.0), n_bootstrap=50)
    # 50%: threshold 8.5 keeps 2 of 4 bad -> good runs >= 8.5: {9} -> 0.1
    # 75%: threshold 7.5 -> {8, 9} -> 0.2 ; 100%: threshold 5.5 -> {6..9} -> 0.4
    assert table["false_alarm_rate"].tolist() == pytest.approx([0.1, 0.2, 0.4])
    assert (table["false_alarm_rate_std"] >= 0).all()


def test_empirical_pvalues() -> None:
    reference = np.arange(1.0, 10.0)  # 9 runs
    p = empirical_pvalues(np.array([0.0, 5.0, 100.0, np.nan]), reference)
    assert p[:3] == pytest.approx([1.0, 6 / 10, 1 / 10])
    assert np.isnan(p[3])


def test_run_level_combination_flags_the_right_runs() -> None:
    rows = []
    rng = np.random.default_rng(0)
    for hist in ("a", "b", "c"):
        for run in range(100):
            split = "train" if run < 60 else "test"
            score = rng.normal() if split == "train" else 0.5 * rng.normal()  # test runs: well inside
            if run == 95 and hist == "b":
                score = 50.0  # one histogram very anomalous
            rows.append(
                {
                    "run_number": run,
                    "year": 2022,
                    "histogram": hist,
                    "score": score,
                    "label": int(run == 95),
                    "split": split,
                }
            )
    rows.append({"run_number": 96, "year": 2022, "histogram": "d", "score": np.nan, "label": 1, "split": "missing"})
    ranking = run_level_scores(pd.DataFrame(rows), alpha=0.05)
    assert set(ranking["run_number"].iloc[:2]) == {95, 96}
    r95 = ranking.set_index("run_number").loc[95]
    assert r95["worst_histogram"] == "b" and r95["min_p"] == pytest.approx(1 / 61)
    assert r95["n_flagged"] >= 1 and not r95["is_train"]
    r96 = ranking.set_index("run_number").loc[96]
    assert r96["worst_histogram"] == "d"  # a missing histogram counts as maximally anomalous


def test_a_run_whose_file_could_not_be_read_has_no_verdict_and_comes_last() -> None:
    rows = []
    for run in range(1, 31):
        for h in ("A/h1", "A/h2"):
            split = "missing" if run == 5 else ("train" if run % 2 else "test")
            score = np.nan if run == 5 else float(run % 7)
            rows.append({"run_number": run, "histogram": h, "score": score, "label": 0, "split": split, "year": 2022})
    ranking = run_level_scores(pd.DataFrame(rows), alpha=0.05)
    last = ranking.iloc[-1]
    assert last["run_number"] == 5 and last["unreadable"] and np.isnan(last["min_p"]) and last["n_flagged"] == 0
    assert not ranking.iloc[:-1]["unreadable"].any()
    empty = run_level_scores(pd.DataFrame(columns=["run_number", "histogram", "score", "label", "split", "year"]))
    assert {"is_train", "low_stats", "unreadable", "min_p"} <= set(empty.columns)
