"""End-to-end: the Snakemake workflow on a tiny demo, the report, and incremental re-runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dqmflow.demo import HISTOGRAMS, DemoSpec, RunPlan, demo_datasets, file_path, plan_runs, write_run
from dqmflow.discover import batch_of
from dqmflow.names import HistogramName
from tests.conftest import REPO

pytestmark = pytest.mark.slow

SPEC = DemoSpec(runs_per_year=16, seed=11)
ODD = "/Run summary/CSCOfflineMonitor/Digis/hStripNFired ME+1-1 #strips"  # space, +, -, #
CONTENTS = {
    "CSC": ["/Run summary/CSCOfflineMonitor/Segments/hSTimeCombinedSerial",
            "/Run summary/CSCOfflineMonitor/Occupancy/hORecHits", ODD],
    "L1T": ["Run summary/L1TStage2EMTF/emtfTrackPhi"],  # AutoDQM_ML also writes paths without the "/"
}  # fmt: skip
N_HISTS = 4
NO_FILE = 315999  # listed in the datasets file, but no file exists
HELD_BACK = 10  # 2018 runs added later, to test incremental fetching


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONDOR_CONFIG": "/dev/null", "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
           "--directory", str(workdir), "--cores", "2", *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return proc


def fetched_batches(output: str) -> set[tuple[str, str]]:
    """(subsystem, batch) of the fetch jobs in Snakemake's output."""
    return set(re.findall(r"subsystem=([\w-]+), batch=(R\d+x+)", output))


def planned_jobs(workdir: Path) -> Counter:
    """Jobs a dry run would execute, per rule (from Snakemake's job-stats table)."""
    out = snakemake(workdir, "--dry-run").stdout
    if "Nothing to be done" in out:
        return Counter()
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return Counter({m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)})


def write_datasets(path: Path, held_back: int) -> list[int]:
    datasets = demo_datasets(SPEC, plan_runs(SPEC))
    runs_2018 = sorted(p.run for p in plan_runs(SPEC) if p.year == 2018)
    datasets["years"]["2018"]["runs"] = [str(r) for r in [*runs_2018[: len(runs_2018) - held_back], NO_FILE]]
    path.write_text(json.dumps(datasets, indent=1))
    return runs_2018[len(runs_2018) - held_back :]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wf")
    (work / "config").mkdir()
    (work / "contents.json").write_text(json.dumps(CONTENTS))
    write_datasets(work / "datasets.json", HELD_BACK)
    algorithms = []
    for name in ("pca_2", "ks", "chi2", "beta_binomial"):
        target = work / f"{name}.yaml"
        target.write_text((REPO / "config" / "algorithms" / f"{name}.yaml").read_text())
        algorithms.append(str(target))
    (work / "ae.yaml").write_text(
        "algorithm: simultaneous_autoencoder\ntag: ae_fast\n"
        "params: {n_epochs: 30, early_stopping_rounds: 5, n_nodes: 8}\nseeds: [0, 1]\n"
    )
    algorithms.append(str(work / "ae.yaml"))
    config = {
        "source": "demo",
        "contents": str(work / "contents.json"),
        "datasets": str(work / "datasets.json"),
        "algorithms": algorithms,
        "demo": {"runs_per_year": SPEC.runs_per_year, "seed": SPEC.seed},
        "fetch": {"runs_per_batch": 100},
        "assessment": {"n_bootstrap": 20, "plots": "all"},
    }
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(work)
    return work


