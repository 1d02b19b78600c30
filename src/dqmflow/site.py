"""Static, self-contained web site of an assessment: verdicts, run and histogram pages, search.

:func:`build_site` writes a directory that opens from ``file://`` and can be copied as a whole to a
static web area (e.g. an EOS web folder):

- ``index.html``: the verdicts first (flagged runs, the rest of the ranking folded away, then
  low-statistics and unreadable runs apart), a search box over runs, histograms and algorithms,
  the summary figures, the downloadable tables and the list of all histograms;
- ``runs/<run>.html``: one run's verdict, its histogram × algorithm tests ranked by p-value and the
  figures where the run is drawn;
- ``histograms/<slug>.html``: one histogram's metrics per algorithm, its top runs and figures;
- ``search.js``: the search index and the client-side search (no fetch/XHR, so ``file://`` works);
- ``img/`` and ``tables/``: copies of the figures and tables, linked relatively;
- ``js/``: the figures of merit are Vega-Lite specifications (:mod:`dqmflow.charts`, files ending
  in ``.vl.json``) inlined in their pages and drawn by the browser with the vega, vega-lite and
  vega-embed bundles shipped in ``dqmflow/site_assets`` (offline, from ``file://`` too).

Only the standard library, numpy and pandas are used; every text is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from dqmflow.names import slugify

__all__ = ["MAX_RUN_ROWS", "MAX_SEARCH_PAIRS", "TOP_RUNS_FALLBACK", "Figure", "build_site", "read_run_problems"]

#: Rows of histogram × algorithm tests shown on a run page (most significant first).
MAX_RUN_ROWS = 50
#: Top runs per histogram and algorithm derived from the p-values when no ``top_runs`` table is given.
TOP_RUNS_FALLBACK = 10
#: Histogram × algorithm entries in the search index (every run and every histogram are always in it).
MAX_SEARCH_PAIRS = 20_000
#: Results the search box shows at most.
_MAX_RESULTS = 50
#: File that marks a directory as written by :func:`build_site` (only such directories are replaced).
_MARKER = ".dqmflow-site"
_VERDICT_COLUMNS = ("run_number", "score", "p_value", "flagged", "histograms")
_PVALUE_COLUMNS = ("run_number", "histogram", "algorithm", "score", "p_value")
_TOP_COLUMNS = ("histogram", "algorithm", "rank", "run_number", "score", "p_value")
_DRIVER = re.compile(r"^(?P<histogram>.*?) \[(?P<algorithm>[^\[\]]*)\]$")
#: The scripts that draw a page's charts, in load order (copied from ``dqmflow/site_assets`` to ``js/``).
CHART_SCRIPTS = ("js/vega.min.js", "js/vega-lite.min.js", "js/vega-embed.min.js", "js/charts.js")
CHART_SUFFIX = ".vl.json"  # dqmflow.charts.SUFFIX (not imported: the site needs no chart code)
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_LOW_STATS_WHY = (
    "These runs have too few entries in their histograms for the shapes to be judged. They are scored "
    "like every run, but a short run's score measures its low statistics as much as the detector, so "
    "they are listed after the ranking and never flagged; look at them by hand if they matter."
)
_UNREADABLE_WHY = (
    "These runs could not be scored: their DQM files or histograms could not be read (missing, corrupt or "
    "absent from the file), so they have no score and are not ranked."
)
_LABELS = {1: "bad", 0: "good"}

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328;
 margin:0 auto;max-width:1280px;padding:0 1rem 3rem;line-height:1.45}
header{border-bottom:1px solid #d0d7de;margin-bottom:1rem;padding:.6rem 0}
header nav a{margin-right:1rem}
h1{font-size:1.45rem;margin:.6rem 0;overflow-wrap:anywhere}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #eaeef2;padding-bottom:.2rem}
h3{font-size:1.05rem;margin-top:1.4rem}
a{color:#0969da;text-decoration:none}
a:hover{text-decoration:underline}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.88rem}
th,td{border-bottom:1px solid #d8dee4;padding:.22rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa;position:sticky;top:0;z-index:1}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{overflow-wrap:anywhere}
tr.flagged td{background:#fff5f5}
ul.drivers{list-style:none;margin:0;padding:0}
.alg{color:#57606a;white-space:nowrap}
.note{color:#57606a;font-size:.9rem}
.problems{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.2rem 1rem;margin:1rem 0}
.badge{display:inline-block;border-radius:.8rem;padding:0 .55rem;font-size:.8rem;font-weight:600}
.badge.flag{background:#cf222e;color:#fff}
.badge.ok{background:#dafbe1;color:#116329}
.badge.apart{background:#fff8c5;color:#7d4e00}
dl.verdict{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem;margin:.5rem 0 1rem}
dl.verdict dt{font-weight:600}
dl.verdict dd{margin:0}
details>summary{cursor:pointer;font-weight:600;margin:.5rem 0}
figure{display:inline-block;vertical-align:top;margin:.4rem .8rem .8rem 0;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #d8dee4;background:#fff}
figure.chart{display:block;overflow-x:auto}
figure.chart .vl{min-height:2rem;border:1px solid #d8dee4;background:#fff;padding:.3rem;display:inline-block}
figcaption{font-size:.85rem;max-width:40rem}
#search{font-size:1rem;padding:.4rem .6rem;width:min(44rem,100%);border:1px solid #8c959f;border-radius:.3rem}
#results{list-style:none;padding:0;margin:.4rem 0}
#results li{padding:.12rem 0}
#results .kind{display:inline-block;min-width:5.5rem;color:#57606a;font-size:.8rem}
footer{margin-top:3rem;color:#57606a;font-size:.8rem}
"""

