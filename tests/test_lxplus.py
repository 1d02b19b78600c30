"""`snakemake --profile lxplus`: the HTCondor profile, its install step and its job wrapper.

No HTCondor pool can run here (no daemons on PyPI or in Debian), so this is the one place with a
stand-in: a recording ``htcondor2`` module (this file's ``Submit``, ``Schedd``, ``JobEventLog``)
placed first on the PYTHONPATH of the Snakemake process. The real executor plugin builds every
submit description and hands it to ``Schedd.submit``; the stand-in records it, then starts the
job as HTCondor would on a worker (the ``executable`` with its ``arguments``, the ``environment``
and nothing else unless ``getenv``, stdout/stderr to ``output``/``error``) and writes the job's
events to the ``log`` file that the plugin reads. So the workflow really runs, job by job, through
the plugin, the profile and the wrapper, and the tests check what HTCondor would have received.
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "lxplus"
GPU_PROFILE = REPO / "profiles" / "lxplus-gpu"
VENV = Path(sys.prefix)
RECORDS = "DQMFLOW_FAKE_CONDOR"  # folder of the stand-in's records, in the Snakemake process's environment


# ----------------------------------------------------------------------------------------------
# The recording stand-in for the htcondor2 bindings (imported by the Snakemake process through a
# generated htcondor2/__init__.py; see fake_bindings()).


class JobEventType(enum.Enum):
    SUBMIT = 0
    EXECUTE = 1
    JOB_EVICTED = 4
    IMAGE_SIZE = 6
    JOB_TERMINATED = 5
    JOB_ABORTED = 9
    JOB_SUSPENDED = 10
    JOB_UNSUSPENDED = 11
    JOB_HELD = 12
    JOB_RELEASED = 13
    SHADOW_EXCEPTION = 7
    JOB_DISCONNECTED = 22
    JOB_RECONNECTED = 23
    JOB_RECONNECT_FAILED = 24
    FILE_TRANSFER = 40


class JobAction(enum.Enum):
    Remove = 3


@dataclass
class JobEvent:
    cluster: int
    type: JobEventType
    attributes: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.attributes.get(key, default)


class JobEventLog:
    """Reads the events the stand-in appends to a job log (JSON lines), from where it last stopped."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.offset = 0

    def events(self, stop_after: int | None = None) -> Iterator[JobEvent]:
        with self.path.open() as stream:
            stream.seek(self.offset)
            for line in iter(stream.readline, ""):
                if not line.endswith("\n"):
                    break  # written halfway: read it next time
                self.offset += len(line.encode())
                record = json.loads(line)
                yield JobEvent(record.pop("cluster"), JobEventType[record.pop("type")], record)

    def close(self) -> None:
        pass


class Submit(dict):
    """A submit description: the keys and values HTCondor receives (as strings)."""

    def __init__(self, description: dict[str, Any]) -> None:
        super().__init__({key: str(value) for key, value in description.items()})

    def issue_credentials(self) -> None:
        return None


class SubmitResult:
    def __init__(self, cluster: int) -> None:
        self._cluster = cluster

    def cluster(self) -> int:
        return self._cluster


def _records() -> Path:
    return Path(os.environ[RECORDS])


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        stream.write(json.dumps(record) + "\n")


def _next_cluster() -> int:
    """Cluster ids stay unique across Snakemake runs, as a schedd's do (the job log is shared)."""
    counter = _records() / "next_cluster"
    with counter.open("a+") as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        stream.seek(0)
        cluster = int(stream.read() or 1)
        stream.seek(0)
        stream.truncate()
        stream.write(str(cluster + 1))
    return cluster


