from __future__ import annotations

from pathlib import Path

import pytest

from dqmflow.demo import PD, plan_runs
from dqmflow.discover import (
    batch_of,
    list_source,
    natural_key,
    parse_file_name,
    read_catalog,
    select,
    write_catalog,
)
from dqmflow.metadata import parse_datasets
from tests.conftest import SMALL, small_datasets


def test_parse_real_file_names() -> None:
    item = parse_file_name(
        "/eos/x/Run2018/SingleMuon/R0003174xx/DQM_V0001_R000317488__SingleMuon__Run2018A-12Nov2019_UL2018-v2__DQMIO.root"
    )
    assert item is not None
    assert (item.run, item.year, item.era, item.version, item.primary_dataset) == (317488, 2018, "A", 1, "SingleMuon")
    assert item.processing == "12Nov2019_UL2018-v2"
    assert parse_file_name("/x/notes.txt") is None
    assert parse_file_name("/x/DQM_V0001_R000317488__SingleMuon__DQMIO.root") is None


@pytest.mark.parametrize(
    "run,span,name", [(317488, 100, "R0003174xx"), (317488, 1000, "R000317xxx"), (5, 10, "R00000000x")]
)
def test_batches_follow_the_dqm_gui_run_range_folders(run: int, span: int, name: str) -> None:
    assert batch_of(run, span) == name


def test_batch_span_must_be_a_power_of_ten() -> None:
    with pytest.raises(ValueError, match="power of ten"):
        batch_of(1, 250)


def test_local_discovery_and_selection(demo_tree: Path, tmp_path: Path) -> None:
    source = str(demo_tree / "DQMGUI_data")
    files = list_source(source, PD, 2018) + list_source(source, PD, 2017)
    plans = plan_runs(SMALL)
    assert {f.run for f in files} == {p.run for p in plans}
    assert list_source(source, "NoSuchPD", 2018) == []
    catalog = tmp_path / "catalog.tsv"
    write_catalog(files, catalog)
    assert read_catalog(catalog) == files

    datasets = parse_datasets(small_datasets())
    selection = select(files, datasets)
    assert sorted(selection.files) == sorted(p.run for p in plans)
    # PromptReco files do not match the UL productions; the older -v1 UL2018 files are duplicates.
    assert all("PromptReco" not in f.path for f in selection.files.values())
    for dropped, kept in selection.duplicates:
        assert dropped.run == kept.run and dropped.processing.endswith("-v1") and kept.processing.endswith("-v2")
    assert selection.duplicates, "the demo writes older reprocessings for a few 2018 runs"
    assert selection.missing_runs == []


def test_selection_by_runs_and_eras_reports_missing_runs(demo_tree: Path) -> None:
    source = str(demo_tree / "DQMGUI_data")
    files = list_source(source, PD, 2017)
    plans = [p for p in plan_runs(SMALL) if p.year == 2017]
    wanted = [str(plans[0].run), str(plans[3].run), "299999"]
    datasets = parse_datasets(
        {"primary_datasets": [PD], "years": {"2017": {"productions": ["UL2017"], "runs": wanted}}}
    )
    selection = select(files, datasets)
    assert sorted(selection.files) == sorted([plans[0].run, plans[3].run])
    assert selection.missing_runs == [(2017, 299999)]
    era = plans[-1].era
    by_era = select(
        files, parse_datasets({"primary_datasets": [PD], "years": {"2017": {"productions": [""], "eras": [era]}}})
    )
    assert {f.era for f in by_era.files.values()} == {era}


def test_duplicate_rule_prefers_version_then_processing(tmp_path: Path) -> None:
    names = [
        "DQM_V0001_R000300000__PD__Run2017B-UL2017-v1__DQMIO.root",
        "DQM_V0001_R000300000__PD__Run2017B-UL2017-v2__DQMIO.root",
        "DQM_V0002_R000300000__PD__Run2017B-UL2017-v1__DQMIO.root",
    ]
    files = [f for f in (parse_file_name(f"/x/{n}") for n in names) if f is not None]
    assert len(files) == len(names)
    selection = select(files, parse_datasets({"primary_datasets": ["PD"], "years": {"2017": {"productions": ["UL"]}}}))
    assert selection.files[300000].name == names[2]
    assert {d.name for d, _ in selection.duplicates} == set(names[:2])