def test_full_run_outputs(workdir: Path) -> None:
    pd_dir = workdir / "results" / "SingleMuon"
    table = pd.read_parquet(pd_dir / "histograms.parquet")
    assert "L1T//Run summary/L1TStage2EMTF/emtfTrackPhi" in table.columns
    assert len(table) == 2 * SPEC.runs_per_year - HELD_BACK
    scores = pd.read_parquet(pd_dir / "scores.parquet")
    assert {"run_number", "histogram", "algorithm", "score", "label", "split"} <= set(scores.columns)
    assert set(scores["algorithm"]) == {"pca_2", "ks_prev4", "chi2_mean", "bb_chi2_4ref", "ae_fast"}
    assert len(scores) == len(table) * N_HISTS * ALGORITHMS, "every run is scored for every histogram and algorithm"
    assert "CSC/" + ODD in set(scores["histogram"])
    metrics = pd.read_csv(pd_dir / "summary" / "metrics.csv")
    ensemble = metrics[metrics["algorithm"] == "ae_fast"]
    assert (ensemble["n_seeds"] == 2).all() and ensemble["auc_seed_median"].notna().all(), "AUC over seeds"
    assert {"score_seed_0", "score_seed_1", "score_lo", "score_hi"} <= set(scores.columns)
    assert len(metrics) == N_HISTS * ALGORITHMS
    assert {"auc", "auc_std", "far_at_90", "n_reference"} <= set(metrics.columns)
    assert (pd_dir / "summary" / "false_alarm.tex").read_text().count(r"\pm") >= 3
    assert "CSC//Run summary/CSCOfflineMonitor/Digis/hStripNFired ME+1-1 \\#strips" in (
        pd_dir / "summary" / "false_alarm.tex"
    ).read_text().replace(r"/\allowbreak{}", "/"), "LaTeX tables name the full histogram path"
    figures = pd.concat(pd.read_csv(p) for p in (pd_dir / "assessment" / "chunks").glob("*/figures.csv"))
    assert figures["histogram"].nunique() == N_HISTS, "plots: all draws every histogram"
    for kind in ("roc", "sic", "scores", "confusion"):
        assert (figures["kind"] == kind).sum() == N_HISTS
    assert ((figures["kind"] == "reco") & (figures["algorithm"] == "ae_fast")).sum() == N_HISTS
    latent = figures[figures["kind"] == "latent"]
    assert sorted(latent["algorithm"].value_counts().items()) == [("ae_fast", N_HISTS), ("pca_2", N_HISTS)]
    slug = HistogramName("CSC", ODD).slug
    assert (pd_dir / "assessment" / "chunks" / "CSC-1" / "plots" / slug / "reco_ks_prev4.png").exists()
    roc = json.loads((pd_dir / "assessment" / "chunks" / "CSC-1" / "plots" / slug / "roc.vl.json").read_text())
    assert len(roc["layer"][0]["encoding"]["color"]["scale"]["domain"]) == ALGORITHMS, "a ROC chart: every algorithm"
    page = (pd_dir / "site" / "histograms" / f"{slug}.html").read_text()
    assert page.count('class="vl"') >= 4 and '<script src="../js/vega-embed.min.js">' in page, "charts on the page"
    summary = pd.read_csv(pd_dir / "summary" / "auc_by_histogram.csv", index_col=0)
    assert summary.shape == (N_HISTS, ALGORITHMS)
    verdicts = pd.read_csv(pd_dir / "verdicts.csv")
    assert list(verdicts.columns[:6]) == ["rank", "run_number", "score", "p_value", "flagged", "histograms"]
    assert set(verdicts["run_number"]) == set(table["run_number"])
    run_level = pd.read_csv(pd_dir / "summary" / "run_level_auc.csv")
    assert {"cauchy", "n_flags", "fisher", "cauchy[pca_2]"} <= set(run_level["run_score"])
    index = (pd_dir / "site" / "index.html").read_text()
    flagged = verdicts[verdicts["flagged"]]
    assert flagged.empty or f"runs/{flagged['run_number'].iloc[0]}.html" in index
    report = pd.read_csv(pd_dir / "fetch_report.tsv", sep="\t", keep_default_na=False)
    assert NO_FILE in set(report.loc[report["status"] == "no_file", "run_number"])
    assert (report["status"] == "duplicate_dropped").any(), "the demo has older reprocessings of some runs"
    assert (workdir / "results" / "demo" / "truth.csv").exists()
    assert (workdir / "benchmarks" / "SingleMuon" / "merge.tsv").exists()
    assert list((workdir / "logs" / "SingleMuon" / "fetch").rglob("*.log"))
    assert planned_jobs(workdir) == Counter(), "a finished workflow has nothing left to do"


