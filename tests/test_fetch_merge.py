from __future__ import annotations

import shutil
from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import uproot

from dqmflow.demo import PD, plan_runs
from dqmflow.discover import list_source, select
from dqmflow.fetch import FetchError, fetch_batch, read_manifest, read_shard, read_shard_titles, shard_path
from dqmflow.merge import BINNING_RULE, merge, read_histogram_metadata, reference_binning
from dqmflow.metadata import parse_datasets
from dqmflow.names import HistogramName
from dqmflow.preprocess import load_batch
from dqmflow.rootio import read_file, to_th1f, to_th2f
from dqmflow.storage import HistogramInfo, read_storage_info
from tests.conftest import SMALL, fetch_and_merge, small_datasets


def test_th1f_th2f_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "h.root"
    values2 = np.arange(12.0).reshape(3, 4)
    with uproot.recreate(path) as out:
        out["DQMData/Run 1/A/Run summary/h1"] = to_th1f("h1", np.arange(5.0), np.array([0, 1, 2, 4, 8, 16.0]))
        out["DQMData/Run 1/A/Run summary/h2"] = to_th2f("h2", values2, np.linspace(0, 3, 4), np.linspace(0, 4, 5))
        out["DQMData/Run 1/A/Run summary/t1"] = to_th1f("t1", np.ones(3), np.arange(4.0), axis_titles=("#eta",))
        out["DQMData/Run 1/A/Run summary/t2"] = to_th2f(
            "t2", values2, np.linspace(0, 3, 4), np.linspace(0, 4, 5), "T2", axis_titles=("chamber", "station-ring")
        )
    leaves = {"a": "h1", "b": "h2", "c": "t1", "d": "t2"}
    keys = {name: f"DQMData/Run 1/A/Run summary/{leaf}" for name, leaf in leaves.items()}
    found, problems = read_file(str(path), keys)
    assert problems == {}
    assert found["a"].classname == "TH1F" and found["b"].classname == "TH2F"
    np.testing.assert_array_equal(found["a"].edges[0], [0, 1, 2, 4, 8, 16])
    np.testing.assert_array_equal(found["b"].values, values2)  # [ix, iy] orientation kept
    assert found["b"].entries == values2.sum()
    # ROOT axis titles (TAxis fTitle): one per dimension, "" where the file has none.
    assert found["a"].axis_titles == ("",) and found["b"].axis_titles == ("", "")
    assert found["c"].axis_titles == ("#eta",)
    assert found["d"].axis_titles == ("chamber", "station-ring") and found["d"].title == "T2"
    with pytest.raises(ValueError, match="axis titles"):
        to_th1f("x", np.ones(3), np.arange(4.0), axis_titles=("x", "y"))


def test_merged_table_is_autodqm_ml_compatible_and_aligned(merged_demo: Path, demo_tree: Path) -> None:
    frame = pd.read_parquet(merged_demo)
    plans = {p.run: p for p in plan_runs(SMALL)}
    assert list(frame["run_number"]) == sorted(plans)
    for column in ("run_number", "year", "era", "label"):
        assert column in frame.columns
    col = "L1T//Run summary/L1TStage2EMTF/emtfTrackPhi"
    assert col in frame.columns and f"{col}_entries" in frame.columns
    bad = {int(r) for y in small_datasets()["years"].values() for r in y["bad_runs"]}
    assert set(frame.loc[frame["label"] == 1, "run_number"]) == bad
    assert set(frame.loc[frame["label"] == 0, "run_number"]) == set(plans) - bad
    # Every row holds the run's own histogram, exactly as in its ROOT file (no shifted rows).
    for run in list(plans)[::5]:
        path = next((demo_tree / "DQMGUI_data").rglob(f"DQM_V0001_R{run:09d}__*UL*-v2__DQMIO.root"), None) or next(
            (demo_tree / "DQMGUI_data").rglob(f"DQM_V0001_R{run:09d}__*UL*__DQMIO.root")
        )
        with uproot.open(path) as f:
            expected1 = f[f"DQMData/Run {run}/L1T/Run summary/L1TStage2EMTF/emtfTrackPhi"].values()
            expected2 = f[f"DQMData/Run {run}/CSC/Run summary/CSCOfflineMonitor/Occupancy/hORecHits"].values()
        row = frame[frame["run_number"] == run].iloc[0]
        np.testing.assert_array_equal(np.asarray(row[col]), expected1)
        got2 = np.stack(row["CSC//Run summary/CSCOfflineMonitor/Occupancy/hORecHits"])
        np.testing.assert_array_equal(got2, expected2)
    # awkward reads it too, with 2D histograms as nested lists
    array = ak.from_parquet(merged_demo, columns=["CSC//Run summary/CSCOfflineMonitor/Occupancy/hORecHits"])
    assert ak.to_numpy(array["CSC//Run summary/CSCOfflineMonitor/Occupancy/hORecHits"]).shape == (len(frame), 36, 18)
    meta = read_histogram_metadata(merged_demo)["histograms"]
    assert meta[col]["classname"] == "TH1F" and len(meta[col]["edges"][0]) == 127
    # The demo's ROOT axis titles reach the merged table's metadata and the storage files.
    occupancy = "CSC//Run summary/CSCOfflineMonitor/Occupancy/hORecHits"
    assert meta[col]["axis_titles"] == ["track #phi"]
    assert meta[occupancy]["axis_titles"] == ["chamber", "station-ring"]
    assert read_storage_info(merged_demo.parent / "data" / "L1T.parquet")[col].axis_titles == ("track #phi",)
    assert read_storage_info(merged_demo.parent / "data" / "CSC.parquet")[occupancy].axis_titles == (
        "chamber",
        "station-ring",
    )


