"""Figures of the assessment: PNGs that read back, sensible sizes, and the numbers behind them."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dqmflow import plots
from dqmflow.metrics import RocResult, bootstrap_roc

TITLE = "L1T/Run summary/L1TStage2uGMT/ugmtMuon BX vs Link #muons $ (2D)/with/a/very/long/histogram/path name  [ae]"


def _png(path: Path, min_width: int = 600, max_width: int = 1300) -> np.ndarray:
    """The image at ``path`` (must read back as PNG), checked for a sensible width."""
    assert path.is_file()
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 150
    assert min_width <= image.shape[1] <= max_width, image.shape
    assert plt.get_fignums() == []  # nothing left open in pyplot
    return image


def _roc(shift: float, seed: int, n_good: int = 80, n_bad: int = 12) -> RocResult:
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(0.0, 1.0, n_good), rng.normal(shift, 1.0, n_bad)]
    labels = np.r_[np.zeros(n_good), np.ones(n_bad)]
    return bootstrap_roc(scores, labels, n_bootstrap=30, seed=seed)


def _nan_roc() -> RocResult:
    return bootstrap_roc(np.array([0.1, 0.5, 0.9]), np.array([0, 0, 0]), n_bootstrap=10)


def _score_frame(seed: int = 3, algorithms: tuple[str, ...] = ("autoencoder", "pca")) -> pd.DataFrame:
    """Calibration/test/train runs with a few bad ones, 11 low-statistics runs with huge scores, one +inf."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, algorithm in enumerate(algorithms):
        for split, n in (("train", 120), ("calibration", 40), ("test", 60)):
            labels = np.where(rng.random(n) < (0.0 if split == "train" else 0.2), 1, 0)
            if split == "test":
                labels[:5] = -1
            scores = np.exp(rng.normal(0.0, 0.4, n) + (1.5 + k) * (labels == 1))
            rows += [
                {"algorithm": algorithm, "score": s, "label": lab, "split": split}
                for s, lab in zip(scores, labels, strict=True)
            ]
        rows += [{"algorithm": algorithm, "score": 1e6 * (i + 1), "label": 0, "split": "low_stats"} for i in range(11)]
        rows += [{"algorithm": algorithm, "score": np.inf, "label": 1, "split": "test"}]
        rows += [{"algorithm": algorithm, "score": np.nan, "label": 0, "split": "missing"}]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------- helpers


def test_wrap_breaks_long_paths_and_escapes_dollars() -> None:
    wrapped = plots._wrap(TITLE, 30)
    lines = wrapped.split("\n")
    assert len(lines) > 3
    assert all(len(line.replace("\\$", "$")) <= 30 for line in lines)
    assert "".join(wrapped.split()).replace("\\$", "$") == "".join(TITLE.split())
    assert "\\$" in wrapped and "#muons" in wrapped
    assert plots._wrap("x" * 100, 40).split("\n") == ["x" * 40, "x" * 40, "x" * 20]
    assert plots._label("_hidden").startswith(" ")  # matplotlib hides labels starting with "_"


def test_binning_ignores_low_statistics_outliers() -> None:
    rng = np.random.default_rng(0)
    good = rng.uniform(1.0, 5.0, 100)
    bad = rng.uniform(4.0, 9.0, 10)
    low = 1e6 * np.arange(1, 12)
    scores = np.r_[good, bad, low, np.inf]
    splits = np.r_[["test"] * 60, ["calibration"] * 40, ["test"] * 10, ["low_stats"] * 11, ["test"]]
    binning = plots._score_binning(scores, splits)
    assert not binning.log
    assert binning.edges[0] >= good.min() and binning.edges[-1] <= bad.max()
    assert binning.edges[-1] >= np.percentile(np.r_[good, bad], 99)
    # The low-statistics runs and the +inf run are overflow, not bins.
    assert plots._count(low, binning.edges).overflow == 11
    everything = plots._count(scores, binning.edges)
    assert everything.total == len(scores)
    assert everything.overflow >= 12
    assert everything.counts.sum() >= 100  # good and bad runs stay resolved in the bins
    # Without the rule the outliers would have set the range: the test data must be able to show that.
    assert np.max(low) > 1000 * binning.edges[-1]


