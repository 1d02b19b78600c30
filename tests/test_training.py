"""The training key: what retrains a chunk, and what does not."""

from __future__ import annotations

from pathlib import Path

from dqmflow.runtable import uniform
from dqmflow.training import training_key

PREP = {"min_entries": 10000, "train_fraction": 0.5, "calibration_fraction": 0.2, "seed": 0}
ALGO = {"tag": "pca_2", "algorithm": "pca", "params": {"n_components": 2}}
COLUMNS = ["CSC//Run summary/a", "CSC//Run summary/b"]
RUNS = list(range(300000, 300060))
TRAIN = [r for r in RUNS if uniform(r, 0) < 0.5]
OTHER = [r for r in RUNS if uniform(r, 0) >= 0.5]


def key(pool=RUNS, signatures=None, labels=None, algorithm=ALGO, preprocessing=PREP, columns=COLUMNS) -> str:
    signatures = signatures if signatures is not None else {r: f"/eos/{r}.root|100|1" for r in RUNS}
    return training_key(pool, signatures, labels or {}, algorithm=algorithm, preprocessing=preprocessing,
                        columns=columns)  # fmt: skip


def test_runs_outside_the_pool_or_the_train_share_do_not_count() -> None:
    base = key()
    added = {r: f"/eos/{r}.root|100|1" for r in [*RUNS, 400001, 400002]}
    assert key(signatures=added) == base, "runs added after training are not in the pool"
    assert key(labels={OTHER[0]: 1}) == base, "relabelling a run outside the train share"
    assert key(labels={TRAIN[0]: 1}) != base, "a training run labelled bad leaves the training set"
    assert key(labels={TRAIN[0]: 1}, signatures={r: "s" for r in RUNS if r != TRAIN[0]}) != base
    dropped = {r: f"/eos/{r}.root|100|1" for r in RUNS if r != TRAIN[1]}
    assert key(signatures=dropped) != base, "a training run left the selection"
    changed = {r: f"/eos/{r}.root|100|1" for r in RUNS} | {TRAIN[2]: f"/eos/{TRAIN[2]}_v2.root|120|5"}
    assert key(signatures=changed) != base, "a training run's file changed"


def test_params_preprocessing_and_histograms_count() -> None:
    base = key()
    assert key(algorithm={**ALGO, "params": {"n_components": 3}}) != base
    assert key(preprocessing={**PREP, "min_entries": 20000}) != base
    assert key(columns=COLUMNS[:1]) != base
    assert key(pool=[*RUNS, 400001]) == base, "a pool run that is no longer selected is left out"


def test_editing_an_algorithms_code_changes_its_digest_and_the_key(tmp_path, monkeypatch) -> None:
    """A user developing an algorithm edits its module: its models must retrain (the training key
    holds the digest of the algorithm's code and of the helpers it uses), other algorithms not, and
    neither on an edited comment or docstring, nor on an edit of base's config parsing."""
    import importlib.util
    import sys

    from dqmflow.algorithms import load_config
    from dqmflow.algorithms.base import algorithm_code_digest

    helper = tmp_path / "helper.py"
    helper.write_text("def shape(x):\n    return x\n")
    module = tmp_path / "mine.py"
    module.write_text(
        "from dqmflow.algorithms.base import Algorithm\n"
        "from dqmflow.algorithms._digest_helper import shape\n"
        "class Mine(Algorithm):\n    pass\n"
    )

    def load(name: str, path):
        spec = importlib.util.spec_from_file_location(name, path)
        loaded = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, loaded)
        spec.loader.exec_module(loaded)
        return loaded

    load("dqmflow.algorithms._digest_helper", helper)
    cls = load("dqmflow.algorithms._digest_mine", module).Mine
    pca = load_config("config/algorithms/pca_2.yaml")
    before, pca_before = algorithm_code_digest(cls), pca.code_digest()
    module.write_text(module.read_text().replace("    pass", '    """Mine, tuned."""  # a comment'))
    assert algorithm_code_digest(cls) == before, "a docstring or a comment is not code"
    module.write_text(module.read_text() + "SCALE = 2.0\n")
    after = algorithm_code_digest(cls)
    assert after != before, "an edit of the algorithm's module"
    helper.write_text("def shape(x):\n    return 2 * x\n")
    assert algorithm_code_digest(cls) != after, "an edit of a helper it uses"
    assert pca.code_digest() == pca_before, "other algorithms keep their models"
    from dqmflow.algorithms import base

    current = algorithm_code_digest(cls)
    edited = tmp_path / "base.py"  # base's config parsing edited (its file, as the digest would read it)
    edited.write_text(Path(base.__file__).read_text().replace("missing parameter(s)", "parameters missing"))
    monkeypatch.setattr(base, "__file__", str(edited))
    assert algorithm_code_digest(cls) == current and pca.code_digest() == pca_before
    key = training_key(RUNS, {}, {}, algorithm=ALGO, preprocessing=PREP, columns=COLUMNS, code=before)
    assert training_key(RUNS, {}, {}, algorithm=ALGO, preprocessing=PREP, columns=COLUMNS, code=after) != key