def _corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def test_broken_and_odd_files_lose_nothing(demo_tree: Path, tmp_path: Path, all_histograms) -> None:
    source = tmp_path / "DQMGUI_data"
    shutil.copytree(demo_tree / "DQMGUI_data", source)
    datasets = small_datasets()
    plans = sorted(plan_runs(SMALL), key=lambda p: p.run)
    files = {p.run: next(source.rglob(f"DQM_V0001_R{p.run:09d}__*UL{p.year}*__DQMIO.root")) for p in plans}
    broken, odd_binning, no_phi = plans[2].run, plans[5].run, plans[8].run
    _corrupt(files[broken])
    phi = HistogramName("L1T", "/Run summary/L1TStage2EMTF/emtfTrackPhi")
    eta = HistogramName("L1T", "/Run summary/L1TStage2EMTF/emtfTrackEta")
    for run, mode in ((odd_binning, "binning"), (no_phi, "missing")):
        for f in source.rglob(f"DQM_V*_R{run:09d}__*.root"):
            with uproot.update(f) as out:
                folder, leaf = phi.in_file(run).rsplit("/", 1)
                del out[folder][leaf]
                if mode == "binning":
                    out[phi.in_file(run)] = to_th1f("emtfTrackPhi", np.ones(50), np.linspace(-3.2, 3.2, 51))
    table, report, _ = fetch_and_merge(source, tmp_path / "work", [phi, eta], datasets)
    frame = pd.read_parquet(table)
    assert broken not in set(frame["run_number"])
    assert len(frame) == len(plans) - 1
    assert frame.loc[frame["run_number"] == no_phi, phi.column].isna().all()
    assert frame.loc[frame["run_number"] == odd_binning, phi.column].isna().all()
    assert frame.loc[frame["run_number"] == odd_binning, eta.column].notna().all()
    status = {(r.run_number, r.status) for r in report.itertuples()}
    assert (broken, "file_error") in status
    assert (no_phi, "missing") in status
    assert (odd_binning, "binning_mismatch") in status
    row = report[report["status"] == "file_error"].iloc[0]
    assert str(files[broken]) in row["file"] and "cannot read file" in row["problem"]
    written = pd.read_csv(tmp_path / "work" / "fetch_report.tsv", sep="\t")
    assert len(written) == len(report)

    # The run table keeps the unreadable run (split missing); model jobs see the same runs aligned.
    runs = pd.read_parquet(tmp_path / "work" / "runs.parquet").set_index("run_number")
    assert len(runs) == len(plans) and runs.loc[broken, "split"] == "missing"
    batch = load_batch(tmp_path / "work" / "runs.parquet", tmp_path / "work" / "data" / "L1T.parquet",
                       [phi.column, eta.column])  # fmt: skip
    split = dict(zip(batch.runs, batch[phi.column].split, strict=True))
    assert split[broken] == split[no_phi] == split[odd_binning] == "missing"
    assert batch[eta.column].split[list(batch.runs).index(odd_binning)] != "missing"
    healthy = plans[3].run
    stored = batch[phi.column].counts[list(batch.runs).index(healthy)]
    merged = np.asarray(frame.loc[frame["run_number"] == healthy, phi.column].iloc[0])
    np.testing.assert_array_equal(stored, merged)


