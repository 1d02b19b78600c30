"""The one registry of reconstruction losses: a histogram's distance to its reconstruction.

Every reconstruction algorithm (PCA, autoencoders, ...) declares ``loss: LossName`` in its
``Params`` and scores with :func:`reconstruction_loss`. Adding a loss means adding one function
to :data:`LOSSES` and its name to :data:`LossName`.

* ``sse``: sum of squared residuals of unit-area histograms (AutoDQM_ML);
* ``mse``: their mean;
* ``mse_top_n``: mean of the ``top_n`` largest squared residuals (CMS ML4DQM's mseTopN), which a
  local defect such as a dead bin cannot hide in;
* ``chi2``: mean Poisson pull squared, (d - N r)^2 / max(N r, 1), with d the raw counts and N
  their total, which does not grow for runs with fewer entries the way ``sse`` does;
* ``chi2_top_n``: the sum of the ``top_n`` largest (x - r)^2 / x over the non-empty bins of the
  unit-area histogram x (CMS ML4DQM's chi2TopN): a hot bin dominates it; bins empty in the data
  are left out by that definition (``mse_top_n`` sees a dead bin).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Literal

import numpy as np

__all__ = ["LOSSES", "LossName", "reconstruction_loss"]

LossName = Literal["sse", "mse", "mse_top_n", "chi2", "chi2_top_n"]

#: (unit-area histograms, reconstructions, raw counts, top_n) -> one loss per run; runs first.
LossFunction = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


def _squared(x: np.ndarray, reco: np.ndarray) -> np.ndarray:
    return ((x - reco) ** 2).reshape(len(x), -1)


def _sse(x: np.ndarray, reco: np.ndarray, counts: np.ndarray, top_n: int) -> np.ndarray:
    return _squared(x, reco).sum(axis=1)


def _mse(x: np.ndarray, reco: np.ndarray, counts: np.ndarray, top_n: int) -> np.ndarray:
    return _squared(x, reco).mean(axis=1)


def _mse_top_n(x: np.ndarray, reco: np.ndarray, counts: np.ndarray, top_n: int) -> np.ndarray:
    sq = _squared(x, reco)
    n = min(top_n, sq.shape[1])
    return np.sort(sq, axis=1)[:, -n:].mean(axis=1)


def _chi2(x: np.ndarray, reco: np.ndarray, counts: np.ndarray, top_n: int) -> np.ndarray:
    d = counts.reshape(len(counts), -1)
    expected = np.clip(reco.reshape(len(reco), -1), 0.0, None) * d.sum(axis=1, keepdims=True)
    return ((d - expected) ** 2 / np.maximum(expected, 1.0)).mean(axis=1)


def _chi2_top_n(x: np.ndarray, reco: np.ndarray, counts: np.ndarray, top_n: int) -> np.ndarray:
    flat, expected = x.reshape(len(x), -1), reco.reshape(len(reco), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(flat > 0, (flat - expected) ** 2 / flat, 0.0)
    n = min(top_n, terms.shape[1])
    return np.sort(terms, axis=1)[:, -n:].sum(axis=1)


LOSSES: dict[str, LossFunction] = {
    "sse": _sse,
    "mse": _mse,
    "mse_top_n": _mse_top_n,
    "chi2": _chi2,
    "chi2_top_n": _chi2_top_n,
}
assert set(typing.get_args(LossName)) == set(LOSSES), "LossName and LOSSES must list the same losses"


def reconstruction_loss(x: np.ndarray, reco: np.ndarray, kind: str, top_n: int, counts: np.ndarray) -> np.ndarray:
    """Per-run loss ``kind`` between unit-area histograms ``x`` and ``reco`` (raw ``counts`` for chi2)."""
    try:
        function = LOSSES[kind]
    except KeyError:
        raise ValueError(f"unknown loss {kind!r}; choose from {sorted(LOSSES)}") from None
    return function(x, reco, counts, top_n)