def test_report(workdir: Path) -> None:
    snakemake(workdir, "--report", "report.zip")
    with zipfile.ZipFile(workdir / "report.zip") as archive:
        names = archive.namelist()
        html = archive.read("report/report.html").decode(errors="replace")
    assert "dqmflow" in html and "Run verdicts" in html and "verdicts.csv" in html
    assert "run_level.png" in html, "the summary figures are in the report"
    site = [n for n in names if n.endswith("/.dqmflow-site")]
    assert len(site) == 1, "the web page is in the report, browsable"
    folder = site[0].rsplit("/", 1)[0]
    assert f"{folder}/index.html" in names and any(n.startswith(f"{folder}/runs/") for n in names)


CHUNK_RULES = ("CSC_1", "L1T_1")  # histograms_per_job (200) holds each demo subsystem in one job
ALGORITHMS = 5


def model_jobs(jobs: Counter, kind: str) -> int:
    return sum(n for rule, n in jobs.items() if rule.startswith(f"{kind}_"))


def test_changing_one_algorithm_reruns_only_its_jobs(workdir: Path) -> None:
    path = workdir / "pca_2.yaml"
    original = path.read_text()
    path.write_text(original.replace("n_components: 2", "n_components: 3"))
    try:
        jobs = planned_jobs(workdir)
    finally:
        path.write_text(original)
    expected = {"assess_histograms": 2, "draw_figures": 2, "collect_scores": 1, "verdicts": 1, "site": 1, "all": 1}
    expected |= {f"{kind}_{chunk}": 1 for kind in ("train", "score") for chunk in CHUNK_RULES}
    assert jobs == Counter(expected)


def test_editing_a_description_or_comment_reruns_nothing(workdir: Path) -> None:
    path = workdir / "pca_2.yaml"
    original = path.read_text()
    path.write_text("# tuned for 2018\n" + original.replace("description:", "description: (edited)"))
    try:
        assert planned_jobs(workdir) == Counter()
    finally:
        path.write_text(original)


def test_one_job_per_histogram_with_histograms_per_job_1(workdir: Path) -> None:
    out = snakemake(workdir, "--dry-run", "--config", "histograms_per_job=1").stdout
    train_rules = set(re.findall(r"^rule (train_\w+):", out, re.M))
    # CSC's three histograms get a job each; L1T's one-histogram chunk is the same as before and stays.
    assert train_rules == {"train_CSC_1", "train_CSC_2", "train_CSC_3"}
    outputs = re.findall(r"^rule train_\w+:\n    input: .*\n    output: (.*)$", out, re.M)
    folders = [[path for path in o.split(", ") if "/models/" in path] for o in outputs]
    assert outputs and all(len(f) == 1 for f in folders), "one model folder per job"


def test_model_jobs_records_do_not_list_their_histograms(workdir: Path) -> None:
    """Snakemake stores a job's inputs and params with each of its outputs: a score job of 200
    histograms that listed its histograms and model folders there wrote 200 x 400 paths (12 MB;
    493 MB of .snakemake/metadata for AutoDQM's DT list). Its records hold a few paths only."""
    records = [json.loads(p.read_text()) for p in (workdir / ".snakemake" / "metadata").iterdir()]
    model_jobs = [r for r in records if str(r.get("rule", "")).startswith(("train_", "score_"))]
    assert model_jobs
    for record in model_jobs:
        said = json.dumps({"input": record.get("input"), "params": record.get("params")})
        assert len(record["input"]) <= 4, record["input"]
        assert "Run summary" not in said and "/models/" not in said, said[:300]


def test_one_histograms_output_can_be_asked_for_alone(workdir: Path) -> None:
    target = f"results/SingleMuon/scores/ks_prev4/{HistogramName('CSC', ODD).slug}.parquet"
    (workdir / target).unlink()
    proc = snakemake(workdir, target)
    log = proc.stdout + proc.stderr
    assert (workdir / target).exists() and "rule score_CSC_1:" in log
    assert "rule train_" not in log, "the model is up to date: only its chunk is scored again"


def training_runs(workdir: Path, algorithm: str = "pca_2") -> dict[str, list[int]]:
    models = workdir / "results" / "SingleMuon" / "models" / algorithm
    return {p.name: json.loads((p / "model.json").read_text())["training_runs"] for p in models.iterdir()}


