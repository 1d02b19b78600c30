"""The short summary every workflow run ends with, on the terminal.

It reads what the jobs wrote (``results/<PD>/fetch_report.tsv``, ``entries.parquet``, the merged
table's metadata, every ``models/<ALGO>/<HIST>/model.json`` and ``verdicts.csv``) and says, per
primary dataset: runs in the table, files that could not be read, histograms never found, models
that failed (and configs whose every model failed), and where the web page and the verdicts are.
Models of histograms that are not in the selection recorded in ``selection.json`` (left by another
contents file) are not counted.
Failures that used to be only in ``logs/`` are named here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from dqmflow.arrowio import read_parquet
from dqmflow.names import HistogramName
from dqmflow.plan import describe_selection

__all__ = ["summarize"]


def _fetch_lines(pd_dir: Path) -> list[str]:
    lines = []
    entries = pd_dir / "entries.parquet"
    readable: set[int] = set()
    if entries.exists():
        table = read_parquet(entries, columns=["run_number", "readable"]).to_pandas()
        unread = int((~table["readable"]).sum())
        readable = {int(r) for r in table.loc[table["readable"], "run_number"]}
        lines.append(f"runs fetched: {len(table) - unread} of {len(table)}")
    report = pd_dir / "fetch_report.tsv"
    if report.exists():
        rows = pd.read_csv(report, sep="\t", keep_default_na=False, dtype=str)
        failed = rows[rows["status"] == "file_error"].drop_duplicates("file")
        if len(failed):
            hosts = Counter(
                f.split("//")[1].split("/")[0] if f.startswith("root://") else "local" for f in failed["file"]
            )
            runs = {int(r) for r in failed["run_number"] if str(r).strip()}
            partly = len(runs & readable)  # read for another subsystem's histograms
            what = f"{len(runs) - partly} runs missing" + (f", {partly} missing some subsystems" if partly else "")
            lines.append(
                f"FAILED FILES: {failed['file'].nunique()} could not be read "
                f"({', '.join(f'{h}: {n}' for h, n in hosts.items())}): {what}; see {report}. "
                "To read them again: snakemake --forcerun fetch"
            )
        counts = rows["status"].value_counts()
        other = {s: int(n) for s, n in counts.items() if s != "file_error"}
        if other:
            lines.append(f"fetch report {report}: " + ", ".join(f"{n} {s}" for s, n in sorted(other.items())))
    table = pd_dir / "histograms.parquet"
    if table.exists():
        meta = json.loads((pq.read_schema(table).metadata or {}).get(b"dqmflow", b"{}"))
        never = list(meta.get("never_read", []))
        reasons = dict(meta.get("never_read_reasons", {}))
        if never:
            grouped: dict[str, list[str]] = {}
            for column in never:
                grouped.setdefault(reasons.get(column, ""), []).append(column)
            said = [
                f"{columns[0]} {reason}".rstrip()
                if len(columns) == 1
                else f"{len(columns)} histograms {reason} (e.g. {columns[0]})"
                for reason, columns in grouped.items()
            ]
            lines.append(f"HISTOGRAMS NEVER FOUND in any file ({len(never)}): " + "; ".join(said))
    return lines


def _current_slugs(pd_dir: Path) -> set[str] | None:
    """Folder names (slugs) of the histograms of the selection recorded in ``selection.json``
    (None without a record): models left by another selection are not counted."""
    record = pd_dir / "selection.json"
    if not record.exists():
        return None
    columns = json.loads(record.read_text(encoding="utf-8")).get("histograms", [])
    return {HistogramName.from_column(c).slug for c in columns}


def _selection_line(pd_dir: Path) -> list[str]:
    record = pd_dir / "selection.json"
    if not record.exists():
        return []
    identity = json.loads(record.read_text(encoding="utf-8")).get("identity", {})
    return [f"made from {describe_selection(identity)} (source {identity.get('source', '?')})"]


def _model_lines(pd_dir: Path) -> list[str]:
    lines: list[str] = []
    models = pd_dir / "models"
    if not models.is_dir():
        return lines
    current = _current_slugs(pd_dir)
    for algo in sorted(p for p in models.iterdir() if p.is_dir()):
        statuses: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for info in algo.glob("*/model.json"):
            if current is not None and info.parent.name not in current:
                continue
            data = json.loads(info.read_text(encoding="utf-8"))
            status = str(data.get("status", "?"))
            statuses[status] += 1
            if status != "trained":
                reasons[str(data.get("error", ""))[:160]] += 1
        failed = sum(n for s, n in statuses.items() if s != "trained")
        if not failed:
            continue
        total = sum(statuses.values())
        head = "EVERY MODEL FAILED" if failed == total else "models failed"
        why = "; ".join(f"{r} (x{n})" for r, n in reasons.most_common(2))
        lines.append(f"{head} for {algo.name}: {failed} of {total} ({why})")
    return lines


def summarize(
    workdir: str | Path, primary_datasets: Sequence[str], empty: Iterable[str] = (), failed_since: float | None = None
) -> list[str]:
    """The end-of-run summary lines for ``primary_datasets`` below ``workdir``; ``empty`` names the
    primary datasets without any selected file (said first). ``failed_since``: the run failed;
    it started at this time, and the verdicts and web page older than that are said to be from
    an earlier run."""
    workdir = Path(workdir)
    empty = set(empty)
    lines = ["dqmflow summary:"]
    if failed_since is not None:
        lines.append("  THE RUN FAILED (see the error above): outputs marked (earlier run) were not updated by it")

    def when(path: Path) -> str:
        return " (earlier run)" if failed_since is not None and path.stat().st_mtime < failed_since else ""

    for pd_name in primary_datasets:
        pd_dir = workdir / "results" / pd_name
        if pd_name in empty:
            lines.append(f"  {pd_name}: NO FILE: nothing was fetched or assessed (see the line below)")
            continue
        body = _selection_line(pd_dir) + _fetch_lines(pd_dir) + _model_lines(pd_dir)
        site, verdicts = pd_dir / "site" / "index.html", pd_dir / "verdicts.csv"
        if verdicts.exists():
            flagged = int(pd.read_csv(verdicts, usecols=["flagged"])["flagged"].astype(bool).sum())
            body.append(f"{flagged} runs flagged: {verdicts}{when(verdicts)}")
        problems = pd_dir / "summary" / "problems.txt"
        if problems.exists():
            body += [f"PROBLEM: {line}" for line in problems.read_text(encoding="utf-8").splitlines() if line]
        if site.exists():
            body.append(f"web page: {site}{when(site)}")
        lines.append(f"  {pd_name}:")
        lines += [f"    {line}" for line in body]
    lines.append("  report: snakemake --report report.zip (or make report)")
    return lines
