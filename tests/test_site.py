"""The static assessment site: pages, links, ordering of verdicts, rebuilds, and a real browser."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from dqmflow.names import slugify
from dqmflow.site import MAX_RUN_ROWS, Figure, build_site

REPO = Path(__file__).resolve().parents[1]
HISTOGRAMS = [
    "L1T//Run summary/L1TStage2EMTF/emtfTrackPhi",
    "CSC//Run summary/CSCOfflineMonitor/Occupancy/ME+1/1 #hits (a.b)",
    "DT//Run summary/Wheel 0/segments & <b>bold</b> 100%",
    "HLT//Run summary/Ünïcode/µ-path",
]
ALGORITHMS = ["ks_test", "autoencoder"]
FIRST_RUN = 355100


class Page(HTMLParser):
    """What a test needs from one page: links, ids, tags, the heading and run links per table."""

    def __init__(self, path: Path) -> None:
        super().__init__(convert_charrefs=True)
        self.path = path
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.h1 = ""
        self.text: list[str] = []
        self.table_runs: dict[str, list[int]] = defaultdict(list)
        self._table: str | None = None
        self._in_h1 = False
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if "id" in attr:
            self.ids.add(attr["id"])
        if tag == "table":
            self._table = attr.get("id", "")
        if tag == "a" and "href" in attr:
            self.links.append(attr["href"])
            match = re.search(r"runs/(\d+)\.html$", attr["href"])
            if match and self._table:
                self.table_runs[self._table].append(int(match.group(1)))
        if tag in ("img", "script") and "src" in attr:
            self.links.append(attr["src"])
        self._in_h1 = self._in_h1 or tag == "h1"

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_h1:
            self.h1 += data


def png(path: Path, label: str) -> Path:
    """A small PNG drawn with matplotlib (Agg)."""
    fig, ax = plt.subplots(figsize=(2.4, 1.6), dpi=50)
    ax.plot([0, 1, 2], [0, 1, 0.5])
    ax.set_title(label[:20])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def synthetic(
    tmp: Path, n_runs: int = 12, histograms: list[str] = HISTOGRAMS, seed: int = 1, figures: bool = True
) -> dict[str, Any]:
    """Keyword arguments of build_site: two clearly anomalous runs, one low-statistics, one unreadable."""
    rng = np.random.default_rng(seed)
    runs = [FIRST_RUN + i for i in range(n_runs)]
    low_run, unreadable_run = runs[-2], runs[-1]
    rows = [(run, h, a, float(rng.uniform(0.01, 1.0))) for run in runs[:-1] for h in histograms for a in ALGORITHMS]
    pvalues = pd.DataFrame(rows, columns=["run_number", "histogram", "algorithm", "p_value"])
    anomalies = {(runs[4], histograms[1], "autoencoder"): 1e-6, (runs[1], histograms[-1], "ks_test"): 3e-5}
    for (run, h, a), p in anomalies.items():
        pvalues.loc[pvalues.run_number.eq(run) & pvalues.histogram.eq(h) & pvalues.algorithm.eq(a), "p_value"] = p
    pvalues["score"] = -np.log10(pvalues["p_value"]) + rng.normal(0, 0.01, len(pvalues))
    n_tests = len(histograms) * len(ALGORITHMS)
    verdict_rows = []
    for run, group in pvalues[pvalues.run_number.ne(low_run)].groupby("run_number"):
        group = group.sort_values("p_value")
        p_run = min(1.0, float(group.p_value.iloc[0]) * n_tests)
        drivers = "; ".join(f"{h} [{a}]" for h, a in zip(group.histogram[:3], group.algorithm[:3], strict=True))
        verdict_rows.append((run, float(group.score.iloc[0]), p_run, p_run < 0.01, drivers))
    verdicts = pd.DataFrame(verdict_rows, columns=["run_number", "score", "p_value", "flagged", "histograms"])
    verdicts = verdicts.sort_values("score", ascending=False, ignore_index=True)
    verdicts["rank"] = np.arange(1, len(verdicts) + 1)
    verdicts["label"] = [1 if r == runs[4] else (0 if r % 3 else -1) for r in verdicts.run_number]
    verdicts["split"] = "test"
    verdicts["low_stats"] = False
    verdicts["unreadable"] = False
    apart = pd.DataFrame(
        {
            "run_number": [low_run, unreadable_run],
            "score": [np.nan, np.nan],
            "p_value": [np.nan, np.nan],
            "flagged": [False, False],
            "histograms": ["", ""],
            "rank": [-1, -1],
            "label": [-1, -1],
            "split": ["low_stats", "missing"],
            "low_stats": [True, False],
            "unreadable": [False, True],
        }
    )
    # The low-statistics row sits inside the ranking to check the site puts it apart anyway.
    verdicts = pd.concat([verdicts.iloc[:3], apart.iloc[:1], verdicts.iloc[3:], apart.iloc[1:]], ignore_index=True)
    metrics = pd.DataFrame(
        [(h, a, rng.uniform(0.5, 1.0), 0.02, 20, 3, rng.uniform(0, 0.3)) for h in histograms for a in ALGORITHMS],
        columns=["histogram", "algorithm", "auc", "auc_std", "n_good", "n_bad", "far_at_90"],
    )
    top = pvalues.sort_values("p_value").groupby(["histogram", "algorithm"], sort=False).head(3).copy()
    top["rank"] = top.groupby(["histogram", "algorithm"]).cumcount() + 1
    top = top.merge(verdicts[["run_number", "label", "split"]], on="run_number", how="left")
    kwargs: dict[str, Any] = {
        "title": "dqmflow: SingleMuon",
        "verdicts": verdicts,
        "pvalues": pvalues,
        "metrics": metrics,
        "top_runs": top,
    }
    if figures:
        src = tmp / "figures src"
        shared = png(src / "flagged runs #1.png", "flagged runs")
        kwargs["summary_figures"] = [Figure(png(src / "roc curve.png", "ROC"), "Run-level ROC", "all algorithms")]
        kwargs["histogram_figures"] = {
            h: [Figure(png(src / f"hist {i}.png", h), f"{h} <reconstruction>", "caption & more")]
            for i, h in enumerate(histograms)
        }
        kwargs["run_figures"] = {runs[4]: [Figure(shared, "Flagged runs")], runs[1]: [Figure(shared, "Flagged runs")]}
        csv = tmp / "tables src" / "auc.csv"
        csv.parent.mkdir(parents=True, exist_ok=True)
        metrics.to_csv(csv, index=False)
        tex = csv.with_name("far table.tex")
        tex.write_text(r"\begin{tabular}{l}\end{tabular}" + "\n")
        kwargs["tables"] = {"AUC by histogram": csv, "FAR # table": tex}
    return kwargs


def crawl(site: Path) -> dict[Path, Page]:
    """Every page of a site, parsed."""
    return {path.resolve(): Page(path) for path in sorted(site.rglob("*.html"))}


def assert_links_resolve(site: Path) -> None:
    """Every href/src is relative, stays inside the site, exists on disk, and its #fragment exists."""
    pages = crawl(site)
    root = site.resolve()
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc and not link.startswith("/"), (path, link)
            if not parts.path:
                assert parts.fragment in page.ids, (path, link)
                continue
            target = (path.parent / unquote(parts.path)).resolve()
            assert target.is_file(), (path.relative_to(root), link)
            assert root in target.parents, (path, link)
            if parts.fragment:
                assert parts.fragment in pages[target].ids, (path, link)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Any]:
    return synthetic(tmp_path)


