from __future__ import annotations

import json

import pytest

from dqmflow.metadata import (
    BAD,
    GOOD,
    UNKNOWN,
    MetadataError,
    load_contents,
    load_datasets,
    parse_contents,
    parse_datasets,
)
from tests.conftest import DATA


def test_real_contents_files_parse() -> None:
    example = load_contents(DATA / "contents_example.json")
    assert [h.subsystem for h in example].count("CSC") == 5
    assert example[5].column == "L1T//Run summary/L1TStage2EMTF/emtfTrackBX"
    dt = load_contents(DATA / "dt.json")  # written without the leading "/"
    assert all(h.column.startswith("DT//Run summary/") for h in dt)
    assert len(load_contents(DATA / "L1T.json")) > 20


def test_contents_duplicates_collapse_across_spellings() -> None:
    names = parse_contents({"L1T": ["/Run summary/a/h", "Run summary/a/h", "/Run summary/a/g"]})
    assert [n.column for n in names] == ["L1T//Run summary/a/h", "L1T//Run summary/a/g"]


@pytest.mark.parametrize(
    "data,message",
    [
        ([], "non-empty object"),
        ({"L1T": "/Run summary/a"}, "list of paths"),
        ({"L1T": []}, "names no histogram"),
        ({"L1T": [""]}, "empty histogram path"),
    ],
)
def test_bad_contents(data, message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        parse_contents(data, "c.json")


def test_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(MetadataError, match=r"nope\.json does not exist"):
        load_datasets(tmp_path / "nope.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(MetadataError, match=r"broken\.json is not valid JSON"):
        load_contents(tmp_path / "broken.json")


def test_only_bad_runs_listed_everything_else_is_good() -> None:
    ds = load_datasets(DATA / "csc1718.json")  # comments is a plain string here
    assert ds.primary_datasets == ("SingleMuon",)
    assert ds.label(300105) == BAD
    assert ds.label(317488) == GOOD  # a 2018 run: no list for 2018, but bad runs exist in the file
    assert ds.comments[2017][0].startswith("300105-300107")


def test_runs_eras_and_labels_of_real_files() -> None:
    ds = load_datasets(DATA / "L1T_2022C.json")
    year = ds.year(2022)
    assert len(year.runs) == 109 and len(year.bad_runs) == 37
    assert ds.label(355865) == BAD and ds.label(355872) == GOOD
    example = load_datasets(DATA / "datasets_example.json")
    assert example.year(2017).eras == ("B",)
    assert example.year(2018).runs == (317488, 317481)
    assert example.label(317488) == UNKNOWN  # no list at all


def test_both_lists_leave_others_unknown_and_only_good_makes_others_bad() -> None:
    both = parse_datasets(
        {"primary_datasets": ["X"], "years": {"2022": {"productions": [""], "bad_runs": ["1"], "good_runs": ["2"]}}}
    )
    assert (both.label(1), both.label(2), both.label(3)) == (BAD, GOOD, UNKNOWN)
    only_good = parse_datasets({"primary_datasets": ["X"], "years": {"2022": {"productions": [""], "good_runs": [2]}}})
    assert (only_good.label(2), only_good.label(3)) == (GOOD, BAD)


def test_selection_rules() -> None:
    ds = load_datasets(DATA / "datasets_example.json")
    y17, y18 = ds.year(2017), ds.year(2018)
    name = "DQM_V0001_R000297050__SingleMuon__Run2017B-09Aug2019_UL2017-v1__DQMIO.root"
    assert y17.accepts(297050, "B", name)
    assert not y17.accepts(297050, "C", name.replace("2017B", "2017C"))
    assert not y17.accepts(297050, "B", name.replace("UL2017", "PromptReco"))
    assert y18.accepts(317488, "A", name.replace("2017B", "2018A").replace("UL2017", "UL2018"))
    assert not y18.accepts(317489, "A", name.replace("2017B", "2018A").replace("UL2017", "UL2018"))


@pytest.mark.parametrize(
    "data,message",
    [
        ({"years": {}}, "'primary_datasets' field is missing"),
        ({"primary_datasets": ["X"]}, "'years' field is missing"),
        ({"primary_datasets": ["X"], "years": {"2022": {}}}, "year 2022: the 'productions' field is missing"),
        ({"primary_datasets": ["X"], "years": {"22x": {"productions": [""]}}}, "is not a year"),
        ({"primary_datasets": ["X"], "years": {"2022": {"productions": [""], "runs": ["35a"]}}}, "not a run number"),
        ({"primary_datasets": ["X"], "years": {"2022": {"productions": [""], "bad_run": []}}}, "unknown field"),
        ({"primary_datasets": ["X"], "years": {"2022": {"productions": []}}}, "productions is empty"),
    ],
)
def test_bad_datasets(data, message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        parse_datasets(data, "d.json")


def test_every_shipped_example_parses(tmp_path) -> None:
    for path in DATA.glob("*.json"):
        data = json.loads(path.read_text())
        if "primary_datasets" in data:
            assert load_datasets(path).years
        else:
            assert load_contents(path)


def test_labels_of_many_runs() -> None:
    runs = list(range(300000, 320000))
    bad = runs[::4]  # 5,000 bad runs among 20,000
    year = {"productions": [""], "runs": [str(r) for r in runs], "bad_runs": [str(r) for r in bad]}
    ds = parse_datasets({"primary_datasets": ["X"], "years": {"2018": year}})
    labels = ds.labels(runs)
    assert len(labels) == 20000 and sum(labels.values()) == 5000
    assert (labels[300000], labels[300001], labels[319996], labels[319999]) == (BAD, GOOD, BAD, GOOD)
    assert ds.label(299999) == GOOD  # only bad runs listed: every other run is good
    assert ds.bad_runs == frozenset(bad) and ds.good_runs == frozenset()
    assert ds.bad_runs is ds.bad_runs  # computed once
    selection = ds.year(2018)
    assert selection.runs == tuple(runs)  # the public field keeps the file's order
    assert selection.accepts(319999, "A", "f.root") and not selection.accepts(320000, "A", "f.root")
