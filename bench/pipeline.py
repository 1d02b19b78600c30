"""Benchmark: the full demo pipeline, timed per stage, and detection quality on the demo truth.

    python bench/pipeline.py [--workdir DIR] [--cores 2] [--runs-per-year 200] [--add-runs 10] [--reuse]
                             [--configs config/algorithms/A.yaml ...]

Runs ``snakemake`` on the default config (embedded demo) in a fresh working directory, then prints
* per stage (rule): jobs, summed job seconds and CPU (from Snakemake's benchmark files, whose CPU
  misses most of a long job's) and the share of the summed time; the wall-clock time of the whole
  run and the exact CPU of Snakemake and all its jobs (the kernel's count);
* per histogram and algorithm: AUC against the demo *truth* (positives: runs whose anomaly touches
  that histogram; negatives: runs without any anomaly; test split, enough entries);
* run verdicts against the truth: AUC and anomalous runs caught at a 5% false-alarm rate for every
  combiner (and per algorithm), and what the calibrated flags of ``verdicts.csv`` catch;
* that exact CPU per run x histogram x algorithm config;
* the cost of adding ``--add-runs`` runs afterwards (held back from the first run) to the 400-run
  dataset: wall clock and exact CPU as a ratio of the full run's, and which rules ran (no training
  is expected).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from workdir import fresh_workdir, snakemake, write_config

from dqmflow.verdicts import caught_at


def write_datasets(workdir: Path, runs_per_year: int, seed: int, held_back: int) -> list[int]:
    """The demo's datasets file without the last ``held_back`` runs of 2018; returns those runs."""
    from dqmflow.demo import DemoSpec, demo_datasets, plan_runs

    spec = DemoSpec(runs_per_year=runs_per_year, seed=seed)
    datasets = demo_datasets(spec, plan_runs(spec))
    runs_2018 = sorted(p.run for p in plan_runs(spec) if p.year == 2018)
    kept, added = runs_2018[: len(runs_2018) - held_back], runs_2018[len(runs_2018) - held_back :]
    if held_back:
        datasets["years"]["2018"]["runs"] = [str(r) for r in kept]
    (workdir / "datasets.json").write_text(json.dumps(datasets))
    return added


