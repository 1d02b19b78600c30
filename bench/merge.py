"""Benchmark: merging many shards stays within bounded memory.

    python bench/merge.py [--runs 5000] [--histograms 200] [--bins 100] [--workdir DIR]

Writes shards and manifests for ``--runs`` runs x ``--histograms`` 1D histograms of ``--bins``
bins (two subsystems), as the fetch stage does, then merges them in a separate process as the
workflow does (the AutoDQM_ML table, the per-subsystem storage of model jobs and the entries
table) and prints its wall time and peak RSS (target: < 2 GB), the size of the table in memory if
it were built at once, and checks that pandas and awkward read the result.
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
import pyarrow.parquet as pq

from dqmflow.discover import DqmFile, batch_of
from dqmflow.fetch import _manifest_row, _shard_table, _write_manifest, shard_path
from dqmflow.names import HistogramName
from dqmflow.rootio import Histogram

MERGE = """
import sys, time
from pathlib import Path
from dqmflow.merge import merge
from dqmflow.names import HistogramName
work = Path(sys.argv[1])
names = [HistogramName.from_column(c) for c in (work / "columns.txt").read_text().splitlines()]
manifests = {s.name: sorted(s.glob("*.tsv")) for s in (work / "shards").iterdir()}
start = time.perf_counter()
merge(manifests, names, {}, work / "histograms.parquet", work / "report.tsv", entries=work / "entries.parquet",
      storage={s: work / "data" / f"{s}.parquet" for s in manifests})
print(f"{time.perf_counter() - start:.1f}")
"""


def write_shards(work: Path, runs: int, histograms: int, bins: int) -> list[HistogramName]:
    rng = np.random.default_rng(1)
    names = [HistogramName("SubA" if i % 2 else "SubB", f"/Run summary/folder/h{i:03d}") for i in range(histograms)]
    edges = (np.linspace(0.0, 1.0, bins + 1),)
    shape = np.exp(-0.5 * np.linspace(-2, 2, bins) ** 2)
    for subsystem in ("SubA", "SubB"):
        mine = [n for n in names if n.subsystem == subsystem]
        rows = []
        manifest = work / "shards" / subsystem / f"{batch_of(300000, 100000)}.tsv"
        for run in range(300000, 300000 + runs):
            item = DqmFile(run, 2022, "C", "x", 1, "PD", f"/data/{run}.root")
            found = {}
            for name in mine:
                values = rng.poisson(shape * 50).astype(float)
                found[name.column] = hist = Histogram(values, edges, float(values.sum()), "TH1F", name.short)
                rows.append(_manifest_row(item, name.column, "ok", "", hist))
            path = shard_path(manifest.with_suffix(""), run)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(_shard_table(found), path)
        _write_manifest(rows, manifest)
    (work / "columns.txt").write_text("\n".join(n.column for n in names))
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--histograms", type=int, default=200)
    parser.add_argument("--bins", type=int, default=100)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dqmflow-bench-merge-"))
    if not (work / "columns.txt").exists():
        start = time.perf_counter()
        write_shards(work, args.runs, args.histograms, args.bins)
        print(f"wrote {2 * args.runs} shards in {time.perf_counter() - start:.1f} s")
    proc = subprocess.run([sys.executable, "-c", MERGE, str(work)], check=True, capture_output=True, text=True)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    dense_mb = args.runs * args.histograms * args.bins * 8 / 2**20
    table = work / "histograms.parquet"
    print(f"{args.runs} runs x {args.histograms} histograms x {args.bins} bins")
    print(f"merge: {float(proc.stdout.strip()):.1f} s, peak RSS {peak_mb:.0f} MB (target < 2048 MB); "
          f"the bin contents alone are {dense_mb:.0f} MB; file {table.stat().st_size / 2**20:.0f} MB")  # fmt: skip
    import awkward as ak
    import pandas as pd

    first = (work / "columns.txt").read_text().splitlines()[0]
    frame = pd.read_parquet(table, columns=["run_number", first])
    array = ak.from_parquet(table, columns=[first])
    assert len(frame) == args.runs and len(frame[first].iloc[0]) == args.bins
    assert ak.to_numpy(array[first]).shape == (args.runs, args.bins)
    print(f"pandas and awkward read it: {len(frame)} rows, column {first!r} of {args.bins} bins")


if __name__ == "__main__":
    main()