def test_adding_runs_scores_them_without_retraining(workdir: Path) -> None:
    before = training_runs(workdir)
    added = write_datasets(workdir / "datasets.json", HELD_BACK)
    write_datasets(workdir / "datasets.json", 0)
    batches = {batch_of(run, 100) for run in added}
    jobs = planned_jobs(workdir)
    assert jobs["fetch"] == 2 * len(batches), "one job per new run range and subsystem"
    assert jobs["discover"] == 0 and jobs["demo_data"] == 0
    assert jobs["merge"] == 1 and jobs["run_table"] == 1
    assert model_jobs(jobs, "train") == 0, "new runs are scored with the existing models"
    assert model_jobs(jobs, "score") == len(CHUNK_RULES) * ALGORITHMS and jobs["assess_histograms"] == len(CHUNK_RULES)
    snakemake(workdir)
    table = pd.read_parquet(workdir / "results" / "SingleMuon" / "histograms.parquet")
    assert set(added) <= set(table["run_number"])
    logs = "".join(p.read_text() for p in (workdir / "logs" / "SingleMuon" / "fetch").rglob("*.log"))
    assert "reused" in logs
    assert training_runs(workdir) == before
    scores = pd.read_parquet(workdir / "results" / "SingleMuon" / "scores.parquet")
    new = scores[scores["run_number"].isin(added)]
    assert len(new) == len(added) * N_HISTS * ALGORITHMS and not (new["split"] == "train").any()
    assert new["score"].notna().mean() > 0.9
    for log in (workdir / "logs" / "SingleMuon" / "score").rglob("*.log"):
        anew = re.findall(r"(\d+) runs scored anew", log.read_text())
        assert anew and int(anew[-1]) == len(added), f"{log}: only the new runs are scored, the others reused"
    assert planned_jobs(workdir) == Counter()


def test_a_change_of_preprocessing_retrains_even_as_the_run_table_reruns(workdir: Path) -> None:
    path = workdir / "config" / "config.yaml"
    original = path.read_text()
    config = yaml.safe_load(original)
    config["preprocessing"] = {"min_entries": 20000}
    path.write_text(yaml.safe_dump(config))
    try:
        jobs = planned_jobs(workdir)
    finally:
        path.write_text(original)
    assert jobs["run_table"] == 1 and model_jobs(jobs, "train") == len(CHUNK_RULES) * ALGORITHMS


def test_a_retrain_after_runs_were_added_keeps_its_runs_and_happens_once(workdir: Path) -> None:
    before = training_runs(workdir)
    path = workdir / "pca_2.yaml"
    original = path.read_text()
    path.write_text(original.replace("n_components: 2", "n_components: 3"))
    try:
        snakemake(workdir)
        assert training_runs(workdir) == before, "a new parameter does not bring in the runs added since"
        assert planned_jobs(workdir) == Counter(), "and the next run retrains nothing"
    finally:
        path.write_text(original)
    snakemake(workdir)


def test_dropping_a_bad_run_from_the_selection_retrains_nothing(workdir: Path) -> None:
    runs = pd.read_parquet(workdir / "results" / "SingleMuon" / "runs.parquet")
    bad = int(runs.loc[(runs["year"] == 2018) & (runs["label"] == 1), "run_number"].iloc[0])
    path = workdir / "datasets.json"
    original = path.read_text()
    datasets = json.loads(original)
    selected = [int(r) for r in datasets["years"]["2018"].get("runs", [])] or sorted(
        runs.loc[runs["year"] == 2018, "run_number"]
    )
    datasets["years"]["2018"]["runs"] = [str(r) for r in selected if r != bad]
    path.write_text(json.dumps(datasets))
    try:
        jobs = planned_jobs(workdir)
    finally:
        path.write_text(original)
    assert jobs["merge"] == 1 and model_jobs(jobs, "train") == 0, "a bad run is never a training run"


def relabelled(workdir: Path, run: int) -> Counter:
    path = workdir / "datasets.json"
    original = path.read_text()
    datasets = json.loads(original)
    datasets["years"]["2017"]["bad_runs"] = [*datasets["years"]["2017"].get("bad_runs", []), str(run)]
    path.write_text(json.dumps(datasets))
    try:
        return planned_jobs(workdir)
    finally:
        path.write_text(original)


