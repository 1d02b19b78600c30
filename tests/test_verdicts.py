"""Run verdicts: calibrated p-values, combiners, flags at a false-alarm rate, runs listed apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from dqmflow.verdicts import (
    COMBINERS,
    VerdictError,
    combine,
    combiner_figures,
    empirical_pvalues,
    failed_algorithms,
    histogram_pvalues,
    run_verdicts,
)

HISTS = [f"CSC//Run summary/CSCOfflineMonitor/h{i}" for i in range(12)]


def dqm_scores(
    rng: np.random.Generator,
    n_runs: int = 300,
    bad_fraction: float = 0.15,
    algorithms: tuple[str, ...] = ("pca", "ks"),
    with_split: bool = True,
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Scores of several algorithms, correlated within a run (as for histograms of one run); a bad
    run has one or two broken histograms that every algorithm sees, each with its own noise."""
    runs = np.arange(316000, 316000 + n_runs)
    labels = (rng.random(n_runs) < bad_fraction).astype(int)
    u = rng.random(n_runs)
    split = np.where(u < 0.4, "train", np.where(u < 0.65, "calibration", "test"))
    split[labels == 1] = "test"  # bad runs are never trained on or calibrated with
    broken = {int(r): HISTS[rng.integers(len(HISTS))] for r in runs[labels == 1]}
    run_effect = rng.normal(0, 0.5, n_runs)
    rows = []
    for algorithm in algorithms:
        for h in HISTS:
            score = np.exp(rng.normal(size=n_runs) + run_effect)
            hit = np.array([broken.get(int(r)) == h for r in runs])
            score[hit] *= np.exp(rng.uniform(2.5, 5.0, hit.sum()))
            frame = pd.DataFrame({"run_number": runs, "histogram": h, "algorithm": algorithm, "score": score,
                                  "label": labels, "split": split})  # fmt: skip
            rows.append(frame)
    table = pd.concat(rows, ignore_index=True)
    return (table if with_split else table.drop(columns="split")), broken


def test_pvalues_of_good_runs_not_trained_on_are_uniform_with_the_same_floor_for_every_run(
    rng: np.random.Generator,
) -> None:
    # exchangeable good runs: over many reference samples, a new good run's p-value is uniform
    new_p = [empirical_pvalues(rng.normal(size=51), np.r_[np.ones(50, bool), False])[0][-1] for _ in range(3000)]
    assert stats.kstest(new_p, "uniform").pvalue > 0.01
    assert np.mean(np.asarray(new_p) <= 0.05) == pytest.approx(0.05, abs=0.015)
    reference = rng.normal(size=200)
    scores = np.r_[reference, rng.normal(size=2000)]
    is_ref = np.r_[np.ones(200, bool), np.zeros(2000, bool)]
    p, _, n = empirical_pvalues(scores, is_ref)
    assert n == 200
    # leave-one-out: the largest reference run and a run beyond every reference share the floor 1/n
    assert p[np.argmax(reference)] == pytest.approx(1 / 200)
    assert p[~is_ref].min() >= 1 / 200 - 1e-12
    assert p.max() == pytest.approx(1.0)


def test_the_graded_tail_ranks_far_beyond_above_just_beyond_and_inf_first() -> None:
    reference = np.linspace(1.0, 2.0, 50)
    scores = np.r_[reference, 2.05, 5.0, 50.0, np.inf, np.nan]
    is_ref = np.r_[np.ones(50, bool), np.zeros(5, bool)]
    p, graded, _ = empirical_pvalues(scores, is_ref)
    assert p[50] == p[51] == p[52] == pytest.approx(1 / 50)  # all at the empirical floor
    assert 1 / 50 > graded[50] > graded[51] > graded[52] >= graded[53] > 0
    assert np.isnan(p[54]) and np.isnan(graded[54])
    np.testing.assert_allclose(graded[:49], p[:49])  # the body is untouched
    assert graded[49] < p[49]  # the largest reference run, left out, is beyond the others: graded as a new run