@pytest.fixture
def site(tmp_path: Path, inputs: dict[str, Any]) -> Path:
    index = build_site(tmp_path / "site", **inputs)
    assert index == tmp_path / "site" / "index.html"
    return index.parent


def test_index_shows_flagged_runs_first_in_ranking_order(site: Path, inputs: dict[str, Any]) -> None:
    verdicts = inputs["verdicts"]
    page = Page(site / "index.html")
    flagged = [int(r) for r in verdicts.run_number[verdicts.flagged]]
    assert flagged == [FIRST_RUN + 4, FIRST_RUN + 1]
    assert page.table_runs["flagged"] == flagged
    ranked = verdicts[~verdicts.low_stats & ~verdicts.unreadable & ~verdicts.flagged]
    assert page.table_runs["rest"] == [int(r) for r in ranked.run_number]
    html = (site / "index.html").read_text()
    assert html.index('id="flagged"') < html.index('id="rest"') < html.index('id="low"') < html.index('id="search"')
    assert re.search(r"<details>\s*<summary>", html[html.index('id="ranking"') :])
    # The driving histograms link to the histogram page, at the algorithm's section.
    slug = slugify(HISTOGRAMS[1])
    assert f"histograms/{slug}.html#alg-autoencoder".replace("+", "%2B") in page.links