def test_binning_fallbacks_and_log_scale() -> None:
    positive = np.geomspace(1e-3, 1e2, 50)
    log_binning = plots._score_binning(positive, np.array(["test"] * 50))
    assert log_binning.log
    np.testing.assert_allclose(log_binning.edges[[0, -1]], [1e-3, 1e2])
    ratios = log_binning.edges[1:] / log_binning.edges[:-1]
    np.testing.assert_allclose(ratios, ratios[0])
    # Only train runs: they set the range. Only low-statistics runs: then (and only then) they do.
    train = plots._score_binning(np.array([1.0, 2.0, 3.0, 1e9]), np.array(["train", "train", "train", "low_stats"]))
    assert train.edges[-1] == 3.0
    low = plots._score_binning(np.array([5.0, 7.0, np.nan]), np.array(["low_stats", "low_stats", "missing"]))
    assert low.edges[0] == 5.0 and low.edges[-1] == 7.0
    # All +inf: a default range, every run counted as overflow.
    infinite = plots._score_binning(np.full(4, np.inf), np.array(["test"] * 4))
    assert np.all(np.isfinite(infinite.edges))
    assert plots._count(np.full(4, np.inf), infinite.edges).overflow == 4
    # One distinct value: a non-empty range around it, holding it.
    constant = plots._score_binning(np.full(5, 2.0), np.array(["test"] * 5))
    assert constant.edges[0] < 2.0 < constant.edges[-1]
    zero = plots._score_binning(np.zeros(3), np.array(["test"] * 3))
    assert zero.edges[0] < 0.0 < zero.edges[-1]


def test_count_adds_up_with_under_and_overflow() -> None:
    edges = np.linspace(0.0, 1.0, 6)
    values = np.array([-np.inf, -1.0, 0.0, 0.2, 0.5, 1.0, 1.0001, np.inf, np.nan])
    c = plots._count(values, edges)
    assert (c.underflow, c.overflow) == (2, 2)
    assert c.counts.tolist() == [1, 1, 1, 0, 1]  # 1.0 is in the last (closed) bin
    assert c.total == 8  # NaN is not a run with a score
    assert c.legend("good") == "good: 8 (2 below, 2 above range)"
    assert plots._count(np.array([0.5]), edges).legend("bad") == "bad: 1"


def test_log_y_only_when_small_groups_would_vanish() -> None:
    assert plots._log_y([np.array([40, 60, 5]), np.array([1, 2, 0])])
    assert not plots._log_y([np.array([10, 8, 3]), np.array([2, 1])])
    assert not plots._log_y([])
    assert not plots._log_y([np.zeros(4)])


def test_sic_curve_and_band() -> None:
    result = _roc(2.0, seed=1)
    tpr, sic = plots._sic_curve(result)
    keep = result.fpr > 0
    np.testing.assert_allclose(sic, result.tpr[keep] / np.sqrt(result.fpr[keep]))
    assert len(tpr) == keep.sum() and np.all(np.isfinite(sic))
    x, lo, hi = plots._sic_band(result)
    assert len(x) and np.all(lo <= hi + 1e-12)
    # Only FPR values resolved by the good runs enter the band.
    grid = result.grid[(result.grid > 0) & (result.grid >= 1 / result.n_good)]
    assert len(x) == len(grid)
    nan_x, _, _ = plots._sic_band(_nan_roc())
    assert len(nan_x) == 0


def test_confusion_row_fractions() -> None:
    frac = plots._row_fractions(np.array([[90, 10], [0, 0]]))
    np.testing.assert_allclose(frac[0], [0.9, 0.1])
    assert np.all(np.isnan(frac[1]))


