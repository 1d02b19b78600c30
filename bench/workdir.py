"""Shared by the benchmarks: a working directory with its own config, and running Snakemake in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
MARKER = ".dqmflow-bench"


def fresh_workdir(work: Path) -> None:
    """Empty ``work`` for a new benchmark run: only a folder a benchmark made (it holds
    :data:`MARKER`) or an empty one is removed; anything else stops the benchmark."""
    if work.exists() and any(work.iterdir()):
        if not (work / MARKER).exists():
            raise SystemExit(f"{work} is not empty and was not made by a benchmark: choose another --workdir")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / MARKER).write_text("made by a dqmflow benchmark; removed by the next one run here\n")


def write_config(work: Path, **overrides: Any) -> dict[str, Any]:
    """``work/config/config.yaml``: the shipped config with absolute paths, updated by ``overrides``
    (nested sections are merged key by key)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for key in ("contents", "datasets"):
        config[key] = str(REPO / config[key])
    config["algorithms"] = [str(REPO / a) for a in config["algorithms"]]
    for key, value in overrides.items():
        if isinstance(value, dict):
            config[key] = {**config.get(key, {}), **value}
        else:
            config[key] = value
    (work / "config").mkdir(parents=True, exist_ok=True)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return config


def snakemake(work: Path, *args: str, capture: bool = True) -> str:
    """Run the workflow in ``work`` (the repository's Snakefile); returns its standard output."""
    env = {**os.environ, "CONDOR_CONFIG": os.environ.get("CONDOR_CONFIG", "/dev/null")}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
           "--directory", str(work), *args]  # fmt: skip
    proc = subprocess.run(cmd, check=True, env=env, capture_output=capture, text=True)
    return proc.stdout or ""
