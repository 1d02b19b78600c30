"""`python -m dqmflow.assess` / `dqmflow`: verdicts for a score table written by any tool."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dqmflow.assess import read_score_files

PHI = "L1T//Run summary/L1TStage2EMTF/emtfTrackPhi"
ETA = "L1T//Run summary/L1TStage2EMTF/emtfTrackEta"
ODD = "CSC//Run summary/CSCOfflineMonitor/Digis/hStripNFired ME+1-1 #strips"


def run_cli(*args: str | Path, console: bool = False) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "dqmflow")] if console else [sys.executable, "-m", "dqmflow.assess"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, timeout=300)


def hand_written(rng: np.random.Generator, n_runs: int = 90) -> tuple[pd.DataFrame, list[int]]:
    """A long table as a person (or another tool) writes it: no split, two algorithms, three histograms."""
    runs = list(range(356000, 356000 + n_runs))
    bad = runs[::9]
    rows = []
    for algorithm in ("their_ae", "their_chi2"):
        for histogram in (PHI, ETA, ODD):
            for run in runs:
                score = rng.exponential()
                if run in bad and histogram == PHI:
                    score += 6.0
                rows.append((run, histogram, algorithm, score, int(run in bad)))
    return pd.DataFrame(rows, columns=["run_number", "histogram", "algorithm", "score", "label"]), bad


def test_the_cli_writes_verdicts_for_a_hand_written_table(tmp_path: Path, rng: np.random.Generator) -> None:
    table, bad = hand_written(rng)
    table.to_csv(tmp_path / "scores.csv", index=False)
    result = run_cli(tmp_path / "scores.csv", "--out", tmp_path / "out", "--plots", "none", "--no-site")
    assert result.returncode == 0, result.stderr
    verdicts = pd.read_csv(tmp_path / "out" / "verdicts.csv")
    assert list(verdicts.columns[:6]) == ["rank", "run_number", "score", "p_value", "flagged", "histograms"]
    assert set(verdicts["run_number"]) == set(table["run_number"])
    top = verdicts.head(len(bad))
    assert set(top["run_number"]) == set(bad)  # every bad run ranked above every good run
    assert top["histograms"].str.startswith(PHI).all()
    assert "flagged at a false-alarm rate of 0.05" in result.stdout and "reference: 80 good runs" in result.stdout
    run_level = pd.read_csv(tmp_path / "out" / "run_level_auc.csv").set_index("run_score")
    assert run_level.loc["cauchy", "auc"] == pytest.approx(1.0)
    for name in ("metrics.csv", "false_alarm.csv", "false_alarm.tex", "top_runs.csv", "confusion.csv"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    far_html = (tmp_path / "out" / "false_alarm.html").read_text()
    head = re.findall(r"<th>(.*?)</th>", far_html.split("</thead>")[0])
    assert head == ["histogram", "algorithm", "FAR @ 50%", "FAR @ 90%", "FAR @ 95%", "FAR @ 99%"]
    assert far_html.split("</thead>")[1].count("<tr>") == 6  # 3 histograms x 2 algorithms


def test_the_console_script_reads_autodqm_style_wide_csvs_with_both_spellings(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    table, bad = hand_written(rng, n_runs=60)
    chi2 = table[table["algorithm"] == "their_chi2"].pivot(index="run_number", columns="histogram", values="score")
    chi2.columns = [c.replace("//", "/") if c != ETA else c for c in chi2.columns]  # "L1T/Run summary/..." too
    chi2.iloc[3, 1] = -99  # AutoDQM: not scored
    chi2 = chi2.reset_index().rename(columns={"run_number": "run"})
    chi2["label"] = chi2["run"].isin(bad).astype(int)
    chi2.to_csv(tmp_path / "beta_binomial_chi2.csv", index=False)
    long = read_score_files([tmp_path / "beta_binomial_chi2.csv"])
    assert set(long["histogram"]) == {PHI, ETA, ODD} and set(long["algorithm"]) == {"beta_binomial_chi2"}
    assert long["score"].isna().sum() == 1
    result = run_cli(tmp_path / "beta_binomial_chi2.csv", "--out", tmp_path / "out", console=True)
    assert result.returncode == 0, result.stderr
    verdicts = pd.read_csv(tmp_path / "out" / "verdicts.csv")
    assert set(verdicts.head(len(bad))["run_number"]) == set(bad)
    site = tmp_path / "out" / "site" / "index.html"
    assert site.exists() and f"runs/{bad[0]}.html" in site.read_text()
    assert (tmp_path / "out" / "plots" / "run_level.png").exists()


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda t: t.drop(columns="score").rename(columns={"run_number": "nr"}), "neither a long score table"),
        (lambda t: pd.concat([t, t.iloc[:1]]), "has several scores for"),
        (lambda t: t.assign(label=-1), "no good runs.*--reference all"),
        (lambda t: t.assign(label=0).iloc[:0], "empty"),
        (
            lambda t: t.assign(label=np.where(t["histogram"] == PHI, 1 - t["label"], t["label"])),
            "run 356000 has the labels",
        ),
        (
            lambda t: t.astype({"score": object}).assign(score=lambda f: f["score"].where(f.index != 7, "oops")),
            r"column 'score': 'oops' \(run 356007\) is not a number",
        ),
        (lambda t: t.assign(histogram=t["histogram"].where(t.index != 4, "")), "row 6 .* has no histogram name"),
        (lambda t: t.assign(run_number=t["run_number"] + 0.5), "run numbers must be integers, not '356000.5'"),
        (lambda t: t.drop(columns="algorithm"), "has several scores .* no 'algorithm' column"),
    ],
)
def test_bad_tables_end_with_a_clear_error_naming_the_problem(
    tmp_path: Path, rng: np.random.Generator, change, message: str
) -> None:
    table, _ = hand_written(rng, n_runs=30)
    path = tmp_path / "their.csv"
    change(table).to_csv(path, index=False)
    result = run_cli(path, "--out", tmp_path / "out", "--plots", "none", "--no-site")
    assert result.returncode == 2
    assert "dqmflow: error:" in result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not (tmp_path / "out" / "verdicts.csv").exists()


def test_out_of_range_options_and_unknown_runs_are_said(tmp_path: Path, rng: np.random.Generator) -> None:
    table, _ = hand_written(rng, n_runs=30)
    table.to_csv(tmp_path / "their.csv", index=False)
    for option in ("--false-alarm-rate", "--alpha"):
        result = run_cli(tmp_path / "their.csv", "--out", tmp_path / "out", option, "2")
        assert result.returncode == 2 and f"argument {option}: must lie in (0, 1), not 2" in result.stderr
    result = run_cli(tmp_path / "their.csv", "--out", tmp_path / "out", "--plots", "none", "--no-site", "--runs", "1")
    assert result.returncode == 0 and "--runs [1] are not in the score tables" in result.stderr


def test_autodqm_training_output_is_read_by_its_score_columns(tmp_path: Path, rng: np.random.Generator) -> None:
    """AutoDQM_ML's train.py writes the histograms, their reconstructions and the scores side by side."""
    table, bad = hand_written(rng, n_runs=40)
    wide = table[table["algorithm"] == "their_ae"].pivot(index="run_number", columns="histogram", values="score")
    out = pd.DataFrame({"run_number": wide.index, "label": wide.index.isin(bad).astype(int)})
    for histogram in wide.columns:
        out[histogram] = [rng.random(5) for _ in range(len(out))]
        out[f"{histogram}_reco_ae"] = [rng.random(5) for _ in range(len(out))]
        out[f"{histogram}_score_ae"] = wide[histogram].to_numpy()
    out.to_parquet(tmp_path / "train_out.parquet")
    long = read_score_files([tmp_path / "train_out.parquet"])
    assert set(long["histogram"]) == {PHI, ETA, ODD} and set(long["algorithm"]) == {"ae"}
    assert len(long) == 3 * len(out)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "nope.parquet", "--out", tmp_path / "out")
    assert result.returncode == 2 and "nope.parquet does not exist" in result.stderr


def test_run_description_columns_and_word_labels_are_understood(tmp_path: Path, rng: np.random.Generator) -> None:
    table, bad = hand_written(rng, n_runs=40)
    wide = table[table["algorithm"] == "their_ae"].pivot(index="run_number", columns="histogram", values="score")
    wide = wide.reset_index()
    wide["era"] = "2022C"  # run descriptions beside the histogram columns are left out
    wide["lumi"] = rng.uniform(10, 100, len(wide))
    wide["label"] = np.where(wide["run_number"].isin(bad), "bad", "good")
    wide.to_csv(tmp_path / "ae.csv", index=False)
    long = read_score_files([tmp_path / "ae.csv"])
    assert set(long["histogram"]) == {PHI, ETA, ODD}
    assert set(long.loc[long["label"] == 1, "run_number"]) == set(bad)
    wide.assign(label="maybe").to_csv(tmp_path / "odd.csv", index=False)
    with pytest.raises(ValueError, match="label 'maybe' is none of"):
        read_score_files([tmp_path / "odd.csv"])
