"""Charts (Vega-Lite specifications of the figures of merit): the numbers in them, and that the
browser draws every kind, edge cases included, without an error or a Vega-Lite warning."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dqmflow import charts
from dqmflow.metrics import bootstrap_roc
from dqmflow.site import Figure, build_site

from .test_plots import _nan_roc, _roc
from .test_site import HISTOGRAMS, synthetic

TITLE = "L1T/Run summary/L1TStage2uGMT/ugmtMuon BX vs Link #muons $ (2D)/with/a/very/long/histogram/path name  [ae]"


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


def _latent_frame(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame(
        {
            "run_number": 355_000 + np.arange(n),
            "latent_1": rng.normal(size=n),
            "latent_2": rng.normal(size=n) * 30,
            "score": rng.exponential(size=n),
            "label": np.r_[np.zeros(100, int), np.ones(10, int), -np.ones(10, int)],
            "split": np.r_[["train"] * 50, ["test"] * 60, ["low_stats"] * 10],
        }
    )


def _layers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    if "layer" in spec:
        return list(spec["layer"])
    return list(spec["spec"]["layer"]) if "spec" in spec else [spec]


def _lookups(node: Any) -> list[dict[str, Any]]:
    """Every lookup transform inside a spec."""
    if isinstance(node, dict):
        found = [node] if "lookup" in node else []
        return found + [t for value in node.values() for t in _lookups(value)]
    if isinstance(node, list):
        return [t for value in node for t in _lookups(value)]
    return []


def _data(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a chart (or panel) with the fields its lookups add, as the browser sees them."""
    rows = [dict(r) for r in spec["data"]["values"]]
    for lookup in _lookups(spec.get("layer", spec.get("transform", []))):
        table = {t[lookup["lookup"]]: t for t in lookup["from"]["data"]["values"]}
        for row in rows:
            if row.get(lookup["lookup"]) in table:
                row.update({f: table[row[lookup["lookup"]]][f] for f in lookup["from"]["fields"]})
    return rows


def _rows(spec: dict[str, Any], part: str) -> list[dict[str, Any]]:
    return [r for r in _data(spec) if r.get("part") == part]


def _domain(spec: dict[str, Any]) -> list[str]:
    for layer in _layers(spec):
        color = layer.get("encoding", {}).get("color", {})
        if "scale" in color and "domain" in color["scale"]:
            return list(color["scale"]["domain"])
    return []


def _messages(spec: dict[str, Any]) -> list[str]:
    return [v["text"] for layer in _layers(spec) if layer.get("mark", {}).get("type") == "text"
            for v in layer.get("data", {}).get("values", []) if "text" in v]  # fmt: skip


