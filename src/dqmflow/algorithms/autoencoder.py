"""Dense autoencoder of unit-area histograms, one network per histogram (AutoDQM_ML's defaults).

Encoder: ``n_hidden_layers`` dense layers of ``n_nodes`` (ReLU, optional batch norm and dropout)
down to a ``n_components``-dimensional latent space; the decoder mirrors it with a linear output.
Inputs are unit-area histograms multiplied by the number of bins (mean bin content 1) so the
loss is well scaled for any binning. Training: Adam, MSE, early stopping on a validation part of
the training runs after ``early_stopping_rounds`` epochs without improvement, restoring the best
weights. Method: Hinton & Salakhutdinov, Science 313 (2006) 504; for DQM, AutoDQM_ML (CMS).

TensorFlow/Keras are imported only to train (``pip install 'dqmflow[ml]'``): :meth:`save` also
writes the weights to ``dense.npz`` and :meth:`load` scores with a numpy forward pass, so scoring
jobs do not pay TensorFlow's import (about 7 s) and can run where it is not installed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, Self, cast

import numpy as np

from dqmflow.algorithms.base import NotEnoughData, ReconstructionAlgorithm, param, register
from dqmflow.algorithms.losses import LossName
from dqmflow.preprocess import HistogramSet
from dqmflow.runtable import assign_split


def _keras() -> Any:
    if "XRootD.client" in sys.modules and "tensorflow" not in sys.modules:
        raise RuntimeError(
            "TensorFlow cannot be loaded into a process that already uses the XRootD client (their native "
            "libraries clash and crash the interpreter); train in a separate process, as the workflow's jobs do"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import keras
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError("the autoencoder needs TensorFlow and Keras: pip install 'dqmflow[ml]'") from err
    threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    if threads:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised in this process
            pass
    return keras


@register("autoencoder")
class DenseAutoencoder(ReconstructionAlgorithm):
    """Dense (fully connected) autoencoder on the flattened histogram."""

    @dataclasses.dataclass(frozen=True)
    class Params:
        n_hidden_layers: int = param(2, "dense layers in the encoder (and in the decoder)", minimum=0)
        n_nodes: int = param(25, "units per hidden layer", minimum=1)
        n_components: int = param(3, "size of the latent space", minimum=1)
        dropout: float = param(0.0, "dropout rate after each hidden layer", minimum=0.0, maximum=0.9)
        batch_norm: bool = param(False, "batch normalisation after each hidden layer")
        batch_size: int = param(16, "training batch size", minimum=1)
        val_batch_size: int = param(1024, "validation batch size", minimum=1)
        n_epochs: int = param(1000, "maximum number of epochs", minimum=1)
        early_stopping_rounds: int = param(3, "epochs without validation improvement before stopping", minimum=1)
        learning_rate: float = param(1e-3, "Adam learning rate", minimum=0.0)
        validation_fraction: float = param(0.2, "training runs held out for early stopping", 0.0, 0.9)
        seed: int = param(0, "seed of weights, shuffling and the validation split")
        loss: LossName = param("sse", "score: loss between histogram and reconstruction")
        top_n: int = param(10, "bins averaged by the mse_top_n loss", minimum=1)

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
        train = data.training
        if len(train) < 2:
            raise NotEnoughData(f"{data.name.column}: the autoencoder needs at least 2 training runs, got {len(train)}")
        keras.utils.set_random_seed(p.seed)
        x = train.normalised.reshape(len(train), -1) * train.normalised[0].size
        val = np.array([assign_split(int(r), p.seed + 1, p.validation_fraction) == "train" for r in train.runs])
        if p.validation_fraction == 0 or val.all() or not val.any():
            val = np.zeros(len(x), dtype=bool)
        self.model_ = self._build(x.shape[1])
        callbacks = []
        fit_args: dict[str, Any] = {}
        if val.any():
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=p.early_stopping_rounds, restore_best_weights=True
                )
            )
            fit_args = {"validation_data": (x[val], x[val]), "validation_batch_size": p.val_batch_size}
        history = self.model_.fit(
            x[~val],
            x[~val],
            batch_size=p.batch_size,
            epochs=p.n_epochs,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
            **fit_args,
        )
        self.history_ = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        return self

    def reconstruct(self, data: HistogramSet) -> np.ndarray:
        n_bins = int(np.prod(data.shape))
        x = data.normalised.reshape(len(data), -1) * n_bins
        if self.layers_:
            reco = _forward(self.layers_, x)
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
        return _forward(self.layers_[: bottleneck + 1], x)

    def save(self, directory: Path) -> None:
        self.model_.save(directory / "model.keras")
        arrays: dict[str, np.ndarray] = {}
        spec = []
        for layer in self.model_.layers:
            kind = type(layer).__name__
            weights = [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
            if kind == "Dense":
                spec.append({"type": "dense", "activation": layer.get_config()["activation"]})
                arrays[f"{len(spec) - 1}_kernel"], arrays[f"{len(spec) - 1}_bias"] = weights
            elif kind == "BatchNormalization":
                spec.append({"type": "batchnorm", "epsilon": float(layer.epsilon)})
                for name, w in zip(("gamma", "beta", "mean", "variance"), weights, strict=True):
                    arrays[f"{len(spec) - 1}_{name}"] = w
            elif kind not in ("InputLayer", "Dropout"):  # dropout is the identity at inference
                raise TypeError(f"cannot export layer {kind} for numpy inference")
        np.savez(directory / "dense.npz", **cast(dict[str, Any], {"spec": json.dumps(spec), **arrays}))
        (directory / "summary.json").write_text(json.dumps({"history": self.history_}, indent=1))

    @classmethod
    def load(cls, directory: Path, params: Params) -> Self:
        """Load the network's weights for numpy inference (no TensorFlow needed to score)."""
        model = cls(params)
        if not (directory / "dense.npz").exists():  # written before numpy inference existed
            model.model_ = _keras().models.load_model(directory / "model.keras", compile=False)
            return model
        with np.load(directory / "dense.npz") as stored:
            spec = json.loads(str(stored["spec"]))
            model.layers_ = [
                {**layer, **{k.split("_", 1)[1]: stored[k] for k in stored.files if k.startswith(f"{i}_")}}
                for i, layer in enumerate(spec)
            ]
        return model


_ACTIVATIONS = {"linear": lambda z: z, "relu": lambda z: np.maximum(z, 0.0)}


def _forward(layers: list[dict[str, Any]], x: np.ndarray) -> np.ndarray:
    """The network's inference pass in numpy (dense layers and batch normalisation)."""
    for layer in layers:
        if layer["type"] == "dense":
            x = _ACTIVATIONS[layer["activation"]](x @ layer["kernel"] + layer["bias"])
        else:
            x = (x - layer["mean"]) / np.sqrt(layer["variance"] + layer["epsilon"]) * layer["gamma"] + layer["beta"]
    return x