class Schedd:
    def submit(self, description: Submit) -> SubmitResult:
        cluster = _next_cluster()
        iwd = os.getcwd()
        _append(_records() / "submits.jsonl", {"cluster": cluster, "iwd": iwd, "description": dict(description)})
        log = Path(iwd, description["log"])
        _append(log, {"cluster": cluster, "type": "SUBMIT"})
        job = {"cluster": cluster, "iwd": iwd, "description": dict(description), "records": str(_records())}
        if description.get("getenv", "False").lower() == "true":
            job["submitter_environment"] = dict(os.environ)
        starter = f"from tests.test_lxplus import start_job; start_job({json.dumps(job)!r})"
        subprocess.Popen([sys.executable, "-c", starter], cwd=REPO, env={"PYTHONPATH": str(REPO)},
                         stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        return SubmitResult(cluster)

    def query(self, constraint: str = "", projection: list[str] | None = None) -> list[dict[str, Any]]:
        return []

    def history(self, constraint: str = "", projection: list[str] | None = None, **_: Any) -> list[dict[str, Any]]:
        return []

    def act(self, action: JobAction, job_ids: list[str]) -> None:
        _append(_records() / "actions.jsonl", {"action": action.name, "jobs": job_ids})


def condor_arguments(arguments: str) -> list[str]:
    """HTCondor's `arguments`: the new syntax when the whole string is in double quotes, else the old
    one (split on white space)."""
    if arguments.startswith('"') and arguments.endswith('"'):
        return shlex.split(arguments[1:-1].replace('""', '\\"'))
    return arguments.split()


def condor_environment(environment: str) -> dict[str, str]:
    """HTCondor's `environment`: the new syntax ("NAME=value NAME='a value'") when the whole string is
    in double quotes, else the old one (NAME=value;NAME=value)."""
    if environment.startswith('"') and environment.endswith('"'):
        pairs = shlex.split(environment[1:-1].replace('""', '\\"'))
    else:
        pairs = [pair for pair in environment.split(";") if pair]
    return dict(pair.split("=", 1) for pair in pairs)


def start_job(job_json: str) -> None:
    """What HTCondor does on the worker: run the executable in the job's environment, then log the
    termination. The job's peak RSS is recorded so that tests can compare it with request_memory."""
    job = json.loads(job_json)
    cluster, description, iwd = job["cluster"], job["description"], Path(job["iwd"])
    log = iwd / description["log"]
    scratch = Path(job["records"]) / "scratch" / str(cluster)
    scratch.mkdir(parents=True)
    environment = dict(job.get("submitter_environment", {}))
    environment |= condor_environment(description.get("environment", ""))
    environment |= {"_CONDOR_SCRATCH_DIR": str(scratch), "TMPDIR": str(scratch)}

    def path(key: str) -> Path:
        return iwd / description[key].replace("$(ClusterId)", str(cluster)).replace("$(ProcId)", "0")

    _append(log, {"cluster": cluster, "type": "EXECUTE"})
    command = [description["executable"], *condor_arguments(description.get("arguments", ""))]
    with path("output").open("w") as out, path("error").open("w") as err:
        returncode = subprocess.call(command, cwd=iwd, env=environment, stdout=out, stderr=err)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    _append(Path(job["records"]) / "jobs.jsonl", {"cluster": cluster, "returncode": returncode, "peak_mb": peak_mb})
    _append(log, {"cluster": cluster, "type": "JOB_TERMINATED", "ReturnValue": returncode, "TerminatedNormally": True})


def fake_bindings(folder: Path) -> Path:
    """A folder to put first on PYTHONPATH: its htcondor2 is the recording stand-in above."""
    package = folder / "htcondor2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        f"import sys\nsys.path.insert(0, {str(REPO)!r})\n"
        "from tests.test_lxplus import JobAction, JobEventLog, JobEventType, Schedd, Submit  # noqa: F401\n"
    )
    return folder


# ----------------------------------------------------------------------------------------------
# Helpers


@dataclass(frozen=True)
class Recorded:
    """One submitted HTCondor job: its cluster id, submit description and what it did."""

    cluster: int
    iwd: Path
    description: dict[str, str]
    returncode: int
    peak_mb: float

    @property
    def arguments(self) -> list[str]:
        return condor_arguments(self.description["arguments"])

    @property
    def rules(self) -> set[str]:
        """The rules of the Snakemake job(s) it ran (a group job runs several)."""
        targets = self.arguments[self.arguments.index("--target-jobs") + 1 :]
        return {t.split(":", 1)[0] for t in targets[: next(i for i, t in enumerate(targets) if t.startswith("--"))]}

    @property
    def target_jobs(self) -> str:
        return self.arguments[self.arguments.index("--target-jobs") + 1]

    def option(self, name: str) -> str:
        return self.arguments[self.arguments.index(name) + 1]