def test_the_production_listed_first_wins_over_a_newer_dqm_version_or_a_greater_processing() -> None:
    """A user listing ["UL2017", "17Nov2017"] wants the UL reprocessing where a run has both, although
    "17Nov2017-v1" sorts after "09Aug2019_UL2017-v1" as text."""
    ul = "DQM_V0001_R000300000__PD__Run2017C-09Aug2019_UL2017-v1__DQMIO.root"
    rereco = "DQM_V0002_R000300000__PD__Run2017C-17Nov2017-v1__DQMIO.root"
    only_rereco = "DQM_V0001_R000300001__PD__Run2017C-17Nov2017-v1__DQMIO.root"
    files = [f for f in (parse_file_name(f"/x/{n}") for n in (ul, rereco, only_rereco)) if f is not None]
    datasets = {"primary_datasets": ["PD"], "years": {"2017": {"productions": ["UL2017", "17Nov2017"]}}}
    selection = select(files, parse_datasets(datasets))
    assert selection.files[300000].name == ul and selection.files[300001].name == only_rereco
    assert [(d.name, k.name) for d, k in selection.duplicates] == [(rereco, ul)]
    datasets["years"]["2017"]["productions"] = ["17Nov2017", "UL2017"]
    assert select(files, parse_datasets(datasets)).files[300000].name == rereco


def test_a_year_that_selects_no_file_is_reported_with_what_was_found() -> None:
    names = [f"DQM_V0001_R00030000{i}__PD__Run2017C-09Aug2019_UL2017-v1__DQMIO.root" for i in range(3)]
    names.append("DQM_V0001_R000315000__PD__Run2018A-12Nov2019_UL2018-v2__DQMIO.root")
    files = [f for f in (parse_file_name(f"/x/{n}") for n in names) if f is not None]
    years = {"2017": {"productions": ["UL2O17"]}, "2018": {"productions": ["UL2018"]}}
    selection = select(files, parse_datasets({"primary_datasets": ["PD"], "years": years}))
    assert list(selection.files) == [315000]
    assert selection.empty_years == {2017: {"C-09Aug2019_UL2017-v1": 3}}
    # not a typo: the year's files match, only its runs are not there yet; or no file of the year at all
    years = {"2017": {"productions": ["UL2017"], "runs": ["299999"]}, "2018": {"productions": ["UL2018"]}}
    selection = select(files, parse_datasets({"primary_datasets": ["PD"], "years": years}))
    assert selection.empty_years == {} and selection.missing_runs == [(2017, 299999)]
    years = {"2016": {"productions": ["UL2016"]}, "2018": {"productions": ["UL2018"]}}
    assert select(files, parse_datasets({"primary_datasets": ["PD"], "years": years})).empty_years == {}


def _one_run_selection(names: list[str]) -> tuple[str, set[str]]:
    """Name of the file kept for run 300000 among ``names`` and the names of the dropped duplicates."""
    files = [f for f in (parse_file_name(f"/x/{n}") for n in names) if f is not None]
    assert len(files) == len(names)
    datasets = parse_datasets({"primary_datasets": ["PD"], "years": {"2018": {"productions": ["PromptReco"]}}})
    selection = select(files, datasets)
    assert all(kept is selection.files[300000] for _, kept in selection.duplicates)
    return selection.files[300000].name, {d.name for d, _ in selection.duplicates}


def test_processing_versions_compare_in_natural_order() -> None:
    names = [f"DQM_V0001_R000300000__PD__Run2018A-PromptReco-v{v}__DQMIO.root" for v in (2, 10, 1)]
    kept, dropped = _one_run_selection(names)
    assert kept == names[1]  # -v10, although "PromptReco-v2" > "PromptReco-v10" as plain text
    assert dropped == {names[0], names[2]}
    kept, dropped = _one_run_selection([names[0], names[2]])
    assert (kept, dropped) == (names[0], {names[2]})  # -v2 beats -v1


def test_dqm_version_beats_processing_version() -> None:
    newer_dqm = "DQM_V0002_R000300000__PD__Run2018A-PromptReco-v2__DQMIO.root"
    newer_processing = "DQM_V0001_R000300000__PD__Run2018A-PromptReco-v10__DQMIO.root"
    assert _one_run_selection([newer_processing, newer_dqm]) == (newer_dqm, {newer_processing})


@pytest.mark.parametrize(
    "smaller,greater",
    [("PromptReco-v2", "PromptReco-v10"), ("PromptReco-v1", "PromptReco-v2"), ("v9", "v10a"), ("1a", "a")],
)
def test_natural_key_orders_digit_runs_as_numbers(smaller: str, greater: str) -> None:
    assert natural_key(smaller) < natural_key(greater)  # never raises, even with text against digits
