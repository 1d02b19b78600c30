"""Benchmark: model jobs at scale (train + score), and the cost of adding a few runs.

    python bench/scale.py [--runs 2000] [--histograms 500] [--histograms-per-job 100]
                          [--cores 2] [--workdir DIR] [--assess]

Trains and scores PCA (``config/algorithms/pca_2.yaml``) and chi2 (``config/algorithms/chi2.yaml``)
on ``--runs`` runs x ``--histograms`` histograms of three subsystems, through the workflow's
``train_*``/``score_*`` rules, then adds 10 runs and runs the workflow again. Prints

* the wall time of the train + score run and its number of jobs;
* the CPU of train and score jobs, split into start-up (interpreter, imports, Snakemake's script
  preamble: the job's CPU minus its own ``work: ... cpu Y s`` log line) and compute (``Y``), and
  the start-up share (target < 10 %); the job's CPU both as the benchmark file's ``cpu_time`` and
  as recorded exactly (see below), and the CPU of Snakemake's own process;
* the peak RSS of a job (max over jobs; benchmark ``max_rss`` and exact; target < 2 GB);
* CPU per run x histogram x algorithm config, in ms (exact job CPU);
* for the run after adding 10 runs: which jobs ran (no train job may run: models keep their
  training runs) and its CPU and wall time as a fraction of the full run.

With ``--assess`` the targets are the web page instead, so both runs go on through the assessment
(``assess_histograms``, ``draw_figures``, ``verdicts``, ``site``): the same figures per stage
(exact CPU of each job, its compute, and the figures drawn or copied from the cache), for the
full run and for adding 10 runs; what a user with a configuration of this size waits for.

What is synthetic: fetching 2,000 x 500 histograms from ROOT files would dominate the time and is
measured by ``bench/fetch.py`` and ``bench/merge.py``, so this benchmark writes the outputs of
discovery and ``merge`` directly, as those steps would:

* ``results/PD/catalog/YEAR.tsv`` (:func:`dqmflow.discover.write_catalog`): one DQM GUI file per
  run with a plausible path below ``DQMGUI_data/`` (the ``Run<YEAR>/<PD>`` folder exists, the files
  do not), size and mtime; discovery is never rerun, so nothing looks at the files;
* the contents and datasets files (AutoDQM_ML formats): histograms ``<Subsystem>//Run summary/
  Synthetic/<kind>_NNNN`` of ``CSC``, ``L1T`` and ``JetMET``, 70 % 1D (50-100 bins), 20 % 2D 20x20
  and 10 % 2D 36x18; every run listed under one year, the anomalous runs as ``bad_runs``;
* ``results/PD/entries.parquet`` (the columns ``merge`` writes, with each run's catalog
  signature) and ``results/PD/data/SUBSYSTEM.parquet`` (:class:`dqmflow.storage.StorageWriter`):
  Poisson counts of smooth shapes
  (Gaussian peaks on a background, falling spectra, 2D blobs, occupancy maps with fixed per-cell
  efficiencies) that drift slowly with the run, scaled by a per-run luminosity (3 % short runs
  fall below ``min_entries``); 5 % of runs are bad, with a dead region, a hot bin, a shift or an
  empty histogram in 10 % of the histograms; 0.5 % of the runs' files are unreadable (in the
  entries table with ``readable`` false, not in the storage files, as ``merge`` does);
* ``results/PD/runs.parquet`` from :func:`dqmflow.runtable.build_run_table`, as rule ``run_table``.

The counts of a run depend only on the seed, the run and its position, so the files rewritten
with 10 more runs hold the same data for the old runs, as ``merge`` would write them.
The fetch report is written with its header only (the web page reads it); ``histograms.parquet``
is not written: no job reads it, and a merged table without fetch manifests would make the
workflow fetch again (dqmflow.plan.mark_stale_merge).

Snakemake then runs with the score files as targets. It plans no discovery, fetch, merge or
run_table job: their outputs exist and are newer than their inputs (the files are written in
dependency order, the selection markers and the merge's fetch-state guard first), and Snakemake
does not rerun a job whose outputs are present only because its inputs (here the fetch
manifests) are missing. A dry run before each run checks that only
``train_*``/``score_*`` jobs are planned.

Job CPU and peak RSS are also recorded exactly: every Python process Snakemake starts imports a
``sitecustomize`` module (put on ``PYTHONPATH`` by this script) that writes, when a job's script
exits, its CPU time and peak RSS from the kernel. The benchmark files sample the job's processes
(every 0.5 s for the first 15 s, then every 30 s), so they miss the CPU of the last interval and
short memory peaks; both figures are printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from workdir import REPO, fresh_workdir, snakemake, write_config

from dqmflow.discover import DqmFile, batch_of, write_catalog
from dqmflow.merge import REPORT_COLUMNS
from dqmflow.names import HistogramName
from dqmflow.plan import Plan
from dqmflow.runtable import ENTRIES_SUFFIX, build_run_table
from dqmflow.storage import HistogramInfo, StorageWriter

PD = "ZeroBias"
YEAR = 2024
FIRST_RUN = 378000
PROCESSING = "PromptReco-v1"
SUBSYSTEMS = (("CSC", 0.4), ("L1T", 0.3), ("JetMET", 0.3))
ALGORITHMS = ("pca_2.yaml", "chi2.yaml")
ADDED_RUNS = 10
BLOCK = 256  # runs generated (and written to storage) at a time
DRIFT_RUNS = 2000  # shapes drift over this many runs
WORK_LINE = re.compile(r"work: wall ([\d.]+) s, cpu ([\d.]+) s")
FIGURES_LINE = re.compile(r"figures: (\d+) drawn, (\d+) unchanged \(copied from the cache\); (\d+) charts written")
MODEL_RULES = ("train_", "score_")
ASSESS_RULES = ("assess_histograms", "draw_figures", "verdicts", "site")


@dataclass(frozen=True)
class Spec:
    """One synthetic histogram: expected shapes at the start and end of the drift."""

    name: HistogramName
    shape: tuple[int, ...]
    start: np.ndarray  # unit-area expected shape (flattened)
    end: np.ndarray
    entries: float  # expected entries of a run of luminosity 1

    @property
    def info(self) -> HistogramInfo:
        return HistogramInfo(self.shape, tuple(np.linspace(0.0, 1.0, n + 1) for n in self.shape))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.maximum(x, 0.0).reshape(-1)
    return x / x.sum()


def _profile(rng: np.random.Generator, x: np.ndarray, shift: float) -> np.ndarray:
    """A smooth 1D shape on ``x`` in [0, 1]: a peak on a background or a falling spectrum."""
    if rng.random() < 0.5:
        mu, sigma = rng.uniform(0.3, 0.7) + shift, rng.uniform(0.05, 0.15)
        return np.exp(-0.5 * ((x - mu) / sigma) ** 2) + rng.uniform(0.02, 0.2)
    slope = rng.uniform(2.0, 6.0) * (1 - shift)
    return np.exp(-slope * x) + 0.01


def histogram_specs(n: int, seed: int) -> list[Spec]:
    """``n`` histograms over :data:`SUBSYSTEMS`; histogram ``i`` depends only on ``seed`` and ``i``."""
    counts = [round(n * share) for _, share in SUBSYSTEMS]
    counts[0] += n - sum(counts)
    specs: list[Spec] = []
    for (subsystem, _), count in zip(SUBSYSTEMS, counts, strict=True):
        for _ in range(count):
            i = len(specs)
            rng = np.random.default_rng([seed, 1, i])
            kind = i % 10
            if kind < 7:
                shape: tuple[int, ...] = (50 + (7 * i) % 51,)
                x = (np.arange(shape[0]) + 0.5) / shape[0]
                state = rng.bit_generator.state
                start = _profile(rng, x, 0.0)
                rng.bit_generator.state = state
                end = _profile(rng, x, 0.03)
                label = "h1d"
            elif kind < 9:
                shape = (20, 20)
                x = (np.arange(20) + 0.5) / 20
                mx, my, sx, sy = rng.uniform(0.3, 0.7, 2).tolist() + rng.uniform(0.1, 0.3, 2).tolist()
                start, end = (
                    np.exp(-0.5 * ((x[:, None] - mx - d) / sx) ** 2 - 0.5 * ((x[None, :] - my) / sy) ** 2) + 0.05
                    for d in (0.0, 0.02)
                )
                label = "h2d"
            else:
                shape = (36, 18)
                rate = rng.uniform(0.5, 1.5, 18)
                efficiency = rng.uniform(0.9, 1.0, shape)
                start = efficiency * rate[None, :]
                end = start * np.linspace(1.0, 1.1, 18)[None, :]
                label = "occupancy"
            name = HistogramName(subsystem, f"/Run summary/Synthetic/{label}_{i:04d}")
            specs.append(Spec(name, shape, _unit(start), _unit(end), float(rng.uniform(2e4, 1e5))))
    return specs


@dataclass(frozen=True)
class RunInfo:
    run: int
    index: int
    era: str
    lumi: float
    bad: bool
    readable: bool

    @property
    def file_name(self) -> str:
        return f"DQM_V0001_R{self.run:09d}__{PD}__Run{YEAR}{self.era}-{PROCESSING}__DQMIO.root"


def run_infos(n: int, seed: int) -> list[RunInfo]:
    """Runs ``0 .. n-1``; a run's conditions depend only on ``seed`` and the run."""
    out = []
    for index in range(n):
        run = FIRST_RUN + 2 * index
        u = np.random.default_rng([seed, 2, run]).random(4)
        lumi = 0.05 if u[0] < 0.03 else float(np.exp(0.4 * (u[1] - 0.5)))
        era = "CDEFGHIJ"[min(index // 600, 7)]
        out.append(RunInfo(run, index, era, lumi, bad=bool(u[2] < 0.05), readable=bool(u[3] >= 0.005)))
    return out


def _anomalies(info: RunInfo, n_histograms: int, seed: int) -> dict[int, tuple[int, float]]:
    """{histogram index: (kind, position)} of a bad run: 10 % of its histograms are distorted."""
    rng = np.random.default_rng([seed, 3, info.run])
    hit = np.flatnonzero(rng.random(n_histograms) < 0.1)
    return {int(h): (int(rng.integers(0, 4)), float(rng.random())) for h in hit}


def _distort(lam: np.ndarray, shape: tuple[int, ...], kind: int, where: float) -> np.ndarray:
    n = lam.size
    if kind == 0:  # dead region: 15 % of the bins
        start = int(where * 0.85 * n)
        lam[start : start + max(1, int(0.15 * n))] = 0.0
    elif kind == 1:  # hot bin
        lam[int(where * n)] += 0.2 * lam.sum()
    elif kind == 2:  # shift along the first axis
        lam = np.roll(lam.reshape(shape), max(1, shape[0] // 10), axis=0).reshape(-1)
    else:  # empty histogram
        lam[:] = 0.0
    return lam


def write_inputs(
    work: Path, source: Path, specs: Sequence[Spec], infos: Sequence[RunInfo], seed: int, config: dict[str, object]
) -> None:
    """Write what discovery, merge and run_table would (see the module docstring), in dependency
    order: the merge's other inputs (selection markers, fetch-state guard) before its outputs."""
    results = work / "results" / PD
    (source / f"Run{YEAR}" / PD).mkdir(parents=True, exist_ok=True)
    (results / "catalog").mkdir(parents=True, exist_ok=True)
    folder = source.resolve() / f"Run{YEAR}" / PD
    files = [
        DqmFile(
            run=i.run,
            year=YEAR,
            era=i.era,
            processing=PROCESSING,
            version=1,
            primary_dataset=PD,
            path=str(folder / batch_of(i.run, 100) / i.file_name),
            size=int(5e6 + 1e3 * (i.run % 9973)),
            mtime=1.72e9 + 3600.0 * i.index,
        )
        for i in infos
    ]
    write_catalog(files, results / "catalog" / f"{YEAR}.tsv")
    (results / "catalog" / f"{YEAR}.source.txt").write_text(f"{source.resolve()}\n")  # what discovery records
    contents: dict[str, list[str]] = {}
    for spec in specs:
        contents.setdefault(spec.name.subsystem, []).append(spec.name.path)
    (work / "contents.json").write_text(json.dumps(contents, indent=1))
    datasets = {
        "primary_datasets": [PD],
        "years": {
            str(YEAR): {
                "productions": [""],
                "runs": [str(i.run) for i in infos],
                "bad_runs": [str(i.run) for i in infos if i.bad],
            }
        },
    }
    (work / "datasets.json").write_text(json.dumps(datasets, indent=1))
    write_merge_inputs(work, config)

    readable = [i for i in infos if i.readable]
    anomalies = {i.run: _anomalies(i, len(specs), seed) for i in readable if i.bad}
    entries = np.full((len(infos), len(specs)), np.nan)
    row_of = {i.run: k for k, i in enumerate(infos)}
    index_of = {spec.name.column: h for h, spec in enumerate(specs)}
    for subsystem, _ in SUBSYSTEMS:
        mine = [s for s in specs if s.name.subsystem == subsystem]
        with StorageWriter(results / "data" / f"{subsystem}.parquet", {s.name.column: s.info for s in mine}) as store:
            for block in range(0, len(infos), BLOCK):
                chunk = [i for i in infos[block : block + BLOCK] if i.readable]
                if not chunk:
                    continue
                t = np.array([i.index / DRIFT_RUNS for i in chunk])
                lumi = np.array([i.lumi for i in chunk])
                contents_block: dict[str, list[np.ndarray | None]] = {}
                for spec in mine:
                    h = index_of[spec.name.column]
                    lam = (lumi * spec.entries)[:, None] * (spec.start + t[:, None] * (spec.end - spec.start))
                    for k, info in enumerate(chunk):
                        if h in anomalies.get(info.run, {}):
                            lam[k] = _distort(lam[k].copy(), spec.shape, *anomalies[info.run][h])
                    counts = np.random.default_rng([seed, 4, h, block]).poisson(lam).astype(np.float64)
                    for k, info in enumerate(chunk):
                        entries[row_of[info.run], h] = counts[k].sum()
                    contents_block[spec.name.column] = [c.reshape(spec.shape) for c in counts]
                store.write([i.run for i in chunk], contents_block)
    frame = pd.DataFrame(
        {
            "run_number": np.array([i.run for i in infos], dtype=np.int64),
            "year": np.full(len(infos), YEAR, dtype=np.int64),
            "era": [i.era for i in infos],
            "label": np.array([int(i.bad) for i in infos], dtype=np.int64),
            "signature": [f.signature for f in files],
            "readable": [i.readable for i in infos],
        }
    )
    block_frame = pd.DataFrame(entries, columns=[f"{s.name.column}{ENTRIES_SUFFIX}" for s in specs])
    table = pa.Table.from_pandas(pd.concat([frame, block_frame], axis=1), preserve_index=False)
    pq.write_table(table, results / "entries.parquet")
    pd.DataFrame(columns=REPORT_COLUMNS).to_csv(results / "fetch_report.tsv", sep="\t", index=False)
    build_run_table(results / "entries.parquet", results / "runs.parquet")  # config's preprocessing defaults


def write_merge_inputs(work: Path, config: dict[str, object]) -> None:
    """The merge's inputs besides the fetch manifests, as the workflow makes them: the markers of
    the selection (contents, datasets, source; rule ``selection_marker``) and the guard that
    :func:`dqmflow.plan.mark_stale_merge` creates. Written before the merge outputs, so that
    Snakemake finds the merge up to date."""
    plan = Plan.from_config(config)
    for kind in ("files", "all"):
        marker = work / plan.selection_marker(PD, kind)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(plan.selection_identity, indent=1) + "\n")
    guard = work / "results" / PD / "shards" / "fetch_state.txt"
    guard.parent.mkdir(parents=True, exist_ok=True)
    guard.write_text("fetch state guard of the merge\n")


#: Imported by every Python process Snakemake starts (``PYTHONPATH``): a job's script process
#: records, at exit, its own CPU time and peak RSS from the kernel (exact, where the benchmark
#: file samples the process every 0.5 s at first, then every 30 s, and so misses the CPU of the
#: last interval and short peaks).
SITECUSTOMIZE = """
import atexit, os, resource, sys

def _dqmflow_bench_record():
    try:
        log = str(sys.modules["__main__"].snakemake.log[0])
    except Exception:
        return  # not a job's script (e.g. Snakemake itself)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.environ["DQMFLOW_BENCH_RUSAGE"], "a", encoding="utf-8") as out:
        out.write(f"{log}\\t{usage.ru_utime + usage.ru_stime}\\t{usage.ru_maxrss / 1024}\\n")

atexit.register(_dqmflow_bench_record)
"""


def install_recorder(work: Path) -> Path:
    """Make the job processes Snakemake starts record their CPU and peak RSS (see SITECUSTOMIZE)."""
    site = work / "bench_site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    records = work / "job_rusage.tsv"
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    os.environ["DQMFLOW_BENCH_RUSAGE"] = str(records)
    return records


@dataclass
class JobFigures:
    rule: str  # train or score
    algo: str
    chunk: str
    cpu: float  # benchmark cpu_time: the whole job, as sampled
    rss_mb: float  # benchmark max_rss, as sampled
    work_cpu: float  # the job's own compute ('work: ... cpu Y s' log line)
    exact_cpu: float  # CPU of the script process at its exit (SITECUSTOMIZE), NaN if not recorded
    exact_rss_mb: float


def jobs_since(work: Path, since: float, records: Path) -> list[JobFigures]:
    """Train and score jobs whose benchmark file was written after ``since``."""
    exact: dict[str, tuple[float, float]] = {}
    if records.exists():
        for line in records.read_text().splitlines():
            log, cpu, rss = line.split("\t")
            exact[log] = (float(cpu), float(rss))  # the last record of a log is the latest job
    jobs = []
    for kind in ("train", "score"):
        for path in sorted((work / "benchmarks" / PD / kind).glob("*/*.tsv")):
            if path.stat().st_mtime < since:
                continue
            bench = pd.read_csv(path, sep="\t").iloc[0]
            algo, chunk = path.parent.name, path.stem
            log = f"logs/{PD}/{kind}/{algo}/{chunk}.log"
            lines = WORK_LINE.findall((work / log).read_text())
            if not lines:
                raise RuntimeError(f"no 'work: wall X s, cpu Y s' line in {log}")
            cpu, rss = exact.get(log, (math.nan, math.nan))
            measured = (float(bench["cpu_time"]), float(bench["max_rss"]), float(lines[-1][1]))
            jobs.append(JobFigures(kind, algo, chunk, *measured, cpu, rss))
    return jobs


def busy_cpu() -> float:
    """CPU seconds the whole machine has been busy (Linux ``/proc/stat``; NaN elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_workflow(work: Path, args: Sequence[str]) -> tuple[float, float]:
    """Run Snakemake; returns its wall time and the CPU time of it and all its jobs, and says how
    much CPU other processes took meanwhile (they slow the run down on a small machine)."""
    before, busy = resource.getrusage(resource.RUSAGE_CHILDREN), busy_cpu()
    start = time.perf_counter()
    try:
        snakemake(work, *args)
    except subprocess.CalledProcessError as err:
        print((err.stderr or "")[-5000:], (err.stdout or "")[-5000:])
        raise
    wall = time.perf_counter() - start
    after, busy = resource.getrusage(resource.RUSAGE_CHILDREN), busy_cpu() - busy
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if busy - cpu > 0.05 * wall:
        print(f"(note: other processes used {busy - cpu:.1f} s CPU during this run of {wall:.1f} s)")
    return wall, cpu


def dry_run(work: Path, command: Sequence[str], assess: bool = False) -> dict[str, int]:
    """The jobs Snakemake plans ({rule: jobs}); fails if they are not all train/score jobs (and,
    with ``assess``, assessment jobs)."""
    out = snakemake(work, *command, "--dry-run")
    planned = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[-1], re.M)}
    planned.pop("total", None)
    allowed = (*MODEL_RULES, "chunk_histograms", *(ASSESS_RULES if assess else ()))  # the chunks' files: once
    others = {rule: n for rule, n in planned.items() if not rule.startswith(allowed)}
    assert not others, f"the dry run plans more than {'model and assessment' if assess else 'model'} jobs: {others}"
    return planned


@dataclass
class StageFigures:
    stage: str
    jobs: int
    exact_cpu: float  # CPU of the jobs' script processes at exit (SITECUSTOMIZE)
    work_cpu: float  # their own compute ('work: ... cpu Y s' log lines)
    drawn: int  # figures drawn (draw_figures)
    copied: int  # figures copied from the figure cache
    charts: int = 0  # charts written (Vega-Lite specifications of the figures of merit)


def assessment_since(work: Path, since: float, records: Path) -> list[StageFigures]:
    """Per assessment stage, the jobs whose benchmark file was written after ``since``."""
    exact: dict[str, float] = {}
    if records.exists():
        for line in records.read_text().splitlines():
            log, cpu, _ = line.split("\t")
            exact[log] = float(cpu)
    stages: dict[str, StageFigures] = {}
    for bench in sorted((work / "benchmarks" / PD).rglob("*.tsv")):
        rel = bench.relative_to(work / "benchmarks" / PD)
        stage = rel.parts[0].removesuffix(".tsv")
        if bench.stat().st_mtime < since or stage in ("train", "score"):
            continue
        log = f"logs/{PD}/{rel.with_suffix('.log')}"
        text = (work / log).read_text()
        work_lines = WORK_LINE.findall(text)
        figures = FIGURES_LINE.findall(text)
        row = stages.setdefault(stage, StageFigures(stage, 0, 0.0, 0.0, 0, 0))
        row.jobs += 1
        row.exact_cpu += exact.get(log, math.nan)
        row.work_cpu += float(work_lines[-1][1]) if work_lines else math.nan
        if figures:
            row.drawn += int(figures[-1][0])
            row.copied += int(figures[-1][1])
            row.charts += int(figures[-1][2])
    return sorted(stages.values(), key=lambda r: -r.exact_cpu)


def print_assessment(stages: Sequence[StageFigures], label: str) -> float:
    """Prints the assessment stages of a run; returns their exact CPU."""
    total = sum(r.exact_cpu for r in stages)
    print(f"  assessment ({label}), {sum(r.jobs for r in stages)} jobs, {total:.1f} s CPU:")
    for r in stages:
        figures = (
            f"; {r.drawn} figures drawn, {r.copied} copied from the cache, {r.charts} charts written"
            if r.drawn or r.copied or r.charts
            else ""
        )
        print(f"    {r.stage}: {r.jobs} jobs, {r.exact_cpu:.1f} s CPU (compute {r.work_cpu:.1f} s){figures}")
    return total


def summarise(jobs: Sequence[JobFigures], label: str) -> None:
    """CPU split into start-up and compute, from the benchmark files and from the exact records."""
    for kind in ("train", "score", None):
        mine = [j for j in jobs if kind is None or j.rule == kind]
        if not mine:
            print(f"  {kind}: no job ran")
            continue
        work = sum(j.work_cpu for j in mine)
        cpu, exact = sum(j.cpu for j in mine), sum(j.exact_cpu for j in mine)
        what = f"{kind}, {len(mine)} jobs" if kind else f"{label}, all {len(mine)} jobs"
        print(f"  {what}: compute {work:.1f} s CPU; benchmark cpu_time {cpu:.1f} s -> start-up {cpu - work:.1f} s "
              f"({100 * (cpu - work) / max(cpu, 1e-9):.1f} %); process CPU at exit {exact:.1f} s -> start-up "
              f"{exact - work:.1f} s ({100 * (exact - work) / max(exact, 1e-9):.1f} %, "
              f"{(exact - work) / len(mine):.2f} s per job)")  # fmt: skip
    print("  (start-up share target < 10 %); per config, compute / process CPU at exit:", end="")
    for kind in ("train", "score"):
        for algo in sorted({j.algo for j in jobs}):
            mine = [j for j in jobs if j.rule == kind and j.algo == algo]
            if mine:
                print(f" {kind} {algo} {sum(j.work_cpu for j in mine):.1f} / {sum(j.exact_cpu for j in mine):.1f} s;",
                      end="")  # fmt: skip
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--histograms", type=int, default=500)
    parser.add_argument("--histograms-per-job", type=int, help="default: the config's histograms_per_job")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="working directory (default: a fresh temporary one)")
    parser.add_argument("--assess", action="store_true", help="go on through the assessment to the web page")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dqmflow-bench-scale-"))
    fresh_workdir(work)
    source = work / "DQMGUI_data"

    specs = histogram_specs(args.histograms, args.seed)
    infos = run_infos(args.runs, args.seed)
    overrides = {"source": str(source), "contents": str(work / "contents.json"),
                 "datasets": str(work / "datasets.json"),
                 "algorithms": [str(REPO / "config" / "algorithms" / a) for a in ALGORITHMS]}  # fmt: skip
    if args.histograms_per_job:
        overrides["histograms_per_job"] = args.histograms_per_job
    config = write_config(work, **overrides)
    start = time.perf_counter()
    write_inputs(work, source, specs, infos, args.seed, config)
    size = sum(p.stat().st_size for p in (work / "results" / PD / "data").glob("*.parquet")) / 2**20
    n1d = sum(len(s.shape) == 1 for s in specs)
    bins = np.mean([int(np.prod(s.shape)) for s in specs])
    print(f"{args.runs} runs x {args.histograms} histograms ({n1d} 1D, {len(specs) - n1d} 2D; {bins:.0f} bins "
          f"on average) in {len(SUBSYSTEMS)} subsystems: synthetic merge outputs written in "
          f"{time.perf_counter() - start:.1f} s (storage {size:.0f} MB) in {work}")  # fmt: skip

    plan = Plan.from_config(config)
    targets = [f"results/{PD}/scores/{tag}/{slug}.parquet" for tag in plan.tags for slug in plan.slugs]
    if args.assess:
        targets.append(f"results/{PD}/site")
    command = ["--cores", str(args.cores), *targets]

    planned = dry_run(work, command, args.assess)
    n_model = sum(n for rule, n in planned.items() if rule.startswith(MODEL_RULES))
    n_chunk_files = planned.get("chunk_histograms", 0)
    rest = f"{sum(planned.values()) - n_model - n_chunk_files} assessment jobs" if args.assess else "nothing else"
    print(f"dry run: {n_model} model jobs planned over {len(plan.chunks)} chunks x {len(plan.tags)} configs, "
          f"histograms_per_job={plan.histograms_per_job}, and {n_chunk_files} local jobs naming the chunks' "
          f"histograms; {rest}")  # fmt: skip

    records = install_recorder(work)
    since = time.time() - 1
    wall, total_cpu = run_workflow(work, command)
    full = jobs_since(work, since, records)
    assert len(full) == n_model, f"{len(full)} benchmark files for {n_model} model jobs"
    assessed = assessment_since(work, since, records) if args.assess else []
    own = total_cpu - sum(j.exact_cpu for j in full) - sum(r.exact_cpu for r in assessed)
    what = "train + score + assessment" if args.assess else "train + score"
    print(f"\n{what}: {len(full) + sum(r.jobs for r in assessed)} jobs in {wall:.1f} s wall on {args.cores} cores "
          f"(Snakemake and its jobs used {total_cpu:.1f} s CPU, Snakemake itself about {own:.1f} s)")  # fmt: skip
    summarise(full, "train + score")
    if args.assess:
        print_assessment(assessed, "full run")
    rss, exact_rss = max(full, key=lambda j: j.rss_mb), max(full, key=lambda j: j.exact_rss_mb)
    print(f"  peak RSS per job (target < 2048 MB): benchmark max_rss {rss.rss_mb:.0f} MB ({rss.rule} {rss.algo} "
          f"{rss.chunk}); process peak at exit {exact_rss.exact_rss_mb:.0f} MB ({exact_rss.rule} {exact_rss.algo} "
          f"{exact_rss.chunk})")  # fmt: skip
    cells = args.runs * args.histograms * len(plan.tags)
    for kind in ("train", "score", None):
        mine = [j for j in full if kind is None or j.rule == kind]
        print(f"  CPU per run x histogram x config, {kind or 'train + score'}: "
              f"{1e3 * sum(j.exact_cpu for j in mine) / cells:.3f} ms "
              f"(compute only {1e3 * sum(j.work_cpu for j in mine) / cells:.3f} ms)")  # fmt: skip

    infos = run_infos(args.runs + ADDED_RUNS, args.seed)
    write_inputs(work, source, specs, infos, args.seed, config)
    planned = dry_run(work, command, args.assess)
    since = time.time() - 1
    wall_inc, total_inc = run_workflow(work, command)
    inc = jobs_since(work, since, records)
    assessed_inc = assessment_since(work, since, records) if args.assess else []
    train_jobs = [j for j in inc if j.rule == "train"]
    planned_train = sum(n for rule, n in planned.items() if rule.startswith("train_"))
    n_model = sum(n for rule, n in planned.items() if rule.startswith(MODEL_RULES))
    print(f"\n+{ADDED_RUNS} runs: {len(inc)} jobs ran ({len(train_jobs)} train, {len(inc) - len(train_jobs)} score; "
          f"the dry run planned {planned_train} train, {n_model - planned_train} score) in "
          f"{wall_inc:.1f} s wall (Snakemake and its jobs used {total_inc:.1f} s CPU, Snakemake itself about "
          f"{total_inc - sum(j.exact_cpu for j in inc) - sum(r.exact_cpu for r in assessed_inc):.1f} s)")  # fmt: skip
    summarise(inc, f"+{ADDED_RUNS} runs")
    jobs_full = sum(j.exact_cpu for j in full) + sum(r.exact_cpu for r in assessed)
    jobs_inc = sum(j.exact_cpu for j in inc) + sum(r.exact_cpu for r in assessed_inc)
    if args.assess:
        print_assessment(assessed_inc, f"+{ADDED_RUNS} runs")
        print(f"  the assessment's share of the jobs' CPU: full run "
              f"{sum(r.exact_cpu for r in assessed) / jobs_full:.2f}, +{ADDED_RUNS} runs "
              f"{sum(r.exact_cpu for r in assessed_inc) / jobs_inc:.2f}")  # fmt: skip
    print(f"  cost relative to the full run: CPU {jobs_inc / jobs_full:.2f}"
          f" (jobs) / {total_inc / total_cpu:.2f} (with Snakemake), wall {wall_inc / wall:.2f}")  # fmt: skip
    assert not train_jobs, f"adding runs retrained {len(train_jobs)} chunks"


if __name__ == "__main__":
    main()
