"""The config contract: schema, shipped config, environment files and the workflow lint."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
import yaml
from snakemake.utils import validate

from dqmflow.plan import Plan
from tests.conftest import REPO


def test_shipped_config_validates_and_defaults_fill_in() -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    minimal = {"source": "/eos/x", "contents": "c.json", "datasets": "d.json", "algorithms": ["a.yaml"]}
    validate(minimal, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    assert minimal["preprocessing"]["min_entries"] == 10000
    assert minimal["fetch"]["runs_per_batch"] == 10000
    assert minimal["assessment"]["efficiencies"] == [0.5, 0.9, 0.95, 0.99]


@pytest.mark.parametrize(
    "change",
    [{"fetch": {"runs_per_batch": 250}}, {"preprocessing": {"train_fraction": 1.5}}, {"typo": 1}, {"algorithms": []}],
)
def test_schema_rejects_bad_values(change) -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(change)
    with pytest.raises(Exception, match=r"(?i)validat|schema"):
        validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))


def test_plan_of_the_default_config(monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    plan = Plan.from_config(config)
    assert plan.primary_datasets == ("SingleMuon",)
    assert plan.years == (2017, 2018)
    assert plan.subsystems == ("CSC", "L1T")
    assert len(plan.slugs) == 15 and len(set(plan.slugs)) == 15
    assert set(plan.tags) == {"pca_5", "bb_chi2_4ref", "ks_prev4", "chi2_mean", "ae_conv", "ae_simultaneous_seeds"}


def _requirements() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return {r.replace(" ", "") for r in project["dependencies"] + extras["ml"] + extras["xrootd"] + extras["lxplus"]}


@pytest.mark.parametrize("env_file", ["environment.yml", "workflow/envs/dqmflow.yaml"])
def test_conda_environments_list_the_same_dependencies(env_file: str) -> None:
    env = yaml.safe_load((REPO / env_file).read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {p.replace(" ", "") for p in pip if not p.startswith("-e")} == _requirements()
    assert "python=3.11" in env["dependencies"]


@pytest.mark.slow
def test_snakemake_lint_passes() -> None:
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True,
                          env={"CONDOR_CONFIG": "/dev/null", "PATH": "/usr/bin:/bin"}, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_jobs_find_the_package_source(monkeypatch) -> None:
    from dqmflow.plan import export_source_path

    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    export_source_path(REPO / "src")
    export_source_path(REPO / "src")  # idempotent
    assert __import__("os").environ["PYTHONPATH"].split(":") == [str(REPO / "src"), "/elsewhere"]
    code = "import dqmflow, sys; print(dqmflow.__file__)"
    env = {"PYTHONPATH": __import__("os").environ["PYTHONPATH"], "PATH": "/usr/bin:/bin"}
    # a bare interpreter (not the project's venv) imports dqmflow from src/ through PYTHONPATH
    out = subprocess.run(["/usr/bin/env", "-i", f"PYTHONPATH={env['PYTHONPATH']}", sys.executable, "-S", "-c", code],
                         capture_output=True, text=True)  # fmt: skip
    assert out.stdout.strip().startswith(str(REPO / "src" / "dqmflow")), out.stderr


# ---------------------------------------------------------------- startup checks (issue 8, items 5, 8, 9, 10)


def _schema() -> str:
    return str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def test_nested_command_line_overrides_are_converted() -> None:
    from dqmflow.configcheck import check_config

    # what snakemake --config fetch='{runs_per_batch: 100}' retrain=True hands over (BaseLoader: strings)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["fetch"] = {"runs_per_batch": "100", "on_error": "skip"}
    config["assessment"]["efficiencies"] = ["0.5", "0.9"]
    check_config(config, _schema())
    assert config["fetch"] == {"runs_per_batch": 100, "on_error": "skip", "retries": 3, "reuse_shards": True,
                               "max_host_failures": 3}  # fmt: skip
    assert config["assessment"]["efficiencies"] == [0.5, 0.9]


def test_a_misspelled_key_gives_one_line_with_the_allowed_keys() -> None:
    from dqmflow.configcheck import ConfigError, check_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["contnets"] = config.pop("contents")
    with pytest.raises(ConfigError) as err:
        check_config(config, _schema())
    message = str(err.value)
    assert "'contnets' was unexpected" in message and "Allowed keys: algorithms, assessment, contents" in message
    assert len(message.splitlines()) <= 3 and len(message) < 600, "no schema dump"


def test_subsystem_names_that_cannot_name_jobs_are_refused() -> None:
    from dqmflow.metadata import MetadataError, parse_contents

    for name in ("CSC Offline", "L1Téléphone"):
        with pytest.raises(MetadataError, match="may contain only ASCII letters"):
            parse_contents({name: ["/Run summary/x"]}, "c.json")


def test_algorithm_checks_run_at_startup_and_name_the_file(tmp_path) -> None:
    from dqmflow.algorithms.base import ConfigError
    from dqmflow.plan import load_algorithms

    fixed = tmp_path / "ks_fixed.yaml"
    fixed.write_text("algorithm: ks\nparams: {reference: fixed_run}\n")
    with pytest.raises(ConfigError, match=rf"{fixed}: ks: reference: fixed_run needs reference_run"):
        load_algorithms([str(fixed)])
    typo = tmp_path / "typo.yaml"
    typo.write_text("algorithm: kss\n")
    with pytest.raises(ConfigError, match=rf"^{typo}: unknown algorithm 'kss'"):
        load_algorithms([str(typo)])


@pytest.mark.slow
def test_snakemake_startup_errors_are_short_and_overrides_work(tmp_path) -> None:
    import json

    def run(*config: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
               "--directory", str(tmp_path), "--cores", "1", "--dry-run", "--config", *config]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, env={"CONDOR_CONFIG": "/dev/null",
                              "PATH": "/usr/bin:/bin"}, timeout=300)  # fmt: skip
        proc.stderr += proc.stdout
        return proc

    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    contents, datasets = str(REPO / "config/demo/contents.json"), str(REPO / "config/demo/datasets.json")
    algos = f"algorithms=[{REPO / 'config/algorithms/pca_2.yaml'}]"
    ok = run(f"contents={contents}", f"datasets={datasets}", algos, "fetch={runs_per_batch: 100}")
    assert ok.returncode == 0, ok.stderr[-3000:]
    typo = run(f"contnets={contents}", f"datasets={datasets}", algos)
    assert typo.returncode != 0 and "'contnets' was unexpected" in typo.stderr and "Allowed keys:" in typo.stderr
    assert "$schema" not in typo.stderr and len(typo.stderr.splitlines()) < 40, "no schema dump"
    spaced = tmp_path / "spaced.json"
    spaced.write_text(json.dumps({"CSC Offline": ["/Run summary/x"]}))
    bad = run(f"contents={spaced}", f"datasets={datasets}", algos)
    assert bad.returncode != 0 and "'CSC Offline' may contain only ASCII letters" in bad.stderr
    fixed = tmp_path / "ks_fixed.yaml"
    fixed.write_text("algorithm: ks\nparams: {reference: fixed_run}\n")
    bad = run(f"contents={contents}", f"datasets={datasets}", f"algorithms=[{fixed}]")
    assert bad.returncode != 0 and f"{fixed}: ks: reference: fixed_run needs reference_run" in bad.stderr


def test_a_primary_dataset_name_without_its_folder_lists_the_folders_there(tmp_path, monkeypatch) -> None:
    """'HLTPhysic' for 'HLTPhysics': the message names what Run<YEAR>/ holds."""
    monkeypatch.chdir(REPO)
    for name in ("HLTPhysics", "JetMET"):
        (tmp_path / "Run2018" / name).mkdir(parents=True)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["source"] = str(tmp_path)
    plan = Plan.from_config(config)
    message = plan.empty_message("HLTPhysic")
    assert f"{tmp_path / 'Run2018'} has no HLTPhysic folder (it has: HLTPhysics, JetMET)" in message
    assert f"{tmp_path / 'Run2017'} does not exist" in message


def test_a_listed_run_without_a_file_is_one_report_row_that_says_to_refresh(tmp_path, monkeypatch) -> None:
    """A run in a year's runs and in bad_runs whose file is not in the catalog: one no_file row
    (saying how to pick up a file that appeared since discovery), not a second label_no_file row."""
    import json

    from dqmflow.discover import DqmFile, select

    monkeypatch.chdir(REPO)
    datasets = {"primary_datasets": ["SingleMuon"], "years": {"2018": {"productions": ["UL2018"],
                "runs": ["315000", "315001"], "bad_runs": ["315001", "315002"]}}}  # fmt: skip
    (tmp_path / "datasets.json").write_text(json.dumps(datasets))
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["datasets"] = str(tmp_path / "datasets.json")
    plan = Plan.from_config(config)
    name = "DQM_V0001_R000315000__SingleMuon__Run2018A-PromptReco-v1__DQMIO.root"
    prompt = DqmFile(315000, 2018, "A", "PromptReco-v1", 1, "SingleMuon", f"/eos/{name}")  # not UL2018
    chosen = select([prompt], plan.datasets)
    rows = plan.selection_problems(chosen) + plan.unmatched_labels(chosen)
    by_run: dict[int, list[str]] = {}
    for row in rows:
        by_run.setdefault(row["run_number"], []).append(row["status"])
    assert by_run == {315000: ["no_file"], 315001: ["no_file"], 315002: ["label_no_file"]}
    problems = {r["run_number"]: r["problem"] for r in rows if r["status"] == "no_file"}
    assert "snakemake --forcerun discover" in problems[315001]
    assert problems[315000] == (
        "run 315000 of year 2018 is listed in the datasets file, but its files (A-PromptReco-v1) do not match "
        "the year's productions and eras"
    )


def test_a_smaller_demo_with_the_shipped_labels_is_warned_about(monkeypatch) -> None:
    """demo.runs_per_year changed, datasets file kept: its bad runs are not the demo's anomalies."""
    monkeypatch.chdir(REPO)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    plan = Plan.from_config(config)
    assert plan.demo_label_warning(int(config["demo"]["runs_per_year"]), int(config["demo"]["seed"])) == ""
    warning = plan.demo_label_warning(50, int(config["demo"]["seed"]))
    assert warning.startswith("WARNING: config/demo/datasets.json lists 1 of the demo's 11 anomalous runs as bad")
    assert "python -m dqmflow.demo /tmp/dqmflow-demo --runs-per-year 50 --seed 20260101 --config-dir DIR" in warning