_SEARCH_JS = """
(function () {
  "use strict";
  var data = window.DQMFLOW_SEARCH, entries = [], i;
  for (i = 0; i < data.runs.length; i++) {
    var r = data.runs[i];
    entries.push({kind: 0, label: "run " + r[0], key: String(r[0]), href: r[1], note: r[2]});
  }
  for (i = 0; i < data.histograms.length; i++) {
    var h = data.histograms[i];
    entries.push({kind: 1, label: h[0], key: h[0].toLowerCase(), href: h[1], note: h[2]});
  }
  for (i = 0; i < data.pairs.length; i++) {
    var p = data.pairs[i], hist = data.histograms[p[0]], text = hist[0] + " [" + p[1] + "]";
    entries.push({kind: 2, label: text, key: text.toLowerCase(), href: p[2], note: p[3]});
  }
  var KINDS = ["run", "histogram", "algorithm"];
  var input = document.getElementById("search");
  var list = document.getElementById("results");
  var status = document.getElementById("search-status");
  function order(e, q) {
    if (e.key === q) { return 0; }
    if (e.kind === 0 && e.key.indexOf(q) === 0) { return 1; }
    return 2 + e.kind;
  }
  function render() {
    var q = input.value.trim().toLowerCase();
    list.textContent = "";
    if (!q) { status.textContent = ""; return; }
    var terms = q.split(/\\s+/), hits = [];
    for (var i = 0; i < entries.length; i++) {
      var e = entries[i], ok = true;
      for (var t = 0; t < terms.length && ok; t++) { ok = e.key.indexOf(terms[t]) >= 0; }
      if (ok) { hits.push({e: e, o: order(e, q), i: i}); }
    }
    hits.sort(function (a, b) { return a.o - b.o || a.i - b.i; });
    var shown = Math.min(hits.length, data.limit);
    for (var k = 0; k < shown; k++) {
      var hit = hits[k].e, li = document.createElement("li"), kind = document.createElement("span");
      var a = document.createElement("a");
      kind.className = "kind";
      kind.textContent = KINDS[hit.kind];
      a.className = "result";
      a.href = hit.href;
      a.textContent = hit.label;
      li.appendChild(kind);
      li.appendChild(a);
      if (hit.note) {
        var note = document.createElement("span");
        note.className = "note";
        note.textContent = " \\u2014 " + hit.note;
        li.appendChild(note);
      }
      list.appendChild(li);
    }
    status.textContent = hits.length === 0 ? "No match." :
      hits.length > shown ? "Showing " + shown + " of " + hits.length + " matches; refine the search." :
      hits.length + (hits.length === 1 ? " match." : " matches.");
  }
  input.addEventListener("input", render);
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") {
      var first = list.querySelector("a.result");
      if (first) { first.click(); }
    }
  });
  if (input.value) { render(); }
})();
"""


_RUN_LABELS_NOTE = (
    '<p class="note">Labels are per run (the bad runs of the datasets file, as in AutoDQM_ML, or the '
    "label column of a score table): every run "
    "labelled bad counts as a positive of every histogram, whatever broke in it. A histogram that "
    "sees only some kinds of anomaly therefore has a modest AUC and a high false-alarm rate at high "
    "efficiency even when it catches its own kind perfectly; compare algorithms on one histogram, "
    "and read the run verdicts for the runs.</p>"
)
_NO_FIGURE = (
    "<p>No figure for this histogram. With <code>assessment.plots: matter</code> (the default) a "
    "histogram is drawn when one of its algorithms flags a run that no model was trained on at "
    "p &le; &alpha; / (number of histograms), the trials correction over a run's histograms; none of "
    "its tests does. <code>assessment.plots: all</code> draws every histogram.</p>"
)


def _problems_box(problems: Sequence[str], attributes: str = "") -> str:
    """The highlighted list of the verdicts' problems (front page, or those naming a histogram)."""
    items = "".join(f"<li>{_e(problem)}</li>" for problem in problems)
    return f'<div class="problems" {attributes}><h2>Problems</h2><ul>{items}</ul></div>'


def _floor_note(p_values: pd.Series) -> str:
    """A note when several flagged runs share the smallest run p-value: with n reference runs no
    run p-value goes below 1/n, and the score orders the runs beyond it."""
    p = pd.to_numeric(p_values, errors="coerce").dropna()
    if len(p) < 2:
        return ""
    floor = float(p.min())
    at_floor = int(np.isclose(p, floor, rtol=1e-9, atol=0.0).sum())
    n = round(1 / floor) if floor > 0 else 0
    if at_floor < 2 or n < 1 or abs(1 / floor - n) > 1e-4 * n:  # the floor is 1/n (as written in a CSV)
        return ""
    return (
        f'<p class="note">{at_floor} of these runs have the smallest p-value possible, {_fmt_p(floor)} = '
        f"1/{n}: it is measured against {n} reference runs, and a run beyond "
        "all of them cannot be more significant. Among them, the score (larger = more anomalous) "
        "orders the runs.</p>"
    )


def _table(attributes: str, head: str, rows: Sequence[str]) -> str:
    """An HTML table: ``attributes`` of the <table> tag, the header cells and the body rows."""
    return f"<table {attributes}><thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table>"


@dataclass(frozen=True)
class Figure:
    """A figure to show on the site: an existing PNG file or a Vega-Lite specification (a file
    ending in ``.vl.json``, drawn by the browser), its title and an optional caption."""

    path: Path
    title: str
    caption: str = ""


def _e(text: object) -> str:
    """HTML-escape ``text`` (also quotes, so the result is safe in attribute values)."""
    return html.escape(str(text), quote=True)


def _finite(value: Any) -> bool:
    """True for a number that is neither NaN nor None."""
    try:
        return not np.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _fmt_p(value: Any) -> str:
    """A p-value as ``1.6e-03``; ``–`` when missing."""
    return f"{float(value):.1e}" if _finite(value) else "–"


def _fmt_score(value: Any) -> str:
    """A score with 4 significant digits; ``–`` when missing."""
    return f"{float(value):.4g}" if _finite(value) else "–"


def _fmt_number(value: Any) -> str:
    """Any metric value as text (not escaped): integers as such, other numbers with 4 significant digits."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if not np.isfinite(number):
            return "–" if np.isnan(number) else str(number)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:.4g}"
    return "–" if value is None else str(value)


def _fmt_auc(auc: Any, std: Any = None) -> str:
    """An AUC as ``0.953 ± 0.012`` (3 decimals); ``–`` when missing."""
    if not _finite(auc):
        return "–"
    return f"{float(auc):.3f} ± {float(std):.3f}" if _finite(std) else f"{float(auc):.3f}"


def _best_auc(rows: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """Best AUC (``0.953 ± 0.012``) and its algorithm among a histogram's metric rows, if any is known."""
    known = [row for row in rows if _finite(row.get("auc"))]
    if not known:
        return None
    best = max(known, key=lambda row: float(row["auc"]))
    return _fmt_auc(best["auc"], best.get("auc_std")), str(best["algorithm"])


def _score_cell(score: Any, p: Any) -> str:
    """A test's score; a p-value without a score is a histogram missing from the run."""
    if not _finite(score) and _finite(p):
        return (
            "<span title=\"not in this run's file, or not readable (see the fetch report): counted as "
            'suspicious, at the p-value floor">missing</span>'
        )
    return _fmt_score(score)


def _fmt_label(value: Any) -> str:
    """Label 1/0/-1 as bad/good/–."""
    return _LABELS.get(int(value), "–") if _finite(value) else "–"


def _anchor(algorithm: str) -> str:
    """An HTML id for an algorithm's section on a histogram page (letters, digits, ``_`` and ``-`` only)."""
    return "alg-" + "".join(c if c.isascii() and (c.isalnum() or c in "_-") else f"_{ord(c):X}_" for c in algorithm)