def test_flag_fractions() -> None:
    np.testing.assert_allclose(plots._at_least(np.array([0, 0, 1, 3]), 3), [1.0, 0.5, 0.25, 0.25, 0.0])
    assert np.all(np.isnan(plots._at_least(np.array([], dtype=int), 2)))
    counts = pd.DataFrame({"run_number": [1, 2, 3, 4], "label": [0, 1, -1, 0], "n_flags": [2, 5, 1, np.nan]})
    assert plots._flag_values(counts, 0).tolist() == [2]
    assert plots._flag_values(counts, None).tolist() == [1]


def test_ks_statistic_matches_scipy() -> None:
    p = np.random.default_rng(5).random(57)
    assert plots._ks_statistic(p) == pytest.approx(stats.kstest(p, "uniform").statistic)
    assert len(plots._pvalue_bins(7)) - 1 == 5
    assert len(plots._pvalue_bins(1000)) - 1 == 20


def test_edges_fall_back_to_bin_indices() -> None:
    np.testing.assert_array_equal(plots._edges([np.array([0.0, 1.0, 3.0])], 0, 2), [0.0, 1.0, 3.0])
    np.testing.assert_array_equal(plots._edges([np.array([0.0, 1.0])], 0, 3), [0, 1, 2, 3])  # wrong length
    np.testing.assert_array_equal(plots._edges([], 1, 2), [0, 1, 2])  # missing axis
    np.testing.assert_array_equal(plots._edges([np.array([0.0, 2.0, 1.0])], 0, 2), [0, 1, 2])  # not increasing


def test_run_caption_names_run_label_entries_and_score() -> None:
    caption = plots._run_caption(316000, float("inf"), 1, 12345.0)
    assert caption == "run 316000 · bad · 12,345 entries\nscore inf"
    assert "unlabelled" in plots._run_caption(1, 0.5, -1, None)
    assert "good" in plots._run_caption(1, 0.5, 0, None)


# ------------------------------------------------------------------------------------------- figures


def test_roc_sic_and_run_level(tmp_path: Path) -> None:
    results = {"autoencoder": _roc(2.0, 1), "pca": _roc(1.0, 2), "_private name #1": _roc(0.2, 3)}
    plots.plot_roc(results, TITLE, tmp_path / "deep" / "roc.png")
    _png(tmp_path / "deep" / "roc.png", max_width=1000)
    plots.plot_sic(results, TITLE, tmp_path / "sic.png")
    _png(tmp_path / "sic.png", max_width=1000)
    plots.plot_run_level({"fisher": results["pca"], "min p": _nan_roc()}, "run level [ae]", tmp_path / "run.png")
    _png(tmp_path / "run.png", max_width=1000)


@pytest.mark.parametrize("results", [{"ks": None}, {}], ids=["nan-auc", "empty"])
def test_roc_without_good_and_bad_runs(tmp_path: Path, results: dict[str, RocResult | None]) -> None:
    filled = {name: _nan_roc() for name in results}
    for function in (plots.plot_roc, plots.plot_sic, plots.plot_run_level):
        path = tmp_path / f"{function.__name__}.png"
        function(filled, TITLE, path)
        _png(path, max_width=1000)


def test_confusion(tmp_path: Path) -> None:
    matrices = [("max TPR·(1-FPR)", np.array([[100, 20], [3, 12]])), ("FAR 5%", np.array([[114, 6], [0, 0]]))]
    plots.plot_confusion(matrices, TITLE, tmp_path / "two.png")
    _png(tmp_path / "two.png")
    plots.plot_confusion(matrices[:1], TITLE, tmp_path / "one.png")
    _png(tmp_path / "one.png", max_width=1000)
    plots.plot_confusion([], TITLE, tmp_path / "none.png")
    _png(tmp_path / "none.png")
    with pytest.raises(ValueError, match="shape"):
        plots.plot_confusion([("bad", np.zeros((3, 3)))], TITLE, tmp_path / "bad.png")


