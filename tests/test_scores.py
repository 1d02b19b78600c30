"""The long score table: the contract between scoring and assessment, also for tables made elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dqmflow.assess import Settings, assess_histograms
from dqmflow.scores import ScoreTableError, check_score_table, read_scores

HISTS = ["L1T//Run summary/L1TStage2EMTF/emtfTrackPhi", "L1T//Run summary/L1TStage2EMTF/emtfTrackEta"]


def foreign_table(rng: np.random.Generator, n_runs: int = 80) -> pd.DataFrame:
    """A score table as another tool would write it: bad runs score higher; no reconstructions."""
    runs = np.arange(355000, 355000 + n_runs)
    labels = (rng.random(n_runs) < 0.2).astype(int)
    rows = []
    for h in HISTS:
        score = rng.normal(size=n_runs) + 2.5 * labels
        rows.append(pd.DataFrame({"run_number": runs, "histogram": h, "algorithm": "other_tool", "score": score,
                                  "label": labels, "split": "test"}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def test_a_well_formed_table_passes_and_csv_reads_the_same(tmp_path: Path, rng: np.random.Generator) -> None:
    table = foreign_table(rng)
    assert check_score_table(table) is table
    table.to_csv(tmp_path / "scores.csv", index=False)
    pd.testing.assert_frame_equal(read_scores(tmp_path / "scores.csv"), table, check_dtype=False)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda t: t.drop(columns="score"), r"missing column\(s\) \['score'\]"),
        (lambda t: t.assign(split="validation"), r"unknown split value\(s\) \['validation'\]"),
        (lambda t: t.assign(label=2), r"labels must be 1 \(bad\), 0 \(good\) or -1 \(unknown\), not \[2\]"),
        (lambda t: t.assign(label=pd.array([None] * len(t), dtype="Int64")), r"labels must be .* not \[<NA>\]"),
        (lambda t: t.assign(score="high"), "'score' must be numeric"),
        (lambda t: pd.concat([t, t.iloc[:1]]), "has several scores for"),
    ],
)
def test_a_malformed_table_is_refused_naming_the_problem(rng: np.random.Generator, change, message: str) -> None:
    with pytest.raises(ScoreTableError, match=message):
        check_score_table(change(foreign_table(rng)), where="their.csv")


def test_assessment_runs_on_a_table_made_elsewhere(tmp_path: Path, rng: np.random.Generator) -> None:
    table = foreign_table(rng).drop(columns="split")
    result = assess_histograms(table, tmp_path / "plots", Settings(n_bootstrap=20, plots="all"))
    metrics = result.metrics
    assert set(metrics["histogram"]) == set(HISTS)
    assert (metrics["auc"] > 0.85).all(), "bad runs score 2.5 sigma higher"
    assert set(result.pvalues["n_reference"]) == {int((table.drop_duplicates("run_number")["label"] == 0).sum())}
    assert set(result.figures["kind"]) >= {"roc", "sic", "scores", "confusion"}
    for file in result.figures["file"]:
        assert (tmp_path / "plots" / file).stat().st_size > 0


def test_a_chunk_where_no_histogram_matters_still_has_its_plots_folder(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    table = foreign_table(rng).assign(score=lambda t: rng.normal(size=len(t)), split="test")  # nothing flags
    result = assess_histograms(table, tmp_path / "plots", Settings(n_bootstrap=10, alpha=1e-9))
    assert (tmp_path / "plots").is_dir() and result.figures.empty


def test_figures_planned_by_the_assessment_and_drawn_in_another_process_are_the_same(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """The workflow assesses a chunk in one job and draws its figures in another (rule draw_figures)."""
    import subprocess
    import sys

    from dqmflow.assess import FigureCall, write_figure_plan
    from dqmflow.charts import SUFFIX
    from dqmflow.metrics import bootstrap_roc

    table = foreign_table(rng)
    settings = Settings(n_bootstrap=20, plots="all")
    direct = assess_histograms(table, tmp_path / "direct", settings)
    planned = assess_histograms(table, None, settings, plan_figures=True)
    assert not (tmp_path / "planned").exists() and len(planned.figure_plan) == len(direct.figures)
    also_dir = assess_histograms(table, tmp_path / "unused", settings, plan_figures=True).figure_plan
    assert [c.file for c in also_dir] == [c.file for c in planned.figure_plan] == list(direct.figures["file"])
    pd.testing.assert_frame_equal(planned.metrics, direct.metrics)
    pd.testing.assert_frame_equal(planned.figures, direct.figures)
    assert direct.figures["file"].str.endswith(SUFFIX).all(), "no reconstructions: only charts"
    code = (
        "import sys; from dqmflow.assess import draw_figures\n"
        "print(draw_figures(sys.argv[1], sys.argv[2], sys.argv[3]), 'matplotlib' in sys.modules)\n"
    )
    args = [str(tmp_path / "figures.pkl"), str(tmp_path / "planned"), str(tmp_path / "cache")]
    write_figure_plan(planned.figure_plan, tmp_path / "figures.pkl")
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "(0, 0) False", "charts are written without importing matplotlib"
    for file in direct.figures["file"]:
        assert (tmp_path / "planned" / file).read_bytes() == (tmp_path / "direct" / file).read_bytes(), file
    # A PNG figure in the plan: drawn once, then copied from the cache while its data are the same.
    rocs = {"mine": bootstrap_roc(table["score"].to_numpy(), table["label"].to_numpy(), n_bootstrap=10)}
    png = FigureCall("plot_run_level", "summary/run_level.png", (rocs, "run level"), {})
    write_figure_plan([*planned.figure_plan, png], tmp_path / "figures.pkl")
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "(1, 0) True"
    again = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "(0, 1) True", "an unchanged figure is copied, not drawn"
    assert (tmp_path / "planned" / "summary" / "run_level.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda t: t.assign(split="validation"), r"unknown split value\(s\) \['validation'\]"),
        (lambda t: t.assign(label=2), "labels must be 1"),
        (lambda t: t.assign(score="high"), "'score' must be numeric, not (large_)?string"),
        (lambda t: pd.concat([t, t.iloc[:1]]), "run 355000 has several scores for"),
        (lambda t: pd.concat([t[t["histogram"] == HISTS[0]]] * 2), "run 355000 has several scores for"),
    ],
)
def test_score_jobs_check_their_arrow_tables_by_the_same_rules(rng: np.random.Generator, change, message: str) -> None:
    import pyarrow as pa

    good = pa.Table.from_pandas(foreign_table(rng), preserve_index=False)
    assert check_score_table(good) is good
    with pytest.raises(ScoreTableError, match=message):
        check_score_table(pa.Table.from_pandas(change(foreign_table(rng)), preserve_index=False), where="job")


def test_score_files_read_together_equal_each_read_with_pandas(tmp_path: Path, rng: np.random.Generator) -> None:
    """Score jobs write one file per histogram and config; PCA's have latent columns, chi2's not.
    Read as one Arrow table they give what pandas gives file by file, and collect_scores sorts them
    as a stable sort by algorithm, histogram and run would."""
    from dqmflow.models import collect_scores
    from dqmflow.scores import concat_score_files

    table = foreign_table(rng)
    paths = []
    for i, ((_, algorithm), frame) in enumerate(
        pd.concat([table, table.assign(algorithm="pca")]).groupby(["histogram", "algorithm"], sort=False)
    ):
        frame = frame.sample(frac=1.0, random_state=i)  # rows in any order
        if algorithm == "pca":
            frame = frame.assign(latent_1=rng.normal(size=len(frame)), latent_2=rng.normal(size=len(frame)))
        paths.append(tmp_path / f"{i}.parquet")
        frame.to_parquet(paths[-1], index=False)
    expected = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    pd.testing.assert_frame_equal(concat_score_files(paths).to_pandas(), expected)
    collected = collect_scores(paths[::-1], tmp_path / "all.parquet")
    by_key = expected.sort_values(["algorithm", "histogram", "run_number"], kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "all.parquet")[by_key.columns], by_key)
    assert collected.num_rows == len(by_key)
    # A broken file is named; so is a run scored twice across files.
    pd.concat([pd.read_parquet(paths[0])] * 2).to_parquet(paths[1], index=False)
    with pytest.raises(ScoreTableError, match=rf"{paths[1].name}: run \d+ has several scores"):
        concat_score_files(paths)
    pd.read_parquet(paths[0]).to_parquet(paths[1], index=False)
    with pytest.raises(ScoreTableError, match=r"all.parquet: run \d+ has several scores"):
        collect_scores(paths, tmp_path / "all.parquet")
    assert concat_score_files([]).num_rows == 0


def test_planning_the_figures_does_not_load_matplotlib(tmp_path: Path, rng: np.random.Generator) -> None:
    """The assessment job only plans figures (their names and data); the drawing job imports
    matplotlib, which costs every assessment job 0.3-0.6 s otherwise."""
    import subprocess
    import sys

    foreign_table(rng).to_parquet(tmp_path / "scores.parquet", index=False)
    code = (
        "import sys\n"
        "from dqmflow.assess import Settings, assess_histograms\n"
        "from dqmflow.scores import read_scores\n"
        "result = assess_histograms(read_scores(sys.argv[1]), None, Settings(n_bootstrap=10, plots='all'),"
        " plan_figures=True)\n"
        "print(len(result.figure_plan), 'matplotlib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "scores.parquet")], capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
    assert int(out[0]) >= 8 and out[1] == "False"


def test_score_files_that_cannot_be_combined_are_named(tmp_path: Path, rng: np.random.Generator) -> None:
    """A broken file is named, also among thousands; missing keys are refused with pandas and with
    Arrow alike; files written with other string or integer widths combine."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dqmflow.scores import concat_score_files

    table = pa.Table.from_pandas(foreign_table(rng), preserve_index=False)
    pq.write_table(table, tmp_path / "good.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 truncated by a full disk")
    with pytest.raises(ValueError, match=r"broken\.parquet: Parquet magic bytes not found"):
        concat_score_files([tmp_path / "good.parquet", tmp_path / "broken.parquet"])
    large = [(f.name, pa.large_string() if f.type == pa.string() else f.type) for f in table.schema]
    wide = table.cast(pa.schema(large))
    pq.write_table(wide.set_column(0, "run_number", wide["run_number"].cast(pa.int32())), tmp_path / "wide.parquet")
    both = concat_score_files([tmp_path / "good.parquet", tmp_path / "wide.parquet"])
    assert both.num_rows == 2 * table.num_rows
    for column, value in (("histogram", None), ("run_number", None), ("year", None)):
        frame = foreign_table(rng).assign(year=2024)
        values = frame[column].astype(object)
        values.iloc[3] = value
        broken = pa.Table.from_pandas(frame.assign(**{column: values}), preserve_index=False)
        for form in (broken, broken.to_pandas()):
            with pytest.raises(ScoreTableError, match=rf"'{column}' (has 1 missing value|must hold integers)"):
                check_score_table(form, where="x")
    # A dictionary column may repeat a value in its dictionary: the duplicate is still found.
    names = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), pa.array([HISTS[0], HISTS[0]]))
    twice = pa.table({"run_number": [1, 1], "histogram": names, "algorithm": ["a", "a"], "score": [0.1, 0.2]})
    with pytest.raises(ScoreTableError, match="run 1 has several scores"):
        check_score_table(twice)