def _safe_file_name(name: str, limit: int = 80) -> str:
    """``name`` reduced to ``[A-Za-z0-9_.-]`` (never empty, never starting with a dot)."""
    return _UNSAFE_FILE_CHARS.sub("_", name).strip("._")[:limit] or "file"


def _png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG header, or None for other files."""
    with path.open("rb") as handle:
        head = handle.read(24)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return int(width), int(height)
    return None


def _parse_drivers(text: Any) -> list[tuple[str, str]]:
    """``"h1 [alg]; h2 [alg]"`` -> ``[(h1, alg), (h2, alg)]`` (algorithm ``""`` when not given)."""
    if not isinstance(text, str):
        return []
    out: list[tuple[str, str]] = []
    for entry in text.split("; "):
        entry = entry.strip()
        if entry:
            match = _DRIVER.match(entry)
            out.append((match["histogram"], match["algorithm"]) if match else (entry, ""))
    return out


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise ValueError when ``frame`` lacks any of ``columns``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; has {list(frame.columns)}")


def _prepare_verdicts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Verdicts in the given order with ``_status`` (ranked/low_stats/unreadable), ``_rank`` and ``_label``."""
    _require(verdicts, _VERDICT_COLUMNS, "verdicts")
    frame = verdicts.reset_index(drop=True).copy()
    frame["run_number"] = frame["run_number"].astype("int64")
    duplicated = frame["run_number"][frame["run_number"].duplicated()]
    if len(duplicated):
        raise ValueError(f"verdicts must hold one row per run; repeated: {sorted(set(duplicated))[:10]}")
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype(float)
    frame["p_value"] = pd.to_numeric(frame["p_value"], errors="coerce").astype(float)
    frame["flagged"] = frame["flagged"].fillna(False).astype(bool)
    frame["histograms"] = frame["histograms"].where(frame["histograms"].notna(), "").astype(str)
    false = pd.Series(False, index=frame.index)
    split = frame["split"].astype(str) if "split" in frame else pd.Series("", index=frame.index)
    low = (frame["low_stats"].fillna(False).astype(bool) if "low_stats" in frame else false) | split.eq("low_stats")
    unreadable = frame["unreadable"].fillna(False).astype(bool) if "unreadable" in frame else false
    unreadable = (unreadable | split.eq("missing") | frame["score"].isna()) & ~low
    frame["_status"] = np.where(low, "low_stats", np.where(unreadable, "unreadable", "ranked"))
    ranked = frame["_status"].eq("ranked")
    if "rank" in frame:
        frame["_rank"] = pd.to_numeric(frame["rank"], errors="coerce")
    else:
        frame["_rank"] = np.where(ranked, ranked.cumsum(), np.nan)
    frame["_label"] = pd.to_numeric(frame["label"], errors="coerce").fillna(-1).astype(int) if "label" in frame else -1
    return frame


@dataclass
class _Groups:
    """Rows of a table grouped by a code, the first ``head`` of each group kept (see :func:`_head_per_group`)."""

    rows: np.ndarray  # kept row numbers, group after group
    position: np.ndarray  # 0-based position of each kept row within its group
    codes: np.ndarray  # group code, per group
    starts: np.ndarray  # first index into ``rows``, per group
    kept: np.ndarray  # number of kept rows, per group
    totals: np.ndarray  # number of rows before the cut, per group


def _head_per_group(order: np.ndarray, codes: np.ndarray, head: int) -> _Groups:
    """Regroup ``order`` by ``codes`` (non-negative ints) keeping its order within groups; keep ``head`` per group.

    A stable sort on 16-bit codes is a radix sort in numpy, so this costs far less than a second sort key.
    """
    small = codes.astype(np.uint16) if len(codes) and int(codes.max()) < 2**16 else codes
    order = order[np.argsort(small[order], kind="stable")]
    if len(order) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Groups(order, empty, empty, empty, empty, empty)
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_codes[1:] != sorted_codes[:-1])))
    totals = np.diff(np.append(starts, len(order)))
    position = np.arange(len(order)) - np.repeat(starts, totals)
    keep = position < head
    kept = np.minimum(totals, head)
    kept_starts = np.concatenate(([0], np.cumsum(kept)[:-1]))
    return _Groups(order[keep], position[keep], sorted_codes[starts], kept_starts, kept, totals)


@dataclass
class _Tests:
    """The p-value table reduced once: per run, its most significant tests (in order) and their total count."""

    histograms: list[str]
    algorithms: list[str]
    hist: np.ndarray
    algo: np.ndarray
    score: np.ndarray
    p: np.ndarray
    spans: dict[int, tuple[int, int, int]]  # run -> (start, stop) into the arrays above, total tests of the run
    top: pd.DataFrame | None

    @classmethod
    def build(cls, pvalues: pd.DataFrame, cap: int, top_k: int | None) -> _Tests:
        """Sort once by p-value (ties: larger score first), then group by run; keep ``cap`` rows per run.

        With ``top_k``, ``top`` holds the ``top_k`` most significant runs per histogram and algorithm
        (from the same sort), for when no ``top_runs`` table is given.
        """
        _require(pvalues, _PVALUE_COLUMNS, "pvalues")
        hist_codes, hist_names = pd.factorize(pvalues["histogram"])
        algo_codes, algo_names = pd.factorize(pvalues["algorithm"])
        valid = (hist_codes >= 0) & (algo_codes >= 0) & pvalues["run_number"].notna().to_numpy()
        if valid.all():
            valid = slice(None)
        run = pvalues["run_number"].to_numpy()[valid].astype(np.int64)
        hist = hist_codes[valid]
        algo = algo_codes[valid]
        score = pd.to_numeric(pvalues["score"], errors="coerce").to_numpy(dtype=float)[valid]
        p = pd.to_numeric(pvalues["p_value"], errors="coerce").to_numpy(dtype=float)[valid]
        histograms = [str(h) for h in hist_names]
        algorithms = [str(a) for a in algo_names]
        significance = np.lexsort((-score, p))  # most significant first; NaN p-values last
        run_codes, run_values = pd.factorize(run)
        by_run = _head_per_group(significance, run_codes, cap)
        spans = {
            int(run_values[code]): (int(start), int(start + kept), int(total))
            for code, start, kept, total in zip(by_run.codes, by_run.starts, by_run.kept, by_run.totals, strict=True)
        }
        top = None
        if top_k is not None:
            pair = hist.astype(np.int64) * max(len(algorithms), 1) + algo
            by_pair = _head_per_group(significance, pair, top_k)
            rows = by_pair.rows
            top = pd.DataFrame(
                {
                    "histogram": np.asarray(histograms, dtype=object)[hist[rows]],
                    "algorithm": np.asarray(algorithms, dtype=object)[algo[rows]],
                    "rank": by_pair.position + 1,
                    "run_number": run[rows],
                    "score": score[rows],
                    "p_value": p[rows],
                }
            )
        rows = by_run.rows
        return cls(histograms, algorithms, hist[rows], algo[rows], score[rows], p[rows], spans, top)