def test_combiners_agree_with_their_definitions(rng: np.random.Generator) -> None:
    p = rng.random((40, 6))
    p[3, 2] = np.nan
    fisher = combine(p, "fisher")
    for i in (0, 3):
        row = p[i][~np.isnan(p[i])]
        expected = stats.combine_pvalues(row, method="fisher").pvalue
        assert fisher[i] == pytest.approx(-np.log10(expected))
    # one p-value alone: the Cauchy combination returns it (truncated at 1/2)
    single = np.array([[0.01], [0.2], [0.9]])
    np.testing.assert_allclose(10 ** -combine(single, "cauchy"), [0.01, 0.2, 0.5], rtol=1e-9)
    np.testing.assert_allclose(10 ** -combine(single, "harmonic_mean"), single[:, 0], rtol=1e-9)
    sidak = 1 - (1 - np.nanmin(p[0])) ** 6
    assert combine(p, "min_p")[0] == pytest.approx(-np.log10(sidak))
    assert np.isnan(combine(np.full((2, 3), np.nan), "cauchy")).all()
    # n_flags counts at max(alpha, floor), so it does not go blind with few reference runs
    few = np.array([[1 / 30, 1 / 30, 0.5], [0.5, 0.5, 0.5]])
    flags = combine(few, "n_flags", alpha=0.01, floor=1 / 30)
    assert np.floor(flags).tolist() == [2.0, 0.0]


def test_combined_verdict_beats_every_single_algorithm_and_flags_at_the_false_alarm_rate(
    rng: np.random.Generator,
) -> None:
    table, broken = dqm_scores(rng)
    verdicts = run_verdicts(table, false_alarm_rate=0.05)
    assert verdicts.reference == "calibration"
    t = verdicts.table
    evaluation = t[t["split"] != "train"]  # labelled runs no model trained on
    auc_all = roc_auc_score(evaluation["label"], evaluation["score"])
    figures = combiner_figures(verdicts.run_scores, t, ["cauchy", "cauchy[pca]", "cauchy[ks]"]).set_index("run_score")
    assert figures.loc["cauchy", "auc"] == pytest.approx(auc_all)
    assert auc_all > figures.loc["cauchy[pca]", "auc"] and auc_all > figures.loc["cauchy[ks]", "auc"]
    assert auc_all > 0.9
    good_test = t[(t["split"] == "test") & (t["label"] == 0)]
    assert good_test["flagged"].mean() < 0.12  # ~5% of good runs flagged, out of sample
    bad = evaluation[evaluation["label"] == 1]
    assert bad["flagged"].mean() > 0.5
    # the broken histogram drives the verdict of most flagged bad runs, named first
    named_first = [row.histograms.split(" [")[0] == broken[row.run_number] for row in bad[bad["flagged"]].itertuples()]
    assert np.mean(named_first) > 0.8
    assert list(t.columns[:6]) == ["rank", "run_number", "score", "p_value", "flagged", "histograms"]
    assert t["rank"].tolist() == list(range(1, len(t) + 1))


def test_every_combiner_runs_and_none_is_fitted_on_labels(rng: np.random.Generator) -> None:
    table, _ = dqm_scores(rng, n_runs=150)
    shuffled = table.assign(label=table.groupby("run_number")["label"].transform(lambda s: s))
    for combiner in COMBINERS:
        a = run_verdicts(table, combiner=combiner).table.set_index("run_number")["score"]
        # relabelling test runs changes no score: labels only evaluate
        relabelled = shuffled.assign(label=np.where(shuffled["split"] == "test", 0, shuffled["label"]))
        b = run_verdicts(relabelled, combiner=combiner).table.set_index("run_number")["score"]
        pd.testing.assert_series_equal(a.sort_index(), b.sort_index())


