"""Nothing lost, nothing silent (issue 8): kills, lost or torn manifests, dead servers, stale
shards, primary datasets without files, and the summary every run ends with."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dqmflow.demo import PD, DemoSpec, demo_datasets, plan_runs, write_demo
from dqmflow.discover import DiscoveryError, DqmFile, list_source, select
from dqmflow.fetch import (
    HostUnreachable,
    IncompleteManifestError,
    fetch_batch,
    manifest_is_complete,
    read_manifest,
)
from dqmflow.merge import merge
from dqmflow.metadata import parse_datasets
from dqmflow.names import HistogramName
from tests.conftest import REPO, small_datasets

TINY = DemoSpec(runs_per_year=8, seed=11)
CONTENTS = {
    "CSC": ["/Run summary/CSCOfflineMonitor/Segments/hSTimeCombinedSerial"],
    "L1T": ["Run summary/L1TStage2EMTF/emtfTrackPhi"],
}
BX = HistogramName("L1T", "/Run summary/L1TStage2EMTF/emtfTrackBX")


# ---------------------------------------------------------------- manifests: atomic, with a footer


def _fetch_some(demo_tree: Path, tmp_path: Path, n: int = 3) -> tuple[list[DqmFile], Path]:
    found = list_source(str(demo_tree / "DQMGUI_data"), PD, 2017)
    files = list(select(found, parse_datasets(small_datasets())).files.values())[:n]
    manifest = tmp_path / "L1T" / "R0002970xx.tsv"
    fetch_batch(files, [BX], manifest.with_suffix(""), manifest)
    return files, manifest


def test_a_torn_manifest_is_refused_by_merge(demo_tree: Path, tmp_path: Path) -> None:
    files, manifest = _fetch_some(demo_tree, tmp_path)
    assert manifest_is_complete(manifest) and manifest.read_text().splitlines()[-1].startswith("# dqmflow manifest")
    assert len(read_manifest(manifest)) == len(files)
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:-2]) + "\n")  # a kill in the middle of the write
    assert not manifest_is_complete(manifest)
    with pytest.raises(IncompleteManifestError, match=str(manifest)):
        merge({"L1T": [manifest]}, [BX], {}, tmp_path / "t.parquet", tmp_path / "r.tsv")
    manifest.write_text("\n".join(lines[:-1]) + "\n")  # all rows, but no footer (an older or foreign writer)
    with pytest.raises(IncompleteManifestError, match="no footer"):
        read_manifest(manifest)


def test_a_file_that_becomes_unreadable_keeps_its_last_good_shard(demo_tree: Path, tmp_path: Path) -> None:
    files, manifest = _fetch_some(demo_tree, tmp_path)
    broken = tmp_path / "broken.root"
    broken.write_bytes(b"not a ROOT file at all")
    changed = [files[0].__class__(**{**files[0].__dict__, "path": str(broken), "size": 22}), *files[1:]]
    fetch_batch(changed, [BX], manifest.with_suffix(""), manifest)
    rows = read_manifest(manifest)
    stale = rows[rows["status"] == "stale"]
    assert list(stale["run_number"]) == [files[0].run] and "kept the shard read before" in stale["problem"].iloc[0]
    report = merge({"L1T": [manifest]}, [BX], {}, tmp_path / "t.parquet", tmp_path / "r.tsv")
    table = pd.read_parquet(tmp_path / "t.parquet")
    assert files[0].run in set(table["run_number"]), "the run keeps its last good histograms"
    assert table.set_index("run_number").loc[files[0].run, BX.column] is not None
    assert "stale" in set(report["status"]) and "file_error" not in set(report["status"])


# ---------------------------------------------------------------- dead servers


def _dead(item: DqmFile, port: int) -> DqmFile:
    return item.__class__(**{**item.__dict__, "path": item.path.replace(f":{port}/", ":1/")})


def test_circuit_breaker_gives_up_on_a_dead_host_at_once(tmp_path: Path, xrootd_demo) -> None:
    files = list(select(list_source(xrootd_demo.url("dqm"), PD, 2017), parse_datasets(small_datasets())).files.values())
    live, dead = files[:2], [_dead(f, xrootd_demo.port) for f in files[2:10]]
    start = time.monotonic()
    with pytest.raises(HostUnreachable, match=r"localhost:1 .*on_error: skip"):
        fetch_batch(
            [*live, *dead], [BX], tmp_path / "s", tmp_path / "m.tsv", retries=1, backoff=0.1, max_host_failures=2
        )
    manifest = read_manifest(tmp_path / "m.tsv").set_index("run_number")
    assert (manifest.loc[[f.run for f in live], "status"] == "ok").all(), "the live server's files are read"
    statuses = manifest.loc[[f.run for f in dead], "problem"]
    assert statuses.str.contains("server unreachable: localhost:1").sum() == len(dead) - 2, "not tried after 2 failures"
    assert time.monotonic() - start < 60
    # on_error: skip asks to go on: the same is recorded, nothing is raised
    stats = fetch_batch(
        dead, [BX], tmp_path / "s2", tmp_path / "m2.tsv", retries=0, on_error="skip", max_host_failures=2
    )
    assert stats.failed == len(dead)


def test_discovery_of_a_dead_server_names_the_url_after_retries(tmp_path: Path, xrootd_demo) -> None:
    url = xrootd_demo.url("dqm").replace(f":{xrootd_demo.port}/", ":1/")
    with pytest.raises(DiscoveryError, match=r"root://localhost:1//store/dqm/Run2017/SingleMuon after 2 attempt"):
        list_source(url, PD, 2017, retries=1, backoff=0.1)


# ---------------------------------------------------------------- end to end (real Snakemake runs)


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONDOR_CONFIG": "/dev/null", "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
           "--directory", str(workdir), "--cores", "2", *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if check:
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def tiny_workdir(work: Path, datasets: dict | None = None, **config: object) -> Path:
    """A workdir with a tiny demo tree (8 runs per year) as a folder source and one PCA config."""
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "data").exists():
        write_demo(work / "data", TINY)
    (work / "config").mkdir(exist_ok=True)
    (work / "contents.json").write_text(json.dumps(CONTENTS))
    (work / "datasets.json").write_text(json.dumps(datasets or demo_datasets(TINY, plan_runs(TINY))))
    (work / "pca.yaml").write_text("algorithm: pca\ntag: pca_2\nparams: {n_components: 2}\n")
    base = {
        "source": str(work / "data" / "DQMGUI_data"),
        "contents": str(work / "contents.json"),
        "datasets": str(work / "datasets.json"),
        "algorithms": [str(work / "pca.yaml")],
        "fetch": {"runs_per_batch": 10},
        "assessment": {"n_bootstrap": 20, "plots": "all"},
    }
    (work / "config" / "config.yaml").write_text(yaml.safe_dump({**base, **config}))
    return work


def planned(workdir: Path, *targets: str) -> dict[str, int]:
    out = snakemake(workdir, "--dry-run", *targets).stdout
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return {line.split()[0]: int(line.split()[1]) for line in table.splitlines()[3:] if line.strip()}


@pytest.mark.slow
def test_a_kill_during_fetch_and_lost_or_torn_manifests_are_recovered(tmp_path: Path) -> None:
    work = tiny_workdir(tmp_path / "w")
    env = {**os.environ, "CONDOR_CONFIG": "/dev/null"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
           "--directory", str(work), "--cores", "2", "results/SingleMuon/histograms.parquet"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    shards = work / "results" / "SingleMuon" / "shards"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(shards.glob("*/*/*/*.parquet")):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its fetch jobs, mid-fetch
    proc.wait()
    assert list(shards.glob("*/*/*/*.parquet")), "the kill came after the first shard was written"
    assert not (work / "results" / "SingleMuon" / "histograms.parquet").exists()
    assert all(manifest_is_complete(m) for m in shards.glob("*/*.tsv")), "a manifest is complete or absent"
    snakemake(work, "--unlock")
    snakemake(work, "--rerun-incomplete", "results/SingleMuon/histograms.parquet")
    table = pd.read_parquet(work / "results" / "SingleMuon" / "histograms.parquet")
    runs = {p.run for p in plan_runs(TINY)}
    assert set(table["run_number"]) == runs and table[[c for c in table if "//" in c]].notna().all().all()
    assert planned(work, "results/SingleMuon/histograms.parquet") == {}

    # A manifest lost after the merge: its fetch job and the merge rerun, also for this target.
    lost = sorted(shards.glob("CSC/*.tsv"))[1]
    lost.unlink()
    assert planned(work, "results/SingleMuon/histograms.parquet") == {"fetch": 1, "merge": 1}
    snakemake(work, "results/SingleMuon/histograms.parquet")
    assert lost.exists() and planned(work, "results/SingleMuon/histograms.parquet") == {}

    # A torn manifest (another writer, or a copy cut short) is never merged as valid.
    lines = lost.read_text().splitlines()
    lost.write_text("\n".join(lines[:2]) + "\n")
    proc2 = snakemake(work, "results/SingleMuon/histograms.parquet", check=False)
    assert proc2.returncode != 0 and f"{lost.relative_to(work)} is incomplete" in proc2.stdout + proc2.stderr
    # Large selections stay out of Snakemake's records and messages: only digests are kept.
    records = "".join(p.read_text(errors="replace") for p in (work / ".snakemake" / "metadata").iterdir())
    assert ".root" not in records, "the files of a batch are not recorded as a parameter"


@pytest.mark.slow
def test_a_source_typo_once_fixed_is_discovered_again(tmp_path: Path) -> None:
    """A wrong source folder gives empty catalogs; after the fix the next run discovers the files
    (before, the empty catalogs of the old source were taken as 'no file' for good)."""
    work = tiny_workdir(tmp_path / "w")
    right = str(work / "data" / "DQMGUI_data")
    config = yaml.safe_load((work / "config" / "config.yaml").read_text())
    (work / "config" / "config.yaml").write_text(yaml.safe_dump({**config, "source": right + "_typo"}))
    proc = snakemake(work, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"the source folder {right}_typo does not exist" in out
    # a workdir whose catalogs do not say their source (made before they did): discovered again
    for recorded in (work / "results" / "SingleMuon" / "catalog").glob("*.source.txt"):
        recorded.unlink()
    assert planned(work).get("discover") == 2
    (work / "config" / "config.yaml").write_text(yaml.safe_dump({**config, "source": right}))
    proc = snakemake(work, "--dry-run", check=False)
    assert proc.returncode == 0 and "discover" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.mark.slow
def test_a_primary_dataset_without_files_stops_early_or_is_left_out(tmp_path: Path) -> None:
    datasets = demo_datasets(TINY, plan_runs(TINY))
    datasets["primary_datasets"] = ["HLTPhysics"]
    work = tiny_workdir(tmp_path / "w", datasets)
    proc = snakemake(work, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "no DQM file of HLTPhysics 2017, 2018 under" in out and "Run<YEAR>/HLTPhysics/R000NNNNxx" in out
    ran = {line.split()[-1].rstrip(":") for line in out.splitlines() if line.startswith(("rule ", "localrule "))}
    assert not ran & {"fetch", "merge", "run_table"} and not any(r.startswith("train_") for r in ran), ran

    datasets["primary_datasets"] = [PD, "HLTPhysics"]
    datasets["years"]["2018"]["bad_runs"] = [*datasets["years"]["2018"]["bad_runs"], "399999"]
    (work / "datasets.json").write_text(json.dumps(datasets))
    proc = snakemake(work, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, "a primary dataset without files is an error, said at the end"
    assert (work / "results" / PD / "verdicts.csv").exists(), "the other primary dataset completes"
    assert not (work / "results" / "HLTPhysics" / "histograms.parquet").exists()
    summary = out[out.rindex("dqmflow summary:") :]
    assert "HLTPhysics: NO FILE" in summary and f"runs fetched: {len(plan_runs(TINY))} of" in summary
    assert "web page: results/SingleMuon/site/index.html" in summary
    report = pd.read_csv(work / "results" / PD / "fetch_report.tsv", sep="\t", keep_default_na=False)
    assert 399999 in set(report.loc[report["status"] == "label_no_file", "run_number"])

    # A typo in one year's productions would silently drop the year: it stops the run, naming it.
    datasets["primary_datasets"] = [PD]
    datasets["years"]["2017"]["productions"] = ["UL2O17"]
    (work / "datasets.json").write_text(json.dumps(datasets))
    proc = snakemake(work, check=False)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert f"{PD} 2017: no file matches productions ['UL2O17'] (the " in out
    assert "files of 2017 are <era>-<processing>:" in out and "fix the year in the datasets file" in out


@pytest.mark.slow
def test_another_selection_on_the_same_results_replaces_them_visibly(tmp_path: Path) -> None:
    """Item 0: a second run with other contents and datasets files on the same working directory
    says, before any job, that results/<PD> is replaced; its table, scores and verdicts hold exactly
    the new histograms and runs (nothing of the first selection survives), and going back to the
    first selection reruns it too."""
    work = tiny_workdir(tmp_path / "w")
    snakemake(work)
    pd_dir = work / "results" / PD
    first = json.loads((pd_dir / "selection.json").read_text())
    assert first["identity"]["contents"]["name"] == "contents.json"
    assert planned(work) == {}

    contents_b = {
        "CSC": ["/Run summary/CSCOfflineMonitor/Segments/hSnSegments"],
        "L1T": ["/Run summary/L1TStage2EMTF/emtfTrackBX"],
    }
    new_columns = {HistogramName(s, p).column for s, paths in contents_b.items() for p in paths}
    old_columns = {HistogramName(s, p).column for s, paths in CONTENTS.items() for p in paths}
    assert not new_columns & old_columns
    datasets_b = demo_datasets(TINY, plan_runs(TINY))
    runs_2017 = sorted(p.run for p in plan_runs(TINY) if p.year == 2017)
    datasets_b["years"]["2017"]["runs"] = [str(r) for r in runs_2017[2:]]  # two runs fewer
    new_runs = {p.run for p in plan_runs(TINY)} - set(runs_2017[:2])
    (work / "contents_b.json").write_text(json.dumps(contents_b))
    (work / "datasets_b.json").write_text(json.dumps(datasets_b))
    config_path = work / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config_a = dict(config)
    config.update(contents=str(work / "contents_b.json"), datasets=str(work / "datasets_b.json"))
    config_path.write_text(yaml.safe_dump(config))

    line = (
        f"results/{PD} was made from contents.json + datasets.json; this run uses contents_b.json + datasets_b.json: "
        "its outputs are replaced"
    )
    dry = snakemake(work, "--dry-run")
    assert line in dry.stdout + dry.stderr, "the dry run says it too"
    proc = snakemake(work)
    out = proc.stdout + proc.stderr
    assert out.count(line) == 1, out[-3000:]
    assert out.index(line) < out.index("rule merge"), "said before the jobs run"

    table = pd.read_parquet(pd_dir / "histograms.parquet")
    assert {c for c in table.columns if "//" in c and not c.endswith("_entries")} == new_columns
    assert set(table["run_number"]) == new_runs
    scores = pd.read_parquet(pd_dir / "scores.parquet")
    assert set(scores["histogram"]) == new_columns and set(scores["run_number"]) == new_runs
    verdicts = pd.read_csv(pd_dir / "verdicts.csv")
    assert set(verdicts["run_number"]) == new_runs
    text = (pd_dir / "verdicts.csv").read_text()
    assert not any(c in text for c in old_columns), "no old histogram's model or score survives in the verdicts"
    listed = {h.rsplit(" [", 1)[0] for v in verdicts["histograms"].dropna() for h in str(v).split("; ")}
    assert listed and listed <= new_columns
    record = json.loads((pd_dir / "selection.json").read_text())
    assert record["identity"]["contents"]["name"] == "contents_b.json"
    assert set(record["histograms"]) == new_columns and set(record["runs"]) == new_runs
    summary = out[out.rindex("dqmflow summary:") :]
    assert "made from contents_b.json + datasets_b.json" in summary
    assert "EVERY MODEL FAILED" not in summary and "HISTOGRAMS NEVER FOUND" not in summary
    assert planned(work) == {}, "the next run has nothing to do"

    # Back to the first selection: said, and its fetch jobs and merge rerun (not the stale markers).
    config_path.write_text(yaml.safe_dump(config_a))
    back = snakemake(work, "--dry-run")
    assert (
        f"results/{PD} was made from contents_b.json + datasets_b.json; this run uses contents.json + datasets.json"
        in back.stdout + back.stderr
    )
    jobs = planned(work)
    assert jobs.get("merge") == 1 and jobs.get("fetch", 0) >= 2