def read_records(folder: Path) -> list[Recorded]:
    jobs = {r["cluster"]: r for r in map(json.loads, (folder / "jobs.jsonl").read_text().splitlines())}
    return [
        Recorded(r["cluster"], Path(r["iwd"]), r["description"], jobs[r["cluster"]]["returncode"],
                 jobs[r["cluster"]]["peak_mb"])
        for r in map(json.loads, (folder / "submits.jsonl").read_text().splitlines())
    ]  # fmt: skip


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-8000:]}"
    return proc


def user_environment(home: Path, **extra: str) -> dict[str, str]:
    """A login shell's environment on lxplus: the venv activated, HOME, nothing of this test run."""
    return {"HOME": str(home), "PATH": f"{VENV / 'bin'}:/usr/bin:/bin", "VIRTUAL_ENV": str(VENV),
            "CONDOR_CONFIG": "/dev/null", "TF_CPP_MIN_LOG_LEVEL": "2", "LANG": "C.UTF-8", **extra}  # fmt: skip


SNAKEMAKE = [str(VENV / "bin" / "snakemake"), "--snakefile", str(REPO / "workflow" / "Snakefile")]
TINY_CONTENTS = {
    "CSC": ["/Run summary/CSCOfflineMonitor/Segments/hSTimeCombinedSerial",
            "/Run summary/CSCOfflineMonitor/Occupancy/hORecHits"],
    "L1T": ["/Run summary/L1TStage2EMTF/emtfTrackPhi"],
}  # fmt: skip


def write_tiny_demo(work: Path) -> None:
    """The demo source with 12 runs per year, 3 histograms, PCA and a small autoencoder."""
    from dqmflow.demo import DemoSpec, demo_datasets, plan_runs

    spec = DemoSpec(runs_per_year=12, seed=11)
    (work / "config").mkdir(parents=True)
    (work / "contents.json").write_text(json.dumps(TINY_CONTENTS))
    (work / "datasets.json").write_text(json.dumps(demo_datasets(spec, plan_runs(spec))))
    (work / "pca_2.yaml").write_text((REPO / "config" / "algorithms" / "pca_2.yaml").read_text())
    (work / "ae.yaml").write_text(
        "algorithm: autoencoder\ntag: ae_fast\nparams: {n_epochs: 10, early_stopping_rounds: 3, n_nodes: 8}\n"
    )
    config = {
        "source": "demo",
        "contents": "contents.json",
        "datasets": "datasets.json",
        "algorithms": ["pca_2.yaml", "ae.yaml"],
        "demo": {"runs_per_year": spec.runs_per_year, "seed": spec.seed},
        "fetch": {"runs_per_batch": 100},
        "assessment": {"n_bootstrap": 20, "plots": "all"},  # "matter" may draw nothing: no plots folder
    }
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))


# ----------------------------------------------------------------------------------------------
# The install step


