"""Convolutional autoencoder, one network per histogram: Conv1D for 1D histograms, Conv2D for 2D
maps kept two-dimensional (AutoDQM_ML's ``cnn`` architecture and hyper-parameter names).

Architecture (every layer ``padding="same"``, ReLU, optional batch norm and dropout after each
hidden layer)::

    input (bins[, bins], 1)
      -> n_hidden_layers x Conv(n_filters, kernel, strides)     encoder; size -> ceil(size / strides)
      -> flatten -> Dense(n_components, linear)                 the latent space (``latent()``)
      -> Dense(encoded size x n_filters) -> reshape
      -> n_hidden_layers x [UpSampling(strides) -> Conv(n_filters, kernel)]
      -> Conv(1 filter, kernel, linear) -> crop to the input's shape -> flatten
      [-> softmax over all bins, times the number of bins]       with ``softmax_output``

Upsampling by the strides gives at least the input's size, so the crop restores exactly the
input's shape: a 7-bin histogram or a 3x5 map works with strides 2 too. Inputs and training
targets are unit-area histograms times the number of bins (mean bin content 1, as for the dense
autoencoder). With ``softmax_output`` the network's output is a distribution over the bins
(non-negative, summing to one), as in jet-image autoencoders; it is multiplied by the number of
bins inside the network so the training loss (MSE) has the scale of the linear version.
:meth:`reconstruct` scales the output to unit area (a no-op for the softmax output; the linear
output's sum is within a few per cent of one), and the score is the loss between it and the
unit-area histogram. Training is that of
the dense autoencoder: Adam on the ``train`` runs (never labelled bad), early stopping on a
deterministic part of them (a hash of the run and the seed), best weights restored, seeded with
``keras.utils.set_random_seed``.

References: AutoDQM_ML (CMS, github.com/AutoDQM/AutoDQM_ML) for autoencoders on DQM histograms
and its hyper-parameters; J. Masci, U. Meier, D. Cireşan, J. Schmidhuber, "Stacked
convolutional auto-encoders for hierarchical feature extraction", ICANN 2011; T. Heimel, G.
Kasieczka, T. Plehn, J. Thompson, "QCD or what?", SciPost Phys. 6 (2019) 030, arXiv:1808.08992
(autoencoders on jet images).

TensorFlow/Keras are imported only to train (``pip install 'dqmflow[ml]'``): :meth:`save`
writes the Keras model and a numpy export of the graph and weights (``network.npz``, format in
:mod:`dqmflow.algorithms._network`); :meth:`load` reads the export and ``reconstruct``,
``score`` and ``latent`` run a numpy forward pass, so scoring jobs never import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Self

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
from dqmflow.algorithms.base import NotEnoughData, ReconstructionAlgorithm, param, register
from dqmflow.preprocess import HistogramSet

__all__ = ["ConvAutoencoder"]

NETWORK_FILE = "network.npz"


@register("conv_autoencoder")
class ConvAutoencoder(ReconstructionAlgorithm):
    """Convolutional autoencoder (see the module docstring)."""

    trains_network = True

    @dataclasses.dataclass(frozen=True)
    class Params(TrainingParams):
        kernel_1d: int = param(3, "kernel size of the Conv1D layers (1D histograms)", minimum=1)
        kernel_2d: int = param(3, "side of the square kernel of the Conv2D layers (2D maps)", minimum=1)
        strides_1d: int = param(1, "strides of the encoder's Conv1D layers", minimum=1)
        strides_2d: int = param(1, "strides of the encoder's Conv2D layers (both axes)", minimum=1)
        n_filters: int = param(8, "filters per convolutional layer", minimum=1)
        n_hidden_layers: int = param(2, "convolutional layers in the encoder (and in the decoder)", minimum=0)
        n_components: int = param(3, "size of the dense latent space", minimum=1)
        softmax_output: bool = param(False, "the output is a softmax over all bins (a distribution)")

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.model_: Any = None  # the Keras model, after fit
        self.network_: Network | None = None  # numpy inference, after fit or load
        self.history_: dict[str, list[float]] = {}

    def _build(self, shape: tuple[int, ...]) -> tuple[Any, GraphBuilder, dict[str, str]]:
        keras = keras_module()
        p = self.params
        if len(shape) not in (1, 2):
            raise ValueError(f"the convolutional autoencoder takes 1D or 2D histograms, not shape {shape}")
        kernel = [p.kernel_1d] if len(shape) == 1 else [p.kernel_2d] * 2
        strides = [p.strides_1d] if len(shape) == 1 else [p.strides_2d] * 2
        g = GraphBuilder(keras)
        x = g.input((*shape, 1))
        size = list(shape)
        for _ in range(p.n_hidden_layers):
            x = g.regularise(g.conv(x, p.n_filters, kernel, strides, "relu"), p.batch_norm, p.dropout)
            size = [-(-n // s) for n, s in zip(size, strides, strict=True)]
        channels = p.n_filters if p.n_hidden_layers else 1
        latent = g.dense(g.flatten(x), p.n_components, "linear")
        x = g.regularise(g.dense(latent, int(np.prod(size)) * channels, "relu"), p.batch_norm, p.dropout)
        x = g.reshape(x, (*size, channels))
        for _ in range(p.n_hidden_layers):
            if any(s > 1 for s in strides):
                x = g.upsample(x, strides)
                size = [n * s for n, s in zip(size, strides, strict=True)]
            x = g.regularise(g.conv(x, p.n_filters, kernel, [1] * len(shape), "relu"), p.batch_norm, p.dropout)
        x = g.conv(x, 1, kernel, [1] * len(shape), "linear")
        if size != list(shape):
            x = g.crop(x, size, shape)
        x = g.flatten(x)
        if p.softmax_output:
            x = g.scale(g.activation(x, "softmax"), int(np.prod(shape)))
        model = g.model([x])
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=p.learning_rate), loss="mse")
        return model, g, {"output": x, "latent": latent}

    @staticmethod
    def _inputs(data: HistogramSet) -> np.ndarray:
        """Unit-area histograms times the number of bins, with a channel axis."""
        return np.asarray(data.normalised * int(np.prod(data.shape)))[..., None]

    def fit(self, data: HistogramSet) -> Self:
        keras = keras_module()
        p = self.params
        runs = data.training
        if len(runs) < 2:
            raise NotEnoughData(
                f"{data.name.column}: the convolutional autoencoder needs at least 2 training runs, got {len(runs)}"
            )
        keras.utils.set_random_seed(p.seed)
        x = self._inputs(runs)
        self.model_, graph, ends = self._build(data.shape)
        target = x.reshape(len(x), -1)
        self.history_ = train(self.model_, x, target, validation_mask(runs.runs, p.seed, p.validation_fraction), p)
        self.network_ = export(self.model_, graph, [ends["output"]], {"latent": ends["latent"], "shape": data.shape})
        return self

    def _network(self) -> Network:
        if self.network_ is None:
            raise RuntimeError("convolutional autoencoder is not fitted")
        return self.network_

    def _check_shape(self, data: HistogramSet) -> None:
        expected = tuple(self._network().meta["shape"])
        if data.shape != expected:
            raise ValueError(f"{data.name.column}: model trained on shape {expected}, histograms have {data.shape}")

    def reconstruct(self, data: HistogramSet) -> np.ndarray:
        """Expected unit-area histograms (numpy inference; see the module docstring)."""
        self._check_shape(data)
        (reco,) = self._network()([self._inputs(data)])
        return unit_area(np.asarray(reco, dtype=np.float64).reshape(data.counts.shape))

    def keras_reconstruct(self, data: HistogramSet) -> np.ndarray:
        """:meth:`reconstruct` with the Keras model (after :meth:`fit` only; for checks)."""
        reco = self.model_(self._inputs(data), training=False)
        return unit_area(np.asarray(reco, dtype=np.float64).reshape(data.counts.shape))

    def latent(self, data: HistogramSet) -> np.ndarray:
        """The bottleneck's coordinates (runs x ``n_components``)."""
        self._check_shape(data)
        network = self._network()
        (coordinates,) = network([self._inputs(data)], [network.meta["latent"]])
        return coordinates

    def save(self, directory: Path) -> None:
        self.model_.save(directory / "model.keras")
        save_network(directory / NETWORK_FILE, self._network())
        (directory / "summary.json").write_text(json.dumps({"history": self.history_}, indent=1))

    @classmethod
    def load(cls, directory: Path, params: Params) -> Self:
        """Read the numpy export (no TensorFlow needed to score)."""
        model = cls(params)
        model.network_ = load_network(directory / NETWORK_FILE)
        return model