def _panels(spec: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The score chart's panels: [top row, bottom row]."""
    return [row["hconcat"] for row in spec["vconcat"]]


def _panel_totals(panel: dict[str, Any]) -> dict[str, int]:
    """Runs per legend entry of a score panel, from its bins (the legend's "(n below/above)" added)."""
    totals: dict[str, int] = {}
    rows = _data(panel)
    for group in {r["group"] for r in rows}:
        steps = sorted((r for r in rows if r["group"] == group), key=lambda r: r["i"])
        totals[group] = sum(r["n"] for r in steps[1:-2])  # not the ends, nor the closing repeat of the last bin
    return totals


def test_binning_ignores_low_statistics_outliers() -> None:
    rng = np.random.default_rng(0)
    good = rng.uniform(1.0, 5.0, 100)
    bad = rng.uniform(4.0, 9.0, 10)
    low = 1e6 * np.arange(1, 12)
    scores = np.r_[good, bad, low, np.inf]
    splits = np.r_[["test"] * 60, ["calibration"] * 40, ["test"] * 10, ["low_stats"] * 11, ["test"]]
    binning = charts.score_binning(scores, splits)
    assert not binning.log
    assert binning.edges[0] >= good.min() and binning.edges[-1] <= bad.max()
    assert binning.edges[-1] >= np.percentile(np.r_[good, bad], 99)
    # The low-statistics runs and the +inf run are overflow, not bins.
    assert charts.count(low, binning.edges).overflow == 11
    everything = charts.count(scores, binning.edges)
    assert everything.total == len(scores)
    assert everything.overflow >= 12
    assert everything.counts.sum() >= 100  # good and bad runs stay resolved in the bins
    # Without the rule the outliers would have set the range: the test data must be able to show that.
    assert np.max(low) > 1000 * binning.edges[-1]


def test_binning_fallbacks_and_log_scale() -> None:
    positive = np.geomspace(1e-3, 1e2, 50)
    log_binning = charts.score_binning(positive, np.array(["test"] * 50))
    assert log_binning.log
    np.testing.assert_allclose(log_binning.edges[[0, -1]], [1e-3, 1e2])
    ratios = log_binning.edges[1:] / log_binning.edges[:-1]
    np.testing.assert_allclose(ratios, ratios[0])
    # Only train runs: they set the range. Only low-statistics runs: then (and only then) they do.
    train = charts.score_binning(np.array([1.0, 2.0, 3.0, 1e9]), np.array(["train", "train", "train", "low_stats"]))
    assert train.edges[-1] == 3.0
    low = charts.score_binning(np.array([5.0, 7.0, np.nan]), np.array(["low_stats", "low_stats", "missing"]))
    assert low.edges[0] == 5.0 and low.edges[-1] == 7.0
    # All +inf: a default range, every run counted as overflow.
    infinite = charts.score_binning(np.full(4, np.inf), np.array(["test"] * 4))
    assert np.all(np.isfinite(infinite.edges))
    assert charts.count(np.full(4, np.inf), infinite.edges).overflow == 4
    # One distinct value: a non-empty range around it, holding it.
    constant = charts.score_binning(np.full(5, 2.0), np.array(["test"] * 5))
    assert constant.edges[0] < 2.0 < constant.edges[-1]
    zero = charts.score_binning(np.zeros(3), np.array(["test"] * 3))
    assert zero.edges[0] < 0.0 < zero.edges[-1]


def test_count_adds_up_with_under_and_overflow() -> None:
    edges = np.linspace(0.0, 1.0, 6)
    values = np.array([-np.inf, -1.0, 0.0, 0.2, 0.5, 1.0, 1.0001, np.inf, np.nan])
    c = charts.count(values, edges)
    assert (c.underflow, c.overflow) == (2, 2)
    assert c.counts.tolist() == [1, 1, 1, 0, 1]  # 1.0 is in the last (closed) bin
    assert c.total == 8  # NaN is not a run with a score
    assert c.legend("good") == "good: 8 (2 below, 2 above range)"
    assert charts.count(np.array([0.5]), edges).legend("bad") == "bad: 1"


def test_log_y_only_when_small_groups_would_vanish() -> None:
    assert charts.log_y([np.array([40, 60, 5]), np.array([1, 2, 0])])
    assert not charts.log_y([np.array([10, 8, 3]), np.array([2, 1])])
    assert not charts.log_y([])
    assert not charts.log_y([np.zeros(4)])


def test_sic_curve_and_band() -> None:
    result = _roc(2.0, seed=1)
    tpr, sic = charts.sic_curve(result)
    keep = result.fpr > 0
    np.testing.assert_allclose(sic, result.tpr[keep] / np.sqrt(result.fpr[keep]))
    assert len(tpr) == keep.sum() and np.all(np.isfinite(sic))
    x, lo, hi = charts.sic_band(result)
    assert len(x) and np.all(lo <= hi + 1e-12)
    # Only FPR values resolved by the good runs enter the band.
    grid = result.grid[(result.grid > 0) & (result.grid >= 1 / result.n_good)]
    assert len(x) == len(grid)
    nan_x, _, _ = charts.sic_band(_nan_roc())
    assert len(nan_x) == 0


def test_confusion_row_fractions() -> None:
    frac = charts.row_fractions(np.array([[90, 10], [0, 0]]))
    np.testing.assert_allclose(frac[0], [0.9, 0.1])
    assert np.all(np.isnan(frac[1]))


def test_corners_keep_the_polyline_with_fewer_points() -> None:
    x = np.array([0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0])
    y = np.array([0.0, 0.5, 1.0, 1.0, 1.0, 1.5, 2.0])
    assert charts._corners(x, y).tolist() == [0, 2, 4, 6]
    assert charts._corners(x[:2], y[:2]).tolist() == [0, 1]


def test_wrap_lines_breaks_long_paths_and_keeps_every_character() -> None:
    lines = charts.wrap_lines(TITLE, 30)
    assert len(lines) > 3 and all(len(line) <= 30 for line in lines)
    assert "".join("".join(lines).split()) == "".join(TITLE.split())
    assert charts.wrap_lines("x" * 100, 40) == ["x" * 40, "x" * 40, "x" * 20]


# --------------------------------------------------------------------------------------------- charts


def test_roc_chart_has_each_curve_its_band_working_point_and_auc_in_the_legend(tmp_path: Path) -> None:
    results = {"autoencoder": _roc(2.0, 1), "pca": _roc(1.0, 2), "ks": _nan_roc()}
    spec = charts.roc_chart(results, TITLE)
    legend = _domain(spec)
    ae = results["autoencoder"]
    assert legend[0] == f"autoencoder: AUC {ae.auc:.3f} ± {ae.auc_std:.3f} (80 good, 12 bad)"
    assert legend[2] == "ks: needs good and bad runs (3 good, 0 bad)", "counts differ between curves: per entry"
    curve = [r for r in _rows(spec, "curve") if r["algorithm"] == "autoencoder"]
    corners = charts._corners(ae.fpr, ae.tpr)
    assert len(corners) < len(ae.fpr), "points inside straight runs are left out"
    np.testing.assert_allclose([r["x"] for r in curve], ae.fpr[corners], rtol=1e-3)
    np.testing.assert_allclose([r["y"] for r in curve], ae.tpr[corners], rtol=1e-3)
    assert curve[0]["threshold"] == "+inf", "tooltip text"
    assert [r["threshold"] for r in curve[1:]] == [f"{t:.4g}" for t in ae.thresholds[corners][1:]]
    (point,) = [r for r in _rows(spec, "point") if r["algorithm"] == "autoencoder"]
    assert (point["x"], point["y"]) == pytest.approx(ae.best_working_point, rel=1e-3)
    band = [r for r in _rows(spec, "band") if r["algorithm"] == "autoencoder"]
    assert band and all(0 <= r["lo"] <= r["hi"] <= 1 for r in band)
    assert not [r for r in _data(spec) if r.get("algorithm") == "ks"], "nothing drawn without good and bad runs"
    assert _messages(spec) == []
    charts.write_chart(spec, tmp_path / "deep" / "roc.vl.json")  # JSON without NaN
    assert json.loads((tmp_path / "deep" / "roc.vl.json").read_text()) == spec


def test_roc_chart_of_a_seed_ensemble_and_without_good_and_bad_runs() -> None:
    plain = _roc(1.5, 4)
    band = np.vstack([plain.tpr_mean, plain.tpr_mean - 0.05, plain.tpr_mean + 0.05])
    seeded = dataclasses.replace(plain, seed_aucs=np.array([0.8, 0.82, 0.85]), seed_tpr=band)
    spec = charts.roc_chart({"ae": seeded}, TITLE)
    assert "seeds: 0.820 [0.806, 0.840] (68%, 3 seeds)" in _domain(spec)[0]
    assert len(_rows(spec, "seeds")) == len(seeded.grid)
    empty = charts.roc_chart({"ks": _nan_roc()}, TITLE)
    assert _messages(empty) == ["needs good and bad runs"]
    assert "3 good, 0 bad runs" in empty["title"]["subtitle"]


def test_sic_chart_names_the_best_point() -> None:
    result = _roc(2.0, 1)
    spec = charts.sic_chart({"ae": result, "ks": _nan_roc()}, TITLE)
    tpr, sic = charts.sic_curve(result)
    best = int(np.argmax(sic))
    assert _domain(spec)[0] == f"ae: max SIC {sic[best]:.2f} at TPR {tpr[best]:.2f} (80 good, 12 bad)"
    assert max(r["y"] for r in _rows(spec, "curve")) == pytest.approx(sic.max(), rel=1e-3)
    assert spec["layer"][2]["encoding"]["y"]["scale"]["domain"][1] >= sic.max()


def test_confusion_chart_cells() -> None:
    matrices = [("max TPR·(1-FPR)", np.array([[100, 20], [3, 12]])), ("FAR 5%", np.array([[114, 6], [0, 0]]))]
    spec = charts.confusion_chart(matrices, TITLE)
    cells = {(r["matrix"], r["true_class"], r["predicted"]): r for r in spec["data"]["values"]}
    assert len(cells) == 8
    assert cells[("max TPR·(1-FPR)", "bad", "bad")]["count"] == 12
    assert cells[("max TPR·(1-FPR)", "bad", "bad")]["share"] == "80.0%"
    assert cells[("max TPR·(1-FPR)", "good", "good")]["true"] == "good (120)"
    assert cells[("FAR 5%", "bad", "good")]["share"] == "–", "an empty row has no fraction"
    assert spec["facet"]["sort"] == ["max TPR·(1-FPR)", "FAR 5%"] and spec["columns"] == 2
    assert _messages(charts.confusion_chart([], TITLE)) == ["no working point"]
    with pytest.raises(ValueError, match="shape"):
        charts.confusion_chart([("bad", np.zeros((3, 3)))], TITLE)


def test_score_chart_counts_every_run_once() -> None:
    frame = _score_frame()
    spec = charts.score_chart(frame, TITLE)
    top, bottom = _panels(spec)
    assert len(top) == len(bottom) == 2
    for k, algorithm in enumerate(("autoencoder", "pca")):
        sub = frame[frame["algorithm"] == algorithm]
        evaluated = sub[sub["split"].isin(["calibration", "test"])]
        legend = _domain(top[k])
        good = int((evaluated["label"] == 0).sum())
        bad = int((evaluated["label"] == 1).sum())
        assert legend[0].startswith(f"good: {good}") and legend[1].startswith(f"bad: {bad}")
        assert "above range)" in legend[1], "the +inf run is overflow"
        low = [e for e in _domain(bottom[k]) if e.startswith("low statistics")]
        assert low == ["low statistics: 11 (11 above range)"], "low-statistics outliers never set the binning"
        totals = _panel_totals(top[k])
        for entry, total in totals.items():
            outside = sum(int(n) for n in re.findall(r"(\d+) (?:below|above)", entry))
            assert total + outside == int(entry.split(": ")[1].split()[0]), entry
    assert spec["title"]["text"][0].startswith("L1T/")


def test_score_chart_edge_cases() -> None:
    frame = _score_frame(algorithms=("a",))
    unlabelled = charts.score_chart(frame.assign(label=-1), TITLE)
    assert [e.split(":")[0] for e in _domain(_panels(unlabelled)[0][0])] == ["unlabelled"]
    bare = charts.score_chart(frame.drop(columns=["label", "split"]), TITLE)
    assert _domain(_panels(bare)[0][0])[0].startswith("unlabelled")
    infinite = charts.score_chart(frame.assign(score=np.inf), TITLE)
    assert "all runs outside the range (no finite score)" in _messages(_panels(infinite)[0][0])
    assert _messages(charts.score_chart(frame.iloc[:0], TITLE)) == ["no scores"]
    many = charts.score_chart(_score_frame(algorithms=tuple(f"algorithm {i}" for i in range(charts.MAX_COLUMNS + 1))),
                              TITLE)  # fmt: skip
    assert len(_panels(many)[0]) == charts.MAX_COLUMNS
    assert many["title"]["subtitle"] == [f"1 more algorithms not shown: algorithm {charts.MAX_COLUMNS}"]
    log = _panels(charts.score_chart(frame, TITLE))[0][0]["layer"][1]["encoding"]
    assert log["x"]["scale"].get("type", "linear") == "linear" and log["y"]["scale"]["type"] == "log"


@pytest.mark.parametrize("centre,width", [(12345.6, 1.0), (1000.0, 3.0), (1.0, 0.02)])
def test_scores_far_from_zero_keep_their_bins(centre: float, width: float) -> None:
    scores = np.random.default_rng(2).normal(centre, width, 200)
    frame = pd.DataFrame({"algorithm": "a", "score": scores, "label": 0, "split": "test"})
    panel = _panels(charts.score_chart(frame, TITLE))[0][0]
    edges = charts.score_binning(scores, frame["split"].to_numpy()).edges
    bins = [r for r in panel["data"]["values"] if 0 < r["i"] <= len(edges) - 1]
    assert len(bins) == len(edges) - 1
    for row in bins:  # each bin where the binning put it, to a hundredth of a bin
        np.testing.assert_allclose(
            [row["lo"], row["hi"]], edges[row["i"] - 1 : row["i"] + 1], atol=0.01 * np.diff(edges).min()
        )
    latent = charts.latent_chart(frame.assign(run_number=np.arange(200), latent_1=scores, latent_2=scores), TITLE)
    drawn = np.array([r["x"] for r in latent["data"]["values"]])
    assert np.abs(drawn - scores).max() <= 1e-3 * np.ptp(scores), "runs placed to a thousandth of the axis"


def test_latent_chart_names_every_run() -> None:
    frame = _latent_frame()
    spec = charts.latent_chart(frame, "CSC//Run summary/h #1 [pca_2]")
    rows = spec["data"]["values"]
    assert sorted(r["run"] for r in rows) == frame["run_number"].tolist()
    assert _domain(spec) == ["training runs (50)", "good, not trained on (50)", "bad (10)", "low statistics (10)"]
    assert {"field": "run", "title": "run"} in spec["encoding"]["tooltip"]
    one_d = charts.latent_chart(frame.assign(latent_2=np.nan), "h [pca_1]")
    assert one_d["encoding"]["y"]["title"] == "anomaly score" and one_d["encoding"]["y"]["scale"] == {"type": "log"}
    assert [r["y"] for r in one_d["data"]["values"]][:3] == pytest.approx(frame["score"].iloc[:3], rel=1e-3)
    assert _messages(charts.latent_chart(frame.assign(latent_1=np.nan), "h")) == ["no run has latent coordinates"]
    infinite = charts.latent_chart(frame.assign(score=np.inf), "h")
    assert {r["score"] for r in infinite["data"]["values"]} == {"+inf"}, "a tooltip says +inf, not 0.000"


def test_curves_stay_inside_their_axes_and_runs_without_a_curve_have_no_legend_symbol() -> None:
    rng = np.random.default_rng(11)  # few good runs: the SIC band reaches far above the curves
    small = bootstrap_roc(np.r_[rng.normal(0, 1, 20), rng.normal(1, 1, 8)], np.r_[np.zeros(20), np.ones(8)],
                          n_bootstrap=30, seed=1)  # fmt: skip
    for spec in (charts.sic_chart({"a": small, "ks": _nan_roc()}, TITLE), charts.roc_chart({"a": small}, TITLE)):
        marks = [layer["mark"] for layer in spec["layer"] if "transform" in layer]
        assert marks and all(m["clip"] for m in marks), "marks are clipped to the axes"
    sic = charts.sic_chart({"a": small, "ks": _nan_roc()}, TITLE)
    colors = dict(zip(_domain(sic), sic["layer"][0]["encoding"]["color"]["scale"]["range"], strict=True))
    assert colors["ks: needs good and bad runs (3 good, 0 bad)"] == charts.NO_CURVE
    assert _messages(charts.sic_chart({"ks": _nan_roc()}, TITLE)) == ["needs good and bad runs"]


def _every_chart() -> dict[str, dict[str, Any]]:
    rocs = {"autoencoder": _roc(2.0, 1), "pca": _roc(1.0, 2), "ks": _nan_roc()}
    frame = _score_frame()
    matrices = [("max TPR·(1-FPR)", np.array([[100, 20], [3, 12]])), ("FAR 5%", np.array([[114, 6], [0, 0]]))]
    return {
        "roc": charts.roc_chart(rocs, TITLE + " <!--<script> </script>"),
        "roc_empty": charts.roc_chart({"ks": _nan_roc()}, TITLE),
        "sic": charts.sic_chart(rocs, TITLE),
        "confusion": charts.confusion_chart(matrices, TITLE),
        "confusion_none": charts.confusion_chart([], TITLE),
        "scores": charts.score_chart(frame, TITLE),
        "scores_linear": charts.score_chart(frame.assign(score=np.log(frame["score"].clip(lower=1e-3))), TITLE),
        "scores_inf": charts.score_chart(frame.assign(score=np.inf), TITLE),
        "scores_log_x": charts.score_chart(frame.assign(score=np.geomspace(1e-3, 1e2, len(frame))), TITLE),
        "scores_none": charts.score_chart(frame.iloc[:0], TITLE),
        "latent": charts.latent_chart(_latent_frame(), TITLE),
        "latent_1d": charts.latent_chart(_latent_frame().assign(latent_2=np.nan), TITLE),
        "latent_none": charts.latent_chart(_latent_frame().assign(latent_1=np.nan), TITLE),
    }


@pytest.mark.browser
def test_the_browser_draws_every_chart_without_a_warning(tmp_path: Path, chromium: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    specs = _every_chart()
    inputs = synthetic(tmp_path, figures=False)
    figures = []
    for name, spec in specs.items():
        charts.write_chart(spec, tmp_path / "charts" / f"{name}{charts.SUFFIX}")
        figures.append(Figure(tmp_path / "charts" / f"{name}{charts.SUFFIX}", name, "</script> & caption"))
    site = build_site(tmp_path / "site", **inputs, histogram_figures={HISTOGRAMS[0]: figures}).parent
    page = next(p for p in (site / "histograms").glob("*.html") if 'class="vl"' in p.read_text())
    inline = re.findall(r'<script type="application/json" id="spec-\d+">(.*?)</script>', page.read_text(), re.S)
    assert len(inline) == len(specs) and not any("<" in text for text in inline), "no '<' inside the JSON"
    assert sorted(p.name for p in (site / "js").iterdir()) == [
        "LICENSES.txt", "charts.js", "vega-embed.min.js", "vega-lite.min.js", "vega.min.js"
    ]  # fmt: skip
    driver = chromium
    driver.get(page.as_uri())
    script = "return Array.from(document.querySelectorAll('div.vl')).every(e => e.hasAttribute('data-drawn'));"
    WebDriverWait(driver, 20).until(lambda d: d.execute_script(script))
    drawn = driver.execute_script(
        "return Array.from(document.querySelectorAll('div.vl')).map(e => [e.getAttribute('data-name'),"
        " e.getAttribute('data-drawn'), e.getAttribute('data-warnings'),"
        " e.querySelectorAll('svg .mark-line path, svg .mark-area path, svg .mark-symbol path,"
        " svg .mark-rect path, svg .mark-text text').length]);"
    )
    assert [d[0] for d in drawn] == [f"charts_{name}" for name in specs]
    for name, status, warnings, marks in drawn:
        assert status == "1" and warnings == "", (name, status, warnings)
        assert marks > 0, f"{name}: nothing drawn"
    marks = {d[0]: d[3] for d in drawn}
    assert marks["charts_roc"] > marks["charts_roc_empty"], "curves, bands and points are drawn"
    # Hovering shows the values of the point or bin under the mouse, not those of a whole line.
    tooltip = "var e = document.getElementById('vg-tooltip-element');" \
              " return e && e.classList.contains('visible') ? e.innerText : null;"  # fmt: skip
    for name, what in (("roc", "flagged at score ≥"), ("sic", "SIC"), ("scores", "runs in the bin")):
        texts = []
        items = driver.find_elements(By.CSS_SELECTOR, f"div.vl[data-name='charts_{name}'] path[opacity='0.001']")
        size = "var r = arguments[0].getBoundingClientRect(); return r.width * r.height;"
        items = [item for item in items if driver.execute_script(size, item) > 4]  # not an empty bin
        assert len(items) > 4, name
        for item in (items[len(items) // 3], items[2 * len(items) // 3]):
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", item)
            ActionChains(driver).move_to_element(item).perform()
            texts.append(WebDriverWait(driver, 5).until(lambda d: d.execute_script(tooltip)))
            ActionChains(driver).move_to_element(driver.find_element(By.TAG_NAME, "h1")).perform()
        assert all(what in t for t in texts) and texts[0] != texts[1], (name, texts)
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    # The menu of a chart saves it (vega-embed's export actions).
    menu = "return document.querySelectorAll('.vega-embed .vega-actions a').length;"
    assert driver.execute_script(menu) >= 2 * len(specs), "each chart saves as SVG and PNG"
    shot = Path(__file__).resolve().parents[1] / "results" / "ci" / "charts.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    driver.set_window_size(1400, min(int(height) + 120, 8000))
    assert driver.save_screenshot(str(shot))