def test_score_distributions(tmp_path: Path) -> None:
    frame = _score_frame()
    plots.plot_score_distributions(frame, TITLE, tmp_path / "two.png")
    _png(tmp_path / "two.png")
    plots.plot_score_distributions(frame[frame["algorithm"] == "pca"], TITLE, tmp_path / "one.png")
    _png(tmp_path / "one.png", max_width=1000)


def test_score_distributions_edge_cases(tmp_path: Path) -> None:
    frame = _score_frame(algorithms=("a",))
    plots.plot_score_distributions(frame.assign(label=-1), TITLE, tmp_path / "unlabelled.png")
    _png(tmp_path / "unlabelled.png")
    plots.plot_score_distributions(frame.drop(columns=["label", "split"]), TITLE, tmp_path / "bare.png")
    _png(tmp_path / "bare.png")
    plots.plot_score_distributions(frame.assign(score=np.inf), TITLE, tmp_path / "inf.png")
    _png(tmp_path / "inf.png")
    plots.plot_score_distributions(frame.iloc[:0], TITLE, tmp_path / "empty.png")
    _png(tmp_path / "empty.png")
    many = _score_frame(algorithms=tuple(f"algorithm {i}" for i in range(plots.MAX_COLUMNS + 1)))
    plots.plot_score_distributions(many, TITLE, tmp_path / "many.png")
    _png(tmp_path / "many.png", max_width=3200)


def test_reconstructions_1d(tmp_path: Path) -> None:
    x = np.linspace(-3, 3, 40)
    originals = np.stack([np.exp(-((x - m) ** 2)) for m in (0.0, 0.8, -1.0)])
    originals /= originals.sum(axis=1, keepdims=True)
    recos = np.repeat(originals[:1], 3, axis=0)
    plots.plot_reconstructions(
        originals,
        recos,
        [np.linspace(-3, 3, 41)],
        [101, 102, 103],
        [0.1, 2.5, np.inf],
        TITLE,
        tmp_path / "a.png",
        labels=[0, 1, -1],
        entries=[1e5, 300, 0],
        xlabel="#eta",
        reco_label="PCA reconstruction",
    )
    _png(tmp_path / "a.png")
    seven = np.random.default_rng(2).random((1, 7))
    plots.plot_reconstructions(seven, None, [np.arange(8.0)], [7], [0.3], TITLE, tmp_path / "seven.png")
    _png(tmp_path / "seven.png", max_width=1000)
    empty = np.zeros((2, 7))
    plots.plot_reconstructions(empty, empty, [np.arange(3.0)], [1, 2], [np.inf, np.nan], TITLE, tmp_path / "z.png")
    _png(tmp_path / "z.png")


