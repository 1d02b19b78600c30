"""Benchmark: building the DAG (``snakemake -n``) for many runs.

    python bench/dag.py [--runs 10000] [--runs-per-batch 100 10000] [--workdir DIR]

Lays out ``--runs`` (empty) DQM GUI files, lets the discovery checkpoint catalogue them, then
times a dry run of the whole workflow (15 histograms x 5 algorithm configs) for each
``--runs-per-batch`` (target: < 30 s for 10,000 runs).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from workdir import snakemake, write_config

from dqmflow.demo import demo_contents
from dqmflow.discover import batch_of


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
    contents, datasets_file = str(work / "contents.json"), str(work / "datasets.json")
    for span in args.runs_per_batch:
        write_config(work, source=str(source), contents=contents, datasets=datasets_file,
                     fetch={"runs_per_batch": span})  # fmt: skip
        snakemake(work, "--cores", "2", "results/JetMET/catalog/2022.tsv")  # discovery runs for real
        start = time.perf_counter()
        out = snakemake(work, "--cores", "2", "--dry-run")
        seconds = time.perf_counter() - start
        total = re.search(r"^total\s+(\d+)$", out, re.M)
        fetch = re.search(r"^fetch\s+(\d+)$", out, re.M)
        print(f"{args.runs} runs, runs_per_batch={span}: dry run of {total[1] if total else '?'} jobs "
              f"({fetch[1] if fetch else 0} fetch jobs) in {seconds:.1f} s (target < 30 s)")  # fmt: skip


if __name__ == "__main__":
    main()