def test_low_statistics_and_unreadable_runs_are_listed_apart(rng: np.random.Generator) -> None:
    table, _ = dqm_scores(rng, n_runs=120)
    runs = sorted(table["run_number"].unique())
    short, unread = runs[5], runs[6]
    table.loc[table["run_number"] == short, "split"] = "low_stats"
    table.loc[table["run_number"] == short, "score"] = 1e6  # tiny runs look wildly anomalous
    table.loc[table["run_number"] == unread, ["split", "score"]] = ["missing", np.nan]
    verdicts = run_verdicts(table)
    t = verdicts.table
    assert t["listing"].tolist()[-2:] == ["low_stats", "unreadable"]
    assert t.iloc[0]["run_number"] not in (short, unread)
    assert not t.set_index("run_number").loc[short, "flagged"], "a short run's verdict is shown, never flagged"
    last = t.set_index("run_number").loc[unread]
    assert np.isnan(last["score"]) and not last["flagged"] and last["histograms"] == ""
    assert last["n_flags"] == 0, "no histogram of an unreadable run is a flag"
    run_scores = verdicts.run_scores.set_index("run_number").drop(columns="reference")
    assert run_scores.loc[unread].isna().all() and run_scores.drop(index=unread).notna().all().all()


def test_a_histogram_missing_from_every_run_is_reported_and_kept_out_of_the_verdicts(
    rng: np.random.Generator,
) -> None:
    table, _ = dqm_scores(rng, n_runs=150)
    before = run_verdicts(table).table.set_index("run_number")["score"]
    typo = table[table["histogram"] == HISTS[0]].assign(
        histogram="CSC//Run summary/CSCOfflineMonitor/typo", split="missing", score=np.nan
    )
    verdicts = run_verdicts(pd.concat([table, typo], ignore_index=True))
    assert any("typo" in problem and "no score in any run: it is missing from every file" in problem
               for problem in verdicts.problems)  # fmt: skip
    after = verdicts.table.set_index("run_number")["score"]
    pd.testing.assert_series_equal(before.sort_index(), after.sort_index())
    assert not verdicts.table["histograms"].str.contains("typo").any()


def test_without_split_good_runs_are_the_reference_leave_one_out(rng: np.random.Generator) -> None:
    table, _ = dqm_scores(rng, with_split=False)
    verdicts = run_verdicts(table)
    assert verdicts.reference == "good"
    pv = verdicts.pvalues
    n_good = table.loc[table["label"] == 0, "run_number"].nunique()
    assert pv["n_reference"].max() == n_good
    assert pv["p_value"].min() == pytest.approx(1 / n_good)  # the same floor for good and bad runs
    # identical scores everywhere: every run gets the same p-value, so no label can be read off the floor
    flat = table.assign(score=1.0)
    p = histogram_pvalues(flat)["p_value"]
    assert p.nunique() == 1


def test_no_good_runs_is_a_clear_error_and_reference_all_is_the_explicit_way_out(rng: np.random.Generator) -> None:
    table, _ = dqm_scores(rng, n_runs=80, with_split=False)
    unlabelled = table.assign(label=-1)
    with pytest.raises(VerdictError, match=r"no good runs.*--reference all"):
        run_verdicts(unlabelled)
    verdicts = run_verdicts(unlabelled, reference="all")
    assert verdicts.reference == "all" and verdicts.table["score"].notna().all()
    with pytest.raises(VerdictError, match="no run has split 'calibration'"):
        run_verdicts(table, reference="calibration")


def test_too_few_reference_runs_for_the_false_alarm_rate_is_reported(rng: np.random.Generator) -> None:
    table, _ = dqm_scores(rng, n_runs=60)
    verdicts = run_verdicts(table, false_alarm_rate=0.01)
    assert any("no run can be flagged" in problem for problem in verdicts.problems)


def test_too_few_labelled_runs_give_nan_with_a_reason_not_a_made_up_auc(rng: np.random.Generator) -> None:
    table, _ = dqm_scores(rng, n_runs=120)
    runs = table.drop_duplicates("run_number")
    one_good = runs[(runs["label"] == 0) & (runs["split"] != "train")]["run_number"].iloc[1:]
    relabelled = table.assign(label=np.where(table["run_number"].isin(one_good), -1, table["label"]))
    verdicts = run_verdicts(relabelled)
    figures = combiner_figures(verdicts.run_scores, verdicts.table, ["cauchy"]).iloc[0]
    assert np.isnan(figures["auc"]) and "needs at least 2 good" in figures["note"]
    broken = table.assign(score=np.where(table["algorithm"] == "ks", np.nan, table["score"]))
    assert failed_algorithms(run_verdicts(broken).pvalues) == ["ks"]