def _check_target(out: Path) -> None:
    """Refuse to replace anything but a missing or empty directory or an earlier site."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir() or out.is_symlink():
        raise FileExistsError(f"{out} exists and is not a directory; not replacing it with a site")
    if (out / _MARKER).is_file() or not any(out.iterdir()):
        return
    raise FileExistsError(f"{out} is a non-empty directory that build_site did not write; not deleting it")


def _replace_dir(new: Path, out: Path) -> None:
    """Put the freshly written ``new`` in place of ``out`` (both siblings), removing the old site."""
    old: Path | None = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out, old)
    os.replace(new, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class _Site:
    """Writes the pages of one site into ``root``; all hrefs are relative to the page's folder."""

    def __init__(
        self,
        root: Path,
        *,
        title: str,
        verdicts: pd.DataFrame,
        tests: _Tests,
        metrics: pd.DataFrame | None,
        top_runs: pd.DataFrame,
        summary_figures: Sequence[Figure],
        histogram_figures: Mapping[str, Sequence[Figure]],
        run_figures: Mapping[int, Sequence[Figure]],
        tables: Mapping[str, Path],
        n_driving: int,
        problems: Sequence[str] = (),
        run_problems: Mapping[int, str] = {},
    ) -> None:
        self.root = root
        self.run_problems = {int(k): str(v) for k, v in run_problems.items()}
        self.title = title
        self.verdicts = verdicts
        self.tests = tests
        self.top_runs = top_runs
        self.summary_figures = list(summary_figures)
        self.histogram_figures = {str(k): list(v) for k, v in histogram_figures.items()}
        self.run_figures = {int(k): list(v) for k, v in run_figures.items()}
        self.tables = dict(tables)
        self.n_driving = n_driving
        self.problems = list(problems)
        self.generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.drivers = {
            int(r): _parse_drivers(h) for r, h in zip(verdicts["run_number"], verdicts["histograms"], strict=True)
        }
        self.verdict_rows: dict[int, dict[str, Any]] = {
            int(row["run_number"]): row for row in verdicts.to_dict("records")
        }
        self.show_label = bool((verdicts["_label"] >= 0).any())
        self.metric_columns, self.metrics = self._group_metrics(metrics)
        self.best = {name: best for name, rows in self.metrics.items() if (best := _best_auc(rows)) is not None}
        self.top = self._group_top(top_runs)
        self.top_label = "label" in top_runs and bool((pd.to_numeric(top_runs["label"], errors="coerce") >= 0).any())
        self.top_split = "split" in top_runs and bool(top_runs["split"].map(_present).any())
        names: set[str] = set(tests.histograms) | set(self.metrics) | set(self.top)
        names |= set(self.histogram_figures)
        names |= {h for entries in self.drivers.values() for h, _ in entries}
        self.histograms = sorted(names)
        self.slugs = {name: quote(slugify(name), safe="") for name in self.histograms}
        runs: set[int] = set(self.verdict_rows) | set(tests.spans) | set(self.run_figures)
        runs |= {int(r) for r in top_runs["run_number"].dropna()}
        self.runs = [*self.verdict_rows, *sorted(runs - set(self.verdict_rows))]
        self.flagged_driven: dict[str, list[int]] = {}
        for run, entries in self.drivers.items():
            if self.verdict_rows[run]["flagged"] and self.verdict_rows[run]["_status"] == "ranked":
                for name in dict.fromkeys(h for h, _ in entries):
                    self.flagged_driven.setdefault(name, []).append(run)
        self.images: dict[Path, tuple[str, tuple[int, int] | None]] = {}
        self.chart_count = 0
        self._links: dict[tuple[str, str, str], str] = {}

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _group_metrics(metrics: pd.DataFrame | None) -> tuple[list[str], dict[str, list[dict[str, Any]]]]:
        """Columns to show after the AUC, and the metric rows per histogram, best AUC first."""
        if metrics is None or metrics.empty:
            return [], {}
        _require(metrics, ("histogram", "algorithm"), "metrics")
        frame = metrics
        if "auc" in frame:
            frame = frame.sort_values("auc", ascending=False, na_position="last", kind="stable")
        columns = [c for c in ("n_good", "n_bad") if c in frame]
        columns += [
            c
            for c in frame.columns
            if c not in ("histogram", "algorithm", "auc", "auc_std", "n_good", "n_bad")
            and pd.api.types.is_numeric_dtype(frame[c])
        ]
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in frame.to_dict("records"):
            grouped.setdefault(str(row["histogram"]), []).append(row)
        return columns, grouped

    @staticmethod
    def _group_top(top_runs: pd.DataFrame) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Top-run rows per histogram, then per algorithm, by rank."""
        frame = top_runs.sort_values("rank", kind="stable") if "rank" in top_runs else top_runs
        grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for row in frame.to_dict("records"):
            grouped.setdefault(str(row["histogram"]), {}).setdefault(str(row["algorithm"]), []).append(row)
        return grouped

    def hist_href(self, name: str, up: str, algorithm: str = "") -> str:
        """Link to a histogram page (optionally to one algorithm's section)."""
        href = f"{up}histograms/{self.slugs[name]}.html"
        return f"{href}#{_anchor(algorithm)}" if algorithm else href

    @staticmethod
    def run_href(run: int, up: str) -> str:
        """Link to a run page."""
        return f"{up}runs/{int(run)}.html"

    def hist_link(self, name: str, up: str, algorithm: str = "") -> str:
        """``<a>`` to a histogram page showing the full name, then the algorithm in brackets (cached)."""
        key = (name, up, algorithm)
        link = self._links.get(key)
        if link is None:
            link = f'<a href="{_e(self.hist_href(name, up, algorithm))}">{_e(name)}</a>'
            if algorithm:
                link += f' <span class="alg">[{_e(algorithm)}]</span>'
            self._links[key] = link
        return link

    def run_link(self, run: int, up: str) -> str:
        """``<a>`` to a run page."""
        return f'<a href="{_e(self.run_href(run, up))}">{int(run)}</a>'

    def copy_image(self, figure: Figure) -> tuple[str, tuple[int, int] | None]:
        """Copy a figure into ``img/`` once (keyed by its resolved source path); its site path and size."""
        source = Path(figure.path).resolve()
        if source not in self.images:
            name = f"{len(self.images):04d}-{_safe_file_name(source.stem)}"
            if source.suffix:
                name += "." + _safe_file_name(source.suffix.lower(), 10)
            target = self.root / "img" / name
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(source, target)
            self.images[source] = (f"img/{name}", _png_size(target))
        return self.images[source]

    def chart_html(self, figure: Figure, caption: str) -> str:
        """A Vega-Lite chart: its specification inlined (``<`` escaped), drawn by ``js/charts.js``."""
        self.chart_count += 1
        spec_id = f"spec-{self.chart_count}"
        path = Path(figure.path)
        # No "<" at all inside the script element: neither "</script" nor "<!--" can end it early.
        spec = path.read_text(encoding="utf-8").replace("<", "\\u003c")
        name = _safe_file_name(f"{path.parent.name}_{path.name.removesuffix(CHART_SUFFIX)}")  # the download's name
        return (
            f'<figure class="chart"><div class="vl" data-spec="{spec_id}" data-name="{_e(name)}" role="img" '
            f'aria-label="{_e(figure.title)}"></div><figcaption>{caption}</figcaption>'
            f'<script type="application/json" id="{spec_id}">{spec}</script></figure>'
        )

    def figures_html(self, figures: Sequence[Figure], up: str) -> str:
        """Figures inline: a PNG links to the full-size image (the first two load eagerly), a chart
        is drawn in place by the browser."""
        parts = []
        for i, figure in enumerate(figures):
            caption = f"<strong>{_e(figure.title)}</strong>" + (f" {_e(figure.caption)}" if figure.caption else "")
            if str(figure.path).endswith(CHART_SUFFIX):
                parts.append(self.chart_html(figure, caption))
                continue
            path, size = self.copy_image(figure)
            src = _e(up + quote(path))
            dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
            lazy = ' loading="lazy"' if i >= 2 else ""
            parts.append(
                f'<figure><a href="{src}"><img src="{src}" alt="{_e(figure.title)}"{dims}{lazy}></a>'
                f"<figcaption>{caption}</figcaption></figure>"
            )
        return "\n".join(parts)

    def page(self, title: str, body: str, up: str, scripts: Sequence[str] = ()) -> str:
        """A whole HTML page with the site's header, inline CSS and footer."""
        nav = (
            f'<a href="{up}index.html">← {_e(self.title)}</a>'
            f'<a href="{up}index.html#search-section">Search</a>'
            f'<a href="{up}index.html#histograms">Histograms</a>'
        )
        if 'class="vl"' in body:
            scripts = [*scripts, *CHART_SCRIPTS]
        script_tags = "".join(f'<script src="{_e(up + s)}"></script>' for s in scripts)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<header><nav>{nav}</nav></header>\n<main>\n{body}\n</main>\n"
            f"<footer>Written by dqmflow on {_e(self.generated)}.</footer>\n{script_tags}\n</body>\n</html>\n"
        )

    def write(self, relative: str, text: str) -> None:
        """Write one file of the site (UTF-8)."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    # -- index -----------------------------------------------------------------------------------

    def verdict_table(self, rows: pd.DataFrame, table_id: str, *, ranked: bool) -> str:
        """Table of runs: rank, run, score, p-value, label (if any is known), driving histograms."""
        head = ['<th class="num">Rank</th>'] if ranked else []
        head += ['<th class="num">Run</th>', '<th class="num">Score</th>', '<th class="num">p-value</th>']
        if self.show_label:
            head.append("<th>Label</th>")
        if not ranked:
            head.append("<th>Flagged</th>")
        head.append("<th>Driving histograms [algorithm]</th>" if ranked else "<th>Split</th>")
        body = []
        for row in rows.to_dict("records"):
            run = int(row["run_number"])
            cells = [f'<td class="num">{_fmt_number(row["_rank"])}</td>'] if ranked else []
            cells += [
                f'<td class="num">{self.run_link(run, "")}</td>',
                f'<td class="num">{_fmt_score(row["score"])}</td>',
                f'<td class="num">{_fmt_p(row["p_value"])}</td>',
            ]
            if self.show_label:
                cells.append(f"<td>{_fmt_label(row['_label'])}</td>")
            if ranked:
                entries = self.drivers[run][: self.n_driving]
                items = "".join(f"<li>{self.hist_link(h, '', a)}</li>" for h, a in entries)
                cells.append(f'<td class="name"><ul class="drivers">{items}</ul></td>')
            else:
                cells.append(f"<td>{'yes' if row['flagged'] else 'no'}</td>")
                cells.append(f"<td>{_e(row.get('split', '')) if _present(row.get('split')) else '–'}</td>")
            css = ' class="flagged"' if row["flagged"] else ""
            body.append(f"<tr{css}>{''.join(cells)}</tr>")
        return _table(f'id="{table_id}"', "".join(head), body)

    def index(self) -> str:
        """The front page."""
        v = self.verdicts
        status = v["_status"]
        flagged = v[status.eq("ranked") & v["flagged"]]
        rest = v[status.eq("ranked") & ~v["flagged"]]
        low = v[status.eq("low_stats")]
        unreadable = v[status.eq("unreadable")]
        n_algorithms = len(set(self.tests.algorithms) | set(self.top_runs["algorithm"].astype(str)))
        parts = [
            f"<h1>{_e(self.title)}</h1>",
            f'<p class="note">{len(v)} runs: {len(flagged)} flagged, {len(rest)} not flagged, '
            f"{len(low)} with low statistics, {len(unreadable)} unreadable; "
            f"{len(self.histograms)} histograms, {n_algorithms} algorithms.</p>",
        ]
        if self.problems:
            parts.append(_problems_box(self.problems, 'id="problems"'))
        parts.append('<h2 id="flagged-runs">Flagged runs</h2>')
        if len(flagged):
            parts.append(
                '<p class="note">Most anomalous first. The driving histograms are the most significant '
                "histogram × algorithm tests of the run.</p>"
            )
            parts.append(_floor_note(flagged["p_value"]))
            parts.append(self.verdict_table(flagged, "flagged", ranked=True))
        else:
            parts.append("<p>No run is flagged.</p>")
        parts.append('<h2 id="ranking">Rest of the ranking</h2>')
        if len(rest):
            parts.append(
                f"<details><summary>{len(rest)} runs not flagged, most anomalous first</summary>\n"
                f"{self.verdict_table(rest, 'rest', ranked=True)}\n</details>"
            )
        else:
            parts.append("<p>No other ranked run.</p>")
        parts.append('<h2 id="low-stats">Low-statistics runs</h2>')
        if len(low):
            parts.append(f'<p class="why">{_e(_LOW_STATS_WHY)}</p>{self.verdict_table(low, "low", ranked=False)}')
        else:
            parts.append("<p>None.</p>")
        parts.append('<h2 id="unreadable">Unreadable runs</h2>')
        if len(unreadable):
            table = self.verdict_table(unreadable, "unreadable-runs", ranked=False)
            parts.append(f'<p class="why">{_e(_UNREADABLE_WHY)}</p>{table}')
        else:
            parts.append("<p>None.</p>")
        parts.append(
            '<h2 id="search-section">Search</h2>\n'
            '<p><input id="search" type="search" autocomplete="off" '
            'placeholder="run number, histogram or algorithm name" aria-label="Search runs, histograms, algorithms">'
            '</p>\n<p id="search-status" class="note"></p>\n<ul id="results"></ul>\n'
            '<noscript><p class="note">The search needs JavaScript; use the tables above and the histogram list '
            "below.</p></noscript>"
        )
        parts.append('<h2 id="figures">Summary figures</h2>')
        parts.append(self.figures_html(self.summary_figures, "") if self.summary_figures else "<p>None.</p>")
        parts.append('<h2 id="tables">Tables</h2>')
        parts.append(self.tables_html())
        parts.append(f'<h2 id="histograms">Histograms ({len(self.histograms)})</h2>')
        parts.append(self.histogram_list())
        return self.page(self.title, "\n".join(parts), "", scripts=["search.js"])

    def tables_html(self) -> str:
        """Copy the tables into ``tables/`` and list them."""
        if not self.tables:
            return "<p>None.</p>"
        used: set[str] = set()
        items = []
        for name, source in self.tables.items():
            source = Path(source)
            base = _safe_file_name(name)
            suffix = source.suffix.lower()
            if suffix and not base.lower().endswith(suffix):
                base += "." + _safe_file_name(suffix, 10)
            target, n = base, 1
            while target.lower() in used:
                stem, dot, ext = base.rpartition(".")
                target = f"{stem}-{n}.{ext}" if dot else f"{base}-{n}"
                n += 1
            used.add(target.lower())
            (self.root / "tables").mkdir(exist_ok=True)
            shutil.copyfile(source, self.root / "tables" / target)
            size = (self.root / "tables" / target).stat().st_size
            items.append(
                f'<li><a href="{_e("tables/" + quote(target))}">{_e(name)}</a> '
                f'<span class="note">({_e(target)}, {_human_size(size)})</span></li>'
            )
        return "<ul>\n" + "\n".join(items) + "\n</ul>"

    def histogram_list(self) -> str:
        """All histograms, with the best AUC if metrics exist and how often each drives a flagged run."""
        if not self.histograms:
            return "<p>None.</p>"
        has_metrics = bool(self.best)
        head = "<th>Histogram</th>"
        if has_metrics:
            head += '<th class="num">Best AUC</th><th>Algorithm</th>'
        head += '<th class="num">Drives flagged runs</th>'
        rows = []
        for name in self.histograms:
            cells = f'<td class="name">{self.hist_link(name, "")}</td>'
            if has_metrics:
                best = self.best.get(name)
                cells += (
                    f'<td class="num">{_e(best[0])}</td><td>{_e(best[1])}</td>'
                    if best
                    else '<td class="num">–</td><td></td>'
                )
            cells += f'<td class="num">{len(self.flagged_driven.get(name, []))}</td>'
            rows.append(f"<tr>{cells}</tr>")
        return _table('id="histogram-list"', head, rows)

    def search_js(self) -> str:
        """``search.js``: the search index (every run, every histogram, capped histogram × algorithm pairs)."""
        runs = []
        for run in self.runs:
            row = self.verdict_rows.get(run)
            if row is None:
                note = "not in the verdicts"
            elif row["_status"] != "ranked":
                note = "low statistics" if row["_status"] == "low_stats" else "unreadable"
            else:
                note = f"{'flagged' if row['flagged'] else 'not flagged'}, p = {_fmt_p(row['p_value'])}"
            runs.append([str(run), self.run_href(run, ""), note])
        position = {name: i for i, name in enumerate(self.histograms)}
        histograms = []
        for name in self.histograms:
            best = self.best.get(name)
            histograms.append([name, self.hist_href(name, ""), f"best AUC {best[0]} ({best[1]})" if best else ""])
        pairs: list[list[Any]] = []
        seen: set[tuple[str, str]] = set()
        for name in self.histograms:
            algorithms: dict[str, str] = {}
            for row in self.metrics.get(name, []):
                auc = _fmt_auc(row.get("auc"))
                algorithms.setdefault(str(row["algorithm"]), f"AUC {auc}" if auc != "–" else "")
            for algorithm in self.top.get(name, {}):
                algorithms.setdefault(algorithm, "")
            for algorithm, note in algorithms.items():
                if len(pairs) >= MAX_SEARCH_PAIRS:
                    break
                if (name, algorithm) not in seen:
                    seen.add((name, algorithm))
                    pairs.append([position[name], algorithm, self.hist_href(name, "", algorithm), note])
        data = {"limit": _MAX_RESULTS, "runs": runs, "histograms": histograms, "pairs": pairs}
        return (
            "/* dqmflow site search: index and client-side filtering (no network access). */\n"
            f"window.DQMFLOW_SEARCH = {json.dumps(data, ensure_ascii=True, separators=(',', ':'))};\n{_SEARCH_JS}"
        )

    # -- run pages -------------------------------------------------------------------------------

    def run_page(self, run: int, previous: int | None, following: int | None) -> str:
        """One run: verdict, its tests ranked by p-value (capped), its figures."""
        up = "../"
        row = self.verdict_rows.get(run)
        parts = [f"<h1>Run {run}</h1>"]
        steps = []
        if previous is not None:
            steps.append(f"← previous in ranking: {self.run_link(previous, up)}")
        if following is not None:
            steps.append(f"next in ranking: {self.run_link(following, up)} →")
        if steps:
            parts.append(f'<p class="note">{" · ".join(steps)}</p>')
        parts.append("<h2>Verdict</h2>")
        if row is None:
            parts.append("<p>This run is not in the verdict table.</p>")
        else:
            status = row["_status"]
            if status == "low_stats":
                badge = '<span class="badge apart">low statistics</span>'
            elif status == "unreadable":
                badge = '<span class="badge apart">unreadable</span>'
            elif row["flagged"]:
                badge = '<span class="badge flag">flagged</span>'
            else:
                badge = '<span class="badge ok">not flagged</span>'
            items = [("Verdict", badge)]
            if status == "ranked":
                items.append(("Rank", _e(_fmt_number(row["_rank"]))))
            items += [("Score", _fmt_score(row["score"])), ("p-value", _fmt_p(row["p_value"]))]
            if row["_label"] >= 0:
                items.append(("Label", _fmt_label(row["_label"])))
            if _present(row.get("split")):
                items.append(("Split", _e(row["split"])))
            parts.append('<dl class="verdict">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl>")
            if status != "ranked":
                parts.append(f'<p class="why">{_e(_LOW_STATS_WHY if status == "low_stats" else _UNREADABLE_WHY)}</p>')
            if run in self.run_problems:
                said = _e(self.run_problems[run])
                head = (
                    "Its file could not be read"
                    if status == "unreadable"
                    else "Reading its file failed for some of its histograms"
                )
                parts.append(f'<p class="why" id="file-problem">{head}: {said}</p>')
            drivers = self.drivers.get(run, [])
            if drivers:
                parts.append("<h3>Driving histograms</h3>")
                parts.append(
                    '<ol class="drivers">'
                    + "".join(f"<li>{self.hist_link(h, up, a)}</li>" for h, a in drivers)
                    + "</ol>"
                )
        parts.append(self.run_tests_html(run, up))
        figures = self.run_figures.get(run, [])
        parts.append("<h2>Figures</h2>")
        parts.append(self.figures_html(figures, up) if figures else "<p>No figure draws this run.</p>")
        return self.page(f"Run {run} — {self.title}", "\n".join(parts), up)

    def run_tests_html(self, run: int, up: str) -> str:
        """The run's histogram × algorithm tests, most significant first, capped to :data:`MAX_RUN_ROWS`."""
        span = self.tests.spans.get(run)
        head = "<h2>Histograms × algorithms by p-value</h2>"
        if span is None:
            return f"{head}\n<p>No p-values for this run.</p>"
        start, stop, total = span
        t = self.tests
        rows = []
        for i in range(start, stop):
            name = t.histograms[t.hist[i]]
            algorithm = t.algorithms[t.algo[i]]
            rows.append(
                f'<tr><td class="num">{i - start + 1}</td><td class="name">{self.hist_link(name, up)}</td>'
                f'<td><a href="{_e(self.hist_href(name, up, algorithm))}">{_e(algorithm)}</a></td>'
                f'<td class="num">{_score_cell(t.score[i], t.p[i])}</td><td class="num">{_fmt_p(t.p[i])}</td></tr>'
            )
        shown = stop - start
        note = (
            f'<p class="note">Showing the {shown} most significant of {total} tests; {total - shown} less '
            "significant ones are left out (see the downloadable tables on the index page).</p>"
            if total > shown
            else f'<p class="note">All {total} tests, most significant first.</p>'
        )
        columns = (
            '<th class="num">#</th><th>Histogram</th><th>Algorithm</th><th class="num">Score</th>'
            '<th class="num">p-value</th>'
        )
        return f"{head}\n{note}\n" + _table('id="tests"', columns, rows)

    # -- histogram pages -------------------------------------------------------------------------

    def histogram_page(self, name: str) -> str:
        """One histogram: metrics per algorithm, top runs per algorithm, flagged runs it drives, figures."""
        up = "../"
        parts = [f"<h1>{_e(name)}</h1>"]
        mine = [problem for problem in self.problems if repr(name) in problem]
        if mine:
            parts.append(_problems_box(mine))
        parts.append("<h2>Metrics per algorithm</h2>")
        metrics = self.metrics.get(name)
        if metrics:
            parts.append(_RUN_LABELS_NOTE)
        parts.append(self.metrics_table(metrics) if metrics else "<p>No metrics for this histogram.</p>")
        parts.append("<h2>Top runs per algorithm</h2>")
        top = self.top.get(name, {})
        if not top:
            parts.append("<p>No ranked runs for this histogram.</p>")
        for algorithm, rows in top.items():
            parts.append(f'<h3 id="{_anchor(algorithm)}">{_e(algorithm)}</h3>')
            parts.append(self.top_table(rows, up))
        flagged_driven = self.flagged_driven.get(name, [])
        if flagged_driven:
            parts.append(f"<h2>Flagged runs it drives ({len(flagged_driven)})</h2>")
            parts.append("<p>" + ", ".join(self.run_link(run, up) for run in flagged_driven) + "</p>")
        figures = self.histogram_figures.get(name, [])
        parts.append("<h2>Figures</h2>")
        parts.append(self.figures_html(figures, up) if figures else _NO_FIGURE)
        return self.page(f"{name} — {self.title}", "\n".join(parts), up)

    def metrics_table(self, metrics: Sequence[Mapping[str, Any]]) -> str:
        """Algorithm, AUC ± std, n_good, n_bad and any further numeric column; each links to its top runs."""
        has_auc = any("auc" in row for row in metrics)
        columns = self.metric_columns
        head = "<th>Algorithm</th>" + ('<th class="num">AUC</th>' if has_auc else "")
        head += "".join(f'<th class="num">{_e(c)}</th>' for c in columns)
        rows = []
        for row in metrics:
            algorithm = str(row["algorithm"])
            cells = f'<td><a href="#{_anchor(algorithm)}">{_e(algorithm)}</a></td>'
            if has_auc:
                cells += f'<td class="num">{_e(_fmt_auc(row.get("auc"), row.get("auc_std")))}</td>'
            cells += "".join(f'<td class="num">{_e(_fmt_number(row.get(c)))}</td>' for c in columns)
            rows.append(f"<tr>{cells}</tr>")
        return _table('class="metrics"', head, rows)

    def top_table(self, top: Sequence[Mapping[str, Any]], up: str) -> str:
        """Top runs of one histogram and algorithm."""
        head = '<th class="num">Rank</th><th class="num">Run</th>'
        head += "<th>Label</th>" if self.top_label else ""
        head += "<th>Split</th>" if self.top_split else ""
        head += '<th class="num">Score</th><th class="num">p-value</th><th>Run verdict</th>'
        rows = []
        for row in top:
            run = int(row["run_number"])
            cells = (
                f'<td class="num">{_e(_fmt_number(row.get("rank")))}</td><td class="num">{self.run_link(run, up)}</td>'
            )
            if self.top_label:
                cells += f"<td>{_fmt_label(row.get('label'))}</td>"
            if self.top_split:
                cells += f"<td>{_e(row['split']) if _present(row.get('split')) else '–'}</td>"
            cells += (
                f'<td class="num">{_fmt_score(row.get("score"))}</td><td class="num">{_fmt_p(row.get("p_value"))}</td>'
            )
            cells += f"<td>{_verdict_word(self.verdict_rows.get(run))}</td>"
            rows.append(f"<tr>{cells}</tr>")
        return _table('class="top-runs"', head, rows)

    # -- all -------------------------------------------------------------------------------------

    def write_all(self) -> None:
        """Every page, ``search.js`` and the marker file."""
        (self.root / _MARKER).write_text("written by dqmflow.site.build_site; replaced on rebuild\n")
        self.write("index.html", self.index())
        self.write("search.js", self.search_js())
        (self.root / "runs").mkdir(exist_ok=True)
        ranked = [int(r) for r in self.verdicts.loc[self.verdicts["_status"].eq("ranked"), "run_number"]]
        neighbours: dict[int, tuple[int | None, int | None]] = {
            run: (ranked[i - 1] if i > 0 else None, ranked[i + 1] if i + 1 < len(ranked) else None)
            for i, run in enumerate(ranked)
        }
        for run in self.runs:
            previous, following = neighbours.get(run, (None, None))
            self.write(f"runs/{run}.html", self.run_page(run, previous, following))
        (self.root / "histograms").mkdir(exist_ok=True)
        for name in self.histograms:
            self.write(f"histograms/{slugify(name)}.html", self.histogram_page(name))
        if self.chart_count:
            _copy_chart_scripts(self.root / "js")


