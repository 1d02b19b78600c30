"""Shared fixtures: small demo trees written with uproot into temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("CONDOR_CONFIG", "/dev/null")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dqmflow.demo import HISTOGRAMS, DemoSpec, plan_runs, write_demo
from dqmflow.discover import list_source, select
from dqmflow.fetch import fetch_batch
from dqmflow.merge import merge
from dqmflow.metadata import parse_datasets
from dqmflow.names import HistogramName

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SMALL = DemoSpec(runs_per_year=14, seed=7)


def small_datasets(spec: DemoSpec = SMALL) -> dict:
    from dqmflow.demo import demo_datasets

    return demo_datasets(spec, plan_runs(spec))


@pytest.fixture(scope="session")
def demo_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo tree (14 runs per year, two years); returns the folder holding DQMGUI_data."""
    out = tmp_path_factory.mktemp("demo")
    write_demo(out, SMALL)
    return out


@pytest.fixture(scope="session")
def all_histograms() -> list[HistogramName]:
    return [spec.name for spec in HISTOGRAMS]


def fetch_and_merge(source: Path, workdir: Path, histograms: list[HistogramName], datasets: dict | None = None):
    """Run discovery, selection, fetch and merge as the workflow does, in one process."""
    parsed = parse_datasets(datasets or small_datasets())
    files = []
    for sel in parsed.years:
        for pd in parsed.primary_datasets:
            files += list_source(str(source), pd, sel.year)
    selection = select(files, parsed)
    manifests: dict[str, list[Path]] = {}
    for subsystem in dict.fromkeys(h.subsystem for h in histograms):
        manifest = workdir / "shards" / subsystem / "all.tsv"
        fetch_batch(
            list(selection.files.values()),
            [h for h in histograms if h.subsystem == subsystem],
            manifest.with_suffix(""),
            manifest,
        )
        manifests[subsystem] = [manifest]
    table = workdir / "histograms.parquet"
    report = merge(manifests, histograms, parsed.labels(selection.files), table, workdir / "fetch_report.tsv")
    return table, report, selection


@pytest.fixture(scope="session")
def merged_demo(demo_tree: Path, all_histograms, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The merged table of the small demo."""
    table, _, _ = fetch_and_merge(demo_tree / "DQMGUI_data", tmp_path_factory.mktemp("merged"), all_histograms)
    return table


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