def test_low_stats_and_unreadable_runs_are_listed_apart_with_a_reason(site: Path) -> None:
    page = Page(site / "index.html")
    low, unreadable = FIRST_RUN + 10, FIRST_RUN + 11
    assert page.table_runs["low"] == [low]
    assert page.table_runs["unreadable-runs"] == [unreadable]
    for table in ("flagged", "rest"):
        assert low not in page.table_runs[table] and unreadable not in page.table_runs[table]
    text = " ".join(" ".join(page.text).split())
    assert "too few entries" in text and "could not be read" in text
    run_text = " ".join(Page(site / "runs" / f"{low}.html").text)
    assert "low statistics" in run_text and "too few entries" in run_text


def test_every_run_and_histogram_has_a_page_and_every_link_resolves(site: Path, inputs: dict[str, Any]) -> None:
    for run in inputs["verdicts"].run_number:
        assert (site / "runs" / f"{run}.html").is_file()
    for name in HISTOGRAMS:
        assert (site / "histograms" / f"{slugify(name)}.html").is_file()
    assert len(list((site / "runs").iterdir())) == 12
    assert len(list((site / "histograms").iterdir())) == len(HISTOGRAMS)
    assert_links_resolve(site)
    run_page = Page(site / "runs" / f"{FIRST_RUN + 4}.html")
    assert "../index.html" in run_page.links
    assert any(link.startswith("../img/") for link in run_page.links)


def test_histogram_names_with_special_characters_survive(site: Path) -> None:
    for name in HISTOGRAMS:
        page = Page(site / "histograms" / f"{slugify(name)}.html")
        assert page.h1 == name
    page = Page(site / "histograms" / f"{slugify(HISTOGRAMS[2])}.html")
    assert "b" not in page.tags  # "<b>" in the name is text, not markup
    index_text = "".join(Page(site / "index.html").text)
    assert all(name in index_text for name in HISTOGRAMS)


def test_run_page_ranks_tests_by_p_value_with_links(site: Path, inputs: dict[str, Any]) -> None:
    run = FIRST_RUN + 4
    html = (site / "runs" / f"{run}.html").read_text()
    table = html[html.index('id="tests"') :]
    shown = [float(p) for p in re.findall(r'<td class="num">(\d\.\de[+-]\d\d)</td></tr>', table)]
    expected = inputs["pvalues"].query("run_number == @run").p_value.sort_values()
    assert len(shown) == len(expected) == len(HISTOGRAMS) * len(ALGORITHMS)
    assert shown == sorted(shown) and shown[0] == pytest.approx(1e-6)
    assert "1.0e-06" in table
    assert "flagged" in html and "All 8 tests" in html


def test_run_page_table_is_capped(tmp_path: Path) -> None:
    names = [f"EMTF//Run summary/h{i:03d}" for i in range(40)]
    site = build_site(tmp_path / "site", **synthetic(tmp_path, n_runs=6, histograms=names, figures=False)).parent
    html = (site / "runs" / f"{FIRST_RUN}.html").read_text()
    assert len(re.findall(r"<tr><td class=\"num\">\d+</td>", html)) == MAX_RUN_ROWS
    assert f"most significant of {40 * 2} tests; {80 - MAX_RUN_ROWS} less significant" in html


def test_histogram_page_shows_metrics_and_top_runs(site: Path, inputs: dict[str, Any]) -> None:
    name = HISTOGRAMS[1]
    page = Page(site / "histograms" / f"{slugify(name)}.html")
    text = " ".join(page.text)
    metrics = inputs["metrics"].query("histogram == @name")
    for row in metrics.itertuples():
        assert f"{row.auc:.3f} ± 0.020" in text
    assert {"alg-ks_test", "alg-autoencoder"} <= page.ids
    assert f"../runs/{FIRST_RUN + 4}.html" in page.links  # top run of the autoencoder
    assert "far_at_90" in text
    index = Page(site / "index.html")
    best = metrics.auc.max()
    assert f"{best:.3f} ± 0.020" in " ".join(index.text)