def timed_run(workdir: Path, cores: int) -> tuple[float, float]:
    """Run the workflow: wall clock and CPU seconds of Snakemake and every job it ran, exactly
    (the kernel's count for the waited-for process tree, threads included; the benchmark files
    sample a job every 0.5 s for 15 s, then every 30 s, and so miss most of a long job's CPU)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    snakemake(workdir, "--cores", str(cores), "all", "--quiet", "all", capture=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def run_pipeline(
    workdir: Path, cores: int, runs_per_year: int, held_back: int, **overrides: Any
) -> tuple[float, float]:
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(workdir, **overrides)
    write_datasets(workdir, runs_per_year, config["demo"]["seed"], held_back)
    write_config(workdir, datasets=str(workdir / "datasets.json"), demo={"runs_per_year": runs_per_year}, **overrides)
    return timed_run(workdir, cores)


def add_runs(
    workdir: Path, cores: int, runs_per_year: int, held_back: int, **overrides: Any
) -> tuple[float, float, pd.DataFrame]:
    """Add the held-back runs and run again: wall clock, CPU and the benchmark rows of the jobs that ran."""
    config = write_config(
        workdir, datasets=str(workdir / "datasets.json"), demo={"runs_per_year": runs_per_year}, **overrides
    )
    write_datasets(workdir, runs_per_year, config["demo"]["seed"], 0)
    since = time.time()
    wall, cpu = timed_run(workdir, cores)
    return wall, cpu, stage_table(workdir, since=since)


def stage_table(workdir: Path, since: float = 0.0) -> pd.DataFrame:
    """Jobs, summed seconds and CPU per stage, from the benchmark files written after ``since``."""
    rows = []
    for path in (workdir / "benchmarks").rglob("*.tsv"):
        if path.stat().st_mtime < since:
            continue
        rel = path.relative_to(workdir / "benchmarks").parts
        stage = rel[0].removesuffix(".tsv") if len(rel) == 1 else rel[1].removesuffix(".tsv")
        if stage in ("train", "score"):
            stage = f"{stage} ({rel[2]})"
        row = pd.read_csv(path, sep="\t").iloc[0]
        rows.append({"stage": stage, "seconds": float(row["s"]), "cpu": float(row["cpu_time"])})
    frame = pd.DataFrame(rows).groupby("stage").agg(jobs=("seconds", "count"), seconds=("seconds", "sum"),
                                                    cpu=("cpu", "sum"))  # fmt: skip
    frame["share"] = frame["seconds"] / frame["seconds"].sum()
    return frame.sort_values("seconds", ascending=False)


def work_units(workdir: Path) -> tuple[int, int, int]:
    """(runs, histograms, algorithm configs) of the finished run."""
    pd_dir = next(p for p in (workdir / "results").iterdir() if (p / "scores.parquet").exists())
    scores = pd.read_parquet(pd_dir / "scores.parquet", columns=["run_number", "histogram", "algorithm"])
    return scores["run_number"].nunique(), scores["histogram"].nunique(), scores["algorithm"].nunique()


def truth_aucs(workdir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from dqmflow.metrics import roc_auc

    truth = pd.read_csv(workdir / "results" / "demo" / "truth.csv", keep_default_na=False)
    anomalous_runs = set(truth.loc[truth["anomaly"] != "", "run_number"])
    touched = truth[truth["histogram"] != ""].groupby("histogram")["run_number"].apply(set).to_dict()
    pd_dir = next(p for p in (workdir / "results").iterdir() if (p / "scores.parquet").exists())
    scores = pd.read_parquet(pd_dir / "scores.parquet")
    rows = []
    for (algorithm, histogram), group in scores.groupby(["algorithm", "histogram"]):
        group = group[group["split"] == "test"]
        positive = group["run_number"].isin(touched.get(histogram, set()))
        negative = ~group["run_number"].isin(anomalous_runs)
        keep = positive | negative
        labels = positive[keep].astype(int).to_numpy()
        auc = roc_auc(group.loc[keep, "score"].to_numpy(), labels)[2]
        rows.append({"algorithm": algorithm, "histogram": histogram.rsplit("/", 1)[-1], "auc": auc,
                     "n_anomalous": int(labels.sum())})  # fmt: skip
    per_hist = pd.DataFrame(rows).pivot(index="histogram", columns="algorithm", values="auc")
    verdicts = pd.read_csv(pd_dir / "verdicts.csv")
    run_scores = pd.read_csv(pd_dir / "summary" / "run_scores.csv")
    merged = verdicts[["run_number", "split", "low_stats", "unreadable", "flagged"]].merge(run_scores, on="run_number")
    merged = merged[(merged["split"] != "train") & ~merged["low_stats"] & ~merged["unreadable"]]
    truth_labels = merged["run_number"].isin(anomalous_runs).astype(int).to_numpy()
    run_rows = []
    for column in [c for c in run_scores.columns if c not in ("run_number", "reference")]:
        values = merged[column].to_numpy(dtype=float)
        caught, _ = caught_at(values, truth_labels, 0.05)
        run_rows.append({"run score": column, "auc": roc_auc(values, truth_labels)[2], "caught at 5% FAR": caught})
    run_level = pd.DataFrame(run_rows).set_index("run score")
    flags = merged["flagged"].to_numpy(dtype=bool)
    run_level.attrs["flagged"] = (float(flags[truth_labels == 1].mean()), float(flags[truth_labels == 0].mean()))
    return per_hist, run_level


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="working directory (default: a fresh temporary one)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--runs-per-year", type=int, default=200, help="two years: 400 runs, as in issue 7")
    parser.add_argument("--add-runs", type=int, default=10, help="runs held back, then added (0: skip)")
    parser.add_argument("--reuse", action="store_true", help="only re-read the results already in --workdir")
    parser.add_argument("--configs", nargs="+", help="algorithm config files (default: the shipped config's list)")
    args = parser.parse_args()
    overrides: dict[str, Any] = {"algorithms": [str(Path(c).resolve()) for c in args.configs]} if args.configs else {}
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dqmflow-bench-"))
    total_cpu = float("nan")
    if not args.reuse:
        fresh_workdir(workdir)
        wall, total_cpu = run_pipeline(workdir, args.cores, args.runs_per_year, args.add_runs, **overrides)
        print(f"full demo pipeline: {wall:.1f} s wall clock on {args.cores} cores, {total_cpu:.1f} s CPU of "
              f"Snakemake and its jobs ({workdir})\n")  # fmt: skip
    stages = stage_table(workdir)
    if not args.reuse and args.add_runs:
        added_wall, added_cpu, added = add_runs(workdir, args.cores, args.runs_per_year, args.add_runs, **overrides)
        print(f"adding {args.add_runs} runs: {added_wall:.1f} s wall ({added_wall / wall:.1%} of the full run), "
              f"{added_cpu:.1f} s CPU ({added_cpu / total_cpu:.1%} of the full run); target <= 10%; "
              f"jobs: {added['jobs'].to_dict()}")  # fmt: skip
        print("the added runs per stage (summed job time and CPU):")
        print(added.to_string(float_format=lambda v: f"{v:.2f}") + "\n")
    pd.set_option("display.width", 160)
    print("per stage (summed job time and CPU; jobs run in parallel):")
    print(stages.to_string(float_format=lambda v: f"{v:.2f}"))
    units = work_units(workdir)
    if not np.isnan(total_cpu):
        runs = units[0] - args.add_runs  # the full run's
        cells = runs * units[1] * units[2]
        print(
            f"\ntotal CPU of Snakemake and all jobs: {total_cpu:.1f} s for {runs} runs x {units[1]} histograms x "
            f"{units[2]} configs = {1000 * total_cpu / cells:.2f} ms per run x histogram x config "
            "(AutoDQM_ML ~19 ms; target <= 9 ms)"
        )
    per_hist, run_level = truth_aucs(workdir)
    print("\nper-histogram AUC on the demo truth (test split):")
    print(per_hist.to_string(float_format=lambda v: f"{v:.3f}"))
    print("\nmean per-histogram AUC:", per_hist.mean().round(3).to_dict())
    print("\nrun verdicts on the demo truth (runs not trained on, anomalous vs clean; every combiner over all")
    print("algorithms, and the configured combiner per algorithm; caught = anomalous runs above the score of")
    print("the top 5% of clean runs):")
    print(run_level.to_string(float_format=lambda v: f"{v:.3f}"))
    caught_bad, flagged_good = run_level.attrs["flagged"]
    print(
        f"\nverdicts.csv flags (calibrated on the calibration runs, false-alarm rate 0.05): "
        f"{caught_bad:.1%} of anomalous runs caught, {flagged_good:.1%} of clean runs flagged"
    )
    print("best run-level AUC:", round(float(np.nanmax(run_level["auc"].to_numpy())), 3))


if __name__ == "__main__":
    main()
