from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from dqmflow.algorithms import REGISTRY, ConfigError, get_algorithm, load_config, load_configs
from dqmflow.names import HistogramName
from dqmflow.preprocess import HistogramSet
from tests.conftest import REPO


def synthetic(rng: np.random.Generator, n: int = 120, n_bad: int = 20, shape=(40,)) -> HistogramSet:
    """Gaussian-peak histograms; the last n_bad runs have a dead region (bins 10-14 at zero)."""
    x = np.linspace(-3, 3, int(np.prod(shape)))
    density = np.exp(-0.5 * x**2).reshape(shape) + 0.05
    counts = np.stack([rng.poisson(density / density.sum() * rng.uniform(2e4, 5e4)) for _ in range(n)]).astype(float)
    flat = counts.reshape(n, -1)
    flat[n - n_bad :, 10:15] = 0.0
    labels = np.r_[np.zeros(n - n_bad, int), np.ones(n_bad, int)]
    split = np.where(np.arange(n) % 2 == 0, "train", "test")
    split[labels == 1] = "test"
    return HistogramSet(
        name=HistogramName("T", "/Run summary/h"),
        runs=np.arange(1000, 1000 + n),
        years=np.full(n, 2022),
        labels=labels,
        counts=flat.reshape(counts.shape),
        entries=flat.sum(axis=1),
        split=split.astype(str),
        edges=tuple(np.linspace(0, 1, s + 1) for s in shape),
    )


def test_registry_knows_every_algorithm() -> None:
    names = ("pca", "nmf", "autoencoder", "conv_autoencoder", "simultaneous_autoencoder", "ks", "chi2", "beta_binomial")
    for name in names:  # whatever was imported before: one algorithm's module registers only itself
        assert get_algorithm(name).name == name
    assert set(names) <= set(REGISTRY)
    with pytest.raises(ConfigError, match="unknown algorithm 'nope'"):
        get_algorithm("nope")


def test_every_shipped_config_is_valid_and_tags_are_unique() -> None:
    paths = sorted(str(p) for p in (REPO / "config" / "algorithms").glob("*.yaml"))
    configs = load_configs(paths)
    assert {"pca_2", "pca_5", "ae_dense", "ks_prev4", "chi2_mean"} <= set(configs)
    assert configs["pca_2"].params.n_components == 2 and configs["pca_5"].params.n_components == 5
    ae = configs["ae_dense"].params
    assert (ae.batch_size, ae.val_batch_size, ae.n_epochs, ae.early_stopping_rounds) == (16, 1024, 1000, 3)
    assert (ae.n_hidden_layers, ae.n_nodes, ae.n_components, ae.dropout, ae.batch_norm) == (2, 25, 3, 0.0, False)