def test_figures_and_tables_are_copied_so_the_site_can_move(tmp_path: Path, site: Path) -> None:
    images = sorted((site / "img").iterdir())
    # One summary figure, one per histogram, and the figure shared by two runs copied once.
    assert len(images) == 1 + len(HISTOGRAMS) + 1
    assert {p.name for p in (site / "tables").iterdir()} == {"AUC_by_histogram.csv", "FAR_table.tex"}
    shutil.rmtree(tmp_path / "figures src")
    shutil.rmtree(tmp_path / "tables src")
    moved = Path(shutil.move(site, tmp_path / "elsewhere" / "eos"))
    assert_links_resolve(moved)
    html = (moved / "index.html").read_text()
    assert "&lt;reconstruction&gt;" in (moved / "histograms" / f"{slugify(HISTOGRAMS[0])}.html").read_text()
    assert 'href="tables/FAR_table.tex"' in html and "FAR # table" in html


def test_numbers_are_short(site: Path) -> None:
    for path in site.rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"\d\.\d{7,}", text), path
    html = (site / "index.html").read_text()
    assert re.search(r">\d\.\de-0[56]<", html)  # p-values of the flagged runs
    assert re.search(r'<td class="num">\d\.\d{3}</td>', html)  # score with 4 significant digits


def test_search_index_has_every_run_and_histogram(site: Path, inputs: dict[str, Any]) -> None:
    js = (site / "search.js").read_text()
    assert "fetch(" not in js and "XMLHttpRequest" not in js
    data = json.loads(re.search(r"window\.DQMFLOW_SEARCH = (\{.*?\});\n", js).group(1))
    assert {int(r[0]) for r in data["runs"]} == set(inputs["verdicts"].run_number)
    assert [h[0] for h in data["histograms"]] == sorted(HISTOGRAMS)
    assert {p[1] for p in data["pairs"]} == set(ALGORITHMS)
    html = (site / "index.html").read_text()
    assert '<input id="search"' in html and '<script src="search.js"></script>' in html


def test_top_runs_are_derived_from_pvalues_when_not_given(tmp_path: Path) -> None:
    kwargs = synthetic(tmp_path, figures=False)
    kwargs.pop("top_runs")
    kwargs.pop("metrics")
    site = build_site(tmp_path / "site", **kwargs).parent
    page = Page(site / "histograms" / f"{slugify(HISTOGRAMS[1])}.html")
    html = (site / "histograms" / f"{slugify(HISTOGRAMS[1])}.html").read_text()
    section = html[html.index('id="alg-autoencoder"') :]
    first_run = re.search(r"runs/(\d+)\.html", section)
    assert first_run and int(first_run.group(1)) == FIRST_RUN + 4
    assert "No metrics" in " ".join(page.text)
    assert_links_resolve(site)


def test_rebuild_removes_stale_pages(tmp_path: Path, inputs: dict[str, Any]) -> None:
    out = tmp_path / "site"
    build_site(out, **inputs)
    stale = out / "runs" / f"{FIRST_RUN + 11}.html"
    assert stale.is_file()
    fewer = dict(inputs)
    fewer["verdicts"] = inputs["verdicts"][inputs["verdicts"].run_number.ne(FIRST_RUN + 11)]
    fewer["histogram_figures"] = {}
    build_site(out, **fewer)
    assert not stale.exists()
    assert len(list((out / "img").iterdir())) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if "site" in p.name) == ["site"]  # no temporary leftovers
    assert_links_resolve(out)


def test_refuses_to_replace_a_foreign_directory(tmp_path: Path, inputs: dict[str, Any]) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    with pytest.raises(FileExistsError):
        build_site(out, **inputs)
    assert (out / "thesis.tex").read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build_site(empty, **inputs).is_file()


def test_missing_figure_is_an_error_before_anything_is_written(tmp_path: Path, inputs: dict[str, Any]) -> None:
    inputs["summary_figures"] = [Figure(tmp_path / "nope.png", "missing")]
    with pytest.raises(FileNotFoundError, match=r"nope\.png"):
        build_site(tmp_path / "site", **inputs)
    assert not (tmp_path / "site").exists()


