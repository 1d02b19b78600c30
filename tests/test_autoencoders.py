"""The convolutional and the simultaneous autoencoders.

Keras runs in subprocesses (TensorFlow and the XRootD client crash when loaded in one
interpreter, see tests/test_algorithms.py): one script per algorithm does all the training and
prints its measurements as JSON; both start at once, one thread each, and the tests assert on
what they report. Scoring is then checked in an interpreter that never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dqmflow.algorithms import get_algorithm, load_config, load_configs
from dqmflow.algorithms.base import build_params
from dqmflow.names import HistogramName
from dqmflow.preprocess import Batch, HistogramSet
from dqmflow.runtable import RunTable
from tests.conftest import REPO
from tests.test_algorithms import synthetic


def sector_maps(rng: np.random.Generator, n: int = 120, n_bad: int = 20, shape=(12, 10)) -> HistogramSet:
    """2D maps; the last ``n_bad`` runs miss a sector (a 4x4 block of bins at zero)."""
    data = synthetic(rng, n=n, n_bad=0, shape=shape)
    counts = data.counts.copy()
    counts[n - n_bad :, 3:7, 2:6] = 0.0
    labels = np.r_[np.zeros(n - n_bad, int), np.ones(n_bad, int)]
    split = data.split.copy()
    split[labels == 1] = "test"
    entries = counts.reshape(n, -1).sum(axis=1)
    return dataclasses.replace(data, counts=counts, labels=labels, split=split, entries=entries)


SHAPES = ((40,), (25,), (8, 6))


def three_histograms(rng: np.random.Generator, n: int = 120, n_bad: int = 20, shapes=SHAPES) -> Batch:
    """A Batch of histograms of the same runs: the first has a dead region in the last ``n_bad``
    runs, the others are good everywhere; runs of even index are training runs unless bad."""
    labels = np.r_[np.zeros(n - n_bad, int), np.ones(n_bad, int)]
    split = np.where(np.arange(n) % 2 == 0, "train", "test")
    split[labels == 1] = "test"
    histograms = {}
    for i, shape in enumerate(shapes):
        data = synthetic(rng, n=n, n_bad=n_bad if i == 0 else 0, shape=shape)
        name = HistogramName("T", f"/Run summary/h{i}")
        histograms[name.column] = dataclasses.replace(data, name=name, labels=labels, split=split.astype(str))
    table = RunTable(
        runs=np.arange(1000, 1000 + n),
        years=np.full(n, 2022),
        labels=labels,
        split=split.astype(str),
        entries={c: h.entries for c, h in histograms.items()},
        signatures=np.array([""] * n, dtype=object),
    )
    return Batch(table, histograms)


def without_run(batch: Batch, column: str, row: int) -> Batch:
    """``batch`` where ``column`` could not be read in run ``row`` (split ``missing``, no counts)."""
    data = batch[column]
    counts, entries = data.counts.copy(), data.entries.copy()
    counts[row], entries[row] = 0.0, 0.0
    split = np.where(np.arange(len(data)) == row, "missing", data.split)
    changed = dataclasses.replace(data, counts=counts, split=split, entries=entries)
    return Batch(batch.table, {**batch.histograms, column: changed})


CONV_CHECK = """
import json, sys, time
import numpy as np
from pathlib import Path
from dqmflow.algorithms import get_algorithm
from dqmflow.algorithms.base import build_params
from dqmflow.metrics import roc_auc
from tests.test_algorithms import synthetic
from tests.test_autoencoders import sector_maps

out, folder = {}, Path(sys.argv[1])
cls = get_algorithm("conv_autoencoder")
keras = __import__("keras")

def relative(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())

