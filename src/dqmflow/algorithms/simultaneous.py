"""Simultaneous autoencoder: one network over a group of histograms (AutoDQM_ML's
``autoencoder_mode: simultaneous``).

A model job hands the algorithm the histograms of one chunk (one subsystem). They are grouped
(``group_by``: ``dimensions``, 1D apart from 2D, the default; ``shape``, identical binning; or
``all``) and every group gets one network with one input and one output head per histogram::

    per histogram: input (bins, flattened) -> n_hidden_layers x Dense(n_nodes, ReLU)
    -> concatenate -> Dense(n_components, linear)          the shared latent space
    -> per histogram: n_hidden_layers x Dense(n_nodes, ReLU) -> Dense(bins, linear)

so the bottleneck has to describe all histograms of a run at once, and correlations between them (a
detector region dead in several histograms) shape the latent space. Inputs, as for the dense
autoencoder, are unit-area histograms times their number of bins; the training loss is the sum of
the heads' mean squared errors; training (Adam, early stopping on a deterministic part of the
training runs, seeded) is the dense autoencoder's. A head's output, scaled to unit area, is its
histogram's reconstruction, and the histogram's score is the loss of the registry (``loss``,
``top_n``) between the two: every histogram keeps its own score. The price of the shared latent
space: an anomaly in one histogram moves a run's latent coordinates, so the other histograms of its
group are reconstructed worse too and score higher (in the tests, a dead region in one histogram
raises the median score of bad runs 6x for that histogram, 4x for a good histogram of the same
group, 1x for one of another group). The histogram that stands out most points at the problem; a
per-histogram AUC of the other histograms of the group counts the run, not the histogram.

Training runs of a group are the runs whose split is ``train`` for every histogram of the group.
A histogram with fewer than 2 training runs of its own is not fitted (it is reported in the
failures); so is one whose presence would leave the group fewer than 2 common training runs or
would cost the group more than half of its common training runs (e.g. a histogram often below
``min_entries``): the group is trained without it and the other histograms are unaffected.

Scoring: a run whose histogram is ``missing`` gets NaN for that histogram, and that input is
imputed with the mean training input of the histogram (a typical histogram, which tells the
network nothing unusual), so the run's other histograms are still scored. The same holds for a
histogram of the group that is not in the batch at all.

Saving: every histogram's folder is self-contained. It holds the group's Keras model
(``model.keras``), the numpy export (``network.npz``: graph, weights, and the imputation means as
``extra_mean_<head>``, format in :mod:`dqmflow.algorithms._network`) and ``group.json`` (the
group's columns in head order, this folder's column and head, an id of the trained network). Any
subset of the folders loads; scoring runs the multi-head graph in numpy, without TensorFlow.

Reference: AutoDQM_ML (CMS, github.com/AutoDQM/AutoDQM_ML), whose autoencoder trains either one
network per histogram (``individual``) or one over several (``simultaneous``); autoencoders:
Hinton & Salakhutdinov, Science 313 (2006) 504.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np

from dqmflow.algorithms._network import (
    GraphBuilder,
    Network,
    TrainingParams,
    export,
    keras_module,
    load_network,
    save_network,
    train,
    unit_area,
    validation_mask,
)
from dqmflow.algorithms.base import MultiHistogramAlgorithm, ScoreBlock, param, register
from dqmflow.algorithms.losses import reconstruction_loss
from dqmflow.preprocess import Batch, HistogramSet

__all__ = ["SimultaneousAutoencoder"]

NETWORK_FILE = "network.npz"
GROUP_FILE = "group.json"
MIN_TRAINING_RUNS = 2


@dataclasses.dataclass
class _Group:
    """One network over several histograms (heads in ``columns`` order)."""

    columns: list[str]
    shapes: list[tuple[int, ...]]
    network: Network
    key: str
    id: str
    loaded: list[str]  # columns this object scores (all after fit; the folders given after load)
    model: Any = None
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    def means(self) -> list[np.ndarray]:
        return [self.network.extras[f"mean_{i}"] for i in range(len(self.columns))]

    def inputs(self, batch: Batch, rows: np.ndarray) -> list[np.ndarray]:
        """The network's inputs for ``rows`` of ``batch``; missing histograms get the mean."""
        out = []
        for column, shape, mean in zip(self.columns, self.shapes, self.means(), strict=True):
            data = batch.histograms.get(column)
            x = np.repeat(mean[None, :], int(rows.sum()), axis=0)
            if data is not None:
                if data.shape != shape:
                    raise ValueError(f"{column}: model trained on shape {shape}, histograms have {data.shape}")
                sub = data.subset(rows)
                present = sub.split != "missing"
                x[present] = _scaled(sub)[present]
            out.append(x)
        return out


