from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dqmflow.metrics import (
    bootstrap_roc,
    clip_infinite,
    false_alarm_rates,
    roc_auc,
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


def test_bootstrap_on_ranks_equals_the_bootstrap_on_scores() -> None:
    """Resampling the scores' ranks (small integers, sorted 10x faster) gives bit for bit the ROC
    band and false-alarm spread of resampling the scores, ties included; and the ROC band and the
    false-alarm rates share their resamples."""
    from dqmflow import metrics

    rng = np.random.default_rng(5)
    scores = np.r_[np.round(rng.normal(0, 1, 300), 1), np.round(rng.normal(1, 1, 60), 1), np.inf]  # ties, an inf
    labels = np.r_[np.zeros(300), np.ones(61)]
    result = bootstrap_roc(scores, labels, n_bootstrap=100, seed=3)
    s, y = metrics._usable(scores, labels)
    draws = np.random.default_rng(3)
    good, bad = s[y == 0], s[y == 1]
    goods = good[draws.integers(0, len(good), (100, len(good)))]
    bads = bad[draws.integers(0, len(bad), (100, len(bad)))]
    aucs, curves = metrics._aucs_and_curves(np.concatenate([goods, bads], axis=1), np.r_[np.zeros(300), np.ones(61)])
    assert result.auc_std == float(np.std(aucs))
    np.testing.assert_array_equal(result.tpr_mean, curves.mean(axis=0))
    table = false_alarm_rates(scores, labels, (0.5, 0.9), n_bootstrap=100, seed=3)
    for eff, spread in zip((0.5, 0.9), table["false_alarm_rate_std"], strict=True):
        threshold = np.sort(bads, axis=1)[:, 61 - int(np.ceil(eff * 61))]
        assert spread == float(np.std((goods >= threshold[:, None]).mean(axis=1)))