def check(name, data, **params):
    start = time.perf_counter()
    model = cls(build_params(cls, {"early_stopping_rounds": 5, "n_epochs": 40, **params}, "t")).fit(data)
    test = data.subset(data.split == "test")
    reco = model.reconstruct(test)
    network = model.network_
    encoder = keras.Model(model.model_.inputs, model.model_.get_layer(network.meta["latent"]).output)
    x = test.normalised[..., None] * int(np.prod(test.shape))
    scores = model.score(test)
    good = test.labels == 0
    train_scores = model.score(data.training)
    out[name] = {
        "auc": float(roc_auc(scores, test.labels)[2]) if (~good).any() else None,
        "numpy_vs_keras": relative(reco, model.keras_reconstruct(test)),
        "latent_vs_keras": relative(model.latent(test), np.asarray(encoder(x, training=False))),
        "latent_shape": list(model.latent(test).shape),
        "reco_shape": list(reco.shape), "data_shape": list(test.counts.shape),
        "area": [float(a) for a in reco.reshape(len(reco), -1).sum(axis=1)[:5]],
        "epochs": len(model.history_["loss"]),
        "val_loss_fell": model.history_["val_loss"][-1] < model.history_["val_loss"][0],
        "noise_above_p95": float((scores[good] > np.percentile(train_scores, 95)).mean()),
        "seconds": time.perf_counter() - start,
    }
    return model, test, scores

model_data = synthetic(np.random.default_rng(1), n=120, n_bad=20)
model, test, scores = check("dense_1d", model_data, seed=3)
(folder / "conv_1d").mkdir()
model.save(folder / "conv_1d")
again = cls.load(folder / "conv_1d", model.params)
out["dense_1d"]["round_trip"] = relative(again.score(test), scores)
np.save(folder / "conv_1d_scores.npy", scores)
fresh = synthetic(np.random.default_rng(11), n=200, n_bad=0)  # good runs only: Poisson noise
threshold = np.percentile(model.score(model_data.training), 95)
out["dense_1d"]["fresh_noise_above_p95"] = float((model.score(fresh) > threshold).mean())

check("sector_2d", sector_maps(np.random.default_rng(2)), strides_2d=2, batch_norm=True, softmax_output=True,
      early_stopping_rounds=10)
model, test, scores = check("tiny_1d", synthetic(np.random.default_rng(3), n=40, n_bad=0, shape=(7,)),
                            strides_1d=2, kernel_1d=4, n_hidden_layers=3, softmax_output=True, n_epochs=10)
twice = cls(model.params).fit(synthetic(np.random.default_rng(3), n=40, n_bad=0, shape=(7,)))
out["tiny_1d"]["reproducible"] = relative(twice.score(test), scores)
check("tiny_2d", synthetic(np.random.default_rng(4), n=40, n_bad=0, shape=(3, 5)), strides_2d=2,
      batch_norm=True, dropout=0.2, n_epochs=10)
print("RESULT", json.dumps(out))
"""

SIM_CHECK = """
import json, sys, time
import numpy as np
from pathlib import Path
from dqmflow.algorithms import get_algorithm, load_config
from dqmflow.algorithms.base import build_params
from dqmflow.metrics import roc_auc
from tests.test_autoencoders import three_histograms, without_run

out, folder = {}, Path(sys.argv[1])
cls = get_algorithm("simultaneous_autoencoder")
batch = three_histograms(np.random.default_rng(7))
columns = batch.columns
missing_row = int(np.flatnonzero(batch.table.split == "test")[0])
batch = without_run(batch, columns[1], missing_row)
params = build_params(cls, {"n_epochs": 30, "early_stopping_rounds": 10, "seed": 2}, "t")
start = time.perf_counter()
model = cls(params)
failures = model.fit(batch)
block = model.score(batch)
out["seconds"] = time.perf_counter() - start
out["failures"] = failures
out["groups"] = [g.columns for g in model.groups]
test, good = batch.table.split == "test", batch.table.labels == 0
train = batch.table.split == "train"
out["auc"] = {c: float(roc_auc(block.score[test & (batch[c].split != "missing"), j],
                               batch.table.labels[test & (batch[c].split != "missing")])[2])
              for j, c in enumerate(columns)}