@pytest.fixture(scope="module")
def lxplus_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh HOME after the documented install step, `make lxplus-profile`."""
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "HOME": str(home), "CONDOR_CONFIG": "/dev/null"}
    run(["make", "--no-print-directory", "lxplus-profile"], cwd=REPO, env=env)
    return home


@pytest.mark.slow
def test_make_lxplus_profile_links_the_profiles_into_the_users_config(lxplus_home: Path, tmp_path: Path) -> None:
    profiles = lxplus_home / ".config" / "snakemake"
    assert (profiles / "lxplus").resolve() == PROFILE
    assert (profiles / "lxplus-gpu").resolve() == GPU_PROFILE
    assert os.access(profiles / "lxplus" / "job-wrapper.sh", os.X_OK)
    import snakemake_executor_plugin_htcondor  # noqa: F401  (the install step installs the executor)

    # `--profile lxplus` resolves to the linked folder from any working directory, not to profiles/.
    probe = "from snakemake.cli import get_profile_dir; print(get_profile_dir('lxplus')[1])"
    out = run([sys.executable, "-c", probe], cwd=tmp_path, env=user_environment(lxplus_home)).stdout
    assert Path(out.strip()) == profiles / "lxplus" / "config.v8+.yaml"
    # Running it again changes nothing (links replaced, not nested).
    run(["make", "--no-print-directory", "lxplus-profile"], cwd=REPO, env={**os.environ, "HOME": str(lxplus_home)})
    assert sorted(p.name for p in profiles.iterdir()) == ["lxplus", "lxplus-gpu"]
    assert not (PROFILE / "lxplus").exists()


# ----------------------------------------------------------------------------------------------
# The profile


def profile(path: Path) -> dict[str, Any]:
    return yaml.safe_load((path / "config.v8+.yaml").read_text())


def test_gpu_variant_repeats_lxplus_resources_and_adds_gpus_for_autoencoder_training() -> None:
    base, gpu = profile(PROFILE)["default-resources"], profile(GPU_PROFILE)["default-resources"]
    changed = {"classad_JobFlavour", "classad_MaxRuntime", "request_gpus"}
    assert {k: v for k, v in gpu.items() if k not in changed} == {k: v for k, v in base.items() if k not in changed}
    assert "request_gpus" not in base and "trains_network(input.config)" in gpu["request_gpus"]
    assert set(profile(GPU_PROFILE)) == {"default-resources"}, "everything else comes from --profile lxplus"


class _Input:
    """What a profile expression sees as ``input`` for a model job of one algorithm config."""

    def __init__(self, config: Path, score: bool) -> None:
        self.config = str(config)
        if score:
            self.models = ["models/x"]


@pytest.mark.parametrize("config", sorted((REPO / "config" / "algorithms").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_network_config_gets_network_resources_on_lxplus(config: Path) -> None:
    """The profiles' expressions, evaluated as Snakemake does, for every shipped config: all the
    autoencoders (dense, convolutional, simultaneous; ensembles too) get 4 GB, a longer flavour to
    train and, with lxplus-gpu, a GPU to train; the other algorithms 2 GB, espresso, no GPU."""
    network = yaml.safe_load(config.read_text())["algorithm"].endswith("autoencoder")
    base, gpu = profile(PROFILE)["default-resources"], profile(GPU_PROFILE)["default-resources"]
    for score in (False, True):
        scope = {"input": _Input(config, score), "attempt": 1}
        assert eval(base["request_memory"], scope) == (4000 if network else 2000)
        flavour = eval(base["classad_JobFlavour"], scope)
        assert flavour == ("longlunch" if network or score else "espresso"), (config.name, score)
        assert eval(gpu["request_gpus"], scope) == (1 if network and not score else 0)


def test_profile_sizes_every_fixed_rule() -> None:
    config = profile(PROFILE)
    assert config["executor"] == "htcondor"
    rules = {"demo_data", "discover", "fetch", "merge", "run_table", "collect_scores", "assess_histograms",
             "draw_figures", "verdicts", "site"}  # fmt: skip
    assert set(config["set-resources"]) == rules
    for rule, resources in config["set-resources"].items():
        assert {"request_memory", "classad_JobFlavour", "classad_MaxRuntime"} <= set(resources), rule


@pytest.fixture(scope="module")
def demo_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("lxplus-wf")
    write_tiny_demo(work)
    return work


def planned(out: str) -> dict[tuple[str, str], str]:
    """(rule, wildcards) -> resources line of each job in a dry run's output."""
    jobs = {}
    for block in re.split(r"\n(?= *(?:rule|checkpoint|localrule) )", out):  # indented: in a group job
        if m := re.match(r" *(?:rule|checkpoint|localrule) (\w+):", block):
            wildcards = re.search(r"wildcards: (.*)", block)
            resources = re.search(r"resources: (.*)", block)
            jobs[m[1], wildcards[1] if wildcards else ""] = resources[1] if resources else ""
    return jobs


@pytest.mark.slow
def test_snakemake_profile_lxplus_plans_the_demo(lxplus_home: Path, demo_workdir: Path) -> None:
    proc = run([*SNAKEMAKE, "--profile", "lxplus", "-n"], cwd=demo_workdir, env=user_environment(lxplus_home))
    assert "Using profile lxplus" in proc.stderr
    jobs = planned(proc.stdout)
    assert {rule for rule, _ in jobs} >= {"demo_data", "discover", "all"}, "the checkpoint hides the rest"
    discover = jobs["discover", "pd=SingleMuon, year=2017"]
    assert "request_memory=2000" in discover and "classad_JobFlavour=espresso" in discover
    wrapper = lxplus_home / ".config" / "snakemake" / "lxplus" / "job-wrapper.sh"
    assert f"job_wrapper={wrapper}" in discover, "the wrapper path is expanded in the user's HOME"


