"""Benchmark: every algorithm config on the demo truth, side by side.

    python bench/algorithms.py [--workdir DIR] [--cores 2] [--configs config/algorithms/*.yaml] [--reuse]

Runs the workflow on the embedded demo up to the score table with the given algorithm configs
(default: every file in ``config/algorithms/``), then prints one row per config:

* train + score CPU seconds per histogram (from Snakemake's benchmark files of its model jobs);
* per-histogram AUC against the demo *truth* (positives: runs whose anomaly touches that histogram;
  negatives: runs without any anomaly; runs not trained on, not short): median, min and the worst
  histogram;
* run-level AUC of the config alone (its histograms' p-values combined with Cauchy, as in
  ``verdicts.csv``), anomalous runs vs clean runs never trained on;
* the same AUCs on the high-statistics runs only (luminosity above the median).

A last row gives the run-level AUC of all configs combined (the default verdict).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from workdir import REPO, fresh_workdir, snakemake, write_config

from dqmflow.algorithms import load_config
from dqmflow.metrics import roc_auc
from dqmflow.verdicts import DEFAULT_COMBINER, run_verdicts

DATASET = "SingleMuon"


def run(workdir: Path, cores: int, configs: list[str]) -> float:
    workdir.mkdir(parents=True, exist_ok=True)
    write_config(workdir, algorithms=configs, assessment={"plots": "none"})
    start = time.perf_counter()
    snakemake(workdir, "--cores", str(cores), f"results/{DATASET}/scores.parquet", "--quiet", "all", capture=False)
    return time.perf_counter() - start


def cpu_per_histogram(workdir: Path, tag: str, n_histograms: int) -> float:
    total = 0.0
    for stage in ("train", "score"):
        for path in (workdir / "benchmarks" / DATASET / stage / tag).glob("*.tsv"):
            total += float(pd.read_csv(path, sep="\t").iloc[0]["cpu_time"])
    return total / max(n_histograms, 1)


def histogram_aucs(scores: pd.DataFrame, truth: pd.DataFrame, runs: set[int]) -> pd.Series:
    """AUC per histogram of one config on the truth, over the evaluation runs in ``runs``."""
    anomalous = set(truth.loc[truth["anomaly"] != "", "run_number"])
    touched = truth[truth["histogram"] != ""].groupby("histogram")["run_number"].apply(set).to_dict()
    out = {}
    for histogram, group in scores.groupby("histogram"):
        group = group[group["split"].isin(("calibration", "test")) & group["run_number"].isin(runs)]
        positive = group["run_number"].isin(touched.get(histogram, set()))
        keep = positive | ~group["run_number"].isin(anomalous)
        out[histogram] = roc_auc(group.loc[keep, "score"].to_numpy(), positive[keep].to_numpy())[2]
    return pd.Series(out, dtype=float)


def run_level_aucs(scores: pd.DataFrame, truth: pd.DataFrame, high_stats: set[int]) -> dict[str, tuple[float, float]]:
    """Run-level AUC (all evaluation runs, high-statistics ones) per config and combined."""
    verdicts = run_verdicts(scores)
    table = verdicts.table.merge(verdicts.run_scores, on="run_number")
    table = table[(table["split"] != "train") & ~table["low_stats"] & ~table["unreadable"]]
    anomalous = table["run_number"].isin(set(truth.loc[truth["anomaly"] != "", "run_number"])).to_numpy()
    high = table["run_number"].isin(high_stats).to_numpy()
    out = {}
    for column in [c for c in verdicts.run_scores.columns if c.startswith(f"{DEFAULT_COMBINER}")]:
        values = table[column].to_numpy(dtype=float)
        out[column] = (roc_auc(values, anomalous)[2], roc_auc(values[high], anomalous[high])[2])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="working directory (default: a fresh temporary one)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--configs", nargs="+", default=sorted(str(p) for p in (REPO / "config" / "algorithms").glob("*.yaml"))
    )
    parser.add_argument("--reuse", action="store_true", help="only re-read the results already in --workdir")
    args = parser.parse_args()
    configs = [str(Path(c).resolve()) for c in args.configs]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dqmflow-algorithms-"))
    if not args.reuse:
        fresh_workdir(workdir)
        wall = run(workdir, args.cores, configs)
        print(
            f"demo up to the score table with {len(configs)} configs: {wall:.0f} s wall "
            f"on {args.cores} cores ({workdir})\n"
        )
    truth = pd.read_csv(workdir / "results" / "demo" / "truth.csv", keep_default_na=False)
    lumi = truth.drop_duplicates("run_number").set_index("run_number")["lumi"]
    high_stats = set(lumi[lumi > lumi.median()].index)
    scores = pd.read_parquet(workdir / "results" / DATASET / "scores.parquet")
    n_histograms = scores["histogram"].nunique()
    run_level = run_level_aucs(scores, truth, high_stats)
    rows = []
    for path in configs:
        tag = load_config(path).tag
        mine = scores[scores["algorithm"] == tag]
        per_hist = histogram_aucs(mine, truth, set(lumi.index))
        per_hist_high = histogram_aucs(mine, truth, high_stats)
        runs_all, runs_high = run_level.get(f"{DEFAULT_COMBINER}[{tag}]", (np.nan, np.nan))
        rows.append({
            "config": tag,
            "cpu s/hist": cpu_per_histogram(workdir, tag, n_histograms),
            "hist AUC median": per_hist.median(),
            "min": per_hist.min(),
            "worst histogram": str(per_hist.idxmin()).rsplit("/", 1)[-1] if per_hist.notna().any() else "",
            "run AUC": runs_all,
            "high-stat hist median": per_hist_high.median(),
            "high-stat min": per_hist_high.min(),
            "high-stat run AUC": runs_high,
        })  # fmt: skip
    frame = pd.DataFrame(rows).sort_values("run AUC", ascending=False)
    combined_all, combined_high = run_level[DEFAULT_COMBINER]
    pd.set_option("display.width", 200)
    print(frame.to_markdown(index=False, floatfmt=".3f"))
    print(
        f"\nall configs combined ({DEFAULT_COMBINER}): run AUC {combined_all:.3f}, high-stat runs {combined_high:.3f}"
    )


if __name__ == "__main__":
    main()