out["bad_over_good"] = {c: float(np.nanmedian(block.score[~good, j]) / np.nanmedian(block.score[test & good, j]))
                        for j, c in enumerate(columns)}
out["noise_above_p95"] = {
    c: float((block.score[test & good & (batch[c].split != "missing"), j]
              > np.nanpercentile(block.score[train, j], 95)).mean()) for j, c in enumerate(columns)}
out["missing_row_finite"] = {c: bool(np.isfinite(block.score[missing_row, j])) for j, c in enumerate(columns)}
out["nan_count"] = {c: int(np.isnan(block.score[:, j]).sum()) for j, c in enumerate(columns)}
everything = np.ones(len(batch.runs), dtype=bool)
out["numpy_vs_keras"] = []
for group in model.groups:
    inputs = group.inputs(batch, everything)
    keras_out = group.model(inputs if len(inputs) > 1 else inputs[0], training=False)
    keras_out = [np.asarray(k) for k in (keras_out if isinstance(keras_out, list) else [keras_out])]
    for a, b in zip(group.network(inputs), keras_out):
        out["numpy_vs_keras"].append(float(np.abs(a - b).max() / np.abs(b).max()))
latent = model.latent(batch)
out["latent"] = {c: [list(v.shape), int(np.isnan(v[:, 0]).sum())] for c, v in latent.items()}
recos = model.reconstruct(batch, batch.runs[:4])
out["reco"] = {c: [list(v.shape), float(np.abs(v.reshape(4, -1).sum(axis=1) - 1).max())] for c, v in recos.items()}
dirs = {c: folder / "single" / f"h{i}" for i, c in enumerate(columns)}
for d in dirs.values():
    d.mkdir(parents=True)
model.save(dirs)
subset = {c: dirs[c] for c in columns[1:]}
again = cls.load(subset, params).score(batch)
out["subset_columns"] = [c for j, c in enumerate(again.columns) if np.isfinite(again.score[:, j]).any()]
out["subset_difference"] = float(np.nanmax(np.abs(again.score[:, 1:] - block.score[:, 1:]) / block.score[:, 1:]))
np.save(folder / "simultaneous_scores.npy", block.score)
fresh = three_histograms(np.random.default_rng(17), n=200, n_bad=0)  # good runs only: Poisson noise
noise = model.score(fresh).score
out["fresh_noise_above_p95"] = {c: float((noise[:, j] > np.nanpercentile(block.score[train, j], 95)).mean())
                                for j, c in enumerate(columns)}

config_file = folder / "ensemble.yaml"
config_file.write_text("algorithm: simultaneous_autoencoder\\ntag: sim_seeds\\n"
                       "params: {n_epochs: 15, early_stopping_rounds: 5, group_by: all}\\nseeds: [0, 1]\\n")
config = load_config(config_file)
ensemble = config.build()
out["ensemble_failures"] = ensemble.fit(batch)
scores = ensemble.score(batch)
edirs = {c: folder / "ensemble" / f"h{i}" for i, c in enumerate(columns)}
for d in edirs.values():
    d.mkdir(parents=True)
ensemble.save(edirs)
loaded = config.load(edirs).score(batch)
out["ensemble_seed_scores_shape"] = list(scores.seed_scores.shape)
out["ensemble_seeds_differ"] = bool(np.nanmax(np.abs(scores.seed_scores[..., 0] - scores.seed_scores[..., 1])) > 0)
out["ensemble_round_trip"] = float(np.nanmax(np.abs(loaded.score - scores.score) / scores.score))
out["ensemble_auc"] = float(roc_auc(scores.score[test, 0], batch.table.labels[test])[2])
print("RESULT", json.dumps(out))
"""

SCRIPTS = {"conv": CONV_CHECK, "simultaneous": SIM_CHECK}


@pytest.fixture(scope="module")
def keras_scripts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[subprocess.Popen, Path]]]:
    """Start every Keras script at once, each on one thread (the test machine has 2 cores)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    started = {}
    for name, code in SCRIPTS.items():
        folder = tmp_path_factory.mktemp(name)
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(folder)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        started[name] = (proc, folder)
    yield started
    for proc, _ in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _result(started: dict[str, tuple[subprocess.Popen, Path]], name: str) -> dict[str, Any]:
    proc, folder = started[name]
    stdout, stderr = proc.communicate(timeout=600)
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, stderr[-4000:]
    return {**json.loads(lines[-1].removeprefix("RESULT ")), "folder": folder}