@pytest.mark.slow
def test_profiles_plan_model_jobs_by_algorithm_family(condor_run: CondorRun) -> None:
    """After discovery, a dry run shows every job: autoencoders get more memory, a longer flavour to
    train, and a GPU with the lxplus-gpu variant."""
    env = user_environment(condor_run.home)
    base = [*SNAKEMAKE, "--profile", "lxplus", "-n", "--forcerun", "train_CSC_1", "score_CSC_1"]
    jobs = planned(run(base, cwd=condor_run.workdir, env=env).stdout)
    ae_train = jobs["train_CSC_1", "pd=SingleMuon, algo=ae_fast"]
    assert "request_memory=4000" in ae_train and "classad_JobFlavour=longlunch" in ae_train
    pca_train = jobs["train_CSC_1", "pd=SingleMuon, algo=pca_2"]
    assert "request_memory=2000" in pca_train and "classad_JobFlavour=espresso" in pca_train
    for algo, memory in (("pca_2", 2000), ("ae_fast", 4000)):  # grouped: the group's flavour, no MaxRuntime
        score = jobs["score_CSC_1", f"pd=SingleMuon, algo={algo}"]
        assert f"request_memory={memory}" in score and "classad_JobFlavour=longlunch" in score
        assert "classad_MaxRuntime" not in score
    gpu = planned(run([*base, "--profile", "lxplus-gpu"], cwd=condor_run.workdir, env=env).stdout)
    assert "request_gpus=1" in gpu["train_CSC_1", "pd=SingleMuon, algo=ae_fast"]
    assert "request_gpus=0" in gpu["score_CSC_1", "pd=SingleMuon, algo=ae_fast"]
    assert "request_gpus=0" in gpu["train_CSC_1", "pd=SingleMuon, algo=pca_2"]


# ----------------------------------------------------------------------------------------------
# The job wrapper, executed for real


WRAPPER = PROFILE / "job-wrapper.sh"
PROBE = "import json, os, sys; print(json.dumps({'prefix': sys.prefix, 'env': dict(os.environ)}))"