def test_runs_scored_infinite_rank_first_in_the_run_level_auc(rng: np.random.Generator) -> None:
    """A run score can be +inf (a score table made elsewhere, a combiner at its limit): the
    run-level AUC ranks it above every finite score instead of failing (scikit-learn refuses
    infinite scores)."""
    table, _ = dqm_scores(rng, n_runs=200)
    verdicts = run_verdicts(table)
    evaluated = verdicts.table[verdicts.table["split"] == "test"]
    bad = evaluated[evaluated["label"] == 1]["run_number"].iloc[:3]
    top = verdicts.run_scores["run_number"].isin(bad)
    infinite = verdicts.run_scores.assign(fisher=np.where(top, np.inf, verdicts.run_scores["fisher"]))
    huge = verdicts.run_scores.assign(fisher=np.where(top, 1e300, verdicts.run_scores["fisher"]))
    figures = combiner_figures(infinite, verdicts.table, ["fisher"]).iloc[0]
    assert 0.5 < figures["auc"] <= 1.0
    assert figures["auc"] == combiner_figures(huge, verdicts.table, ["fisher"]).iloc[0]["auc"]


def test_fisher_over_thousands_of_tiny_pvalues_stays_finite_and_ordered() -> None:
    """500 histograms x 2 algorithms of a broken run, all at the smallest p-value: Fisher's
    chi-square tail underflows in floating point; the score is its exact -log10 instead of inf."""
    m = 1000
    p = np.full((3, m), 1.0 / 361)
    p[1, :500] = 0.5  # half as strong
    p[2, :] = 0.5  # a clean run
    scores = combine(p, "fisher")
    assert np.isfinite(scores).all()
    assert scores[0] > scores[1] > scores[2] > 0
    # Exact: the chi-square survival function of 2m degrees of freedom is a Poisson sum.
    from scipy.special import logsumexp

    x = -np.log(p[0]).sum()  # half of Fisher's statistic
    k = np.arange(m)
    expected = -(-x + logsumexp(k * np.log(x) - np.cumsum(np.log(np.maximum(k, 1))))) / np.log(10)
    assert scores[0] == pytest.approx(expected, rel=1e-9)


def test_an_empty_histogram_leads_its_runs_drivers_ahead_of_any_extrapolated_score(rng: np.random.Generator) -> None:
    table, _ = dqm_scores(rng, algorithms=("pca",))
    good = table[table["label"] == 0]
    run = int(good.loc[good["split"] == "test", "run_number"].iloc[0])
    empty, far = HISTS[0], HISTS[1]
    table.loc[(table["run_number"] == run) & (table["histogram"] == empty), "score"] = np.inf
    # far beyond its reference in another histogram: the extrapolated tail gives a tiny p-value
    table.loc[(table["run_number"] == run) & (table["histogram"] == far), "score"] = 1e6
    pvalues = histogram_pvalues(table)
    mine = pvalues[pvalues["run_number"] == run].set_index("histogram")["p_graded"]
    assert mine[empty] <= pvalues["p_graded"][pvalues["score"] < np.inf].min()
    assert mine[empty] < mine[far]
    verdicts = run_verdicts(table, false_alarm_rate=0.05)
    drivers = verdicts.table.set_index("run_number").loc[run, "histograms"]
    assert drivers.split(";")[0].startswith(empty), drivers
    # the workflow computes p-values by chunks of histograms (one per subsystem) and joins them
    chunks = [histogram_pvalues(table[table["histogram"] == h]) for h in (empty, far)]
    chunks.append(histogram_pvalues(table[~table["histogram"].isin((empty, far))]))
    joined = pd.concat(chunks, ignore_index=True)
    drivers = run_verdicts(table, pvalues=joined).table.set_index("run_number").loc[run, "histograms"]
    assert drivers.split(";")[0].startswith(empty), drivers
    # a tail so narrow that the extrapolated p-value of a finite score would underflow to 0
    narrow = table.copy()
    narrow.loc[narrow["histogram"] == far, "score"] = 1.0 + 1e-4 * rng.random((narrow["histogram"] == far).sum())
    narrow.loc[(narrow["run_number"] == run) & (narrow["histogram"] == far), "score"] = 2.0
    pvalues = histogram_pvalues(narrow).set_index(["run_number", "histogram"])["p_graded"]
    assert 0 < pvalues[(run, empty)] < pvalues[(run, far)]