@pytest.fixture(scope="module")
def conv(keras_scripts: dict[str, tuple[subprocess.Popen, Path]]) -> dict[str, Any]:
    return _result(keras_scripts, "conv")


@pytest.fixture(scope="module")
def simultaneous(keras_scripts: dict[str, tuple[subprocess.Popen, Path]]) -> dict[str, Any]:
    return _result(keras_scripts, "simultaneous")


# ------------------------------------------------------------------------ convolutional autoencoder


@pytest.mark.slow
def test_conv_autoencoder_detects_a_dead_region_in_1d(conv: dict[str, Any]) -> None:
    result = conv["dense_1d"]
    assert result["auc"] > 0.9, result
    assert result["val_loss_fell"] and result["reco_shape"] == result["data_shape"]
    np.testing.assert_allclose(result["area"], 1.0, rtol=1e-9)  # reconstructions have unit area


@pytest.mark.slow
def test_conv_autoencoder_detects_a_missing_sector_in_a_2d_map(conv: dict[str, Any]) -> None:
    """Strides 2, batch norm and a softmax output: the reconstruction is a distribution."""
    result = conv["sector_2d"]
    assert result["auc"] > 0.9, result
    assert result["reco_shape"] == result["data_shape"] and result["data_shape"][1:] == [12, 10]
    np.testing.assert_allclose(result["area"], 1.0, rtol=1e-6)


@pytest.mark.slow
def test_conv_autoencoder_trains_on_tiny_histograms_with_strides_2(conv: dict[str, Any]) -> None:
    for name, shape in [("tiny_1d", [7]), ("tiny_2d", [3, 5])]:
        result = conv[name]
        assert result["reco_shape"][1:] == shape and result["latent_shape"][1] == 3, (name, result)
        assert result["epochs"] >= 1
    np.testing.assert_allclose(conv["tiny_1d"]["area"], 1.0, rtol=1e-6)  # softmax output


@pytest.mark.slow
def test_conv_numpy_inference_equals_keras(conv: dict[str, Any]) -> None:
    """1D and 2D, strides 1 and 2, odd sizes, an even kernel, batch norm, dropout, softmax: numpy
    inference gives what the Keras model gives."""
    for name in ("dense_1d", "sector_2d", "tiny_1d", "tiny_2d"):
        assert conv[name]["numpy_vs_keras"] < 1e-4, (name, conv[name])
        assert conv[name]["latent_vs_keras"] < 1e-4, (name, conv[name])


@pytest.mark.slow
def test_conv_round_trip_and_seeded_reproducibility(conv: dict[str, Any]) -> None:
    assert conv["dense_1d"]["round_trip"] < 1e-9
    assert conv["tiny_1d"]["reproducible"] < 1e-3
    assert {"model.keras", "network.npz", "summary.json"} <= {p.name for p in (conv["folder"] / "conv_1d").iterdir()}


# -------------------------------------------------------------------------- simultaneous autoencoder