def wrapper(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The wrapper as HTCondor starts it with getenv = false: an empty environment plus `environment`."""
    return subprocess.run([str(WRAPPER), *args], env=env, capture_output=True, text=True, timeout=120)


def test_wrapper_activates_the_submitting_venv_and_runs_the_job_command(tmp_path: Path) -> None:
    proc = wrapper(str(VENV / "bin" / "python"), "-c", PROBE, _CONDOR_SCRATCH_DIR=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert Path(seen["prefix"]) == VENV
    assert seen["env"]["VIRTUAL_ENV"] == str(VENV)
    assert seen["env"]["PATH"].split(":")[0] == str(VENV / "bin")
    assert seen["env"]["PYTHONNOUSERSITE"] == "1"
    assert seen["env"]["HOME"] == str(tmp_path), "no HOME on the worker: the job's scratch folder"
    assert seen["env"]["MPLCONFIGDIR"].startswith(str(tmp_path))
    assert f"environment {VENV}" in proc.stderr, "the job's .err log says which environment ran it"


def test_wrapper_runs_snakemake_when_given_only_its_arguments(tmp_path: Path) -> None:
    proc = wrapper("--version", DQMFLOW_ENV=str(VENV), _CONDOR_SCRATCH_DIR=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("9."), "python -m snakemake of the environment ran"


def test_wrapper_activates_a_conda_environment(tmp_path: Path) -> None:
    env = tmp_path / "envs" / "dqmflow"
    (env / "conda-meta").mkdir(parents=True)
    (env / "bin").mkdir()
    (env / "bin" / "python").symlink_to(sys.executable)
    (env / "etc" / "conda" / "activate.d").mkdir(parents=True)
    (env / "etc" / "conda" / "activate.d" / "x.sh").write_text("export DQMFLOW_ACTIVATED=yes\n")
    proc = wrapper(str(env / "bin" / "python"), "-c", PROBE, _CONDOR_SCRATCH_DIR=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)["env"]
    assert seen["CONDA_PREFIX"] == str(env) and seen["PATH"].split(":")[0] == str(env / "bin")
    assert seen["DQMFLOW_ACTIVATED"] == "yes", "the env's activate.d scripts ran"


def test_wrapper_stops_with_a_clear_message_on_an_unreadable_proxy_or_a_missing_environment(tmp_path: Path) -> None:
    proc = wrapper(str(VENV / "bin" / "python"), "-c", "print('ran')", X509_USER_PROXY="/tmp/x509up_u12345")
    assert proc.returncode == 2 and "ran" not in proc.stdout
    assert "X509_USER_PROXY=/tmp/x509up_u12345 is not readable" in proc.stderr and "voms-proxy-init" in proc.stderr
    proxy = tmp_path / "x509up"
    proxy.write_text("proxy")
    proc = wrapper(str(VENV / "bin" / "python"), "-c", "print('ran')", X509_USER_PROXY=str(proxy))
    assert proc.returncode == 0 and proc.stdout.strip() == "ran"
    proc = wrapper("--version", DQMFLOW_ENV=str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "is not visible on" in proc.stderr


# ----------------------------------------------------------------------------------------------
# A real run of the tiny demo through the plugin and the recording schedd


@dataclass(frozen=True)
class CondorRun:
    workdir: Path
    home: Path
    proxy: Path
    jobs: list[Recorded]

    def only(self, rule: str, wildcards: str = "") -> Recorded:
        found = [j for j in self.jobs if rule in j.rules and wildcards in j.target_jobs]
        assert len(found) == 1, f"{rule} {wildcards}: {[j.target_jobs for j in found]}"
        return found[0]


def condor_snakemake(work: Path, home: Path, records: Path, proxy: Path, *args: str) -> None:
    bindings = records / "bindings"
    if not bindings.exists():
        fake_bindings(bindings)
    env = user_environment(home, X509_USER_PROXY=str(proxy), PYTHONPATH=str(bindings))
    env[RECORDS] = str(records)
    # Faster polling and submission than on lxplus; everything else is the profile's.
    fast = ["--seconds-between-status-checks", "1", "--max-jobs-per-timespan", "100/1s"]
    run([*SNAKEMAKE, "--profile", "lxplus", *fast, *args], cwd=work, env=env, timeout=1500)


@pytest.fixture(scope="module")
def condor_run(lxplus_home: Path, tmp_path_factory: pytest.TempPathFactory) -> CondorRun:
    work = tmp_path_factory.mktemp("condor-wf")
    write_tiny_demo(work)
    # As in a checkout: the workflow profile profiles/default is beside the working directory.
    (work / "profiles").mkdir()
    (work / "profiles" / "default").symlink_to(REPO / "profiles" / "default")
    records = tmp_path_factory.mktemp("condor-records")
    proxy = lxplus_home / "private" / "x509up"
    proxy.parent.mkdir()
    proxy.write_text("a proxy")
    condor_snakemake(work, lxplus_home, records, proxy)
    return CondorRun(work, lxplus_home, proxy, read_records(records))


@pytest.mark.slow
def test_the_whole_workflow_ran_as_htcondor_jobs(condor_run: CondorRun) -> None:
    results = condor_run.workdir / "results" / "SingleMuon"
    assert (results / "verdicts.csv").exists() and (results / "site" / "index.html").exists()
    assert all(job.returncode == 0 for job in condor_run.jobs)
    rules = set().union(*(job.rules for job in condor_run.jobs))
    assert {"demo_data", "discover", "fetch", "merge", "run_table", "train_CSC_1", "train_L1T_1", "score_CSC_1",
            "score_L1T_1", "collect_scores", "assess_histograms", "draw_figures", "verdicts",
            "site"} == rules  # fmt: skip
    assert "all" not in rules, "the target rule runs on the submit node"


@pytest.mark.slow
def test_every_job_runs_the_wrapper_with_an_empty_environment_and_the_proxy(condor_run: CondorRun) -> None:
    wrapper_path = str(condor_run.home / ".config" / "snakemake" / "lxplus" / "job-wrapper.sh")
    for job in condor_run.jobs:
        d = job.description
        assert d["executable"] == wrapper_path
        assert job.arguments[:3] == [str(VENV / "bin" / "python3"), "-m", "snakemake"] or job.arguments[:3] == [
            sys.executable, "-m", "snakemake"], "the wrapper gets the submitting interpreter, on AFS"  # fmt: skip
        assert d["getenv"] == "false", "no copy of the lxplus session's environment"
        assert condor_environment(d["environment"]) == {"X509_USER_PROXY": str(condor_run.proxy)}
        assert "should_transfer_files" not in d, "AFS and EOS are shared: no file transfer"
    err = next((condor_run.workdir / "logs" / "htcondor").rglob("*.err")).read_text()
    assert f"environment {VENV}" in err, "the job's .err log shows the wrapper activated the env"


KINDS = {
    # (rule, wildcards): (JobFlavour, MaxRuntime, request_memory MB, request_cpus)
    ("fetch", "subsystem=CSC,batch=R0002970xx"): ("longlunch", 7200, 2000, 1),
    ("train_CSC_1", "algo=pca_2"): ("espresso", 1200, 2000, 1),
    ("train_CSC_1", "algo=ae_fast"): ("longlunch", 7200, 4000, 1),
}  # score jobs and assess_histograms run in group jobs: test_model_jobs_are_grouped_per_chunk


@pytest.mark.slow
@pytest.mark.parametrize(("rule", "wildcards"), list(KINDS))
def test_submit_description_of_each_job_kind(condor_run: CondorRun, rule: str, wildcards: str) -> None:
    flavour, max_runtime, memory, cpus = KINDS[rule, wildcards]
    job = condor_run.only(rule, wildcards)
    d = job.description
    assert d["+JobFlavour"] == f'"{flavour}"'
    assert d["+MaxRuntime"] == str(max_runtime)
    assert d["request_memory"] == str(memory)
    assert d["request_cpus"] == str(cpus)
    assert d["request_disk"] == "2000000"
    assert job.peak_mb < memory, f"the job peaked at {job.peak_mb:.0f} MB"
    # Logs on the shared file system beside the results: logs/htcondor/<name>/<name>-<jobid>_<ClusterId>.out
    name = d["batch_name"].rsplit("-", 1)[0]
    jobdir = Path("logs") / "htcondor"
    assert d["log"] == str(jobdir / "snakemake-rules.log")
    assert d["output"] == str(jobdir / name / f"{d['batch_name']}_$(ClusterId).out")
    assert d["error"] == str(jobdir / name / f"{d['batch_name']}_$(ClusterId).err")
    out = condor_run.workdir / d["output"].replace("$(ClusterId)", str(job.cluster))
    assert out.exists()


@pytest.mark.slow
def test_small_jobs_are_grouped(condor_run: CondorRun) -> None:
    by_rules = {frozenset(job.rules): job for job in condor_run.jobs}
    assert frozenset({"merge", "run_table"}) in by_rules, "merge and the run table are one HTCondor job"
    assert frozenset({"verdicts", "site"}) in by_rules, "verdicts and the web page are one HTCondor job"
    report = by_rules[frozenset({"verdicts", "site"})].description
    assert report["+MaxRuntime"] == "7200" and report["request_memory"] == "4000", "the larger step's, not the sum"
    assert report["request_cpus"] == "1"


def steps(job: Recorded) -> list[str]:
    """The Snakemake jobs (rule:wildcards) an HTCondor job ran."""
    return job.arguments[job.arguments.index("--target-jobs") + 1 : job.arguments.index("--allowed-rules")]


@pytest.mark.slow
@pytest.mark.parametrize("chunk", ["CSC-1", "L1T-1"])
def test_model_jobs_are_grouped_per_chunk(condor_run: CondorRun, chunk: str) -> None:
    """The score jobs of every algorithm config, the assessment of a chunk and the drawing of its
    figures are one HTCondor job; training is not grouped (an autoencoder's is long, maybe on a GPU)."""
    suffix = chunk.replace("-", "_")
    (job,) = [j for j in condor_run.jobs if f"assess_histograms:pd=SingleMuon,chunk={chunk}" in steps(j)]
    assert job.rules == {f"score_{suffix}", "assess_histograms", "draw_figures"}
    targets = steps(job)
    assert sorted(targets) == sorted([f"assess_histograms:pd=SingleMuon,chunk={chunk}",
        f"draw_figures:pd=SingleMuon,chunk={chunk}"] + [
        f"score_{suffix}:pd=SingleMuon,algo={algo}" for algo in ("ae_fast", "pca_2")])  # fmt: skip
    d = job.description
    assert d["batch_name"].startswith(f"models_{chunk}_assess_histograms_draw_figures_score_{suffix}-")
    # The job runs its steps with --cores 2 (profiles/default): both score jobs side by side
    # (2 cores, 4 GB for the autoencoder's + 2 GB for PCA's), then the assessment (2 GB).
    assert job.option("--cores") == "2" and d["request_cpus"] == "2"
    assert d["request_memory"] == "6000"
    assert d["+JobFlavour"] == '"longlunch"', "the one flavour of all its steps"
    assert d["+MaxRuntime"] == "7200", "the assessment's, not a sum: score jobs set none"
    assert job.returncode == 0 and job.peak_mb < 6000
    results = condor_run.workdir / "results" / "SingleMuon"
    for algo in ("ae_fast", "pca_2"):
        assert len(list((results / "scores" / algo).glob(f"{chunk.split('-')[0]}..*.parquet"))) == len(
            TINY_CONTENTS[chunk.split("-")[0]])  # fmt: skip
    assert (results / "assessment" / "chunks" / chunk / "metrics.csv").exists()
    assert any((results / "assessment" / "chunks" / chunk / "plots").rglob("*.vl.json")), "its charts were written"
    # Training: one job per algorithm config, the autoencoder's with its own size.
    for algo, flavour, memory in (("ae_fast", "longlunch", "4000"), ("pca_2", "espresso", "2000")):
        train = condor_run.only(f"train_{suffix}", f"algo={algo}")
        assert train.rules == {f"train_{suffix}"} and train.target_jobs.endswith(f"algo={algo}")
        assert train.description["+JobFlavour"] == f'"{flavour}"' and train.description["request_memory"] == memory


@pytest.mark.slow
def test_no_step_ran_twice(condor_run: CondorRun) -> None:
    every = [step for job in condor_run.jobs for step in steps(job)]
    assert len(every) == len(set(every)), sorted(every)
    assert len(condor_run.jobs) == 28, "3 setup, 16 fetch, tables, 4 train, 2 models_<chunk>, collect, report"


@pytest.mark.slow
def test_jobs_wait_for_files_as_long_as_the_lxplus_profile_says(condor_run: CondorRun) -> None:
    for job in condor_run.jobs:
        assert job.option("--latency-wait") == str(profile(PROFILE)["latency-wait"])


@pytest.mark.slow
def test_gpu_variant_requests_a_gpu_for_autoencoder_training_only(condor_run: CondorRun, tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    condor_snakemake(condor_run.workdir, condor_run.home, records, condor_run.proxy, "--profile", "lxplus-gpu",
                     "--forcerun", "train_CSC_1", "--until", "train_CSC_1")  # fmt: skip
    jobs = {job.target_jobs.split("algo=")[1]: job for job in read_records(records)}
    assert set(jobs) == {"ae_fast", "pca_2"}
    assert jobs["ae_fast"].description["request_gpus"] == "1"
    assert jobs["ae_fast"].description["+JobFlavour"] == '"espresso"'
    assert jobs["pca_2"].description["request_gpus"] == "0"
    assert all(job.returncode == 0 for job in jobs.values())


def test_batch_jobs_that_read_root_need_a_proxy_file(tmp_path: Path) -> None:
    from dqmflow.plan import check_grid_proxy

    source = "root://eoscms.cern.ch//eos/cms/store/group/comm_dqm/DQMGUI_data"
    with pytest.raises(ValueError, match=r"X509_USER_PROXY is not set.*voms-proxy-init"):
        check_grid_proxy(source, "htcondor", {})
    with pytest.raises(ValueError, match="is not a file"):
        check_grid_proxy(source, "htcondor", {"X509_USER_PROXY": str(tmp_path / "nope")})
    (tmp_path / "x509up").write_text("proxy")
    check_grid_proxy(source, "htcondor", {"X509_USER_PROXY": str(tmp_path / "x509up")})
    check_grid_proxy(source, "local", {})  # a local run finds the default proxy itself
    check_grid_proxy("/eos/cms/store", "htcondor", {})  # a FUSE path needs none


def test_snakemake_refuses_to_submit_without_a_proxy(tmp_path: Path) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    env = {k: v for k, v in os.environ.items() if k != "X509_USER_PROXY"} | {"CONDOR_CONFIG": "/dev/null"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"), "--directory",
         str(tmp_path), "--executor", "htcondor", "--jobs", "1", "--config", "source=root://eos.example.ch//eos/x"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "X509_USER_PROXY is not set" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists(), "nothing was submitted"
