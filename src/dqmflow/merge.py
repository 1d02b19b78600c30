"""Merge per-run shards into one table per primary dataset, in AutoDQM_ML's format.

``histograms.parquet`` has one row per run with ``run_number``, ``year``, ``era``, ``label`` and,
per histogram, a column named ``<Subsystem>/<path>`` (bin contents without flow bins: a list for
1D, a list of lists ``[ix][iy]`` for 2D) and ``<Subsystem>/<path>_entries``. The shape, bin
edges, ROOT class, title and axis titles of every histogram are stored in the file's metadata under
``dqmflow`` (``{"histograms": {column: {"ndim", "shape", "edges", "classname", "title",
"axis_titles"}}, "never_read": [...], "subsystems": [...]}``). ``axis_titles`` holds one string per
axis (x, then y): the most common non-empty ROOT axis title over the runs, ``""`` if none.

Runs are written in chunks, so memory stays bounded by the chunk size whatever the number of
runs. A histogram that could not be read is written as null and reported.

**Reference binning.** When a histogram's binning (class dimension and bin edges) differs between
runs, one binning is kept: the one held by the most runs, and at equal counts the one of the latest
run (the highest run number), so that ties are impossible and the result does not depend on the
order of the files (:data:`BINNING_RULE`). The runs with another binning are written as null, with
a fetch report row (``binning_mismatch``, or ``wrong_type`` for another dimension) naming their
binning, the kept one, how many runs hold each, and the rule.

A histogram that no run has in a usable form is listed in the metadata's ``never_read`` and, with
the reason, in ``never_read_reasons`` ({column: reason}): "is not a TH1/TH2 in any file (found
TProfile)" when the files hold it with another class, "no file could be read" when none could be,
and "not found in any file: check its path in the contents file" when it is absent everywhere.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dqmflow.fetch import read_manifest, read_shard, read_shard_titles, shard_path
from dqmflow.names import HistogramName
from dqmflow.runtable import ENTRIES_SUFFIX
from dqmflow.storage import HistogramInfo, StorageWriter

__all__ = [
    "BINNING_RULE",
    "REPORT_COLUMNS",
    "NothingReadError",
    "merge",
    "read_histogram_metadata",
    "reference_binning",
    "write_selection_record",
]

REPORT_COLUMNS = ["run_number", "file", "histogram", "status", "problem"]
BINNING_RULE = "the binning of most runs is kept; at equal counts, the binning of the latest run"
_USABLE = ("ok", "empty")
_CLASS = re.compile(r"\b(T[A-Z][A-Za-z0-9]*)\b")
log = logging.getLogger("dqmflow.merge")


def reference_binning(group: pd.DataFrame) -> str:
    """The binning kept for one histogram (``group``: its usable manifest rows, with ``binning``
    and ``run_number``): the one held by the most runs; at equal counts, the one held by the latest
    run (:data:`BINNING_RULE`). Deterministic, whatever the order of the rows."""
    stats = group.groupby("binning")["run_number"].agg(["nunique", "max"])
    best = max(stats.itertuples(), key=lambda r: (int(r.nunique), int(r.max)))
    return str(best.Index)


def _binning_problems(man: pd.DataFrame, usable: pd.DataFrame) -> None:
    """Mark, in ``man``, the usable rows whose binning is not the reference one of their histogram:
    ``wrong_type`` for another dimension, ``binning_mismatch`` otherwise, each problem naming both
    binnings, how many runs hold each, and the rule; one log line per histogram so split."""
    for column, group in usable.groupby("histogram") if not usable.empty else []:
        ref_binning = reference_binning(group)
        odd = group[group["binning"] != ref_binning]
        if odd.empty:
            continue
        kept = group[group["binning"] == ref_binning]
        ref_layout = kept["layout"].iloc[0]
        total, n_ref = group["run_number"].nunique(), kept["run_number"].nunique()
        held = f"{ref_layout} (held by {n_ref} of {total} runs, latest {int(kept['run_number'].max())})"
        runs_of = odd.groupby("binning")["run_number"].nunique()
        for idx, layout, binning in zip(odd.index, odd["layout"], odd["binning"], strict=True):
            this = f"{layout} ({int(runs_of[binning])} of {total} runs)"
            if layout.split("[")[0][:3] != ref_layout.split("[")[0][:3]:
                status, what = "wrong_type", f"wrong type: {this} where the kept binning is {held}"
            else:
                edges = " (other edges)" if layout == ref_layout else ""
                status, what = "binning_mismatch", f"binning {this}{edges} differs from the kept binning {held}"
            man.loc[idx, ["status", "problem"]] = [status, f"{what}; rule: {BINNING_RULE}"]
        others = ", ".join(
            f"{odd.loc[odd['binning'] == b, 'layout'].iloc[0]} in {int(n)} runs" for b, n in runs_of.items()
        )
        log.warning(
            "histogram %r has %d binnings: kept %s; left out (null) %s; rule: %s",
            column, len(runs_of) + 1, held, others, BINNING_RULE,
        )  # fmt: skip


class NothingReadError(ValueError):
    """No histogram of the contents file was read from any file: nothing to train or assess."""

    def __init__(self, wanted: Sequence[str], reasons: Mapping[str, str], file_errors: Sequence[str] = ()) -> None:
        head = f"none of the {len(wanted)} histograms of the contents file was read from any file: "
        if file_errors and all(reasons.get(c) == "no file could be read" for c in wanted):
            shown = "; ".join(file_errors[:3]) + (f"; and {len(file_errors) - 3} more" if len(file_errors) > 3 else "")
            super().__init__(f"{head}no file could be read ({len(file_errors)} files): {shown}")
            return
        grouped: dict[str, list[str]] = {}
        for column in wanted:
            grouped.setdefault(reasons.get(column, "was not read"), []).append(column)
        lines = [
            f"{len(columns)} histogram(s) {reason} (e.g. {columns[0]!r})"
            if len(columns) > 1
            else f"{columns[0]!r} {reason}"
            for reason, columns in grouped.items()
        ]
        super().__init__(
            head
            + "; ".join(lines)
            + ". Check the subsystem names and paths of the contents file against the files (e.g. with uproot)."
        )


def _never_read_reason(man: pd.DataFrame, column: str) -> str:
    """Why no run has ``column`` in a usable form, from its manifest rows."""
    rows = man[man["histogram"] == column] if not man.empty else man
    wrong = rows[rows["status"] == "wrong_type"] if not rows.empty else rows
    if not wrong.empty:
        classes = Counter((m.group(1) if (m := _CLASS.search(str(p))) else str(p)) for p in wrong["problem"])
        found = ", ".join(f"{c} in {n} runs" if len(classes) > 1 else c for c, n in classes.most_common())
        missing = int((rows["status"] == "missing").sum())
        rest = f"; absent from {missing} runs" if missing else ""
        return f"is not a TH1/TH2 in any file (found {found}{rest})"
    if rows.empty:
        return "no file could be read"
    if (rows["status"] == "missing").all():
        problems = rows["problem"].astype(str).str.removeprefix("missing: ").value_counts()
        why = f" ({problems.index[0]}: {int(problems.iloc[0])} of {len(rows)} runs)" if len(problems) else ""
        return f"was not found in any file{why}: check its path in the contents file"
    statuses = ", ".join(f"{s} in {n} runs" for s, n in rows["status"].value_counts().items())
    return f"was not read from any file ({statuses})"


def _list_array(arrays: Sequence[np.ndarray | None], shape: tuple[int, ...]) -> pa.Array:
    """Arrow (nested) list array of per-run contents; ``None`` entries become nulls."""
    n = len(arrays)
    size = int(np.prod(shape))
    flat = np.zeros(n * size)
    mask = np.ones(n, dtype=bool)
    for i, arr in enumerate(arrays):
        if arr is not None:
            flat[i * size : (i + 1) * size] = arr.reshape(-1)
            mask[i] = False
    values: pa.Array = pa.array(flat, type=pa.float64())
    for inner in reversed(shape[1:]):
        count = len(values) // inner
        values = pa.ListArray.from_arrays(pa.array(np.arange(count + 1, dtype=np.int32) * inner), values)
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * shape[0])
    return pa.ListArray.from_arrays(offsets, values, mask=pa.array(mask))


def _list_type(ndim: int) -> pa.DataType:
    t: pa.DataType = pa.float64()
    for _ in range(ndim):
        t = pa.list_(t)
    return t


def _axis_titles(good: pd.DataFrame, ndims: Mapping[str, int]) -> dict[str, list[str]]:
    """Per histogram of ``ndims`` ({column: dimension}), the most common non-empty title of each
    axis over the runs where it is usable (``good`` manifest rows), ``""`` if no run has one.

    Reads only the title columns of each shard; ties go to the title of the earliest run."""
    counts: dict[str, list[Counter[str]]] = {c: [Counter() for _ in range(n)] for c, n in ndims.items()}
    if not good.empty:
        rows = good[good["histogram"].isin(list(ndims))]
        shards: dict[tuple[str, int], list[str]] = {}  # (shard folder, run) -> its columns
        for shard_dir, run, column in zip(rows["shard_dir"], rows["run_number"], rows["histogram"], strict=True):
            shards.setdefault((str(shard_dir), int(run)), []).append(str(column))
        for (shard_dir, run), columns in sorted(shards.items()):
            titles = read_shard_titles(shard_path(shard_dir, run))
            for column in columns:
                for counter, title in zip(counts[column], titles.get(column, ()), strict=False):
                    if title:
                        counter[title] += 1
    return {c: [n.most_common(1)[0][0] if n else "" for n in axes] for c, axes in counts.items()}


def merge(
    manifests: Mapping[str, Sequence[str | Path]],
    histograms: Sequence[HistogramName],
    labels: Mapping[int, int],
    output: str | Path,
    report: str | Path,
    *,
    extra_problems: Sequence[Mapping[str, object]] = (),
    storage: Mapping[str, str | Path] | None = None,
    entries: str | Path | None = None,
    signatures: Mapping[int, str] | None = None,
    chunk_runs: int = 256,
) -> pd.DataFrame:
    """Merge the shards listed by ``manifests`` ({subsystem: [manifest paths]}) into ``output``.

    Shards are found next to each manifest (see :func:`dqmflow.fetch.shard_path`).
    Writes the fetch report (every problem, one row per run/file/histogram) to ``report`` and
    returns it. ``extra_problems`` (e.g. runs with no file, dropped duplicate files) are added
    to the report as they are. If given, ``storage`` ({subsystem: path}) receives the same bin
    contents in the per-subsystem layout model jobs read (:mod:`dqmflow.storage`), and
    ``entries`` a table of every run, including runs whose file could not be read, with their
    label, their file's ``signatures`` (path, size, mtime) and the entries of every usable
    histogram (the input of :mod:`dqmflow.runtable`).
    """
    frames = []
    for subsystem, paths in manifests.items():
        for path in paths:
            frame = read_manifest(path)
            frame["subsystem"] = subsystem
            frame["shard_dir"] = str(Path(path).with_suffix(""))
            frames.append(frame)
    man = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run_number"])
    wanted = [h.column for h in histograms]
    requested_subsystems = {h.subsystem for h in histograms}
    if not man.empty:
        man = man[man["histogram"].isin(wanted) | (man["histogram"] == "")]

    # Reference binning per histogram (BINNING_RULE). Another dimension is a wrong type (a TH2
    # where the kept binning is a TH1); other edges a mismatch.
    usable = man[man["status"].isin(_USABLE)] if not man.empty else man
    _binning_problems(man, usable)

    problems = man[~man["status"].isin(("ok",))] if not man.empty else man
    report_frame = pd.concat(
        [problems.reindex(columns=REPORT_COLUMNS), pd.DataFrame(list(extra_problems), columns=REPORT_COLUMNS)],
        ignore_index=True,
    ).sort_values(["run_number", "histogram"], kind="stable")
    report_frame = report_frame.drop_duplicates(ignore_index=True)  # a file's error is in every subsystem's manifest
    Path(report).parent.mkdir(parents=True, exist_ok=True)
    report_frame.to_csv(report, sep="\t", index=False)

    # Runs: every run with at least one readable shard.
    readable = man[man["status"] != "file_error"] if not man.empty else man
    runs = (
        readable.drop_duplicates("run_number").sort_values("run_number")[["run_number", "year", "era"]]
        if not readable.empty
        else pd.DataFrame(columns=["run_number", "year", "era"])
    )
    good = man[man["status"].isin(_USABLE)] if not man.empty else man
    folders = readable[["run_number", "subsystem", "shard_dir"]] if not readable.empty else pd.DataFrame()
    shard_of = {
        (int(run), str(subsystem)): str(folder) for run, subsystem, folder in folders.itertuples(index=False, name=None)
    }
    ok_set = set(zip(good["run_number"], good["histogram"], strict=True)) if not good.empty else set()

    # Shapes and metadata come from one shard holding each histogram with the reference binning.
    meta: dict[str, dict[str, Any]] = {}
    firsts = good.drop_duplicates("histogram")[["histogram", "shard_dir", "run_number"]] if not good.empty else None
    first_of = (
        {str(h): (str(d), int(r)) for h, d, r in firsts.itertuples(index=False, name=None)}
        if firsts is not None
        else {}
    )
    for column in wanted:
        if column not in first_of:
            continue
        shard_dir, run = first_of[column]
        hist = read_shard(shard_path(shard_dir, run), {column})[column]
        meta[column] = {
            "ndim": hist.ndim,
            "shape": list(hist.values.shape),
            "edges": [e.tolist() for e in hist.edges],
            "classname": hist.classname,
            "title": hist.title,
        }
    for column, titles in _axis_titles(good, {c: int(m["ndim"]) for c, m in meta.items()}).items():
        meta[column]["axis_titles"] = titles
    missing_cols = [c for c in wanted if c not in meta]
    reasons = {c: _never_read_reason(man, c) for c in missing_cols}
    if wanted and len(missing_cols) == len(wanted):
        errors = man[man["status"] == "file_error"].drop_duplicates("file") if "status" in man else man.iloc[:0]
        raise NothingReadError(wanted, reasons, [f"{r.file}: {r.problem}" for r in errors.itertuples()])
    fields = [
        pa.field("run_number", pa.int64()),
        pa.field("year", pa.int64()),
        pa.field("era", pa.string()),
        pa.field("label", pa.int64()),
    ]
    for column in wanted:
        ndim = int(meta[column]["ndim"]) if column in meta else 1
        fields += [pa.field(column, _list_type(ndim)), pa.field(f"{column}_entries", pa.float64())]
    file_meta = {
        "dqmflow": json.dumps(
            {
                "histograms": meta,
                "never_read": missing_cols,
                "never_read_reasons": reasons,
                "subsystems": sorted(requested_subsystems),
            }
        )
    }
    schema = pa.schema(fields, metadata=file_meta)
    if entries is not None:
        _write_entries(man, good, wanted, labels, signatures or {}, entries)
    writers = {
        subsystem: StorageWriter(
            path,
            {
                c: HistogramInfo(
                    tuple(meta[c]["shape"]),
                    tuple(np.asarray(e) for e in meta[c]["edges"]),
                    tuple(meta[c]["axis_titles"]),
                )
                for c in wanted
                if c in meta and HistogramName.from_column(c).subsystem == subsystem
            },
        )
        for subsystem, path in (storage or {}).items()
    }
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(output, schema) as writer:
        for start in range(0, max(len(runs), 1), chunk_runs):
            chunk = runs.iloc[start : start + chunk_runs]
            columns: dict[str, object] = {
                "run_number": chunk["run_number"].astype("int64").to_numpy(),
                "year": chunk["year"].astype("int64").to_numpy(),
                "era": chunk["era"].astype(str).tolist(),
                "label": np.array([labels.get(int(r), -1) for r in chunk["run_number"]], dtype=np.int64),
            }
            loaded: dict[tuple[int, str], dict] = {}
            contents: dict[str, list[np.ndarray | None]] = {}
            for column in wanted:
                subsystem = HistogramName.from_column(column).subsystem
                arrays: list[np.ndarray | None] = []
                run_entries = []
                for run in chunk["run_number"]:
                    run = int(run)
                    if (run, column) not in ok_set:
                        arrays.append(None)
                        run_entries.append(np.nan)
                        continue
                    if (run, subsystem) not in loaded:
                        loaded[(run, subsystem)] = read_shard(shard_path(shard_of[(run, subsystem)], run))
                    hist = loaded[(run, subsystem)][column]
                    arrays.append(hist.values)
                    run_entries.append(hist.entries)
                shape = tuple(meta[column]["shape"]) if column in meta else (0,)
                columns[column] = _list_array(arrays, shape)
                columns[f"{column}_entries"] = np.asarray(run_entries, dtype=np.float64)
                contents[column] = arrays
            writer.write_table(pa.table(columns, schema=schema))
            for store in writers.values():
                store.write(chunk["run_number"].astype("int64").to_numpy(), contents)
    for store in writers.values():
        store.close()
    return report_frame


def _write_entries(
    man: pd.DataFrame,
    good: pd.DataFrame,
    wanted: Sequence[str],
    labels: Mapping[int, int],
    signatures: Mapping[int, str],
    path: str | Path,
) -> None:
    """One row per run of the manifests: year, era, label, signature, readable (some subsystem's
    fetch read the file), entries per usable histogram."""
    columns = ["run_number", "year", "era"]
    runs = man.drop_duplicates("run_number").sort_values("run_number")[columns] if not man.empty else None
    frame = pd.DataFrame(columns=columns) if runs is None else runs.reset_index(drop=True)
    frame["run_number"] = frame["run_number"].astype("int64")
    frame["year"] = frame["year"].astype("int64")
    frame["era"] = frame["era"].astype(str)
    frame["label"] = np.array([labels.get(int(r), -1) for r in frame["run_number"]], dtype=np.int64)
    frame["signature"] = [str(signatures.get(int(r), "")) for r in frame["run_number"]]
    read = set(man.loc[man["status"] != "file_error", "run_number"]) if not man.empty else set()
    frame["readable"] = frame["run_number"].isin(read)
    values = (
        good.pivot_table(index="run_number", columns="histogram", values="entries", aggfunc="first")
        if not good.empty
        else pd.DataFrame()
    )
    block = values.reindex(index=frame["run_number"], columns=list(wanted)).to_numpy(dtype=np.float64)
    entries = pd.DataFrame(block, columns=[f"{c}{ENTRIES_SUFFIX}" for c in wanted])
    out = pd.concat([frame, entries], axis=1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(out, preserve_index=False), path)


def read_histogram_metadata(path: str | Path) -> dict[str, object]:
    """The ``dqmflow`` metadata of a merged table: shapes, edges, classes, titles and axis titles
    per histogram (``axis_titles`` is ``""`` per axis for tables merged before it was stored), the
    histograms never read and why (``never_read_reasons``, empty for older tables)."""
    meta = pq.read_schema(path).metadata or {}
    raw: dict[str, Any] = json.loads(meta[b"dqmflow"])
    raw.setdefault("never_read_reasons", {})
    for info in raw.get("histograms", {}).values():
        info.setdefault("axis_titles", [""] * int(info.get("ndim", len(info.get("shape", ())))))
    return raw


def write_selection_record(
    record: str | Path,
    identity: Mapping[str, Any],
    *,
    histograms: Sequence[str],
    runs: Sequence[int],
    keep_markers: Sequence[str | Path] = (),
) -> None:
    """Write ``record`` (``results/<PD>/selection.json``): the selection ``identity`` (source,
    contents and datasets files with their SHA-256) the merged table was made from, its histograms
    and runs. Deletes the selection markers beside it (``selection/*.json``) other than
    ``keep_markers``, so that a later return to another selection makes its markers, and reruns
    its jobs, again."""
    record = Path(record)
    record.parent.mkdir(parents=True, exist_ok=True)
    body = {"identity": dict(identity), "histograms": list(histograms), "runs": [int(r) for r in runs]}
    tmp = record.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    tmp.replace(record)
    keep = {Path(m).name for m in keep_markers}
    for marker in (record.parent / "selection").glob("*.json"):
        if marker.name not in keep:
            marker.unlink(missing_ok=True)