@pytest.mark.slow
def test_simultaneous_scores_the_anomalous_histogram(simultaneous: dict[str, Any]) -> None:
    columns = list(simultaneous["auc"])
    assert simultaneous["failures"] == {}
    assert simultaneous["groups"] == [columns[:2], columns[2:]]  # 1D apart from 2D
    assert simultaneous["auc"][columns[0]] > 0.9, simultaneous["auc"]
    assert 0.2 < simultaneous["auc"][columns[2]] < 0.8  # another group: not affected
    # the anomalous histogram is the one that stands out most
    ratios = simultaneous["bad_over_good"]
    assert ratios[columns[0]] == max(ratios.values()), ratios
    assert max(simultaneous["numpy_vs_keras"]) < 1e-4


@pytest.mark.slow
def test_simultaneous_missing_histogram_is_nan_for_that_histogram_only(simultaneous: dict[str, Any]) -> None:
    h0, h1, h2 = simultaneous["auc"]
    assert simultaneous["missing_row_finite"] == {h0: True, h1: False, h2: True}
    assert simultaneous["nan_count"] == {h0: 0, h1: 1, h2: 0}
    assert simultaneous["latent"] == {h0: [[120, 3], 0], h1: [[120, 3], 1], h2: [[120, 3], 0]}
    for column, (shape, area) in simultaneous["reco"].items():
        assert shape[0] == 4 and area < 1e-9, column


@pytest.mark.slow
def test_simultaneous_loads_from_a_subset_of_its_folders(simultaneous: dict[str, Any]) -> None:
    _, h1, h2 = simultaneous["auc"]
    assert simultaneous["subset_columns"] == [h1, h2]
    assert simultaneous["subset_difference"] < 1e-12
    for i in range(3):
        names = {p.name for p in (simultaneous["folder"] / "single" / f"h{i}").iterdir()}
        assert {"model.keras", "network.npz", "group.json"} <= names


@pytest.mark.slow
def test_simultaneous_works_as_a_seed_ensemble(simultaneous: dict[str, Any]) -> None:
    assert simultaneous["ensemble_failures"] == {}
    assert simultaneous["ensemble_seed_scores_shape"] == [120, 3, 2]
    assert simultaneous["ensemble_seeds_differ"]
    assert simultaneous["ensemble_round_trip"] < 1e-12
    assert simultaneous["ensemble_auc"] > 0.9
    assert (simultaneous["folder"] / "ensemble" / "h0" / "seed_1" / "network.npz").exists()


@pytest.mark.slow
def test_autoencoders_do_not_flag_poisson_noise(conv: dict[str, Any], simultaneous: dict[str, Any]) -> None:
    """Good runs differ from the training runs by Poisson noise only: about 5% of 200 fresh good
    runs should be above the 95th percentile of the training runs' scores, not many more (which
    would mean the network learnt the training runs' noise)."""
    assert conv["dense_1d"]["fresh_noise_above_p95"] < 0.15, conv["dense_1d"]
    # The 50 good test runs: a small sample, against the training runs' own (slightly overfitted)
    # scores; 0.14-0.22 measured with different shuffles, so only gross overfitting fails here.
    assert conv["dense_1d"]["noise_above_p95"] < 0.3, conv["dense_1d"]
    for column, fraction in simultaneous["fresh_noise_above_p95"].items():
        assert fraction < 0.15, (column, simultaneous["fresh_noise_above_p95"])


