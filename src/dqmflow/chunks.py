"""The two small files that tie a chunk's model jobs together without listing its histograms in
Snakemake's records.

Snakemake records every input and parameter of a job with each of its outputs. A score job of 200
histograms has 400 outputs (a score and a reconstruction file per histogram): listing its
histograms and their 200 model folders as parameters and inputs made its records 200 x 400 paths,
about 12 MB per job, and 493 MB of ``.snakemake/metadata`` for AutoDQM's 2,240 DT histograms. So:

* ``results/<PD>/chunks/<CHUNK>.json`` (rule ``chunk_histograms``) names the chunk's histograms,
  once; the train jobs of every algorithm config read it;
* ``results/<PD>/training/<ALGO>/<CHUNK>.models.json``, written by the train job, names the model
  folder of each histogram; it is the score job's only model input, and is rewritten by every
  training, so that scores follow the models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["read_chunk_histograms", "read_model_manifest", "write_chunk_histograms", "write_model_manifest"]


def write_chunk_histograms(path: str | Path, columns: Sequence[str]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"histograms": list(columns)}, indent=1) + "\n", encoding="utf-8")


def read_chunk_histograms(path: str | Path, n_outputs: int | None = None) -> list[str]:
    """The chunk's histograms (AutoDQM_ML column names), checked against its ``n_outputs``."""
    columns = [str(c) for c in json.loads(Path(path).read_text(encoding="utf-8"))["histograms"]]
    if n_outputs is not None and len(columns) != n_outputs:
        raise ValueError(f"{path} names {len(columns)} histograms for {n_outputs} outputs: run snakemake again")
    return columns


def write_model_manifest(path: str | Path, models: Mapping[str, str | Path]) -> None:
    """``models``: {histogram: its model folder}, in the chunk's order."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    body = {"histograms": list(models), "models": {c: str(d) for c, d in models.items()}}
    Path(path).write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")


def read_model_manifest(path: str | Path, n_outputs: int | None = None) -> dict[str, str]:
    """{histogram: model folder} in the chunk's order, checked against the score job's outputs."""
    body = json.loads(Path(path).read_text(encoding="utf-8"))
    models = {str(c): str(body["models"][c]) for c in body["histograms"]}
    if n_outputs is not None and len(models) != n_outputs:
        raise ValueError(f"{path} names {len(models)} models for {n_outputs} histograms: run snakemake again")
    return models
