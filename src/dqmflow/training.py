"""When a chunk's models must be retrained: the training key.

A model depends on its params and code, on how runs are cut (preprocessing), on its histograms, and on its
training candidates: the runs of its *pool* that the hash split puts in ``train`` and that are
not labelled bad, each with the signature of its file (path, size, mtime). The pool is the runs
that existed when the chunk was trained; runs added later are not candidates until the user asks
to retrain (``retrain=True``), so adding runs retrains nothing, while a candidate whose file
changed, that left the selection, or that was labelled bad (or a bad run relabelled good) changes
the key.

The workflow computes the key when it plans (from the discovery catalog and the datasets file)
and compares it with the key in the chunk's training record; the train job computes it again from
the run table (which carries the same signatures and labels) to find the pool the plan meant, and
writes it with the pool into the record. Both sides use :func:`training_key`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dqmflow.metadata import BAD
from dqmflow.runtable import uniform

__all__ = ["candidates_digest", "read_training_record", "training_key", "write_training_record"]


def candidates_digest(
    pool: Iterable[int], signatures: Mapping[int, str], labels: Mapping[int, int], preprocessing: Mapping[str, Any]
) -> str:
    """Digest of the training candidates among ``pool`` (runs missing from ``signatures``, i.e. no
    longer selected, are left out)."""
    seed, fraction = int(preprocessing["seed"]), float(preprocessing["train_fraction"])
    digest = hashlib.sha1()
    for run in sorted(set(pool) & set(signatures)):
        if labels.get(run, -1) != BAD and uniform(run, seed) < fraction:
            digest.update(f"{run}|{signatures[run]}\n".encode())
    return digest.hexdigest()


def training_key(
    pool: Iterable[int],
    signatures: Mapping[int, str],
    labels: Mapping[int, int],
    *,
    algorithm: Mapping[str, Any],
    preprocessing: Mapping[str, Any],
    columns: Sequence[str],
    code: str = "",
    candidates: str | None = None,
) -> str:
    """The key of a chunk trained among the runs of ``pool`` (``code``: the digest of the
    algorithm's source, :meth:`AlgorithmConfig.code_digest`; ``candidates``: the runs' digest, if
    already computed by :func:`candidates_digest`)."""
    config = json.dumps(
        {"algorithm": algorithm, "preprocessing": preprocessing, "columns": list(columns), "code": code},
        sort_keys=True,
        default=str,
    )
    digest = candidates if candidates is not None else candidates_digest(pool, signatures, labels, preprocessing)
    return hashlib.sha1(f"{config}\n{digest}".encode()).hexdigest()[:20]


def read_training_record(path: str | Path) -> tuple[list[int] | None, str]:
    """(the chunk's pool, its training key); ``(None, "")`` if the chunk was never trained."""
    try:
        raw = json.loads(Path(path).read_text())
        return [int(r) for r in raw["pool"]], str(raw["key"])
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return None, ""


def write_training_record(path: str | Path, pool: Iterable[int], key: str, **extra: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"key": key, "pool": sorted(int(r) for r in pool), **extra}))