def test_wrong_type_and_empty_histograms_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "Run2017" / "PD" / "R0003000xx" / "DQM_V0001_R000300001__PD__Run2017B-UL2017-v1__DQMIO.root"
    path.parent.mkdir(parents=True)
    with uproot.recreate(path) as out:
        out["DQMData/Run 300001/S/Run summary/h2"] = to_th2f("h2", np.ones((2, 2)), np.arange(3.0), np.arange(3.0))
        out["DQMData/Run 300001/S/Run summary/empty"] = to_th1f("empty", np.zeros(4), np.arange(5.0))
        out["DQMData/Run 300001/S/Run summary/dir/x"] = to_th1f("x", np.ones(4), np.arange(5.0))
    files = list_source(str(tmp_path), "PD", 2017)
    names = [
        HistogramName("S", "/Run summary/h2"),
        HistogramName("S", "/Run summary/empty"),
        HistogramName("S", "/Run summary/dir"),
    ]
    fetch_batch(files, names, tmp_path / "shards", tmp_path / "m.tsv")
    man = read_manifest(tmp_path / "m.tsv").set_index("histogram")
    assert man.loc["S//Run summary/h2", "status"] == "ok"
    assert man.loc["S//Run summary/empty", "status"] == "empty"
    assert man.loc["S//Run summary/dir", "status"] == "wrong_type"
    assert "TDirectory" in man.loc["S//Run summary/dir", "problem"]


def test_shards_are_reused_until_the_file_changes(demo_tree: Path, tmp_path: Path) -> None:
    source = tmp_path / "DQMGUI_data"
    shutil.copytree(demo_tree / "DQMGUI_data", source)
    files = select(list_source(str(source), PD, 2017), parse_datasets(small_datasets())).files
    items = list(files.values())
    names = [HistogramName("L1T", "/Run summary/L1TStage2EMTF/emtfTrackBX")]
    first = fetch_batch(items[:-2], names, tmp_path / "s", tmp_path / "m.tsv")
    assert (first.files, first.reused) == (len(items) - 2, 0)
    second = fetch_batch(items, names, tmp_path / "s", tmp_path / "m.tsv")
    assert (second.files, second.reused) == (len(items), len(items) - 2)
    more = fetch_batch(
        items,
        [*names, HistogramName("L1T", "/Run summary/L1TStage2EMTF/emtfTrackEta")],
        tmp_path / "s",
        tmp_path / "m.tsv",
    )
    assert more.reused == 0  # the requested histograms changed
    assert len(read_manifest(tmp_path / "m.tsv")) == 2 * len(items)


def test_fail_mode_names_the_file(demo_tree: Path, tmp_path: Path) -> None:
    source = tmp_path / "DQMGUI_data"
    shutil.copytree(demo_tree / "DQMGUI_data", source)
    items = sorted(list_source(str(source), PD, 2017))[:3]
    _corrupt(Path(items[1].path))
    names = [HistogramName("L1T", "/Run summary/L1TStage2EMTF/emtfTrackBX")]
    with pytest.raises(FetchError, match=Path(items[1].path).name):
        fetch_batch(items, names, tmp_path / "s", tmp_path / "m.tsv", on_error="fail")
    assert set(read_manifest(tmp_path / "m.tsv")["run_number"]) == {items[0].run, items[1].run}


def test_merge_streams_in_chunks(merged_demo: Path, demo_tree: Path, tmp_path: Path, all_histograms) -> None:
    from dqmflow.merge import merge

    manifests = {}
    for subsystem in ("CSC", "L1T"):
        manifests[subsystem] = [p for p in merged_demo.parent.glob(f"shards/{subsystem}/*.tsv")]
    merge(manifests, all_histograms, {}, tmp_path / "t.parquet", tmp_path / "r.tsv", chunk_runs=5)
    assert pq.ParquetFile(tmp_path / "t.parquet").num_row_groups == int(np.ceil(len(plan_runs(SMALL)) / 5))
    a = pd.read_parquet(tmp_path / "t.parquet").drop(columns="label")
    b = pd.read_parquet(merged_demo).drop(columns="label")
    pd.testing.assert_frame_equal(a, b)


