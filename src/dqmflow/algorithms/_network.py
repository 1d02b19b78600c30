"""What the autoencoders share: the lazy Keras import, training, and numpy inference.

A network is built through :class:`GraphBuilder`, which creates the Keras layers and records the
same graph as plain data (one node per layer: its type, inputs and configuration). After
training, :func:`export` copies the weights into numpy arrays and :func:`save_network` writes
them with the graph to a ``.npz`` file; :func:`run_graph` evaluates the graph with numpy alone, so
scoring jobs neither import TensorFlow (about 7 s) nor need it installed.

File format (``np.savez``): ``spec`` holds a JSON document, every other key ``<i>_<weight>`` is
the weight ``<weight>`` of node ``i`` (``kernel``/``bias`` of dense and conv layers, ``gamma``/
``beta``/``mean``/``variance`` of batch normalisation) and ``extra_<name>`` an algorithm's own
array. ``spec`` is either a JSON list of nodes applied one after the other (the dense
autoencoder's ``dense.npz``) or an object ``{"format": "graph", "nodes", "inputs", "outputs",
"meta"}`` whose nodes name their ``inputs``. Node types: ``input``, ``dense``, ``conv``
(1D/2D, ``same`` padding, ``strides``), ``batchnorm``, ``dropout`` (identity at inference),
``upsample`` (nearest neighbour), ``crop`` (keep the first ``shape`` bins), ``flatten``,
``reshape``, ``activation`` (``linear``/``relu``/``softmax``), ``scale`` and ``concat``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from dqmflow.algorithms.base import param
from dqmflow.algorithms.losses import LossName
from dqmflow.runtable import assign_split

__all__ = [
    "GraphBuilder",
    "Network",
    "TrainingParams",
    "export",
    "forward",
    "keras_module",
    "load_network",
    "run_graph",
    "save_network",
    "train",
    "unit_area",
    "validation_mask",
]


def keras_module() -> Any:
    """Keras (TensorFlow backend), imported on first use, with an install hint if missing."""
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


# --------------------------------------------------------------------------------------- training


@dataclasses.dataclass(frozen=True)
class TrainingParams:
    """The hyper-parameters every autoencoder shares (AutoDQM_ML's names and defaults): how hidden
    layers are regularised, how it trains, and its score. Each autoencoder's ``Params`` adds its
    architecture to these."""

    dropout: float = param(0.0, "dropout rate after each hidden layer", minimum=0.0, maximum=0.9)
    batch_norm: bool = param(False, "batch normalisation after each hidden layer")
    batch_size: int = param(16, "training batch size", minimum=1)
    val_batch_size: int = param(1024, "validation batch size", minimum=1)
    n_epochs: int = param(1000, "maximum number of epochs", minimum=1)
    early_stopping_rounds: int = param(3, "epochs without validation improvement before stopping", minimum=1)
    learning_rate: float = param(1e-3, "Adam learning rate", minimum=0.0)
    validation_fraction: float = param(0.2, "training runs held out for early stopping", 0.0, 0.9)
    seed: int = param(0, "seed of weights, shuffling and the validation split")
    loss: LossName = param("sse", "score: loss between a histogram and its reconstruction")
    top_n: int = param(10, "bins averaged by the mse_top_n loss", minimum=1)


def validation_mask(runs: np.ndarray, seed: int, fraction: float) -> np.ndarray:
    """Training runs held out for early stopping: a deterministic hash of (seed + 1, run), so the
    same runs for every histogram; none if that would leave no run on either side."""
    val = np.array([assign_split(int(r), seed + 1, fraction) == "train" for r in runs], dtype=bool)
    if fraction == 0 or val.all() or not val.any():
        return np.zeros(len(runs), dtype=bool)
    return val


def _rows(x: np.ndarray | list[np.ndarray], mask: np.ndarray) -> np.ndarray | list[np.ndarray]:
    return [a[mask] for a in x] if isinstance(x, list) else x[mask]


def train(
    model: Any,
    x: np.ndarray | list[np.ndarray],
    y: np.ndarray | list[np.ndarray],
    val: np.ndarray,
    params: Any,
) -> dict[str, list[float]]:
    """Fit a compiled Keras ``model`` on the rows not in ``val``; early stopping on ``val``
    (``params.early_stopping_rounds``, best weights restored). Returns the history.

    The training rows go through a cached ``tf.data`` pipeline, reshuffled every epoch with a
    seeded shuffle, and the validation loss is the model's compiled loss on one forward pass of
    the validation rows: Keras' own per-epoch handling of numpy inputs and its ``evaluate`` cost
    three times the training steps of these small networks (60 against 18 ms of CPU per epoch for
    the dense autoencoder on 90 runs).
    """
    keras = keras_module()
    import tensorflow as tf

    def tensors(rows: np.ndarray) -> Any:
        picked = _rows(x, rows), _rows(y, rows)
        return tuple(tuple(p) if isinstance(p, list) else p for p in picked)

    train_x, train_y = tensors(~val)
    n_train = int((~val).sum())
    dataset = (
        tf.data.Dataset.from_tensor_slices((train_x, train_y))
        .cache()
        .shuffle(n_train, seed=int(params.seed), reshuffle_each_iteration=True)
        .batch(params.batch_size)
    )
    callbacks: list[Any] = []
    if val.any():
        val_x, val_y = tensors(val)

        callback: Any = keras.callbacks.Callback

        n_val, step = int(val.sum()), int(params.val_batch_size)

        def part(values: Any, lo: int) -> Any:
            return tuple(v[lo : lo + step] for v in values) if isinstance(values, tuple) else values[lo : lo + step]

        class ValidationLoss(callback):
            """The compiled (mean) loss over the validation rows, by ``val_batch_size`` rows."""

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if logs is not None:
                    total = 0.0
                    for lo in range(0, n_val, step):
                        x_part, y_part = part(val_x, lo), part(val_y, lo)
                        predicted = self.model(x_part, training=False)
                        loss = float(self.model.compute_loss(x=x_part, y=y_part, y_pred=predicted))
                        total += loss * min(step, n_val - lo)
                    logs["val_loss"] = total / n_val

        callbacks = [
            ValidationLoss(),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=params.early_stopping_rounds, restore_best_weights=True
            ),
        ]
    # shuffle=False: the dataset reshuffles itself (Keras would only warn that it ignores shuffle=True)
    history = model.fit(dataset, epochs=params.n_epochs, verbose=0, callbacks=callbacks, shuffle=False)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


# ------------------------------------------------------------------------------ graph description


class GraphBuilder:
    """Builds a Keras functional model and records it as data (see the module docstring)."""

    def __init__(self, keras: Any) -> None:
        self.keras = keras
        self.nodes: list[dict[str, Any]] = []
        self.tensors: dict[str, Any] = {}
        self.inputs: list[str] = []

    def _add(self, node: dict[str, Any], tensor: Any) -> str:
        self.nodes.append(node)
        self.tensors[node["name"]] = tensor
        return str(node["name"])

    def _name(self, kind: str) -> str:
        return f"{kind}_{len(self.nodes)}"

    def input(self, shape: Sequence[int]) -> str:
        name = self._name("input")
        self.inputs.append(name)
        return self._add(
            {"name": name, "type": "input", "shape": list(shape)}, self.keras.Input(tuple(shape), name=name)
        )

    def layer(self, kind: str, inputs: str | Sequence[str], keras_layer: Any, **config: Any) -> str:
        names = [inputs] if isinstance(inputs, str) else list(inputs)
        name = keras_layer.name
        args = [self.tensors[n] for n in names]
        tensor = keras_layer(args[0] if len(args) == 1 and kind != "concat" else args)
        return self._add({"name": name, "type": kind, "inputs": names, **config}, tensor)

    def dense(self, x: str, units: int, activation: str) -> str:
        layer = self.keras.layers.Dense(units, activation=activation, name=self._name("dense"))
        return self.layer("dense", x, layer, activation=activation)

    def conv(self, x: str, filters: int, kernel: Sequence[int], strides: Sequence[int], activation: str) -> str:
        cls = self.keras.layers.Conv1D if len(kernel) == 1 else self.keras.layers.Conv2D
        layer = cls(
            filters,
            tuple(kernel),
            strides=tuple(strides),
            padding="same",
            activation=activation,
            name=self._name("conv"),
        )
        return self.layer("conv", x, layer, strides=list(strides), activation=activation)

    def batchnorm(self, x: str) -> str:
        layer = self.keras.layers.BatchNormalization(name=self._name("batchnorm"))
        return self.layer("batchnorm", x, layer, epsilon=float(layer.epsilon))

    def dropout(self, x: str, rate: float) -> str:
        return self.layer("dropout", x, self.keras.layers.Dropout(rate, name=self._name("dropout")))

    def regularise(self, x: str, batch_norm: bool, dropout: float) -> str:
        """Batch normalisation and dropout after a hidden layer, as the params ask."""
        if batch_norm:
            x = self.batchnorm(x)
        if dropout > 0:
            x = self.dropout(x, dropout)
        return x

    def upsample(self, x: str, size: Sequence[int]) -> str:
        name = self._name("upsample")
        layer = (
            self.keras.layers.UpSampling1D(size[0], name=name)
            if len(size) == 1
            else self.keras.layers.UpSampling2D(tuple(size), name=name)
        )
        return self.layer("upsample", x, layer, size=list(size))

    def crop(self, x: str, current: Sequence[int], shape: Sequence[int]) -> str:
        """Keep the first ``shape`` bins of a ``current``-shaped (spatial) tensor."""
        extra = [c - s for c, s in zip(current, shape, strict=True)]
        name = self._name("crop")
        layer = (
            self.keras.layers.Cropping1D((0, extra[0]), name=name)
            if len(shape) == 1
            else self.keras.layers.Cropping2D(((0, extra[0]), (0, extra[1])), name=name)
        )
        return self.layer("crop", x, layer, shape=list(shape))

    def flatten(self, x: str) -> str:
        return self.layer("flatten", x, self.keras.layers.Flatten(name=self._name("flatten")))

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        layer = self.keras.layers.Reshape(tuple(shape), name=self._name("reshape"))
        return self.layer("reshape", x, layer, shape=list(shape))

    def activation(self, x: str, activation: str) -> str:
        layer = self.keras.layers.Activation(activation, name=self._name("activation"))
        return self.layer("activation", x, layer, activation=activation)

    def scale(self, x: str, factor: float) -> str:
        layer = self.keras.layers.Rescaling(float(factor), name=self._name("scale"))
        return self.layer("scale", x, layer, factor=float(factor))

    def concat(self, xs: Sequence[str]) -> str:
        return self.layer("concat", xs, self.keras.layers.Concatenate(name=self._name("concat")))

    def model(self, outputs: Sequence[str]) -> Any:
        out = [self.tensors[o] for o in outputs]
        return self.keras.Model(
            [self.tensors[i] for i in self.inputs] if len(self.inputs) > 1 else self.tensors[self.inputs[0]],
            out if len(out) > 1 else out[0],
        )


class Network:
    """A network for numpy inference: nodes with their weights, inputs, outputs, metadata."""

    def __init__(
        self,
        nodes: list[dict[str, Any]],
        inputs: Sequence[str],
        outputs: Sequence[str],
        meta: Mapping[str, Any] | None = None,
        extras: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.nodes = nodes
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.meta = dict(meta or {})
        self.extras = dict(extras or {})

    def __call__(self, inputs: Sequence[np.ndarray], outputs: Sequence[str] | None = None) -> list[np.ndarray]:
        """Values of ``outputs`` (default: the network's outputs) for the ``inputs`` in order."""
        wanted = self.outputs if outputs is None else list(outputs)
        values = run_graph(self.nodes, dict(zip(self.inputs, inputs, strict=True)), wanted)
        return [values[o] for o in wanted]


_WEIGHTS = {"dense": ("kernel", "bias"), "conv": ("kernel", "bias"), "batchnorm": ("gamma", "beta", "mean", "variance")}


def export(model: Any, builder: GraphBuilder, outputs: Sequence[str], meta: Mapping[str, Any] | None = None) -> Network:
    """The trained Keras ``model`` built by ``builder`` as a numpy :class:`Network`."""
    nodes = []
    for node in builder.nodes:
        copy = dict(node)
        if node["type"] in _WEIGHTS:
            weights = model.get_layer(node["name"]).get_weights()
            for key, w in zip(_WEIGHTS[node["type"]], weights, strict=True):
                copy[key] = np.asarray(w, dtype=np.float64)
        nodes.append(copy)
    return Network(nodes, builder.inputs, outputs, meta)


def save_network(path: Path, network: Network) -> None:
    """Write ``network`` to ``path`` (``.npz``, see the module docstring)."""
    arrays: dict[str, np.ndarray] = {}
    spec_nodes = []
    for i, node in enumerate(network.nodes):
        plain = {k: v for k, v in node.items() if not isinstance(v, np.ndarray)}
        arrays.update({f"{i}_{k}": v for k, v in node.items() if isinstance(v, np.ndarray)})
        spec_nodes.append(plain)
    arrays.update({f"extra_{k}": np.asarray(v) for k, v in network.extras.items()})
    spec = {
        "format": "graph",
        "nodes": spec_nodes,
        "inputs": network.inputs,
        "outputs": network.outputs,
        "meta": network.meta,
    }
    np.savez(path, **cast(dict[str, Any], {"spec": json.dumps(spec), **arrays}))


def _read_nodes(stored: Any, spec_nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**node, **{k.split("_", 1)[1]: np.asarray(stored[k]) for k in stored.files if k.startswith(f"{i}_")}}
        for i, node in enumerate(spec_nodes)
    ]


def load_network(path: Path) -> Network:
    """Read a file written by :func:`save_network` or a sequential ``dense.npz``."""
    with np.load(path) as stored:
        spec = json.loads(str(stored["spec"]))
        if isinstance(spec, list):  # sequential: the dense autoencoder's format
            return Network(_read_nodes(stored, spec), ["input"], ["output"], {"sequential": True})
        extras = {k.removeprefix("extra_"): np.asarray(stored[k]) for k in stored.files if k.startswith("extra_")}
        return Network(_read_nodes(stored, spec["nodes"]), spec["inputs"], spec["outputs"], spec["meta"], extras)


# ------------------------------------------------------------------------------ numpy inference


def unit_area(reco: np.ndarray) -> np.ndarray:
    """Scale every reconstruction (runs first) to unit area; one whose sum is not positive (a
    network's linear output can be anything) is left as it is."""
    total = reco.reshape(len(reco), -1).sum(axis=1).reshape(-1, *([1] * (reco.ndim - 1)))
    return np.divide(reco, total, out=np.array(reco, dtype=np.float64), where=total > 0)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


_ACTIVATIONS = {"linear": lambda z: z, "relu": lambda z: np.maximum(z, 0.0), "softmax": _softmax}


def _conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, strides: Sequence[int]) -> np.ndarray:
    """Convolution with ``same`` padding (TensorFlow's: the extra padding bin goes after)."""
    spatial = x.shape[1:-1]
    size = kernel.shape[:-2]
    out_shape = [-(-n // s) for n, s in zip(spatial, strides, strict=True)]
    pads = [(0, 0)]
    for n, k, s, o in zip(spatial, size, strides, out_shape, strict=True):
        total = max((o - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    padded = np.pad(x, [*pads, (0, 0)])
    out = np.zeros((x.shape[0], *out_shape, kernel.shape[-1]))
    for offset in np.ndindex(*size):
        steps = zip(offset, out_shape, strides, strict=True)
        window = (slice(None), *(slice(o, o + (m - 1) * s + 1, s) for o, m, s in steps))
        out += padded[window] @ kernel[offset]
    return out + bias


def _apply(node: dict[str, Any], args: list[np.ndarray]) -> np.ndarray:
    kind = node["type"]
    x = args[0]
    if kind == "dense":
        return np.asarray(_ACTIVATIONS[node["activation"]](x @ node["kernel"] + node["bias"]))
    if kind == "conv":
        return np.asarray(_ACTIVATIONS[node["activation"]](_conv(x, node["kernel"], node["bias"], node["strides"])))
    if kind == "batchnorm":
        return np.asarray(
            (x - node["mean"]) / np.sqrt(node["variance"] + node["epsilon"]) * node["gamma"] + node["beta"]
        )
    if kind == "dropout":
        return x
    if kind == "upsample":
        for axis, size in enumerate(node["size"], start=1):
            x = np.repeat(x, size, axis=axis)
        return x
    if kind == "crop":
        return x[(slice(None), *(slice(0, n) for n in node["shape"]))]
    if kind == "flatten":
        return x.reshape(len(x), -1)
    if kind == "reshape":
        return x.reshape(len(x), *node["shape"])
    if kind == "activation":
        return np.asarray(_ACTIVATIONS[node["activation"]](x))
    if kind == "scale":
        return x * node["factor"]
    if kind == "concat":
        return np.concatenate(args, axis=-1)
    raise TypeError(f"numpy inference does not know layer type {kind!r}")


def run_graph(
    nodes: Sequence[dict[str, Any]], inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
) -> dict[str, np.ndarray]:
    """Evaluate the graph ``nodes`` (in topological order) on ``inputs`` ({input node: array});
    returns the values of ``outputs``, computing only the nodes they need."""
    by_name = {node["name"]: node for node in nodes}
    needed: set[str] = set()
    todo = list(outputs)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(by_name[name].get("inputs", []))
    values: dict[str, np.ndarray] = {}
    for node in nodes:
        name = node["name"]
        if name not in needed:
            continue
        if node["type"] == "input":
            values[name] = np.asarray(inputs[name], dtype=np.float64)
        else:
            values[name] = _apply(node, [values[i] for i in node["inputs"]])
    return {o: values[o] for o in outputs}


def forward(layers: Sequence[dict[str, Any]], x: np.ndarray) -> np.ndarray:
    """A sequential network's inference pass (the dense autoencoder's ``dense.npz``)."""
    for layer in layers:
        x = _apply(layer, [x])
    return x


def export_sequential(model: Any) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """A sequential Keras model of dense, batch-normalisation and dropout layers as the node list
    of ``dense.npz`` and its arrays (``<i>_<weight>``)."""
    arrays: dict[str, np.ndarray] = {}
    spec: list[dict[str, Any]] = []
    for layer in model.layers:
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
    return spec, arrays