def test_relabelling_retrains_only_when_training_membership_changes(workdir: Path) -> None:
    runs = pd.read_parquet(workdir / "results" / "SingleMuon" / "runs.parquet")
    runs = runs[(runs["year"] == 2017) & (runs["label"] == 0)]
    test_run = int(runs.loc[runs["split"] == "test", "run_number"].iloc[0])
    train_run = int(runs.loc[runs["split"] == "train", "run_number"].iloc[0])
    jobs = relabelled(workdir, test_run)
    assert jobs["merge"] == 1 and model_jobs(jobs, "score") > 0
    assert model_jobs(jobs, "train") == 0, "a test run's label does not change any training set"
    jobs = relabelled(workdir, train_run)
    assert model_jobs(jobs, "train") == len(CHUNK_RULES) * ALGORITHMS, "a bad run must leave every training set"


def test_retrain_switch_trains_on_the_runs_added_since(workdir: Path) -> None:
    out = snakemake(workdir, "--dry-run", "--config", "retrain=True").stdout
    jobs = Counter({m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", out.split("Job stats:", 1)[1], re.M)})
    assert model_jobs(jobs, "train") == len(CHUNK_RULES) * ALGORITHMS
    snakemake(workdir, "--config", "retrain=True", "--until", *(f"train_{c}" for c in CHUNK_RULES))
    trained = {run for runs in training_runs(workdir).values() for run in runs}
    added = set(write_datasets(workdir / "datasets.json", HELD_BACK)) & trained
    write_datasets(workdir / "datasets.json", 0)
    assert added, "after retraining, runs added since the first training are training runs"
    assert model_jobs(planned_jobs(workdir), "train") == 0, "retraining once does not retrain again"


def test_adding_a_histogram_refetches_only_its_subsystem(workdir: Path) -> None:
    path = workdir / "contents.json"
    original = path.read_text()
    contents = json.loads(original)
    contents["L1T"].append("/Run summary/L1TStage2EMTF/emtfTrackEta")
    path.write_text(json.dumps(contents))
    try:
        out = snakemake(workdir, "--dry-run").stdout
    finally:
        path.write_text(original)
    batches = fetched_batches(out)
    assert batches and {subsystem for subsystem, _ in batches} == {"L1T"}
    manifests = {p.stem for p in (workdir / "results" / "SingleMuon" / "shards" / "L1T").glob("*.tsv")}
    assert {batch for _, batch in batches} == manifests


def test_refreshing_discovery_fetches_only_new_files(workdir: Path) -> None:
    """New files on the source are picked up by `snakemake --forcerun discover`."""
    new = RunPlan(run=298_512, year=2017, era="D", processing=SPEC.processing[2017], lumi=1.0, t=1.0)
    tree = workdir / "results" / "demo" / "DQMGUI_data"
    write_run(file_path(tree, new), new, HISTOGRAMS, np.random.default_rng(1), 1.0)
    assert planned_jobs(workdir)["fetch"] == 0, "without a refresh, discovery is not repeated"
    proc = snakemake(workdir, "--forcerun", "discover", "--until", "merge")
    out = proc.stdout + proc.stderr
    assert fetched_batches(out) == {("CSC", "R0002985xx"), ("L1T", "R0002985xx")}
    table = pd.read_parquet(workdir / "results" / "SingleMuon" / "histograms.parquet")
    assert new.run in set(table["run_number"])


def test_a_config_whose_every_model_fails_ends_the_run_with_an_error(workdir: Path, tmp_path: Path) -> None:
    work = tmp_path / "copy"
    shutil.copytree(workdir, work, symlinks=True)
    (work / "pca_huge.yaml").write_text("algorithm: pca\ntag: pca_huge\nparams: {n_components: 500}\n")
    config = yaml.safe_load((work / "config" / "config.yaml").read_text())
    config["algorithms"] = [*config["algorithms"], str(work / "pca_huge.yaml")]
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "CONDOR_CONFIG": "/dev/null", "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
           "--directory", str(work), "--cores", "2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode != 0, "a config none of whose models could be trained is not a success"
    log = (work / "logs" / "SingleMuon" / "verdicts.log").read_text()
    assert "every model of algorithm config(s) ['pca_huge'] failed" in log
    assert not (work / "results" / "SingleMuon" / "verdicts.csv").exists(), "no verdict from a broken config"