def _write(path: Path, run: int, objects: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with uproot.recreate(path) as out:
        for key, obj in objects.items():
            out[f"DQMData/Run {run}/{key}"] = obj


def _profile(name: str, n: int) -> object:
    """A real TProfile (what some DQM paths hold instead of a TH1)."""
    from uproot.writing import identify

    zeros = np.zeros(n + 2)
    axis = identify.to_TAxis("xaxis", "xaxis", n, 0.0, float(n))
    empty = np.array([], dtype=np.float64)
    return identify.to_TProfile(name, name, zeros, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, zeros, zeros, empty, axis)


def _dqm_path(root: Path, run: int, processing: str = "UL2017-v1") -> Path:
    return (
        root
        / "Run2017"
        / "PD"
        / f"R{run // 100:07d}xx"
        / f"DQM_V0001_R{run:09d}__PD__Run2017B-{processing}__DQMIO.root"
    )


def test_every_kind_of_bad_input_is_reported_and_nothing_shifts(tmp_path: Path) -> None:
    """The issue's list: corrupted file, missing histograms, TProfile and TH2 where a TH1 is
    expected, other binning, empty histogram, two files for one run, a listed run without a file,
    odd characters in paths and a subsystem that does not exist."""
    root = tmp_path / "DQMGUI_data"
    odd = "/Run summary/Digis/hStrips ME+1-1 #fired"
    good_runs = list(range(300001, 300009))
    # Axis titles of h: most runs say "energy [GeV]", two "E [GeV]", one none; odd has none.
    h_titles = ["energy [GeV]"] * 5 + ["E [GeV]"] * 2 + [""]
    for i, run in enumerate(good_runs):
        _write(_dqm_path(root, run), run, {
            "S/Run summary/h": to_th1f("h", np.full(10, 100.0 + i), np.arange(11.0), axis_titles=(h_titles[i],)),
            f"S{odd}": to_th1f("odd", np.full(4, 7.0 + i), np.arange(5.0)),
        })  # fmt: skip
    specials = {
        300101: {"S/Run summary/h": _profile("h", 10)},  # TProfile where a TH1F is expected
        300102: {"S/Run summary/h": to_th2f("h", np.ones((10, 3)), np.arange(11.0), np.arange(4.0),
                                            axis_titles=("other", "titles"))},  # TH2: its titles are not used
        300103: {"S/Run summary/h": to_th1f("h", np.ones(20), np.arange(21.0), axis_titles=("other",))},  # other bins
        300104: {"S/Run summary/h": to_th1f("h", np.zeros(10), np.arange(11.0), axis_titles=("other",))},  # empty
        300105: {f"S{odd}": to_th1f("odd", np.ones(4), np.arange(5.0))},  # h missing
    }  # fmt: skip
    for run, objects in specials.items():
        _write(_dqm_path(root, run), run, objects)
    corrupted = _dqm_path(root, 300106)
    corrupted.parent.mkdir(parents=True, exist_ok=True)
    corrupted.write_bytes(np.random.default_rng(0).bytes(5000))
    zero_bytes = _dqm_path(root, 300107)  # a copy that never wrote anything
    zero_bytes.write_bytes(b"")
    # Run 300007 also exists as an older reprocessing: the newer file must be the one used.
    _write(_dqm_path(root, 300007, "UL2017-v0"), 300007, {"S/Run summary/h": to_th1f("h", np.full(10, -1.0),
                                                                                     np.arange(11.0))})  # fmt: skip
    names = [HistogramName("S", "/Run summary/h"), HistogramName("S", odd), HistogramName("NOPE", "/Run summary/x")]
    runs = [*good_runs, *specials, 300106, 300107, 300999]  # 300999 has no file
    year = {"productions": ["UL2017"], "runs": [str(r) for r in runs], "bad_runs": ["300101"]}
    datasets = {"primary_datasets": ["PD"], "years": {"2017": year}}
    table, report, selection = fetch_and_merge(root, tmp_path / "work", names, datasets)
    assert selection.missing_runs == [(2017, 300999)]
    assert [(d.run, d.processing) for d, _ in selection.duplicates] == [(300007, "UL2017-v0")]

    frame = pd.read_parquet(table).set_index("run_number")
    assert 300106 not in frame.index and 300107 not in frame.index and 300999 not in frame.index
    h, o = names[0].column, names[1].column
    for i, run in enumerate(good_runs):  # every good run holds its own contents, in its own row
        np.testing.assert_array_equal(frame.loc[run, h], np.full(10, 100.0 + i))
        np.testing.assert_array_equal(frame.loc[run, o], np.full(4, 7.0 + i))
    for run in (300101, 300102, 300103, 300105):
        assert frame.loc[run, h] is None
    np.testing.assert_array_equal(frame.loc[300104, h], np.zeros(10))  # empty is kept, and reported
    assert frame[names[2].column].isna().all()
    # Axis titles: the most common non-empty one over the usable runs (not the TH2's or the other binning's).
    meta = read_histogram_metadata(table)["histograms"]
    assert meta[h]["axis_titles"] == ["energy [GeV]"] and meta[o]["axis_titles"] == [""]
    stored = read_storage_info(tmp_path / "work" / "data" / "S.parquet")
    assert stored[h].axis_titles == ("energy [GeV]",) and stored[o].axis_titles == ("",)

    problems = {(r.run_number, r.histogram, r.status): r.problem for r in report.itertuples()}

    def problem(run: int, column: str, status: str) -> str:
        assert (run, column, status) in problems, f"no {status} row for run {run}, {column!r}: {problems}"
        return problems[(run, column, status)]

    assert "TProfile" in problem(300101, h, "wrong_type")
    assert "TH2F[10x3] (1 of 11 runs) where the kept binning is TH1F[10] (held by 9 of 11 runs" in problem(
        300102, h, "wrong_type"
    )
    assert "binning TH1F[20] (1 of 11 runs) differs from the kept binning TH1F[10]" in problem(
        300103, h, "binning_mismatch"
    )
    assert "no entries" in problem(300104, h, "empty")
    assert "no object" in problem(300105, h, "missing")
    assert "not a ROOT file" in problem(300106, "", "file_error") or "cannot read file" in problem(
        300106, "", "file_error"
    )
    assert "not a ROOT file, or cut short: 0 bytes where a ROOT file header needs" in problem(300107, "", "file_error")
    errors = report[report["status"] == "file_error"]
    assert sorted(errors["run_number"]) == [300106, 300107], "one row per file, not one per subsystem"
    assert "no subsystem folder 'NOPE' in this file (it has: S)" in problem(300001, names[2].column, "missing")
    written = pd.read_csv(tmp_path / "work" / "fetch_report.tsv", sep="\t", keep_default_na=False)
    assert str(corrupted) in set(written["file"])


def test_shards_without_axis_title_columns_still_read_and_merge(tmp_path: Path) -> None:
    """Shards written before axis titles were stored are reused, read with "" titles and merged."""
    root = tmp_path / "DQMGUI_data"
    runs = [300001, 300002]
    for run in runs:
        _write(_dqm_path(root, run), run, {
            "S/Run summary/h1": to_th1f("h1", np.ones(4), np.arange(5.0), axis_titles=("#eta",)),
            "S/Run summary/h2": to_th2f("h2", np.ones((3, 2)), np.arange(4.0), np.arange(3.0),
                                        axis_titles=("chamber", "station-ring")),
        })  # fmt: skip
    files = list_source(str(root), "PD", 2017)
    names = [HistogramName("S", "/Run summary/h1"), HistogramName("S", "/Run summary/h2")]
    h1, h2 = (n.column for n in names)
    fetch_batch(files, names, tmp_path / "m", tmp_path / "m.tsv")
    new = read_shard(shard_path(tmp_path / "m", runs[0]))
    assert new[h1].axis_titles == ("#eta",) and new[h2].axis_titles == ("chamber", "station-ring")
    assert read_shard_titles(shard_path(tmp_path / "m", runs[0])) == {h1: ("#eta", ""), h2: ("chamber", "station-ring")}
    for run in runs:  # rewrite the shards as an older version wrote them: no title columns, same metadata
        path = shard_path(tmp_path / "m", run)
        table = pq.read_table(path)
        assert {"x_title", "y_title"} <= set(table.column_names)
        pq.write_table(table.drop_columns(["x_title", "y_title"]), path)
    again = fetch_batch(files, names, tmp_path / "m", tmp_path / "m.tsv")
    assert again.reused == len(runs)
    old = read_shard(shard_path(tmp_path / "m", runs[0]))
    assert old[h1].axis_titles == ("",) and old[h2].axis_titles == ("", "")
    np.testing.assert_array_equal(old[h2].values, np.ones((3, 2)))
    assert read_shard_titles(shard_path(tmp_path / "m", runs[0])) == {h1: ("", ""), h2: ("", "")}
    merge({"S": [tmp_path / "m.tsv"]}, names, {}, tmp_path / "t.parquet", tmp_path / "r.tsv",
          storage={"S": tmp_path / "S.parquet"})  # fmt: skip
    meta = read_histogram_metadata(tmp_path / "t.parquet")["histograms"]
    assert meta[h1]["axis_titles"] == [""] and meta[h2]["axis_titles"] == ["", ""]
    assert read_storage_info(tmp_path / "S.parquet")[h2].axis_titles == ("", "")
    # Storage metadata written before axis titles were stored: "" per axis.
    old_info = HistogramInfo.from_dict({"shape": [3, 2], "edges": [[0, 1, 2, 3], [0, 1, 2]]})
    assert old_info.axis_titles == ("", "")
    assert HistogramInfo.from_dict(HistogramInfo((4,), (np.arange(5.0),), ("BX",)).as_dict()).axis_titles == ("BX",)


# ---------------------------------------------------------------- item 7 of issue 8: stated rules


def _binning_split(root: Path, first: list[int], second: list[int]) -> None:
    """Runs ``first`` hold h with 10 bins, runs ``second`` with 20; g (10 bins) is in every run."""
    for runs, bins in ((first, 10), (second, 20)):
        for run in runs:
            _write(_dqm_path(root, run), run, {
                "S/Run summary/h": to_th1f("h", np.full(bins, float(run % 100)), np.arange(bins + 1.0)),
                "S/Run summary/g": to_th1f("g", np.full(10, 1.0 + run % 100), np.arange(11.0)),
            })  # fmt: skip


def _split_datasets(runs: list[int]) -> dict:
    return {"primary_datasets": ["PD"], "years": {"2017": {"productions": ["UL2017"], "runs": [str(r) for r in runs]}}}


@pytest.mark.parametrize("latest_has", [10, 20])
def test_a_50_50_binning_split_keeps_the_latest_runs_binning_and_says_the_rule(tmp_path: Path, latest_has: int) -> None:
    """At equal counts the binning of the latest run wins, whichever order the files come in, and
    the report row and the log state that rule (never "most runs" at a tie)."""
    early, late = [300001, 300002, 300003], [300004, 300005, 300006]
    first, second = (early, late) if latest_has == 20 else (late, early)
    root = tmp_path / "DQMGUI_data"
    _binning_split(root, first, second)
    h, g = HistogramName("S", "/Run summary/h"), HistogramName("S", "/Run summary/g")
    table, report, _ = fetch_and_merge(root, tmp_path / "work", [h, g], _split_datasets(early + late))
    frame = pd.read_parquet(table).set_index("run_number")
    kept = late  # the runs holding the latest run's binning
    nulled = early
    for run in kept:
        assert len(frame.loc[run, h.column]) == latest_has
    for run in nulled:
        assert frame.loc[run, h.column] is None
        assert frame.loc[run, g.column] is not None  # only the odd histogram is left out
    assert read_histogram_metadata(table)["histograms"][h.column]["shape"] == [latest_has]
    rows = report[report["status"] == "binning_mismatch"]
    assert set(rows["run_number"]) == set(nulled) and set(rows["histogram"]) == {h.column}
    other = 30 - latest_has
    for text in rows["problem"]:
        assert "most runs have" not in text
        assert f"binning TH1F[{other}] (3 of 6 runs) differs from the kept binning TH1F[{latest_has}]" in text
        assert "(held by 3 of 6 runs, latest 300006)" in text
        assert text.endswith(f"rule: {BINNING_RULE}")
    written = pd.read_csv(tmp_path / "work" / "fetch_report.tsv", sep="\t", keep_default_na=False)
    assert (written["problem"].str.contains("at equal counts, the binning of the latest run")).sum() == 3


def test_the_binning_of_most_runs_wins_over_a_late_odd_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Counts first: one odd latest run does not null the others; the log line names both binnings."""
    root = tmp_path / "DQMGUI_data"
    _binning_split(root, [300001, 300002, 300003], [300009])
    h = HistogramName("S", "/Run summary/h")
    with caplog.at_level("WARNING", logger="dqmflow.merge"):
        table, report, _ = fetch_and_merge(
            root, tmp_path / "work", [h], _split_datasets([300001, 300002, 300003, 300009])
        )
    frame = pd.read_parquet(table).set_index("run_number")
    assert frame[h.column].notna().tolist() == [True, True, True, False]
    (row,) = report[report["status"] == "binning_mismatch"].itertuples()
    assert row.run_number == 300009 and "held by 3 of 4 runs, latest 300003" in row.problem
    assert any(
        "has 2 binnings: kept TH1F[10] (held by 3 of 4 runs, latest 300003); left out (null) TH1F[20] in 1 runs" in m
        and BINNING_RULE in m
        for m in caplog.messages
    )


def test_reference_binning_is_independent_of_row_order() -> None:
    rows = pd.DataFrame({"binning": ["a", "b", "a", "b"], "run_number": [4, 1, 2, 3]})
    assert reference_binning(rows) == "a" == reference_binning(rows.iloc[::-1])
    assert reference_binning(pd.DataFrame({"binning": ["a", "b", "b"], "run_number": [9, 1, 2]})) == "b"


def test_a_tprofile_in_every_run_is_reported_as_not_a_th1(tmp_path: Path) -> None:
    """A histogram that every run holds as a TProfile is "not a TH1/TH2 in any file (found
    TProfile)", in the table's metadata, the merge log and the end-of-run summary; a path found in
    no file still says to check the contents file."""
    from dqmflow.runsummary import summarize

    root = tmp_path / "DQMGUI_data"
    runs = [300001, 300002, 300003]
    for run in runs:
        _write(_dqm_path(root, run), run, {
            "S/Run summary/prof": _profile("prof", 10),
            "S/Run summary/h": to_th1f("h", np.full(10, 5.0), np.arange(11.0)),
        })  # fmt: skip
    prof, h, typo = (HistogramName("S", f"/Run summary/{x}") for x in ("prof", "h", "hh"))
    subsystem_typo = HistogramName("SS", "/Run summary/h")
    work = tmp_path / "results" / "PD"
    table, report, _ = fetch_and_merge(root, work, [prof, h, typo, subsystem_typo], _split_datasets(runs))
    frame = pd.read_parquet(table)
    assert list(frame["run_number"]) == runs and frame[h.column].notna().all()
    assert frame[prof.column].isna().all()
    meta = read_histogram_metadata(table)
    assert meta["never_read"] == [prof.column, typo.column, subsystem_typo.column]
    reasons = meta["never_read_reasons"]
    assert reasons[prof.column] == "is not a TH1/TH2 in any file (found TProfile)"
    assert "contents file" not in reasons[prof.column]
    typo_reason = "was not found in any file (no object at this path: 3 of 3 runs): check its path in the contents file"
    assert reasons[typo.column] == typo_reason
    assert reasons[subsystem_typo.column] == (
        "was not found in any file (no subsystem folder 'SS' in this file (it has: S): 3 of 3 runs): "
        "check its path in the contents file"
    )
    assert set(report.loc[report["histogram"] == prof.column, "status"]) == {"wrong_type"}
    summary = "\n".join(summarize(tmp_path, ["PD"]))
    assert f"{prof.column} is not a TH1/TH2 in any file (found TProfile)" in summary
    assert f"{typo.column} {typo_reason}" in summary


def test_merge_stops_when_no_histogram_of_the_contents_file_was_read(tmp_path: Path) -> None:
    """A contents file whose subsystem is written 'l1t' instead of 'L1T' reads nothing: merge
    stops there, saying so once per reason (not after training and assessing nothing)."""
    from dqmflow.merge import NothingReadError

    root = tmp_path / "DQMGUI_data"
    runs = [300001, 300002]
    for run in runs:
        _write(_dqm_path(root, run), run, {"S/Run summary/h": to_th1f("h", np.full(10, 5.0), np.arange(11.0))})
    names = [HistogramName("s", f"/Run summary/{x}") for x in ("h", "g", "k")]
    with pytest.raises(NothingReadError) as info:
        fetch_and_merge(root, tmp_path / "results" / "PD", names, _split_datasets(runs))
    message = str(info.value)
    assert message.startswith("none of the 3 histograms of the contents file was read from any file: 3 histogram(s) ")
    assert message.count("no subsystem folder 's' in this file (it has: S)") == 1


def test_a_histogram_with_nan_bins_is_reported_unreadable_not_scored(tmp_path: Path) -> None:
    """NaN or inf bin contents (a broken DQM module) cannot be scored or used as a reference:
    that run's histogram is an 'unreadable' row naming how many bins, and is missing in the table."""
    root = tmp_path / "DQMGUI_data"
    runs = [300001, 300002, 300003]
    for run in runs:
        values = np.full(10, 5.0)
        if run == 300002:
            values[[3, 7]] = [np.nan, np.inf]
        _write(_dqm_path(root, run), run, {"S/Run summary/h": to_th1f("h", values, np.arange(11.0))})
    h = HistogramName("S", "/Run summary/h")
    table, report, _ = fetch_and_merge(root, tmp_path / "results" / "PD", [h], _split_datasets(runs))
    frame = pd.read_parquet(table).set_index("run_number")
    assert frame.loc[300002, h.column] is None and frame.loc[300001, h.column] is not None
    row = report[(report["run_number"] == 300002) & (report["histogram"] == h.column)]
    assert list(row["status"]) == ["unreadable"]
    assert row["problem"].iloc[0] == "unreadable: 2 of 10 bin contents are not finite (NaN or inf)"