def test_index_shows_at_most_n_driving_histograms(tmp_path: Path, inputs: dict[str, Any]) -> None:
    site = build_site(tmp_path / "site", **inputs, n_driving=1).parent
    html = (site / "index.html").read_text()
    flagged = html[html.index('id="flagged"') : html.index('id="ranking"')]
    assert flagged.count("<li>") == 2  # two flagged runs, one driving histogram each
    # The run page still lists all its driving histograms.
    assert (site / "runs" / f"{FIRST_RUN + 4}.html").read_text().count('<li><a href="../histograms/') == 3


def test_empty_and_categorical_inputs(tmp_path: Path, inputs: dict[str, Any]) -> None:
    empty = build_site(
        tmp_path / "empty",
        title="nothing yet",
        verdicts=inputs["verdicts"].iloc[:0],
        pvalues=inputs["pvalues"].iloc[:0],
    )
    assert "No run is flagged" in empty.read_text()
    assert not any((empty.parent / "runs").iterdir())
    kwargs = dict(inputs, top_runs=None)
    kwargs["pvalues"] = inputs["pvalues"].astype({"histogram": "category", "algorithm": "category"})
    site = build_site(tmp_path / "site", **kwargs).parent
    assert len(list((site / "histograms").iterdir())) == len(HISTOGRAMS)
    assert_links_resolve(site)


def test_large_input_is_grouped_not_looped(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n_runs, n_hist = 600, 200
    runs = np.arange(300000, 300000 + n_runs)
    names = np.array([f"Sub//Run summary/folder/h {i} #x" for i in range(n_hist)], dtype=object)
    pvalues = pd.DataFrame(
        {
            "run_number": np.repeat(runs, n_hist * 3),
            "histogram": np.tile(np.repeat(names, 3), n_runs),
            "algorithm": np.tile(np.array(["a1", "a2", "a3"], dtype=object), n_runs * n_hist),
            "p_value": rng.uniform(0, 1, n_runs * n_hist * 3),
        }
    )
    pvalues["score"] = -np.log10(pvalues.p_value)
    verdicts = pd.DataFrame(
        {"run_number": runs, "score": rng.normal(size=n_runs), "p_value": 0.5, "flagged": False, "histograms": ""}
    )
    verdicts.loc[:4, "flagged"] = True
    verdicts.loc[:4, "histograms"] = f"{names[0]} [a1]; {names[1]} [a2]"
    start = time.perf_counter()
    site = build_site(tmp_path / "site", title="big", verdicts=verdicts, pvalues=pvalues).parent
    elapsed = time.perf_counter() - start
    assert len(list((site / "runs").iterdir())) == n_runs
    assert len(list((site / "histograms").iterdir())) == n_hist
    assert elapsed < 30, f"{len(pvalues)} p-value rows took {elapsed:.1f} s"


@pytest.mark.browser
def test_browser_search_run_then_histogram_image(tmp_path: Path, inputs: dict[str, Any], chromium: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    site = build_site(tmp_path / "site", **inputs).parent
    run = FIRST_RUN + 4
    driver = chromium
    driver.set_window_size(1280, 1000)
    wait = WebDriverWait(driver, 10)
    driver.get((site / "index.html").as_uri())
    box = wait.until(ec.element_to_be_clickable((By.ID, "search")))
    box.send_keys(str(run))
    result = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "a.result")))
    assert result.text == f"run {run}"
    result.click()
    wait.until(ec.url_contains(f"runs/{run}.html"))
    assert driver.find_element(By.TAG_NAME, "h1").text == f"Run {run}"
    histogram = HISTOGRAMS[1]
    link = driver.find_element(By.CSS_SELECTOR, "#tests a[href*='histograms/']")
    assert link.text == histogram  # the most significant test of this run
    link.click()
    wait.until(ec.url_contains("histograms/"))
    assert driver.find_element(By.TAG_NAME, "h1").text == histogram
    image = driver.find_element(By.CSS_SELECTOR, "figure img")
    driver.execute_script("arguments[0].scrollIntoView();", image)
    wait.until(lambda d: d.execute_script("return arguments[0].complete;", image))
    assert driver.execute_script("return arguments[0].naturalWidth;", image) > 0
    shot = REPO / "results" / "ci" / "site.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    driver.set_window_size(1280, min(int(height) + 120, 4000))  # the whole page in the CI artifact
    driver.execute_script("window.scrollTo(0, 0);")
    assert driver.save_screenshot(str(shot))