def test_drivers_beyond_the_first_pass_the_trials_correction_that_decides_the_figures(
    rng: np.random.Generator,
) -> None:
    table, _ = dqm_scores(rng, algorithms=("pca",))
    pvalues = histogram_pvalues(table)
    run = int(table.loc[(table["label"] == 0) & (table["split"] == "test"), "run_number"].iloc[0])
    mine = pvalues["run_number"] == run
    alpha, n = 0.01, len(HISTS)
    pvalues.loc[mine, "p_graded"] = 0.5
    strong, weak = HISTS[3], HISTS[7]
    pvalues.loc[mine & (pvalues["histogram"] == strong), "p_graded"] = 1e-9
    pvalues.loc[mine & (pvalues["histogram"] == weak), "p_graded"] = alpha / 2  # flagged at alpha, not at alpha / n
    verdicts = run_verdicts(table, alpha=alpha, pvalues=pvalues).table.set_index("run_number")
    assert verdicts.loc[run, "histograms"] == f"{strong} [pca]"
    assert verdicts.loc[run, "n_flags"] == 2, "n_flags counts at alpha, as AutoDQM_ML"
    # a run without any histogram beyond alpha / n still names its most significant one
    pvalues.loc[mine & (pvalues["histogram"] == strong), "p_graded"] = alpha / n * 3
    verdicts = run_verdicts(table, alpha=alpha, pvalues=pvalues).table.set_index("run_number")
    assert verdicts.loc[run, "flagged"] and verdicts.loc[run, "histograms"] == f"{strong} [pca]"
    # a run neither flagged nor with a histogram beyond alpha / n names none: nothing drives a verdict
    smallest = pvalues.groupby("run_number")["p_graded"].min()
    quiet = verdicts[~verdicts["flagged"] & (smallest.reindex(verdicts.index) > alpha / n)]
    assert len(quiet) > 10 and (quiet["histograms"] == "").all()


def test_a_chunk_whose_histograms_no_file_has_is_assessed_without_a_reference(rng: np.random.Generator) -> None:
    """A subsystem typo in the contents file: every run of its chunk is 'missing'. The chunk's
    assessment has nothing to calibrate and gives NaN, and the dataset's verdicts name it."""
    from dqmflow.assess import assess_histograms

    table, _ = dqm_scores(rng, algorithms=("pca",))
    typo = table[table["histogram"] == HISTS[0]].assign(histogram="CSCC//Run summary/h", score=np.nan, split="missing")
    chunk = assess_histograms(typo, None)
    assert chunk.metrics["auc"].isna().all() and chunk.pvalues["p_value"].isna().all()
    verdicts = run_verdicts(pd.concat([table, typo], ignore_index=True))
    assert any("CSCC//Run summary/h" in problem and "no score in any run" in problem for problem in verdicts.problems)
    assert verdicts.table["flagged"].any()