def test_merge_names_the_files_when_none_could_be_read(tmp_path: Path) -> None:
    """Every file unreadable: the message names them and their errors (the fetch report, an
    output of the failed merge, would be removed with it), not the contents file."""
    from dqmflow.merge import NothingReadError

    root = tmp_path / "DQMGUI_data"
    runs = [300001, 300002]
    for run in runs:
        path = _dqm_path(root, run)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    with pytest.raises(NothingReadError) as info:
        fetch_and_merge(
            root, tmp_path / "results" / "PD", [HistogramName("S", "/Run summary/h")], _split_datasets(runs)
        )
    message = str(info.value)
    assert "no file could be read (2 files): " in message and "not a ROOT file, or cut short: 0 bytes" in message
    assert "contents file" not in message.split("read from any file")[1]


def test_a_read_that_fails_mid_file_is_a_file_error_not_unreadable_histograms(tmp_path: Path, monkeypatch) -> None:
    """A server that dies while a file is read (an OSError on one of its objects) fails the whole
    file: retried, then a file_error row and no shard, so that the next run reads it again. Before,
    every histogram became 'unreadable' in an empty shard, reused forever, and the good run with
    all histograms missing could be flagged."""
    import dqmflow.rootio as rootio
    from dqmflow.fetch import _permanent
    from dqmflow.rootio import TruncatedFileError

    root = tmp_path / "DQMGUI_data"
    runs = [300001, 300002]
    for run in runs:
        _write(_dqm_path(root, run), run, {"S/Run summary/h": to_th1f("h", np.full(10, 5.0), np.arange(11.0))})
    real = rootio.from_uproot

    def dies_on_the_second_run(obj):
        if "300002" in obj.file.file_path:
            raise ValueError("I/O operation on closed file.")  # what uproot meets when its source goes away
        return real(obj)

    monkeypatch.setattr(rootio, "from_uproot", dies_on_the_second_run)
    h = HistogramName("S", "/Run summary/h")
    table, report, _ = fetch_and_merge(root, tmp_path / "results" / "PD", [h], _split_datasets(runs))
    rows = report[report["run_number"] == 300002]
    assert list(rows["status"]) == ["file_error"] and "closed while it was read" in rows["problem"].iloc[0]
    assert 300002 not in set(pd.read_parquet(table)["run_number"])
    assert not list((tmp_path / "results" / "PD").rglob("300002.parquet")), "no shard to reuse"
    # an XRootD connection error while reading an object fails a remote file (never a local one:
    # there an OSError is a broken object, see the next test); errors retrying cannot fix are not retried
    with pytest.raises(OSError):
        rootio._raise_if_io(OSError("Bytes failed to read [FATAL] Connection error"), remote=True)
    rootio._raise_if_io(OSError("expected Chunk of length 702, received 0 bytes"), remote=False)
    assert _permanent(TruncatedFileError("file is truncated"))
    assert _permanent(OSError("[ERROR] Server responded with an error: [3011] No such file or directory"))
    assert not _permanent(OSError("[FATAL] Connection error"))


