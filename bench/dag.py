"""Benchmark: building the DAG (``snakemake -n``) for many runs, histograms and algorithm configs.

    python bench/dag.py [--runs 10000] [--histograms 1000] [--runs-per-batch 100 10000]
                        [--histograms-per-job 0 1] [--timeout 300] [--workdir DIR] [--all-configs]

Lays out ``--runs`` (empty) DQM GUI files, lets the discovery checkpoint catalogue them, then
times a dry run of the whole workflow for ``--histograms`` histograms over four subsystems (a
generated contents file; the histograms need not exist, a dry run only plans) and the 6 algorithm
configs of the shipped ``config/config.yaml`` (``--all-configs``: every file of
``config/algorithms/`` and a copy of ``pca_2.yaml`` with another tag), for
each ``--runs-per-batch`` and ``--histograms-per-job`` (0: the config's default). Prints the
number of jobs (all rules of the dry run's job stats) and the dry-run time (target: < 30 s for
10,000 runs x 1,000 histograms x 6 configs at the default histograms_per_job); a dry run longer
than ``--timeout`` seconds is stopped and reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from workdir import REPO, snakemake, write_config

from dqmflow.discover import batch_of

PD = "JetMET"
SUBSYSTEMS = {"CSC": 0.3, "L1T": 0.25, "JetMET": 0.25, "EGamma": 0.2}


def contents(n: int) -> dict[str, list[str]]:
    """``n`` histogram paths (AutoDQM_ML contents format) shared out over :data:`SUBSYSTEMS`."""
    counts = {s: round(n * share) for s, share in SUBSYSTEMS.items()}
    counts["CSC"] += n - sum(counts.values())
    return {s: [f"/Run summary/Folder{i // 50:02d}/h{i:04d}" for i in range(k)] for s, k in counts.items()}


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the block after ``seconds`` (``subprocess.run`` then kills its child)."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--histograms", type=int, default=1000)
    parser.add_argument("--runs-per-batch", type=int, nargs="+", default=[100, 10000])
    parser.add_argument("--histograms-per-job", type=int, nargs="+", default=[0, 1],
                        help="0: the config's default")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=300, help="seconds allowed for one dry run")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--all-configs", action="store_true", help="every shipped algorithm config, and one more")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dqmflow-bench-dag-"))
    source = work / "DQMGUI_data"
    runs = [350000 + 3 * i for i in range(args.runs)]
    for run in runs:
        folder = source / "Run2022" / PD / batch_of(run, 100)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"DQM_V0001_R{run:09d}__{PD}__Run2022C-PromptReco-v1__DQMIO.root").touch()
    (work / "contents.json").write_text(json.dumps(contents(args.histograms), indent=1))
    datasets = {"primary_datasets": [PD], "years": {"2022": {"productions": [""], "bad_runs": [str(runs[0])]}}}
    (work / "datasets.json").write_text(json.dumps(datasets))
    if args.all_configs:
        extra = yaml.safe_load((REPO / "config" / "algorithms" / "pca_2.yaml").read_text())
        extra.update(tag="pca_2_copy", description="pca_2 under another tag (bench/dag.py)")
        (work / "pca_2_copy.yaml").write_text(yaml.safe_dump(extra))
        shipped = sorted(str(p) for p in (REPO / "config" / "algorithms").glob("*.yaml"))
        algorithms = [*shipped, str(work / "pca_2_copy.yaml")]
    else:
        default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["algorithms"]
        algorithms = [str(REPO / a) for a in default]
    common = {"source": str(source), "contents": str(work / "contents.json"),
              "datasets": str(work / "datasets.json"), "algorithms": algorithms}  # fmt: skip
    default_per_job = write_config(work, **common)["histograms_per_job"]
    catalog = f"results/{PD}/catalog/2022.tsv"
    if not (work / catalog).exists():
        start = time.perf_counter()
        snakemake(work, "--cores", "2", catalog)  # discovery runs for real
        print(f"discovery of {args.runs} files: {time.perf_counter() - start:.1f} s")
    for span in args.runs_per_batch:
        for per_job in args.histograms_per_job:
            per_job = per_job or default_per_job
            write_config(work, **common, histograms_per_job=per_job, fetch={"runs_per_batch": span})
            what = (f"{args.runs} runs x {args.histograms} histograms x {len(algorithms)} configs, "
                    f"runs_per_batch={span}, histograms_per_job={per_job}")  # fmt: skip
            start = time.perf_counter()
            try:
                with time_limit(args.timeout):
                    out = snakemake(work, "--cores", "2", "--dry-run")
            except TimeoutError:
                print(f"{what}: dry run skipped, stopped after {args.timeout:.0f} s")
                continue
            seconds = time.perf_counter() - start
            stats = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[-1], re.M)}
            model = sum(n for rule, n in stats.items() if rule.startswith(("train_", "score_")))
            print(f"{what}: dry run of {stats.get('total', '?')} jobs ({model} train/score jobs, "
                  f"{stats.get('fetch', 0)} fetch jobs) in {seconds:.1f} s (target < 30 s)")  # fmt: skip


if __name__ == "__main__":
    main()
