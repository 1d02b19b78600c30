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
    assert set(plan.tags) == {"pca_2", "pca_5", "ae_dense", "ks_prev4", "chi2_mean"}


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
