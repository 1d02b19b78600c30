"""Seed ensembles: one model per training seed, reported as the median with a 68% band.

A stochastic algorithm (its ``Params`` has a ``seed``: autoencoders) gives different scores for
different seeds; a single seed hides that training variance. With ``seeds: [...]`` in an
algorithm config, every seed trains its own model; a run's score is the median over seeds, and
``score_lo``/``score_hi`` are the 16th and 84th percentiles (the 68% band), as sk_cathode reports
every method (the median over training seeds with a 68% band). The per-seed scores go to the
score table too (``score_seed_<seed>``), so that the assessment reports the AUC as a median with
a 68% band over seeds next to the bootstrap band.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from dqmflow.algorithms.base import MultiHistogramAlgorithm, ScoreBlock
from dqmflow.preprocess import Batch
from dqmflow.runtable import RunTable

__all__ = ["SEED_BAND", "Ensemble", "seed_folder"]

#: Percentiles of the band over seeds (a 68% central interval).
SEED_BAND = (16.0, 84.0)


def seed_folder(directory: Path, seed: int) -> Path:
    """Where the model of ``seed`` lives inside a histogram's model folder."""
    return directory / f"seed_{seed}"


class Ensemble(MultiHistogramAlgorithm):
    """The same algorithm trained with several seeds (see the module docstring)."""

    def __init__(self, members: Sequence[MultiHistogramAlgorithm], seeds: Sequence[int]) -> None:
        if len(members) != len(seeds) or len(seeds) < 2:
            raise ValueError("an ensemble needs one member per seed and at least two seeds")
        self.members = list(members)
        self.seeds = [int(s) for s in seeds]
        self.params = members[0].params

    @classmethod
    def build(cls, build_member: Any, params: Any, seeds: Sequence[int]) -> Ensemble:
        """``build_member(params)`` for each seed, with ``params.seed`` set to it."""
        return cls([build_member(dataclasses.replace(params, seed=s)) for s in seeds], seeds)

    def _params_class(self) -> type:
        return type(self.params)

    def fit(self, batch: Batch) -> dict[str, str]:
        """Fit every member; a histogram that any seed cannot fit is not fitted."""
        failures: dict[str, str] = {}
        for seed, member in zip(self.seeds, self.members, strict=True):
            for column, reason in member.fit(batch).items():
                failures.setdefault(column, f"seed {seed}: {reason}")
        return failures

    def score(self, batch: Batch) -> ScoreBlock:
        blocks = [member.score(batch) for member in self.members]
        stacked = np.stack([b.score for b in blocks], axis=-1)  # runs x columns x seeds
        with warnings.catch_warnings():  # a run no seed scored stays NaN ("All-NaN slice")
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(stacked, axis=-1)
            lo, hi = (np.nanpercentile(stacked, q, axis=-1) for q in SEED_BAND)
        return ScoreBlock(blocks[0].columns, median, lo, hi, seed_scores=stacked, seeds=tuple(self.seeds))

    def reconstruct(
        self, batch: Batch, runs: np.ndarray, columns: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """The mean of the members' reconstructions."""
        recos = [member.reconstruct(batch, runs, columns) for member in self.members]
        common = set(recos[0]).intersection(*recos[1:])
        return {c: np.mean([r[c] for r in recos], axis=0) for c in recos[0] if c in common}

    def latent(self, batch: Batch) -> dict[str, np.ndarray]:
        """The latent space of the first seed (latent spaces of different seeds do not align)."""
        return self.members[0].latent(batch)

    def bind(self, table: RunTable) -> str:
        digests = [member.bind(table) for member in self.members]
        return "|".join(digests) if any(digests) else ""

    def runs_needed(self, table: RunTable, runs: np.ndarray) -> np.ndarray:
        needed = [member.runs_needed(table, runs) for member in self.members]
        return np.unique(np.concatenate(needed)).astype(np.int64)

    def save(self, directories: Mapping[str, Path]) -> None:
        for seed, member in zip(self.seeds, self.members, strict=True):
            folders = {c: seed_folder(Path(d), seed) for c, d in directories.items()}
            for folder in folders.values():
                folder.mkdir(parents=True, exist_ok=True)
            member.save(folders)

    @classmethod
    def load(cls, directories: Mapping[str, Path], params: Any) -> Self:
        raise TypeError("load an ensemble with AlgorithmConfig.load")