@pytest.mark.slow
def test_scoring_needs_no_tensorflow(conv: dict[str, Any], simultaneous: dict[str, Any]) -> None:
    code = """
import sys
import numpy as np
from pathlib import Path
from dqmflow.algorithms import get_algorithm
from dqmflow.algorithms.base import build_params
from tests.test_algorithms import synthetic
from tests.test_autoencoders import three_histograms, without_run

conv, sim = Path(sys.argv[1]), Path(sys.argv[2])
cls = get_algorithm("conv_autoencoder")
model = cls.load(conv / "conv_1d", build_params(cls, {"seed": 3}, "t"))
data = synthetic(np.random.default_rng(1), n=120, n_bad=20)
np.testing.assert_allclose(model.score(data.subset(data.split == "test")), np.load(conv / "conv_1d_scores.npy"))
assert model.latent(data).shape == (120, 3)
cls = get_algorithm("simultaneous_autoencoder")
batch = three_histograms(np.random.default_rng(7))
batch = without_run(batch, batch.columns[1], int(np.flatnonzero(batch.table.split == "test")[0]))
dirs = {c: sim / "single" / f"h{i}" for i, c in enumerate(batch.columns)}
model = cls.load(dirs, build_params(cls, {"seed": 2}, "t"))
np.testing.assert_allclose(model.score(batch).score, np.load(sim / "simultaneous_scores.npy"))
print("tensorflow" in sys.modules, "keras" in sys.modules)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code, str(conv["folder"]), str(simultaneous["folder"])],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.stdout.split() == ["False", "False"], proc.stderr[-3000:]


# ------------------------------------------------------------------------------ without TensorFlow


def test_shipped_configs_and_defaults() -> None:
    configs = load_configs(sorted(str(p) for p in (REPO / "config" / "algorithms").glob("*.yaml")))
    p = configs["ae_conv"].params
    assert (p.kernel_1d, p.kernel_2d, p.strides_1d, p.strides_2d, p.n_filters, p.n_components) == (3, 3, 1, 1, 8, 3)
    assert (p.batch_size, p.n_epochs, p.early_stopping_rounds, p.dropout, p.batch_norm) == (16, 1000, 3, 0.0, False)
    assert p.softmax_output is False
    assert configs["ae_simultaneous"].algorithm == "simultaneous_autoencoder"
    assert configs["ae_simultaneous"].params.group_by == "dimensions"


def test_simultaneous_config_with_seeds_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("algorithm: simultaneous_autoencoder\nparams: {group_by: shape}\nseeds: [0, 1]\n")
    config = load_config(path)
    assert config.seeds == (0, 1) and config.params.group_by == "shape"


def test_numpy_convolution_is_a_same_padded_cross_correlation(rng: np.random.Generator) -> None:
    from scipy.signal import correlate

    from dqmflow.algorithms._network import _conv

    x = rng.normal(size=(2, 9, 7, 1))
    kernel = rng.normal(size=(3, 3, 1, 1))
    out = _conv(x, kernel, np.zeros(1), [1, 1])
    expected = np.stack([correlate(x[i, :, :, 0], kernel[:, :, 0, 0], mode="same") for i in range(2)])
    np.testing.assert_allclose(out[..., 0], expected)
    strided = _conv(x, kernel, np.zeros(1), [2, 2])  # TensorFlow's "same": ceil(n / 2) outputs
    assert strided.shape == (2, 5, 4, 1)
    np.testing.assert_allclose(strided[..., 0], expected[:, ::2, ::2])


def test_simultaneous_leaves_out_a_histogram_without_enough_training_runs(rng: np.random.Generator) -> None:
    from dqmflow.algorithms.simultaneous import SimultaneousAutoencoder

    batch = three_histograms(rng, n=40, n_bad=4)
    h0, h1, h2 = batch.columns
    few = batch[h1].split.copy()
    few[few == "train"] = "test"
    few[0] = "train"  # one training run only
    rare = batch[h2].split.copy()
    rare[np.flatnonzero(rare == "train")[3:]] = "low_stats"  # 3 training runs: costs the group most runs
    changed = {h1: dataclasses.replace(batch[h1], split=few), h2: dataclasses.replace(batch[h2], split=rare)}
    batch = Batch(batch.table, {**batch.histograms, **changed})
    failures: dict[str, str] = {}
    members, rows = SimultaneousAutoencoder._members(batch, [h0, h1, h2], failures)
    assert members == [h0] and rows.sum() == (batch[h0].split == "train").sum()
    assert "at least 2 training runs, got 1" in failures[h1] and "left out" in failures[h2]
    cls = get_algorithm("simultaneous_autoencoder")
    assert cls(build_params(cls, {}, "t")).params.n_components == 3
