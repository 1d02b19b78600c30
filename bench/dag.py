"""Benchmark: building the DAG (``snakemake -n``) for many runs.

    python bench/dag.py [--runs 10000] [--runs-per-batch 100 10000] [--workdir DIR]

Lays out ``--runs`` (empty) DQM GUI files, lets the discovery checkpoint catalogue them, then
times a dry run of the whole workflow (15 histograms x 5 algorithm configs) for each
``--runs-per-batch`` (target: < 30 s for 10,000 runs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from dqmflow.demo import demo_contents
from dqmflow.discover import batch_of

REPO = Path(__file__).resolve().parents[1]


def snakemake(work: Path, *args: str) -> str:
    env = {**os.environ, "CONDOR_CONFIG": os.environ.get("CONDOR_CONFIG", "/dev/null")}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
           "--directory", str(work), "--cores", "2", *args]  # fmt: skip
    return subprocess.run(cmd, check=True, env=env, capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--runs-per-batch", type=int, nargs="+", default=[100, 10000])
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dqmflow-bench-dag-"))
    source = work / "DQMGUI_data"
    runs = [350000 + 3 * i for i in range(args.runs)]
    for run in runs:
        folder = source / "Run2022" / "JetMET" / batch_of(run, 100)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"DQM_V0001_R{run:09d}__JetMET__Run2022C-PromptReco-v1__DQMIO.root").touch()
    (work / "contents.json").write_text(json.dumps(demo_contents()))
    datasets = {"primary_datasets": ["JetMET"], "years": {"2022": {"productions": [""], "bad_runs": [str(runs[0])]}}}
    (work / "datasets.json").write_text(json.dumps(datasets))
    (work / "config").mkdir(exist_ok=True)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(source=str(source), contents=str(work / "contents.json"), datasets=str(work / "datasets.json"))
    config["algorithms"] = [str(REPO / a) for a in config["algorithms"]]
    for span in args.runs_per_batch:
        config["fetch"]["runs_per_batch"] = span
        (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
        snakemake(work, "results/JetMET/catalog/2022.tsv")  # discovery runs for real
        start = time.perf_counter()
        out = snakemake(work, "--dry-run")
        seconds = time.perf_counter() - start
        total = re.search(r"^total\s+(\d+)$", out, re.M)
        fetch = re.search(r"^fetch\s+(\d+)$", out, re.M)
        print(f"{args.runs} runs, runs_per_batch={span}: dry run of {total[1] if total else '?'} jobs "
              f"({fetch[1] if fetch else 0} fetch jobs) in {seconds:.1f} s (target < 30 s)")  # fmt: skip


if __name__ == "__main__":
    main()