def _present(value: Any) -> bool:
    """True for a non-empty, non-NaN value."""
    if value is None:
        return False
    if isinstance(value, float) and np.isnan(value):
        return False
    return str(value) not in ("", "nan", "None")


def _verdict_word(row: Mapping[str, Any] | None) -> str:
    """Short verdict of a run for tables on histogram pages."""
    if row is None:
        return "–"
    if row["_status"] == "low_stats":
        return "low statistics"
    if row["_status"] == "unreadable":
        return "unreadable"
    return "<strong>flagged</strong>" if row["flagged"] else "not flagged"


def _human_size(size: int) -> str:
    """Bytes as ``12.3 kB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def _prepare_top_runs(top_runs: pd.DataFrame | None, tests: _Tests, verdicts: pd.DataFrame) -> pd.DataFrame:
    """The given top-runs table, or the one derived from the p-values, with labels and splits from verdicts."""
    if top_runs is None:
        frame = tests.top.copy() if tests.top is not None else pd.DataFrame(columns=list(_TOP_COLUMNS))
        by_run = verdicts.set_index("run_number")
        frame["label"] = frame["run_number"].map(by_run["_label"]).fillna(-1).astype(int)
        if "split" in by_run:
            frame["split"] = frame["run_number"].map(by_run["split"])
        return frame
    _require(top_runs, ("histogram", "algorithm", "run_number"), "top_runs")
    frame = top_runs.copy()
    frame = frame[frame["run_number"].notna()]
    frame["run_number"] = frame["run_number"].astype("int64")
    frame["histogram"] = frame["histogram"].astype(str)
    return frame


def _copy_chart_scripts(folder: Path) -> None:
    """The JavaScript that draws the charts (:data:`CHART_SCRIPTS`), from ``dqmflow/site_assets``,
    with the licences of the bundles."""
    assets = Path(__file__).parent / "site_assets"
    folder.mkdir(exist_ok=True)
    for name in [*(Path(s).name for s in CHART_SCRIPTS), "LICENSES.txt"]:
        source = assets / name
        if not source.is_file():
            raise FileNotFoundError(f"{source}: the web page's JavaScript is missing from the dqmflow installation")
        shutil.copyfile(source, folder / name)


def read_run_problems(report: str | Path) -> dict[int, str]:
    """Per run, why its file could not be read (the fetch report's ``file_error`` rows): "FILE:
    PROBLEM", for the run pages of the web page."""
    rows = pd.read_csv(report, sep="\t", keep_default_na=False, dtype=str)
    failed = rows[(rows["status"] == "file_error") & (rows["run_number"] != "")]
    return {int(r.run_number): f"{r.file}: {r.problem}" for r in failed.drop_duplicates("run_number").itertuples()}


def build_site(
    out_dir: str | Path,
    *,
    title: str,
    verdicts: pd.DataFrame,
    pvalues: pd.DataFrame,
    metrics: pd.DataFrame | None = None,
    top_runs: pd.DataFrame | None = None,
    summary_figures: Sequence[Figure] = (),
    histogram_figures: Mapping[str, Sequence[Figure]] = {},
    run_figures: Mapping[int, Sequence[Figure]] = {},
    tables: Mapping[str, Path] = {},
    n_driving: int = 5,
    problems: Sequence[str] = (),
    run_problems: Mapping[int, str] = {},
) -> Path:
    """Write the static site of an assessment into ``out_dir`` and return ``out_dir/index.html``.

    ``verdicts`` holds one row per run in ranking order (``run_number``, ``score``, ``p_value``,
    ``flagged``, ``histograms`` = the driving ``"histogram [algorithm]"`` entries joined by ``"; "``,
    optionally ``label``, ``split``, ``low_stats``, ``unreadable``, ``rank``); ``pvalues`` one row per
    run × histogram × algorithm (``run_number``, ``histogram``, ``algorithm``, ``score``, ``p_value``);
    ``metrics`` per histogram and algorithm (``auc``, ``auc_std``, ``n_good``, ``n_bad``, more numeric
    columns); ``top_runs`` per histogram and algorithm (``rank``, ``run_number``, ``label``, ``split``,
    ``score``, ``p_value``; derived from ``pvalues`` when not given). Figures and tables are copied in.
    At most ``n_driving`` driving histograms are shown per run on the index page. ``problems``
    (e.g. too few reference runs to flag any run) are shown at the top of the index page,
    ``run_problems`` (per run: why its file could not be read) on the run's page.

    The site is written into a temporary sibling directory and then replaces ``out_dir``, so no page of
    an earlier build lingers; an existing ``out_dir`` must be empty or an earlier site.
    """
    out = Path(out_dir).absolute()
    _check_target(out)
    all_figures = [*summary_figures]
    for figures in [*histogram_figures.values(), *run_figures.values()]:
        all_figures.extend(figures)
    for figure in all_figures:
        if not Path(figure.path).is_file():
            raise FileNotFoundError(f"figure {figure.title!r}: no file {figure.path}")
    for name, path in tables.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"table {name!r}: no file {path}")
    prepared = _prepare_verdicts(verdicts)
    tests = _Tests.build(pvalues, MAX_RUN_ROWS, TOP_RUNS_FALLBACK if top_runs is None else None)
    top = _prepare_top_runs(top_runs, tests, prepared)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        _Site(
            staging,
            title=title,
            verdicts=prepared,
            tests=tests,
            metrics=metrics,
            top_runs=top,
            summary_figures=summary_figures,
            histogram_figures=histogram_figures,
            run_figures=run_figures,
            tables=tables,
            n_driving=n_driving,
            problems=problems,
            run_problems=run_problems,
        ).write_all()
        _check_target(out)
        _replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out / "index.html"