def test_reconstructions_2d(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    originals = rng.random((2, 12, 9))
    originals[1] = 0.0  # an empty map: "empty", still with its colour bar
    recos = originals * 0.8 + 0.01
    edges = [np.linspace(-2.5, 2.5, 13), np.r_[0.0, np.cumsum(rng.uniform(0.5, 1.5, 9))]]  # y bins of unequal width
    plots.plot_reconstructions(
        originals,
        recos,
        edges,
        [5, 6],
        [3.2, np.inf],
        TITLE,
        tmp_path / "2d.png",
        labels=[1, 0],
        entries=[1000, 0],
        xlabel="i#eta",
        ylabel="i#phi",
    )
    _png(tmp_path / "2d.png")
    plots.plot_reconstructions(np.zeros((1, 4, 4)), None, [], [9], [np.inf], TITLE, tmp_path / "alone.png")
    _png(tmp_path / "alone.png")


@pytest.mark.parametrize("shape", [(30,), (8, 6)], ids=["1D", "2D"])
def test_a_kept_reconstruction_figure_draws_the_same_bytes_as_a_new_one(tmp_path: Path, shape: tuple[int, ...]) -> None:
    """Reconstruction figures of one layout reuse their figure, axes and colour bars: whatever the
    figure drew before (other runs, an empty map, non-uniform bins), the next is as if new."""
    rng = np.random.default_rng(9)

    def draw(name: str, seed: int, empty: bool = False) -> bytes:
        r = np.random.default_rng(seed)
        originals = r.random((2, *shape))
        if empty:
            originals[1] = 0.0
        recos = originals * r.uniform(0.5, 1.5) + r.uniform(0, 0.1)
        edges = [np.r_[0.0, np.cumsum(r.uniform(0.5, 1.5, n))] if seed % 2 else np.arange(n + 1.0) for n in shape]
        plots.plot_reconstructions(originals, recos, edges, [seed, seed + 1], [r.random(), np.inf], TITLE,
                                   tmp_path / name, labels=[1, 0], entries=[1e4, 0.0], xlabel=f"x{seed}")  # fmt: skip
        return (tmp_path / name).read_bytes()

    first = draw("a.png", 2)
    others = [draw(f"o{k}.png", seed, empty=True) for k, seed in enumerate(rng.integers(3, 99, 3))]
    assert draw("again.png", 2) == first, "a kept figure carries nothing over from the figures drawn before"
    assert all(other != first for other in others)
    plots._REUSED.clear()
    plots._COLORBARS.clear()
    assert draw("fresh.png", 2) == first, "a new figure draws the same bytes"


def test_reconstructions_without_runs_and_bad_shapes(tmp_path: Path) -> None:
    plots.plot_reconstructions(np.zeros((0, 5)), None, [], [], [], TITLE, tmp_path / "none.png")
    _png(tmp_path / "none.png")
    with pytest.raises(ValueError, match="do not match"):
        plots.plot_reconstructions(np.zeros((2, 5)), None, [], [1], [0.1], TITLE, tmp_path / "x.png")
    with pytest.raises(ValueError, match="reconstructions"):
        plots.plot_reconstructions(np.zeros((1, 5)), np.zeros((1, 6)), [], [1], [0.1], TITLE, tmp_path / "x.png")
    with pytest.raises(ValueError, match="labels"):
        plots.plot_reconstructions(np.zeros((1, 5)), None, [], [1], [0.1], TITLE, tmp_path / "x.png", labels=[0, 1])


def test_flags(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    counts = pd.DataFrame(
        {
            "run_number": np.arange(130),
            "label": np.r_[np.zeros(100), np.ones(25), -np.ones(5)].astype(int),
            "n_flags": np.r_[rng.poisson(0.4, 100), rng.poisson(4.0, 25), rng.poisson(1.0, 5)],
        }
    )
    plots.plot_flags(counts, TITLE, tmp_path / "flags.png")
    _png(tmp_path / "flags.png")
    plots.plot_flags(counts[counts["label"] == 0], TITLE, tmp_path / "good.png")
    _png(tmp_path / "good.png")
    plots.plot_flags(counts.iloc[:0], TITLE, tmp_path / "empty.png")
    _png(tmp_path / "empty.png")


def test_pvalue_calibration(tmp_path: Path) -> None:
    p = np.r_[np.random.default_rng(7).random(150), np.nan]
    plots.plot_pvalue_calibration(p, TITLE, tmp_path / "p.png")
    _png(tmp_path / "p.png")
    plots.plot_pvalue_calibration(np.array([0.5]), TITLE, tmp_path / "one.png")
    _png(tmp_path / "one.png")
    plots.plot_pvalue_calibration(np.array([np.nan]), TITLE, tmp_path / "empty.png")
    _png(tmp_path / "empty.png")


def test_style_does_not_leak_into_the_process(tmp_path: Path) -> None:
    before = dict(matplotlib.rcParams)
    plots.plot_roc({"a": _roc(1.0, 0)}, TITLE, tmp_path / "roc.png")
    assert dict(matplotlib.rcParams) == before


def test_latent_space(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 120
    frame = pd.DataFrame(
        {
            "latent_1": rng.normal(size=n),
            "latent_2": rng.normal(size=n),
            "score": rng.exponential(size=n),
            "label": np.r_[np.zeros(100, int), np.ones(10, int), -np.ones(10, int)],
            "split": np.r_[["train"] * 50, ["test"] * 60, ["low_stats"] * 10],
        }
    )
    plots.plot_latent(frame, "CSC//Run summary/h #1 [pca_2]", tmp_path / "latent.png")
    _png(tmp_path / "latent.png")
    one_d = frame.assign(latent_2=np.nan)  # a one-dimensional latent space: the score is the y axis
    plots.plot_latent(one_d, "h [pca_1]", tmp_path / "latent_1d.png")
    _png(tmp_path / "latent_1d.png")
    plots.plot_latent(frame.assign(latent_1=np.nan), "h", tmp_path / "none.png")
    _png(tmp_path / "none.png", min_width=200)


def test_kept_figures_draw_as_new_ones(tmp_path: Path) -> None:
    """A figure drawn on axes kept from an earlier, different figure is the same picture as on new axes."""
    linear = _score_frame(seed=4).assign(score=lambda f: np.log(f["score"].clip(lower=1e-3)))
    frames = [_score_frame(), linear, _score_frame().assign(label=-1), _score_frame().assign(score=np.inf), linear]
    rocs = [{"a": _roc(2.0, 1), "b": _roc(0.5, 2)}, {"a": _nan_roc(), "b": _roc(1.0, 3)}, {"a": _roc(1.5, 4)}]
    draws = [(plots.plot_score_distributions, frame) for frame in frames]
    draws += [(function, result) for result in rocs for function in (plots.plot_roc, plots.plot_sic)]
    matrices = [("max TPR·(1-FPR)", np.array([[100, 20], [3, 12]])), ("FAR 5%", np.array([[114, 6], [0, 0]]))]
    draws += [(plots.plot_confusion, matrices), (plots.plot_confusion, matrices[::-1])]
    five = [*matrices, *matrices, ("FAR 1%", np.array([[7, 1], [2, 9]]))]
    draws += [(plots.plot_confusion, five), (plots.plot_confusion, five[:1] + five), (plots.plot_confusion, five)]
    rng = np.random.default_rng(5)
    latent = pd.DataFrame(
        {
            "latent_1": rng.normal(size=120),
            "latent_2": rng.normal(size=120) * 30,
            "score": rng.exponential(size=120),
            "label": np.r_[np.zeros(100, int), np.ones(10, int), -np.ones(10, int)],
            "split": np.r_[["train"] * 50, ["test"] * 60, ["low_stats"] * 10],
        }
    )
    one_d = latent.assign(latent_2=np.nan)
    draws += [(plots.plot_latent, frame) for frame in (one_d, latent, one_d.assign(score=-one_d["score"]), latent)]
    for k, (function, data) in enumerate(draws):
        function(data, f"{TITLE} {k}", tmp_path / f"kept{k}.png")
    plots._REUSED.clear()
    for k, (function, data) in enumerate(draws):
        function(data, f"{TITLE} {k}", tmp_path / f"new{k}.png")
        plots._REUSED.clear()
        kept, new = (_png(tmp_path / f"{kind}{k}.png", max_width=3200) for kind in ("kept", "new"))
        np.testing.assert_array_equal(kept, new)


def test_bootstrap_bands_are_those_of_one_resample_at_a_time() -> None:
    """The bands drawn come from all bootstrap resamples at once: bit for bit the ROC of each one."""
    from dqmflow import metrics

    rng = np.random.default_rng(8)
    samples = np.round(rng.normal(size=(40, 50)), 1)  # ties within and across classes
    labels = np.r_[np.zeros(38), np.ones(12)]
    aucs, curves = metrics._aucs_and_curves(samples, labels)
    for row, auc, curve in zip(samples, aucs, curves, strict=True):
        one_auc, one_curve = metrics._auc_and_curve(row, labels)
        assert auc == one_auc
        np.testing.assert_array_equal(curve, one_curve)


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("#chi^{2}/ndof", r"χ$^{\mathrm{2}}$/ndof"),
        ("p_{T} [GeV]", r"p$_{\mathrm{T}}$ [GeV]"),
        ("E_{T}^{miss} [GeV]", r"E$_{\mathrm{T}}^{\mathrm{miss}}$ [GeV]"),
        ("#Delta#phi", "Δφ"),
        ("#eta (#it{global})", "η (global)"),
        ("#sqrt{p_{T}}", r"√(p$_{\mathrm{T}}$)"),
        ("cost $5", r"cost \$5"),
        ("Occupancy", "Occupancy"),
        ("#sigma_{i#etai#eta}", r"σ$_{\mathrm{iηiη}}$"),
        ("#DeltaR", "ΔR"),
        ("#bf{p_{T}}", r"p$_{\mathrm{T}}$"),
        ("p_{T_{1}}", r"p$_{\mathrm{T}_{\mathrm{1}}}$"),
        ("N_{#upsilon}", r"N$_{\mathrm{υ}}$"),
        ("x_{a&b}", r"x$_{\mathrm{ab}}$"),
        ("#font[12]{x}_{1}", r"x$_{\mathrm{1}}$"),
        ("a_{", "a_{"),
    ],
)
def test_root_axis_titles_become_matplotlib_text(root: str, expected: str) -> None:
    """ROOT's TLatex (as DQM histograms' axis titles use it) shows as letters, superscripts and
    subscripts on the figures, not as '#chi^{2}'; every converted title renders."""
    from dqmflow.assess import root_text

    assert root_text(root) == expected
    fig = plt.figure()
    fig.text(0.1, 0.5, root_text(root))
    fig.canvas.draw()  # mathtext raises on a malformed expression
    plt.close(fig)


def test_reconstruction_figures_draw_axis_titles_as_mathtext(tmp_path: Path) -> None:
    """The titles reach the axes as given (not escaped back to '$_{...}$' as literal text)."""
    from dqmflow.assess import root_text

    xlabel, ylabel = root_text("p_{T} [GeV]"), root_text("#phi(E_{T}^{miss})")
    for shape in ((2, 10), (2, 6, 5)):
        originals = np.random.default_rng(0).random(shape)
        edges = [np.arange(n + 1.0) for n in shape[1:]]
        path = tmp_path / f"{len(shape)}.png"
        plots.plot_reconstructions(originals, originals, edges, [1, 2], [1.0, 2.0], TITLE, path, xlabel=xlabel,
                                   ylabel=ylabel)  # fmt: skip
        fig = next(f for f, _ in reversed(list(plots._REUSED.values())))
        shown = {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
        assert xlabel in shown and "$" in xlabel and r"\$" not in "".join(shown)
        if len(shape) == 3:
            assert ylabel in shown


def test_a_title_matplotlib_cannot_parse_costs_its_formatting_not_the_figure(tmp_path: Path) -> None:
    """Whatever reaches a figure as mathtext is checked first: a broken expression is drawn as
    plain words (before, one odd ROOT title stopped the figures job and the web page)."""
    broken = r"x$_{\mathrm{a\#b}}$"
    assert plots.drawable_text(broken) == "x_a#b"
    assert plots.drawable_text(r"p$_{\mathrm{T}}$ [GeV]") == r"p$_{\mathrm{T}}$ [GeV]"
    originals = np.random.default_rng(0).random((1, 10))
    plots.plot_reconstructions(originals, originals, [np.arange(11.0)], [1], [1.0], TITLE, tmp_path / "a.png",
                               xlabel=broken, ylabel="y$")  # fmt: skip
    assert (tmp_path / "a.png").stat().st_size > 1000