def test_too_few_calibration_runs_are_said_before_any_training(monkeypatch) -> None:
    """60 runs with the default 20% calibration share cannot flag at 5% (needs 20): said when the
    workflow plans, once per primary dataset, not only after every model was trained."""
    from dqmflow.discover import DqmFile, select

    monkeypatch.chdir(REPO)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    plan = Plan.from_config(config)

    def files(n: int) -> list[DqmFile]:
        name = "DQM_V0001_R000{run}__SingleMuon__Run2018A-12Nov2019_UL2018-v2__DQMIO.root"
        return [DqmFile(run, 2018, "A", "12Nov2019_UL2018-v2", 2, "SingleMuon", "/x/" + name.format(run=run))
                for run in range(315000, 315000 + n)]  # fmt: skip

    warning = plan.calibration_warning("SingleMuon", select(files(60), plan.datasets), 0.05)
    assert warning.startswith("WARNING: SingleMuon: at most ") and "needs 20: no run will be flagged" in warning
    assert plan.calibration_warning("SingleMuon", select(files(60), plan.datasets), 0.05) == "", "said once"
    big = Plan.from_config(config)
    assert big.calibration_warning("SingleMuon", select(files(400), big.datasets), 0.05) == ""
    # as the verdicts choose the reference: without a calibration share, the good runs outside training
    config["preprocessing"] = {**config["preprocessing"], "calibration_fraction": 0.0}
    none = Plan.from_config(config)
    assert none.calibration_warning("SingleMuon", select(files(300), none.datasets), 0.05) == ""
    config["preprocessing"]["calibration_fraction"] = 0.05
    few = Plan.from_config(config)
    assert few.calibration_warning("SingleMuon", select(files(300), few.datasets), 0.05, "all") == ""
    few = Plan.from_config(config)
    assert "calibration runs" in few.calibration_warning("SingleMuon", select(files(300), few.datasets), 0.05)
