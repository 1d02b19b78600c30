"""Model jobs on the small demo: a chunk of histograms trained and scored in one process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dqmflow.algorithms import load_config
from dqmflow.demo import plan_runs
from dqmflow.models import ChunkScores, Preprocessing, collect_scores, score_chunk, train_chunk
from dqmflow.names import HistogramName
from dqmflow.runtable import build_run_table
from dqmflow.scores import SCORE_COLUMNS
from dqmflow.training import read_training_record
from tests.conftest import REPO, SMALL

QUALITY = HistogramName("L1T", "/Run summary/L1TStage2EMTF/emtfTrackQualityVsMode")
PHI = HistogramName("L1T", "/Run summary/L1TStage2EMTF/emtfTrackPhi")
NEVER_READ = HistogramName("L1T", "/Run summary/NoSuchFolder/h")


def outputs(tmp_path: Path, names: list[HistogramName], kind: str, suffix: str = "") -> dict[str, Path]:
    return {n.column: tmp_path / kind / f"{n.slug}{suffix}" for n in names}


def train_and_score(
    store: Path,
    tmp_path: Path,
    names: list[HistogramName],
    config_name: str,
    prep: Preprocessing,
    runs: Path | None = None,
):
    config = load_config(REPO / "config" / "algorithms" / f"{config_name}.yaml")
    models = outputs(tmp_path, names, "models")
    runs = runs or store / "runs.parquet"
    infos = train_chunk(runs, store / "data" / "L1T.parquet", config, prep, models, tmp_path / "rec.json")
    frame = score_chunk(
        runs,
        store / "data" / "L1T.parquet",
        config,
        prep,
        models,
        outputs(tmp_path, names, "scores", ".parquet"),
        outputs(tmp_path, names, "reco", ".parquet"),
        n_reconstructed=3,
        reco_runs=[int(plan_runs(SMALL)[0].run)],
    ).table.to_pandas()
    return infos, frame


def test_a_chunk_trains_and_scores_every_run_of_every_histogram(demo_store: Path, tmp_path: Path) -> None:
    infos, frame = train_and_score(demo_store, tmp_path, [QUALITY, PHI], "pca_5", Preprocessing())
    assert {i["status"] for i in infos.values()} == {"trained"}
    assert json.loads((tmp_path / "models" / QUALITY.slug / "model.json").read_text())["tag"] == "pca_5"
    n_runs = len(plan_runs(SMALL))
    assert len(frame) == 2 * n_runs and set(frame["histogram"]) == {QUALITY.column, PHI.column}
    pool, _ = read_training_record(tmp_path / "rec.json")
    assert pool == sorted(p.run for p in plan_runs(SMALL))
    runs = pd.read_parquet(demo_store / "runs.parquet").set_index("run_number")
    for _, group in frame.groupby("histogram"):
        # One split for every histogram: only a train run whose histogram is low, empty or missing differs.
        same = group.set_index("run_number")["split"] == runs.loc[group["run_number"], "split"]
        assert same.mean() > 0.9
    empty = {p.run for p in plan_runs(SMALL) if p.anomaly == "empty_histogram" and p.lumi > 0.1}
    assert empty, "the small demo has an empty-histogram anomaly"
    rows = frame[frame["histogram"] == QUALITY.column].set_index("run_number").loc[sorted(empty)]
    assert np.isinf(rows["score"]).all() and (rows["split"] == "test").all()
    reco = pd.read_parquet(tmp_path / "reco" / f"{QUALITY.slug}.parquet")
    assert 3 <= len(reco) <= 4 and int(plan_runs(SMALL)[0].run) in set(reco["run_number"])
    shape = json.loads(pq.read_schema(tmp_path / "reco" / f"{QUALITY.slug}.parquet").metadata[b"dqmflow"])["shape"]
    assert len(shape) == 2 and all(len(r) == np.prod(shape) for r in reco["reconstruction"])
    # The ROOT axis titles of the DQM files label the reconstruction plots.
    for name, titles in ((QUALITY, ["mode", "quality"]), (PHI, ["track #phi"])):
        meta = json.loads(pq.read_schema(tmp_path / "reco" / f"{name.slug}.parquet").metadata[b"dqmflow"])
        assert meta["axis_titles"] == titles
    assert all(np.isclose(np.sum(o), 1.0, rtol=1e-5) or not np.any(o) for o in reco["original"]), "unit area or empty"
    collected = collect_scores(sorted((tmp_path / "scores").glob("*.parquet")), tmp_path / "all.parquet")
    assert collected.column_names == [*SCORE_COLUMNS, "latent_1", "latent_2"] and collected.num_rows == len(frame)
    latent = frame[(frame["split"] != "missing") & np.isfinite(frame["score"])]
    assert latent[["latent_1", "latent_2"]].notna().all().all(), "PCA gives every scored run its coordinates"


def test_runs_added_after_training_are_scored_out_of_sample(demo_store: Path, tmp_path: Path) -> None:
    config = load_config(REPO / "config" / "algorithms" / "pca_2.yaml")
    prep = Preprocessing()
    models = outputs(tmp_path, [PHI], "models")
    train_chunk(
        demo_store / "runs.parquet", demo_store / "data" / "L1T.parquet", config, prep, models, tmp_path / "r.json"
    )
    info = json.loads((models[PHI.column] / "model.json").read_text())
    fitted = info["training_runs"][:-3]  # as if the last 3 training runs had arrived after training
    info["training_runs"] = fitted
    (models[PHI.column] / "model.json").write_text(json.dumps(info))
    frame = score_chunk(
        demo_store / "runs.parquet", demo_store / "data" / "L1T.parquet", config, prep, models,
        outputs(tmp_path, [PHI], "scores", ".parquet"), outputs(tmp_path, [PHI], "reco", ".parquet"),
    ).table.to_pandas()  # fmt: skip
    assert set(frame.loc[frame["split"] == "train", "run_number"]) == set(fitted)
    assert frame["score"].notna().sum() >= len(frame) - 4


def test_untrainable_histograms_are_recorded_and_scored_nan(demo_store: Path, tmp_path: Path) -> None:
    prep = Preprocessing(train_fraction=0.01, calibration_fraction=0.0)  # PCA with 5 components cannot fit
    runs = tmp_path / "runs.parquet"
    build_run_table(demo_store / "entries.parquet", runs, train_fraction=prep.train_fraction, calibration_fraction=0)
    infos, frame = train_and_score(demo_store, tmp_path, [QUALITY, NEVER_READ], "pca_5", prep, runs)
    assert infos[QUALITY.column]["status"] == "failed" and "training runs" in infos[QUALITY.column]["error"]
    assert "was not read from any file" in infos[NEVER_READ.column]["error"]
    assert len(frame) == 2 * len(plan_runs(SMALL)) and frame["score"].isna().all()
    assert (frame.loc[frame["histogram"] == NEVER_READ.column, "split"] == "missing").all()


def test_a_real_bug_in_an_algorithm_fails_the_job_naming_the_histogram(
    demo_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dqmflow.algorithms.pca import PCA

    def broken(self, data):
        raise KeyError("oops")

    monkeypatch.setattr(PCA, "fit", broken)
    with pytest.raises(KeyError) as info:
        train_and_score(demo_store, tmp_path, [PHI], "pca_2", Preprocessing())
    assert any(PHI.column in note for note in getattr(info.value, "__notes__", []))


def _scalar(self, data):
    return np.asarray(1.0)


def _some_nan(self, data):
    scores = np.ones(len(data))
    scores[::3] = np.nan
    return scores


def _short_reco(self, data):
    return np.ones((len(data), data.counts[0].size - 1)) / (data.counts[0].size - 1)


@pytest.mark.parametrize(
    ("config", "method", "broken", "message"),
    [
        ("pca_2", "score", _scalar, "must return one score per run"),
        ("pca_2", "score", _some_nan, "gave NaN scores to"),
        ("chi2", "reconstruct", _short_reco, "the reconstructions of histogram"),
    ],
)
def test_an_algorithm_breaking_the_contract_fails_naming_histogram_and_config(
    demo_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, method: str, broken, message: str
) -> None:
    """A scalar score (numpy would broadcast it to every run), NaN scores for runs that have the
    histogram (they would drop out of every figure of merit unnoticed) and reconstructions of the
    wrong shape (the figures would fail later, elsewhere) stop the score job where they happen."""
    algorithm = load_config(REPO / "config" / "algorithms" / f"{config}.yaml")
    monkeypatch.setattr(algorithm.cls, method, broken)
    with pytest.raises(ValueError, match=message) as info:
        train_and_score(demo_store, tmp_path, [PHI], config, Preprocessing())
    said = " ".join([str(info.value), *getattr(info.value, "__notes__", [])])
    assert PHI.column in said and (algorithm.tag in said or algorithm.algorithm in said)


def test_a_score_block_whose_parts_do_not_fit_is_refused() -> None:
    from dqmflow.algorithms.base import ScoreBlock

    ok = np.zeros((4, 2))
    ScoreBlock(["a", "b"], ok, ok, ok, np.zeros((4, 2, 3)), (1, 2, 3))
    for kwargs, message in [
        ({"score": np.zeros((4, 3))}, "runs x 2 columns"),
        ({"score_lo": ok}, "both score_lo and score_hi"),
        ({"score_lo": ok, "score_hi": np.zeros((3, 2))}, "score_hi must have"),
        ({"seed_scores": np.zeros((4, 2, 3))}, "together with their seeds"),
        ({"seed_scores": np.zeros((4, 2, 2)), "seeds": (1, 2, 3)}, "runs x columns x seeds"),
    ]:
        with pytest.raises(ValueError, match=message):
            ScoreBlock(["a", "b"], **{"score": ok, **kwargs})


def test_model_jobs_import_neither_the_fetch_layer_nor_tensorflow() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from dqmflow.algorithms import load_config\n"
        "from dqmflow.models import score_chunk, train_chunk\n"
        f"load_config({str(REPO / 'config' / 'algorithms' / 'autoencoder.yaml')!r})\n"
        "print(sorted(m for m in ('uproot', 'awkward', 'XRootD', 'tensorflow', 'keras', 'matplotlib',"
        " 'dqmflow.fetch', 'dqmflow.merge', 'scipy.special', 'dqmflow.algorithms.beta_binomial',"
        " 'dqmflow.algorithms.statistical', 'dqmflow.algorithms.simultaneous') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"a model job loads what it does not use: {out}"


def test_a_rerun_reuses_the_scores_of_unchanged_runs_and_rescores_changed_ones(
    demo_store: Path, tmp_path: Path
) -> None:
    config = load_config(REPO / "config" / "algorithms" / "pca_2.yaml")
    prep = Preprocessing()
    runs_path, storage = demo_store / "runs.parquet", demo_store / "data" / "L1T.parquet"
    models = outputs(tmp_path, [QUALITY, PHI], "models")
    train_chunk(runs_path, storage, config, prep, models, tmp_path / "rec.json")

    def score(runs: Path, name: str) -> ChunkScores:
        return score_chunk(runs, storage, config, prep, models, outputs(tmp_path / name, [QUALITY, PHI], "s", ".p"),
                           outputs(tmp_path / name, [QUALITY, PHI], "r", ".p"), record=tmp_path / "rec.json",
                           cache=tmp_path / "cache.parquet")  # fmt: skip

    first = score(runs_path, "a")
    assert first.scored_runs == len(plan_runs(SMALL)), "nothing to reuse at first"
    again = score(runs_path, "b")
    assert again.scored_runs == 0
    pd.testing.assert_frame_equal(first.table.to_pandas(), again.table.to_pandas())
    for name in (QUALITY, PHI):  # reconstructions of reused runs are reused too, not lost
        reco_a = pd.read_parquet(tmp_path / "a" / "r" / f"{name.slug}.p")
        reco_b = pd.read_parquet(tmp_path / "b" / "r" / f"{name.slug}.p")
        assert len(reco_a) >= 1 and reco_a["run_number"].tolist() == reco_b["run_number"].tolist()
        for x, y in zip(reco_a["reconstruction"], reco_b["reconstruction"], strict=True):
            np.testing.assert_array_equal(x, y)
    # A reprocessed file (new signature) is scored again, with the same models.
    table = pq.read_table(runs_path).to_pandas()
    changed = int(table["run_number"].iloc[3])
    table.loc[table["run_number"] == changed, "signature"] = "/eos/reprocessed.root|1|2"
    table.to_parquet(tmp_path / "runs.parquet", index=False)
    third = score(tmp_path / "runs.parquet", "c")
    assert third.scored_runs == 1
    pd.testing.assert_frame_equal(first.table.to_pandas(), third.table.to_pandas())
    # Retraining (a new training record) scores every run again.
    train_chunk(runs_path, storage, config, prep, models, tmp_path / "rec.json")
    assert score(runs_path, "d").scored_runs == len(plan_runs(SMALL))


def test_scoring_identity_is_the_same_in_another_process(demo_store: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    config = load_config(REPO / "config" / "algorithms" / "chi2.yaml")
    models = outputs(tmp_path, [PHI], "models")
    train_chunk(demo_store / "runs.parquet", demo_store / "data" / "L1T.parquet", config, Preprocessing(), models,
                tmp_path / "rec.json")  # fmt: skip
    chi2 = str(REPO / "config" / "algorithms" / "chi2.yaml")
    model_dir, record = str(models[PHI.column]), str(tmp_path / "rec.json")
    code = (
        "from dqmflow.algorithms import load_config\n"
        "from dqmflow.models import _scoring_identity, read_model_info\n"
        f"print(_scoring_identity(load_config({chi2!r}), {{'x': read_model_info({model_dir!r})}}, {record!r}))\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    ]  # fmt: skip
    assert runs[0] == runs[1] and len(runs[0].strip()) == 40
