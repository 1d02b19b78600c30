"""Benchmark: the assessment at the size of a real study, through the command line.

    python bench/assess.py [--runs 308] [--histograms 62] [--algorithms 4] [--workdir DIR]

Writes a long score table of ``--runs`` runs x ``--histograms`` histograms x ``--algorithms``
algorithms (the size of the published 2022 CMS L1T study: 308 runs x 62 histograms), with 20% bad
runs whose anomaly touches a few histograms, correlated scores within a run and per-algorithm
noise, then runs ``dqmflow SCORES --out DIR`` twice and prints the wall and CPU time of

* the verdicts and tables alone (``--plots none --no-site``);
* everything with the default figures (``--plots matter``) and the web page;

and the run-level AUC of the verdicts on the synthetic truth.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_table(path: Path, n_runs: int, n_histograms: int, n_algorithms: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    runs = np.arange(355000, 355000 + n_runs)
    bad = rng.random(n_runs) < 0.2
    run_effect = rng.normal(0, 0.4, n_runs)
    touched = bad[:, None] & (rng.random((n_runs, n_histograms)) < 0.08)
    frames = []
    for a in range(n_algorithms):
        for h in range(n_histograms):
            score = np.exp(rng.normal(size=n_runs) + run_effect + 2.5 * touched[:, h] * rng.uniform(0.5, 1.5))
            frames.append(
                pd.DataFrame(
                    {
                        "run_number": runs,
                        "histogram": f"L1T//Run summary/L1TStage2Synthetic/h{h:03d}",
                        "algorithm": f"algo{a}",
                        "score": score,
                        "label": bad.astype(int),
                    }
                )
            )
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)


def timed(*args: str) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dqmflow.assess", *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=308)
    parser.add_argument("--histograms", type=int, default=62)
    parser.add_argument("--algorithms", type=int, default=4)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dqmflow-assess-"))
    work.mkdir(parents=True, exist_ok=True)
    table = work / "scores.parquet"
    write_table(table, args.runs, args.histograms, args.algorithms)
    units = args.runs * args.histograms * args.algorithms
    print(f"{args.runs} runs x {args.histograms} histograms x {args.algorithms} algorithms ({work})")
    wall, bare, out = timed(str(table), "--out", str(work / "bare"), "--plots", "none", "--no-site")
    print(f"verdicts and tables only: {wall:.1f} s wall, {bare:.1f} s CPU ({1e3 * bare / units:.3f} ms per unit)")
    wall, cpu, _ = timed(str(table), "--out", str(work / "full"))
    pngs = [p.stat().st_size for p in (work / "full" / "plots").rglob("*.png")]
    charts = [p.stat().st_size for p in (work / "full" / "plots").rglob("*.vl.json")]
    figures = len(pngs) + len(charts)
    print(
        f"with figures (plots: matter) and the web page: {wall:.1f} s wall, {cpu:.1f} s CPU, {len(pngs)} PNG "
        f"figures and {len(charts)} charts ({sum(charts) / 1e6:.1f} MB)"
    )
    print(
        f"figures and web page: {cpu - bare:.1f} s CPU "
        f"({1e3 * (cpu - bare) / max(figures, 1):.0f} ms per figure or chart); "
        f"PNGs {sum(pngs) / 1e6:.1f} MB ({sum(pngs) / max(len(pngs), 1) / 1e3:.0f} kB each)"
    )
    run_level = pd.read_csv(work / "bare" / "run_level_auc.csv").set_index("run_score")
    print("\nrun-level AUC on the synthetic truth:")
    print(run_level[["auc"]].T.to_string(float_format=lambda v: f"{v:.3f}"))
    print(out.splitlines()[0])


if __name__ == "__main__":
    main()
