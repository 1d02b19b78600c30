"""Dense autoencoder of unit-area histograms, one network per histogram (AutoDQM_ML's defaults).

Encoder: ``n_hidden_layers`` dense layers of ``n_nodes`` (ReLU, optional batch norm and dropout)
down to a ``n_components``-dimensional latent space; the decoder mirrors it with a linear output.
Inputs are unit-area histograms multiplied by the number of bins (mean bin content 1) so the
loss is well scaled for any binning. Training: Adam, MSE, early stopping on a validation part of
the training runs after ``early_stopping_rounds`` epochs without improvement, restoring the best
weights. Method: Hinton & Salakhutdinov, Science 313 (2006) 504; for DQM, AutoDQM_ML (CMS).

TensorFlow/Keras are imported only to train (``pip install 'dqmflow[ml]'``): :meth:`save` also
writes the weights to ``dense.npz`` and :meth:`load` scores with a numpy forward pass, so scoring
jobs do not pay TensorFlow's import (about 7 s) and can run where it is not installed. The Keras
import, training loop and numpy inference are shared with the other autoencoders
(:mod:`dqmflow.algorithms._network`); ``dense.npz`` keeps its sequential format.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Self, cast

import numpy as np

from dqmflow.algorithms._network import TrainingParams, export_sequential, forward, load_network, train, validation_mask
from dqmflow.algorithms._network import keras_module as _keras
from dqmflow.algorithms.base import NotEnoughData, ReconstructionAlgorithm, param, register
from dqmflow.preprocess import HistogramSet


@register("autoencoder")
class DenseAutoencoder(ReconstructionAlgorithm):
    """Dense (fully connected) autoencoder on the flattened histogram."""

    trains_network = True

    @dataclasses.dataclass(frozen=True)
    class Params(TrainingParams):
        n_hidden_layers: int = param(2, "dense layers in the encoder (and in the decoder)", minimum=0)
        n_nodes: int = param(25, "units per hidden layer", minimum=1)
        n_components: int = param(3, "size of the latent space", minimum=1)

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.model_: Any = None
        self.layers_: list[dict[str, Any]] = []  # numpy weights, when loaded from disk
        self.history_: dict[str, list[float]] = {}

    def _build(self, n_inputs: int) -> Any:
        keras = _keras()
        p = self.params
        inputs = keras.Input(shape=(n_inputs,))
        x = inputs
        sizes = [p.n_nodes] * p.n_hidden_layers
        for i, units in enumerate([*sizes, p.n_components, *sizes]):
            latent = i == len(sizes)
            x = keras.layers.Dense(units, activation="linear" if latent else "relu")(x)
            if not latent:
                if p.batch_norm:
                    x = keras.layers.BatchNormalization()(x)
                if p.dropout > 0:
                    x = keras.layers.Dropout(p.dropout)(x)
        outputs = keras.layers.Dense(n_inputs, activation="linear")(x)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=p.learning_rate), loss="mse")
        return model

    def fit(self, data: HistogramSet) -> Self:
        keras = _keras()
        p = self.params
        runs = data.training
        if len(runs) < 2:
            raise NotEnoughData(f"{data.name.column}: the autoencoder needs at least 2 training runs, got {len(runs)}")
        keras.utils.set_random_seed(p.seed)
        x = runs.normalised.reshape(len(runs), -1) * runs.normalised[0].size
        self.model_ = self._build(x.shape[1])
        self.history_ = train(self.model_, x, x, validation_mask(runs.runs, p.seed, p.validation_fraction), p)
        return self

    def reconstruct(self, data: HistogramSet) -> np.ndarray:
        n_bins = int(np.prod(data.shape))
        x = data.normalised.reshape(len(data), -1) * n_bins
        if self.layers_:
            reco = forward(self.layers_, x)
        elif self.model_ is not None:
            reco = self.model_.predict(x, batch_size=self.params.val_batch_size, verbose=0)
        else:
            raise RuntimeError("autoencoder is not fitted")
        return np.asarray(reco, dtype=np.float64).reshape(data.counts.shape) / n_bins

    def latent(self, data: HistogramSet) -> np.ndarray | None:
        """The encoder's output (the bottleneck); with numpy inference only (else ``None``)."""
        if not self.layers_:
            return None
        dense = [i for i, layer in enumerate(self.layers_) if layer["type"] == "dense"]
        bottleneck = dense[self.params.n_hidden_layers]  # encoder layers, then the latent layer
        x = data.normalised.reshape(len(data), -1) * int(np.prod(data.shape))
        return forward(self.layers_[: bottleneck + 1], x)

    def save(self, directory: Path) -> None:
        self.model_.save(directory / "model.keras")
        spec, arrays = export_sequential(self.model_)
        np.savez(directory / "dense.npz", **cast(dict[str, Any], {"spec": json.dumps(spec), **arrays}))
        (directory / "summary.json").write_text(json.dumps({"history": self.history_}, indent=1))

    @classmethod
    def load(cls, directory: Path, params: Params) -> Self:
        """Load the network's weights for numpy inference (no TensorFlow needed to score)."""
        model = cls(params)
        if not (directory / "dense.npz").exists():  # written before numpy inference existed
            model.model_ = _keras().models.load_model(directory / "model.keras", compile=False)
            return model
        model.layers_ = load_network(directory / "dense.npz").nodes
        return model
