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


def test_run_level(tmp_path: Path) -> None:
    results = {"fisher": _roc(1.0, 2), "_private name #1": _roc(0.2, 3), "min p": _nan_roc()}
    plots.plot_run_level(results, "run level [ae]", tmp_path / "deep" / "run.png")
    _png(tmp_path / "deep" / "run.png", max_width=1000)


@pytest.mark.parametrize("results", [{"ks": None}, {}], ids=["nan-auc", "empty"])
def test_roc_without_good_and_bad_runs(tmp_path: Path, results: dict[str, RocResult | None]) -> None:
    filled = {name: _nan_roc() for name in results}
    plots.plot_run_level(filled, TITLE, tmp_path / "run.png")
    _png(tmp_path / "run.png", max_width=1000)


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
    plots.plot_run_level({"a": _roc(1.0, 0)}, TITLE, tmp_path / "roc.png")
    assert dict(matplotlib.rcParams) == before


def test_kept_figures_draw_as_new_ones(tmp_path: Path) -> None:
    """A figure drawn on axes kept from an earlier, different figure is the same picture as on new axes."""
    rocs = [{"a": _roc(2.0, 1), "b": _roc(0.5, 2)}, {"a": _nan_roc(), "b": _roc(1.0, 3)}, {"a": _roc(1.5, 4)}]
    draws = [(plots.plot_run_level, result) for result in rocs]
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