@pytest.mark.parametrize(
    "text,message",
    [
        ("algorithm: pca\nparams: {n_component: 2}", r"unknown parameter\(s\) \['n_component'\]"),
        ("algorithm: pca\nparams: {n_components: two}", "n_components must be an integer"),
        ("algorithm: pca\nparams: {n_components: 0}", "n_components must be >= 1"),
        ("algorithm: pca\nparams: {loss: l1}", "loss must be one of"),
        ("algorithm: autoencoder\nparams: {batch_norm: 1}", "batch_norm must be true or false"),
        ("algorithm: forest", "unknown algorithm 'forest'"),
        ("params: {}", "needs an 'algorithm' key"),
        ("algorithm: pca\ntag: 'a b'", "may contain only"),
        ("algorithm: pca\nlearning_rate: 1", r"unknown key\(s\) \['learning_rate'\]"),
        ("algorithm: pca\nparams: [1]", "params must be a mapping"),
        ("algorithm: [pca", "not valid YAML"),
    ],
)
def test_invalid_configs_fail_with_the_file_name(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert "bad.yaml" in str(info.value) or "unknown algorithm" in str(info.value)


def test_two_configs_of_one_algorithm_coexist_and_duplicate_tags_fail(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("algorithm: pca\nparams: {n_components: 2}")
    (tmp_path / "b.yaml").write_text("algorithm: pca\nparams: {n_components: 5}")
    (tmp_path / "c.yaml").write_text("algorithm: pca\ntag: a")
    configs = load_configs([str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")])
    assert [c.params.n_components for c in configs.values()] == [2, 5]
    with pytest.raises(ConfigError, match="tag 'a' is used by both"):
        load_configs([str(tmp_path / "a.yaml"), str(tmp_path / "c.yaml")])


def test_params_are_frozen() -> None:
    params = get_algorithm("pca").Params()
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.n_components = 3  # type: ignore[misc]


FAST = {
    "pca": {"n_components": 2},
    "nmf": {"n_components": 3, "loss": "chi2_top_n", "top_n": 5},
    "ks": {"reference": "previous_good", "n_references": 3},
    "chi2": {"reference": "mean_of_training"},
}


@pytest.mark.parametrize("shape", [(40,), (8, 5)])
@pytest.mark.parametrize("name", sorted(FAST))
def test_algorithms_detect_a_dead_region_and_round_trip(name, shape, rng, tmp_path: Path) -> None:
    from dqmflow.algorithms.base import build_params
    from dqmflow.metrics import roc_auc

    data = synthetic(rng, shape=shape)
    cls = get_algorithm(name)
    model = cls(build_params(cls, FAST[name], "test")).fit(data)
    test = data.subset(data.split == "test")
    scores = model.score(test)
    assert scores.shape == (len(test),)
    assert roc_auc(scores, test.labels)[2] > 0.95
    reco = model.reconstruct(test)
    assert reco.shape == test.counts.shape
    np.testing.assert_allclose(reco.reshape(len(test), -1).sum(axis=1), 1.0, atol=1e-6)
    model.save(tmp_path)
    again = cls.load(tmp_path, model.params)
    np.testing.assert_allclose(again.score(test), scores)


def test_reference_modes(rng) -> None:
    from dqmflow.algorithms.base import build_params

    data = synthetic(rng, n=20, n_bad=2)
    chi2 = get_algorithm("chi2")
    fixed = chi2(build_params(chi2, {"reference": "fixed_run", "reference_run": 1004}, "t")).fit(data)
    refs = fixed.references(data)
    np.testing.assert_array_equal(refs[7], data.counts[4])
    prev = chi2(build_params(chi2, {"reference": "previous_good", "n_references": 2}, "t")).fit(data)
    refs = prev.references(data)
    np.testing.assert_array_equal(refs[5], data.counts[2] + data.counts[4])  # runs 1002, 1004 are training
    np.testing.assert_array_equal(refs[0], data.counts[2] + data.counts[4])  # nothing before: the next ones
    mean = chi2(build_params(chi2, {}, "t")).fit(data)
    train = data.split == "train"
    np.testing.assert_array_equal(mean.references(data)[1], data.counts[train].sum(axis=0))
    np.testing.assert_array_equal(mean.references(data)[0], data.counts[train].sum(axis=0) - data.counts[0])
    with pytest.raises(ValueError, match="reference run 1001 is not a training run"):
        chi2(build_params(chi2, {"reference": "fixed_run", "reference_run": 1001}, "t")).fit(data)


def test_empty_histogram_is_maximally_anomalous(rng) -> None:
    from dqmflow.algorithms.base import build_params

    data = synthetic(rng, n=30, n_bad=0)
    data.counts[1] = 0.0
    for name in ("chi2", "ks"):
        cls = get_algorithm(name)
        scores = cls(build_params(cls, {}, "t")).fit(data).score(data)
        assert scores[1] == scores.max() and np.isfinite(scores[0])


def test_pca_needs_enough_training_runs(rng) -> None:
    from dqmflow.algorithms.base import build_params

    data = synthetic(rng, n=6, n_bad=0)
    pca = get_algorithm("pca")
    with pytest.raises(ValueError, match="needs more than 5 training runs, got 3"):
        pca(build_params(pca, {"n_components": 5}, "t")).fit(data)


AE_CHECK = """
import numpy as np, sys
from pathlib import Path
from dqmflow.algorithms import get_algorithm
from dqmflow.algorithms.base import build_params
from dqmflow.metrics import roc_auc
from tests.test_algorithms import synthetic

data = synthetic(np.random.default_rng(12345), n=160, n_bad=20)
cls = get_algorithm("autoencoder")
params = build_params(cls, {"n_epochs": 200, "early_stopping_rounds": 10, "seed": 3}, "t")
model = cls(params).fit(data)
assert 0 < len(model.history_["loss"]) <= 200
assert model.history_["val_loss"][-1] < model.history_["val_loss"][0]
test = data.subset(data.split == "test")
scores = model.score(test)
auc = roc_auc(scores, test.labels)[2]
assert auc > 0.9, auc
model.save(Path(sys.argv[1]))
again = cls.load(Path(sys.argv[1]), params)  # numpy inference: must agree with Keras' predict
np.testing.assert_allclose(again.reconstruct(test), model.reconstruct(test), rtol=1e-4, atol=1e-7)
np.testing.assert_allclose(again.score(test), scores, rtol=1e-3)
keras = __import__("keras")
bottleneck = [layer for layer in model.model_.layers if type(layer).__name__ == "Dense"][params.n_hidden_layers]
encoder = keras.Model(model.model_.inputs, bottleneck.output)
x = test.normalised.reshape(len(test), -1) * test.normalised[0].size
np.testing.assert_allclose(again.latent(test), encoder.predict(x, verbose=0), rtol=1e-4, atol=1e-6)
assert again.latent(test).shape == (len(test), params.n_components)
assert "tensorflow" in sys.modules
bn = cls(build_params(cls, {"n_epochs": 5, "batch_norm": True, "dropout": 0.2, "seed": 1}, "t")).fit(data)
(Path(sys.argv[1]) / "bn").mkdir()
bn.save(Path(sys.argv[1]) / "bn")
np.testing.assert_allclose(cls.load(Path(sys.argv[1]) / "bn", bn.params).reconstruct(test), bn.reconstruct(test),
                           rtol=1e-4, atol=1e-7)
twice = cls(params).fit(data)
np.testing.assert_allclose(twice.score(test), scores, rtol=1e-3)  # seeded: reproducible
print("AUC", auc)
"""


@pytest.mark.slow
def test_dense_autoencoder_trains_detects_and_round_trips(tmp_path: Path) -> None:
    """Runs in its own interpreter: TensorFlow and the XRootD client crash when they share one,
    so the workflow never mixes them in a job and neither does the test session."""
    proc = subprocess.run([sys.executable, "-c", AE_CHECK, str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "AUC" in proc.stdout
    assert (tmp_path / "model.keras").exists() and (tmp_path / "dense.npz").exists()
    # scoring needs no TensorFlow: load and score in an interpreter that never imports it
    code = (
        "import sys, numpy as np; from pathlib import Path\n"
        "from dqmflow.algorithms import get_algorithm\nfrom dqmflow.algorithms.base import build_params\n"
        "from tests.test_algorithms import synthetic\n"
        "cls = get_algorithm('autoencoder')\n"
        "m = cls.load(Path(sys.argv[1]), build_params(cls, {}, 't'))\n"
        "print(np.isfinite(m.score(synthetic(np.random.default_rng(1)))).all(), 'tensorflow' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert proc.stdout.split() == ["True", "False"], proc.stderr[-2000:]


def test_tensorflow_and_xrootd_refuse_to_share_a_process() -> None:
    code = (
        "import sys; sys.modules['tensorflow'] = object()\n"
        "from dqmflow.discover import check_xrootd_allowed\n"
        "try:\n    check_xrootd_allowed()\nexcept RuntimeError as err:\n    print('refused:', err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.startswith("refused:") and "separate process" in out


def test_chi2_loss_does_not_grow_for_low_statistics_runs(rng) -> None:
    from scipy.stats import spearmanr

    from dqmflow.algorithms.base import build_params

    x = np.linspace(-3, 3, 50)
    density = np.exp(-0.5 * x**2) + 0.05
    totals = np.geomspace(2e3, 2e5, 200)
    counts = np.stack([rng.poisson(density / density.sum() * n) for n in totals]).astype(float)
    data = HistogramSet(HistogramName("T", "/h"), np.arange(200), np.full(200, 2022), np.zeros(200, int), counts,
                        counts.sum(axis=1), np.array(["train", "test"] * 100), (np.linspace(0, 1, 51),))  # fmt: skip
    pca = get_algorithm("pca")
    sse = pca(build_params(pca, {"n_components": 2, "loss": "sse"}, "t")).fit(data).score(data)
    chi2 = pca(build_params(pca, {"n_components": 2, "loss": "chi2"}, "t")).fit(data).score(data)
    assert spearmanr(sse, 1 / totals).statistic > 0.8
    assert spearmanr(chi2, 1 / totals).statistic < 0.3
    # the 20 runs with fewest entries vs the 20 with most: SSE differs by ~100x, chi2 stays O(1)
    assert np.median(sse[:20]) / np.median(sse[-20:]) > 20
    assert 0.5 < np.median(chi2[:20]) / np.median(chi2[-20:]) < 2


@pytest.mark.parametrize("reference", ["previous_good", "mean_of_training"])
def test_references_are_the_runs_the_docs_name(rng: np.random.Generator, reference: str) -> None:
    """previous_good: the n nearest earlier training runs (the next ones for the first runs);
    mean_of_training: every training run but the run itself. The model keeps only what that needs."""
    from dqmflow.algorithms.base import build_params

    data = synthetic(rng, n=40, n_bad=5)
    cls = get_algorithm("chi2")
    model = cls(build_params(cls, {"reference": reference, "n_references": 3}, "t")).fit(data)
    train = data.training
    refs = model.references(data)
    for i, run in enumerate(data.runs):
        if reference == "previous_good":
            earlier = train.runs[train.runs < run][-3:]
            chosen = earlier if len(earlier) else train.runs[train.runs > run][:3]
        else:
            chosen = train.runs[train.runs != run]
        expected = train.counts[np.isin(train.runs, chosen)].sum(axis=0)
        np.testing.assert_allclose(refs[i], expected, err_msg=f"run {run}")
    assert (model.ref_counts_ is not None) == (reference == "previous_good")


def test_nmf_templates_and_weights_are_non_negative(rng) -> None:
    from dqmflow.algorithms.base import build_params

    data = synthetic(rng, n=60, n_bad=6)
    cls = get_algorithm("nmf")
    model = cls(build_params(cls, {"n_components": 2}, "t")).fit(data)
    weights = model.latent(data)
    assert weights.shape == (len(data), 2) and (weights >= 0).all() and (model.components_ >= 0).all()
    with pytest.raises(ValueError, match="needs more than 5 training runs"):
        cls(build_params(cls, {"n_components": 5}, "t")).fit(synthetic(rng, n=6, n_bad=0))


def test_chi2_top_n_is_the_ml4dqm_definition_and_a_hot_bin_dominates_it() -> None:
    from dqmflow.algorithms.losses import reconstruction_loss

    x = np.array([[0.5, 0.3, 0.2, 0.0], [0.5, 0.3, 0.0, 0.2]])
    reco = np.array([[0.4, 0.3, 0.2, 0.1], [0.4, 0.3, 0.2, 0.1]])
    loss = reconstruction_loss(x, reco, "chi2_top_n", 2, x)
    # non-empty bins only: run 0 -> 0.1^2/0.5 (bin 3 is empty); run 1 -> 0.1^2/0.2 + 0.1^2/0.5
    np.testing.assert_allclose(loss, [0.02, 0.05 + 0.02])
    flat = np.full((2, 4), 0.25)
    hot = np.array([[0.26, 0.25, 0.25, 0.24], [0.55, 0.15, 0.15, 0.15]])
    top1 = reconstruction_loss(hot, flat, "chi2_top_n", 1, hot)
    np.testing.assert_allclose(top1[1], 0.3**2 / 0.55)
    assert top1[1] > 100 * top1[0]


def test_chi2_pull_of_an_empty_bin_does_not_grow_with_the_reference_statistics() -> None:
    """A Poisson-consistent empty tail bin (expected ~3 entries) adds about its expectation to the
    sum of pulls squared, whether the reference is one run or the sum of 19 (AutoDQM's variance,
    the data count, made it the reference count: 3 or 57)."""
    from dqmflow.algorithms.base import build_params

    chi2 = get_algorithm("chi2")
    test = chi2(build_params(chi2, {}, "t"))
    shape = np.array([300.0, 600.0, 300.0, 3.0])
    data = np.array([[300.0, 600.0, 300.0, 0.0]])
    one, nineteen = test.statistic(data, shape[None, :]), test.statistic(data, 19 * shape[None, :])
    expected = 3.0 / 4  # the empty bin's pull squared, about its expectation, averaged over 4 bins
    assert one[0] == pytest.approx(expected, rel=0.5) and nineteen[0] == pytest.approx(expected, rel=0.5)
    assert nineteen[0] < 2 * one[0]
    # a real excess still counts by the data's own variance
    hot = np.array([[300.0, 600.0, 300.0, 40.0]])
    assert test.statistic(hot, 19 * shape[None, :])[0] > 8  # (40 - 3)² / 40 over 4 bins


def test_a_module_that_fails_to_import_does_not_hide_the_unknown_name(tmp_path: Path, monkeypatch) -> None:
    """An algorithm module being written (its import fails) leaves the others usable, and a
    typo in a config's algorithm name still says "unknown algorithm", naming the broken module."""
    import dqmflow.algorithms as package
    from dqmflow.algorithms import base

    (tmp_path / "zz_wip.py").write_text("import not_a_module_xyz  # noqa\n")
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    monkeypatch.setattr(base, "_BROKEN", {})
    with pytest.raises(ConfigError, match=r"unknown algorithm 'pca_typo'; known: .*pca") as info:
        get_algorithm("pca_typo")
    assert (
        "dqmflow.algorithms.zz_wip failed to import (ModuleNotFoundError: No module named 'not_a_module_xyz')"
        in str(info.value)
    )
    assert get_algorithm("pca").name == "pca"


def test_every_kind_of_hyper_parameter_is_checked(tmp_path: Path) -> None:
    """An optional choice, a list of numbers, a parameter without default and a number written
    the YAML 1.1 way (1e-4, read as a string) are checked as a user's algorithm declares them."""
    from dqmflow.algorithms.base import Algorithm, build_params

    class Probe(Algorithm):
        name = "probe"

        @dataclasses.dataclass(frozen=True)
        class Params:
            n_trees: int
            statistic: Literal["mean", "max"] | None = None
            weights: list[float] = dataclasses.field(default_factory=list)
            epsilon: float = 1e-3

        fit = score = save = load = None  # type: ignore[assignment]

    ok = build_params(Probe, {"n_trees": 5, "statistic": "max", "weights": [1, 0.5], "epsilon": "1e-4"}, "p.yaml")
    assert (ok.statistic, ok.weights, ok.epsilon) == ("max", [1.0, 0.5], 1e-4)
    for raw, message in [
        ({}, r"p.yaml: missing parameter\(s\) \['n_trees'\] for probe"),
        ({"n_trees": 5, "statistic": 42}, r"statistic must be one of \['mean', 'max'\], not 42"),
        ({"n_trees": 5, "weights": "abc"}, "weights must be a list"),
        ({"n_trees": 5, "weights": [1, "x"]}, r"weights\[1\] must be a number"),
        ({"n_trees": 5, "epsilon": "small"}, "epsilon must be a number, not 'small'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            build_params(Probe, raw, "p.yaml")


def test_a_reconstruction_algorithm_without_loss_fields_fails_at_startup(tmp_path: Path, monkeypatch) -> None:
    """Its score is the configured loss: Params without loss/top_n would fail only when scoring."""
    from dqmflow.algorithms import base

    class NoLoss(base.ReconstructionAlgorithm):
        @dataclasses.dataclass(frozen=True)
        class Params:
            n_components: int = 2

    monkeypatch.setitem(base.REGISTRY, "probe_reco", NoLoss)
    NoLoss.name = "probe_reco"
    (tmp_path / "mine.yaml").write_text("algorithm: probe_reco\n")
    with pytest.raises(
        ConfigError, match=r"mine.yaml: algorithm 'probe_reco' is a ReconstructionAlgorithm.*\['loss', 'top_n'\]"
    ):
        load_config(tmp_path / "mine.yaml")