def test_the_end_of_run_summary_repeats_the_verdicts_problems_with_what_to_do(
    tmp_path, rng: np.random.Generator
) -> None:
    """Too few calibration runs to flag anything: said in problems.txt and again at the end of the run."""
    from dqmflow.assess import OUTPUTS, assess_dataset, assess_histograms
    from dqmflow.runsummary import summarize

    table, _ = dqm_scores(rng, n_runs=40, algorithms=("pca",))
    out = tmp_path / "results" / "PD" / "summary"
    verdicts = assess_dataset([assess_histograms(table, None)], {k: out / v for k, v in OUTPUTS.items()})
    assert not verdicts.table["flagged"].any()
    lines = "\n".join(summarize(tmp_path, ["PD"]))
    assert "PROBLEM: only " in lines and "reference runs: no run can be flagged" in lines
    assert "raise preprocessing.calibration_fraction" in lines

    # A later run that fails before the verdicts: the summary says the verdicts are not its own.
    import time

    verdicts.table.to_csv(tmp_path / "results" / "PD" / "verdicts.csv", index=False)
    failed = "\n".join(summarize(tmp_path, ["PD"], failed_since=time.time() + 1))
    assert "THE RUN FAILED (see the error above)" in failed
    assert "runs flagged: " in failed and "verdicts.csv (earlier run)" in failed
    assert "verdicts.csv (earlier run)" not in "\n".join(summarize(tmp_path, ["PD"], failed_since=time.time() - 60))


def test_a_few_close_tail_points_do_not_make_noise_just_beyond_the_reference_extreme() -> None:
    """17 calibration runs whose largest scores sit close together (a DT histogram): a score 30%
    beyond them stays a modest p-value, far above that of a score 170 times beyond."""
    reference = np.r_[np.linspace(0.6, 2.6, 13), 2.94, 2.95, 2.96, 3.15]
    scores = np.r_[reference, 1.3 * 3.15, 170 * 3.15]
    _, graded, n = empirical_pvalues(scores, np.r_[np.ones(17, bool), False, False])
    assert n == 17
    assert graded[17] > 1e-3, "noise just beyond the reference"
    assert graded[18] < graded[17] / 1e3


def test_an_anomalous_reference_run_is_left_out_named_and_flagged(rng: np.random.Generator) -> None:
    """A calibration run listed good that is anomalous (a dead wedge nobody listed) no longer
    blinds its histogram: a bad run below it but far above the other references is flagged, a
    higher score never gets a larger p-value, and the run is named with what to check."""
    table, broken = dqm_scores(rng, n_runs=300)
    calibration = sorted(set(table.loc[table["split"] == "calibration", "run_number"]))
    bad = sorted(broken)
    hidden, victim = calibration[0], bad[0]
    hist = broken[victim]
    hit = table["histogram"] == hist
    table.loc[hit, "score"] = table.loc[hit, "score"] ** 0.25  # good runs agree closely, as chi2 scores do
    reference_max = table.loc[hit & (table["split"] == "calibration"), "score"].max()
    table.loc[hit & (table["run_number"] == hidden), "score"] = 300 * reference_max  # listed good, but broken
    table.loc[hit & (table["run_number"] == victim), "score"] = 30 * reference_max

    pv = histogram_pvalues(table)
    rows = pv[pv["histogram"] == hist].set_index(["algorithm", "run_number"])
    assert rows["reference_outlier"].groupby("algorithm").sum().eq(1).all()
    assert rows.loc[(slice(None), hidden), "reference_outlier"].all()
    for _, group in rows.groupby("algorithm"):
        beyond = group[group["score"] > reference_max]
        order = beyond.sort_values("score")["p_graded"].to_numpy()
        assert (np.diff(order) <= 0).all(), "a higher score never gets a larger p-value"
        assert group.loc[(slice(None), victim), "p_graded"].iloc[0] < 1e-3
    clean = pv[pv["histogram"] != hist]
    assert not clean["reference_outlier"].any(), "clean references lose nothing"

    verdicts = run_verdicts(table, false_alarm_rate=0.05)
    by_run = verdicts.table.set_index("run_number")
    assert by_run.loc[victim, "flagged"] and hist in by_run.loc[victim, "histograms"]
    assert by_run.loc[hidden, "flagged"], "the anomalous reference run is judged like any other run"
    named = [p for p in verdicts.problems if f"reference run {hidden} " in p]
    assert len(named) == 1 and hist in named[0] and "check the run, and its label (bad_runs)" in named[0]