def test_problems_missing_histograms_the_p_value_floor_and_absent_figures_are_explained(
    tmp_path: Path, inputs: dict[str, Any]
) -> None:
    kwargs = synthetic(tmp_path / "in", figures=False)
    run = int(kwargs["verdicts"]["run_number"][kwargs["verdicts"]["flagged"]].iloc[0])
    pvalues = kwargs["pvalues"]
    gone = (pvalues["run_number"] == run) & (pvalues["histogram"] == HISTOGRAMS[0])
    pvalues.loc[gone, ["score", "p_value"]] = [np.nan, 1 / 62]  # missing from the run's file: the floor
    flagged = kwargs["verdicts"]["flagged"]
    kwargs["verdicts"].loc[flagged, "p_value"] = float(f"{1 / 62:.6g}")  # beyond every reference run, read from CSV
    problem = "only 8 reference runs: no run can be flagged at a false-alarm rate of 0.05 (needs at least 20)"
    never = f"histogram {HISTOGRAMS[1]!r} [autoencoder] has no score in any run (missing from every file?)"
    site = build_site(tmp_path / "site", **kwargs, problems=[problem, never]).parent
    index = Page(site / "index.html")
    text = " ".join(" ".join(index.text).split())
    assert "problems" in index.ids and problem in text
    assert text.index(problem) < text.index("Flagged runs")
    assert "2 of these runs have the smallest p-value possible, 1.6e-02 = 1/62" in text
    kwargs["verdicts"].loc[flagged, "p_value"] = (1 + 39 / 40) / 40  # beyond all but one of 40: not the floor
    again = " ".join(" ".join(Page(build_site(tmp_path / "again", **kwargs).parent / "index.html").text).split())
    assert "smallest p-value possible" not in again
    run_html = (site / "runs" / f"{run}.html").read_text()
    assert run_html.count(">missing</span>") == len(ALGORITHMS)
    histogram_text = " ".join(" ".join(Page(site / "histograms" / f"{slugify(HISTOGRAMS[0])}.html").text).split())
    assert "No figure for this histogram" in histogram_text and "assessment.plots: all" in histogram_text
    assert "Labels are per run" in histogram_text and "Problems" not in histogram_text
    other = " ".join(" ".join(Page(site / "histograms" / f"{slugify(HISTOGRAMS[1])}.html").text).split())
    assert never in other and problem not in other


def test_an_unreadable_runs_page_names_its_file_and_why(tmp_path: Path) -> None:
    """The fetch report's file_error row reaches the run's page: which file, what was wrong."""
    from dqmflow.site import read_run_problems

    kwargs = synthetic(tmp_path / "in", figures=False)
    unreadable = FIRST_RUN + 11
    report = tmp_path / "fetch_report.tsv"
    path = f"/eos/cms/DQM_V0001_R000{unreadable}__JetMET__Run2022C-PromptReco-v1__DQMIO.root"
    report.write_text(
        "run_number\tfile\thistogram\tstatus\tproblem\n"
        f"{unreadable}\t{path}\t\tfile_error\tnot a ROOT file, or cut short: 1,024 of 88,000 bytes\n"
        f"{FIRST_RUN + 3}\t/eos/x.root\tL1T//Run summary/h\tmissing\tmissing: no object at this path\n"
        "\t\t\tfile_error\tno run number\n"
    )
    problems = read_run_problems(report)
    assert problems == {unreadable: f"{path}: not a ROOT file, or cut short: 1,024 of 88,000 bytes"}
    site = build_site(tmp_path / "site", **kwargs, run_problems=problems).parent
    text = " ".join(" ".join(Page(site / "runs" / f"{unreadable}.html").text).split())
    assert f"Its file could not be read: {path}: not a ROOT file, or cut short" in text
    assert "could not be read:" not in " ".join(Page(site / "runs" / f"{FIRST_RUN + 3}.html").text)