def _scaled(data: HistogramSet) -> np.ndarray:
    """Unit-area histograms times the number of bins, flattened."""
    n_bins = int(np.prod(data.shape))
    return np.asarray(data.normalised.reshape(len(data), -1) * n_bins)


@register("simultaneous_autoencoder")
class SimultaneousAutoencoder(MultiHistogramAlgorithm):
    """One dense autoencoder over a group of histograms (see the module docstring)."""

    trains_network = True

    @dataclasses.dataclass(frozen=True)
    class Params(TrainingParams):
        n_hidden_layers: int = param(2, "dense layers per histogram in the encoder (and the decoder)", minimum=0)
        n_nodes: int = param(25, "units per hidden layer", minimum=1)
        n_components: int = param(3, "size of the shared latent space", minimum=1)
        group_by: Literal["dimensions", "shape", "all"] = param(
            "dimensions", "one network per: dimensions (1D vs 2D), identical shape, or all histograms"
        )

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.groups: list[_Group] = []

    # ------------------------------------------------------------------------------- training

    def _group_key(self, data: HistogramSet) -> str:
        if self.params.group_by == "all":
            return "all"
        if self.params.group_by == "shape":
            return "x".join(str(n) for n in data.shape)
        return f"{len(data.shape)}d"

    @staticmethod
    def _members(batch: Batch, columns: list[str], failures: dict[str, str]) -> tuple[list[str], np.ndarray]:
        """The histograms the group trains on and their common training runs (see the module
        docstring); the others go to ``failures``."""
        train = {c: batch[c].split == "train" for c in columns}
        members = []
        for c in columns:
            if train[c].sum() < MIN_TRAINING_RUNS:
                failures[c] = (
                    f"{c}: the simultaneous autoencoder needs at least {MIN_TRAINING_RUNS} training runs, "
                    f"got {int(train[c].sum())}"
                )
            else:
                members.append(c)

        def common(cs: list[str]) -> np.ndarray:
            return np.logical_and.reduce([train[c] for c in cs]) if cs else np.zeros(len(batch.runs), dtype=bool)

        while len(members) > 1:
            rows = int(common(members).sum())
            without = {c: int(common([m for m in members if m != c]).sum()) for c in members}
            worst = max(members, key=lambda c: without[c])
            if rows >= MIN_TRAINING_RUNS and without[worst] <= 2 * rows:
                break
            failures[worst] = (
                f"{worst}: left out of the simultaneous autoencoder's group {members}: it is a training run in "
                f"only {int(train[worst].sum())} runs, and the group would have {rows} common training runs with "
                f"it, {without[worst]} without it"
            )
            members.remove(worst)
        return members, common(members)

    def _build(self, shapes: Sequence[tuple[int, ...]]) -> tuple[Any, GraphBuilder, list[str], str]:
        keras = keras_module()
        p = self.params
        g = GraphBuilder(keras)
        encoded = []
        for shape in shapes:
            x = g.input((int(np.prod(shape)),))
            for _ in range(p.n_hidden_layers):
                x = g.regularise(g.dense(x, p.n_nodes, "relu"), p.batch_norm, p.dropout)
            encoded.append(x)
        joined = g.concat(encoded) if len(encoded) > 1 else encoded[0]
        latent = g.dense(joined, p.n_components, "linear")
        outputs = []
        for shape in shapes:
            x = latent
            for _ in range(p.n_hidden_layers):
                x = g.regularise(g.dense(x, p.n_nodes, "relu"), p.batch_norm, p.dropout)
            outputs.append(g.dense(x, int(np.prod(shape)), "linear"))
        model = g.model(outputs)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=p.learning_rate), loss=["mse"] * len(outputs))
        return model, g, outputs, latent

    def fit(self, batch: Batch) -> dict[str, str]:
        p = self.params
        failures: dict[str, str] = {}
        grouped: dict[str, list[str]] = {}
        for column, data in batch.histograms.items():
            grouped.setdefault(self._group_key(data), []).append(column)
        self.groups = []
        for key, columns in grouped.items():
            members, rows = self._members(batch, columns, failures)
            if not members:
                continue
            keras = keras_module()
            keras.utils.set_random_seed(p.seed)  # per group: a group's network does not depend on the others
            x = [_scaled(batch[c].subset(rows)) for c in members]
            shapes = [batch[c].shape for c in members]
            model, graph, outputs, latent = self._build(shapes)
            arrays = x if len(x) > 1 else x[0]  # a one-input model takes the array itself
            val = validation_mask(batch.runs[rows], p.seed, p.validation_fraction)
            try:
                history = train(model, arrays, arrays, val, p)
            except Exception as err:
                err.add_note(f"while training {self.name} on the group {members}")
                raise
            meta = {"columns": members, "shapes": [list(s) for s in shapes], "latent": latent, "group": key}
            network = export(model, graph, outputs, meta)
            network.extras = {f"mean_{i}": xi.mean(axis=0) for i, xi in enumerate(x)}
            group_id = uuid.uuid4().hex
            self.groups.append(_Group(members, shapes, network, key, group_id, list(members), model, history))
        return failures

    # -------------------------------------------------------------------------------- scoring

    def _outputs(self, group: _Group, batch: Batch, rows: np.ndarray) -> list[np.ndarray]:
        """Each head's reconstruction of ``rows``, scaled to unit area (numpy inference)."""
        return [unit_area(out) for out in group.network(group.inputs(batch, rows))]

    def score(self, batch: Batch) -> ScoreBlock:
        scores = np.full((len(batch.runs), len(batch.columns)), np.nan)
        everything = np.ones(len(batch.runs), dtype=bool)
        for group in self.groups:
            wanted = [c for c in group.loaded if c in batch.histograms]
            if not wanted:
                continue
            recos = dict(zip(group.columns, self._outputs(group, batch, everything), strict=True))
            for column in wanted:
                data = batch[column]
                present = data.split != "missing"
                j = batch.columns.index(column)
                scores[present, j] = reconstruction_loss(
                    data.normalised[present], recos[column][present].reshape(-1, *data.shape),
                    self.params.loss, self.params.top_n, data.counts[present],
                )  # fmt: skip
        return ScoreBlock(batch.columns, scores)

    def reconstruct(
        self, batch: Batch, runs: np.ndarray, columns: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        rows = np.isin(batch.runs, runs)
        out: dict[str, np.ndarray] = {}
        for group in self.groups:
            wanted = [c for c in group.loaded if c in batch.histograms and (columns is None or c in columns)]
            if not wanted:
                continue
            recos = dict(zip(group.columns, self._outputs(group, batch, rows), strict=True))
            for column in wanted:
                out[column] = recos[column].reshape(-1, *batch[column].shape)
        return out

    def latent(self, batch: Batch) -> dict[str, np.ndarray]:
        """The group's latent coordinates, for each of its histograms (NaN where it is missing)."""
        out: dict[str, np.ndarray] = {}
        everything = np.ones(len(batch.runs), dtype=bool)
        for group in self.groups:
            wanted = [c for c in group.loaded if c in batch.histograms]
            if not wanted:
                continue
            (coordinates,) = group.network(group.inputs(batch, everything), [group.network.meta["latent"]])
            for column in wanted:
                full = coordinates.copy()
                full[batch[column].split == "missing"] = np.nan
                out[column] = full
        return out

    # ------------------------------------------------------------------------------ save/load

    def save(self, directories: Mapping[str, Path]) -> None:
        for group in self.groups:
            for head, column in enumerate(group.columns):
                if column not in directories:
                    continue
                folder = Path(directories[column])
                if group.model is not None:
                    group.model.save(folder / "model.keras")
                save_network(folder / NETWORK_FILE, group.network)
                info = {"column": column, "head": head, "columns": group.columns, "group": group.key, "id": group.id}
                (folder / GROUP_FILE).write_text(json.dumps({**info, "history": group.history}, indent=1))

    @classmethod
    def load(cls, directories: Mapping[str, Path], params: Params) -> Self:
        """Read the numpy exports of the columns in ``directories`` (any subset of a group)."""
        model = cls(params)
        by_id: dict[str, _Group] = {}
        for column, directory in directories.items():
            info = json.loads((Path(directory) / GROUP_FILE).read_text())
            if info["column"] != column:
                raise ValueError(f"{directory} holds the model of {info['column']!r}, not of {column!r}")
            group = by_id.get(info["id"])
            if group is None:
                network = load_network(Path(directory) / NETWORK_FILE)
                shapes = [tuple(int(n) for n in s) for s in network.meta["shapes"]]
                group = _Group(list(network.meta["columns"]), shapes, network, info["group"], info["id"], [])
                by_id[info["id"]] = group
            group.loaded.append(column)
        model.groups = list(by_id.values())
        return model