def test_the_summary_counts_runs_missing_and_partly_read_and_says_how_to_retry(tmp_path: Path) -> None:
    """A file that failed for one subsystem's fetch job but was read for another's: its run is in
    the table, missing some subsystems, and the summary says so (not 'their runs are missing')."""
    from dqmflow.runsummary import summarize

    pd_dir = tmp_path / "results" / "PD"
    pd_dir.mkdir(parents=True)
    pd.DataFrame({"run_number": [1, 2, 3], "readable": [True, True, False]}).to_parquet(pd_dir / "entries.parquet")
    (pd_dir / "fetch_report.tsv").write_text(
        "run_number\tfile\thistogram\tstatus\tproblem\n"
        "2\troot://eos:1094//store/2.root\t\tfile_error\tcannot read file: OSError: [FATAL] Connection error\n"
        "3\troot://eos:1094//store/3.root\t\tfile_error\tcannot read file: OSError: [FATAL] Connection error\n"
    )
    lines = "\n".join(summarize(tmp_path, ["PD"]))
    assert "FAILED FILES: 2 could not be read (eos:1094: 2): 1 runs missing, 1 missing some subsystems" in lines
    assert "To read them again: snakemake --forcerun fetch" in lines


def test_a_broken_object_in_a_readable_local_file_loses_only_its_histogram(tmp_path: Path) -> None:
    """A key whose position points past the end of the file (uproot: OSError "expected Chunk of
    length N") is that histogram's problem; the file's other histograms are kept."""
    import struct

    path = tmp_path / "f.root"
    with uproot.recreate(path, compression=None) as out:
        for i in range(3):
            out[f"DQMData/Run 1/S/Run summary/h{i}"] = to_th1f(f"h{i}", np.full(20, 5.0 + i), np.arange(21.0))
    data = bytearray(path.read_bytes())
    with uproot.open(path) as handle:
        key = handle["DQMData/Run 1/S/Run summary"].key("h1")
        seek, nbytes, objlen = key.fSeekKey, key.fNbytes, key.fObjlen
    header = struct.pack(">i", nbytes) + struct.pack(">h", 4) + struct.pack(">i", objlen)
    records = [i for i in range(len(data)) if data[i : i + len(header)] == header]
    listing = [o for o in records if struct.unpack(">i", data[o + 18 : o + 22])[0] == seek][-1]
    data[listing + 18 : listing + 22] = struct.pack(">i", len(data) + 1000)  # the directory's key points away
    path.write_bytes(bytes(data))
    keys = {f"h{i}": f"DQMData/Run 1/S/Run summary/h{i}" for i in range(3)}
    found, problems = read_file(str(path), keys)
    assert sorted(found) == ["h0", "h2"] and problems["h1"].startswith("unreadable: OSError: expected Chunk")


def test_reading_a_column_a_parquet_file_lacks_names_the_file_and_the_column(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dqmflow.arrowio import read_parquet

    path = tmp_path / "runs.parquet"
    pq.write_table(pa.table({"run_number": [1, 2], "label": [0, 1]}), path)
    assert read_parquet(path, ["label"]).column_names == ["label"]
    with pytest.raises(ValueError, match=r"runs\.parquet: no column 'signature'"):
        read_parquet(path, ["run_number", "signature"])