def test_clean_references_keep_their_largest_scores() -> None:
    """The outlier test leaves out a clean reference's largest score rarely (the docstring's
    figures): none of 2,000 log-normal references of 17 runs, under 2% of Pareto-tailed ones of 7."""
    from dqmflow.verdicts import reference_outliers

    rng = np.random.default_rng(11)
    lognormal = [reference_outliers(rng.lognormal(sigma=1.5, size=17), np.ones(17, bool)).any() for _ in range(2000)]
    pareto = [reference_outliers(rng.pareto(1.5, size=7) + 1, np.ones(7, bool)).any() for _ in range(2000)]
    assert sum(lognormal) == 0 and np.mean(pareto) < 0.02


def test_a_histogram_without_scores_says_why(rng: np.random.Generator) -> None:
    """Read in every file but below min_entries in every run, or read but its model never
    trained: the problem says which (not "missing from every file?", which sent users to fetching)."""
    table, _ = dqm_scores(rng, n_runs=150, algorithms=("pca",))
    sparse = table[table["histogram"] == HISTS[0]].assign(
        histogram="CSC//Run summary/timing/bx_firstbunch", split="low_stats", score=np.nan, entries=4200.0
    )
    untrained = table[table["histogram"] == HISTS[1]].assign(histogram="CSC//Run summary/untrained", score=np.nan)
    problems = run_verdicts(pd.concat([table, sparse, untrained], ignore_index=True)).problems
    assert (
        "histogram 'CSC//Run summary/timing/bx_firstbunch' [pca] has no score in any run: every run is below "
        "preprocessing.min_entries (at most 4,200 entries): lower it to use this histogram"
    ) in problems
    assert any("untrained' [pca] has no score in any run: its model could not be trained" in p for p in problems)
    # as the workflow computes them: from the chunks' p-value tables
    from dqmflow.assess import assess_histograms

    chunk = assess_histograms(pd.concat([table, sparse], ignore_index=True), None)
    assert "(at most 4,200 entries)" in " ".join(run_verdicts(chunk.pvalues, pvalues=chunk.pvalues).problems)


def test_outlier_rules_at_the_edges() -> None:
    """Two close outliers among 14 reference runs are both left out (one would mask the other);
    an empty histogram (+inf) in one reference run is an outlier, in many it is the histogram's
    normal state; at least ``keep`` reference scores always stay."""
    from dqmflow.verdicts import reference_outliers

    rng = np.random.default_rng(3)
    body = np.exp(rng.normal(0, 0.1, 12))
    two = np.r_[body, 300.0, 310.0]
    assert reference_outliers(two, np.ones(14, bool)).sum() == 2
    empty = np.r_[body, np.inf]
    assert reference_outliers(empty, np.ones(13, bool)).tolist() == [False] * 12 + [True]
    often_empty = np.r_[body, np.inf, np.inf, np.inf]
    assert not reference_outliers(often_empty, np.ones(15, bool)).any()
    assert not reference_outliers(two, np.ones(14, bool), keep=13).any()
    assert reference_outliers(two, np.ones(14, bool), keep=12).sum() == 2


def test_the_run_level_calibration_keeps_enough_runs_to_flag(rng: np.random.Generator) -> None:
    """20 reference runs at a 5% false-alarm rate: leaving out an outlier would leave 19, and no
    run could be flagged; the outlier stays in the calibration."""
    from dqmflow.verdicts import _empirical_run_p

    score = np.r_[np.exp(rng.normal(0, 0.1, 19)), 50.0, 60.0]
    is_ref = np.r_[np.ones(20, bool), False]
    p, n, outliers = _empirical_run_p(score, is_ref, 0.05)
    assert n == 20 and not outliers.any() and p[-1] <= 0.05
    p, n, outliers = _empirical_run_p(score, is_ref, 0.1)
    assert n == 19 and outliers[19] and p[-1] <= 0.1
