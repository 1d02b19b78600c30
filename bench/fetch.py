"""Benchmark: fetch throughput against a bare uproot loop, on the same files, in one run.

    python bench/fetch.py [--runs 2000] [--cores 2] [--runs-per-batch 10000] [--workdir DIR]

Writes ``--runs`` demo runs (15 histograms each), then times
* a bare uproot loop reading the same 15 histograms from every file in one process, and
* dqmflow's ``snakemake --until merge`` (discovery, per-run shards with manifests, merge) on
  ``--cores`` cores,
and prints the throughput ratio dqmflow / bare loop (target: >= 0.5).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import uproot
from workdir import snakemake, write_config

from dqmflow.demo import HISTOGRAMS, DemoSpec, demo_contents, demo_datasets, plan_runs, write_demo
from dqmflow.discover import parse_file_name


def bare_loop(files: list[Path]) -> float:
    keys = [spec.name for spec in HISTOGRAMS]
    start = time.perf_counter()
    for path in files:
        run = parse_file_name(str(path)).run
        with uproot.open(path) as handle:
            for name in keys:
                handle[name.in_file(run)].values()
    return time.perf_counter() - start


def dqmflow_fetch(workdir: Path, source: Path, spec: DemoSpec, cores: int, runs_per_batch: int) -> float:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "contents.json").write_text(json.dumps(demo_contents()))
    (workdir / "datasets.json").write_text(json.dumps(demo_datasets(spec, plan_runs(spec))))
    write_config(workdir, source=str(source), contents=str(workdir / "contents.json"),
                 datasets=str(workdir / "datasets.json"), fetch={"runs_per_batch": runs_per_batch})  # fmt: skip
    start = time.perf_counter()
    snakemake(workdir, "--cores", str(cores), "results/SingleMuon/histograms.parquet", "--quiet", "all")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--runs-per-batch", type=int, default=10000)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dqmflow-bench-fetch-"))
    spec = DemoSpec(runs_per_year=args.runs // 2)
    data = workdir / "data"
    if not (data / "truth.csv").exists():
        start = time.perf_counter()
        write_demo(data, spec, extra_processings=False)
        print(f"wrote {args.runs} demo runs in {time.perf_counter() - start:.1f} s")
    files = sorted((data / "DQMGUI_data").rglob("*.root"))
    assert len(files) == args.runs, f"{len(files)} files"
    bare_loop(files[:50])  # warm the page cache and imports alike for both contestants
    bare = bare_loop(files)
    run_dir = workdir / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    ours = dqmflow_fetch(run_dir, data / "DQMGUI_data", spec, args.cores, args.runs_per_batch)
    fetch_jobs = list((run_dir / "benchmarks").rglob("fetch/**/*.tsv"))
    fetch_seconds = sum(float(pd.read_csv(p, sep="\t")["s"].iloc[0]) for p in fetch_jobs)
    merge_seconds = float(pd.read_csv(run_dir / "benchmarks" / "SingleMuon" / "merge.tsv", sep="\t")["s"].iloc[0])
    table = pd.read_parquet(run_dir / "results" / "SingleMuon" / "histograms.parquet", columns=["run_number"])
    assert len(table) == args.runs
    n_hists = len(HISTOGRAMS)
    print(f"{args.runs} runs x {n_hists} histograms, {args.cores} cores, runs_per_batch={args.runs_per_batch}")
    print(f"bare uproot loop (1 process):          {bare:7.1f} s  {args.runs / bare:7.1f} files/s")
    print(f"dqmflow discover+fetch+merge (wall):   {ours:7.1f} s  {args.runs / ours:7.1f} files/s")
    print(f"  {len(fetch_jobs)} fetch jobs, summed {fetch_seconds:.1f} s; merge {merge_seconds:.1f} s")
    print(f"throughput ratio dqmflow / bare loop:  {bare / ours:.2f}  (target >= 0.5)")


if __name__ == "__main__":
    main()
