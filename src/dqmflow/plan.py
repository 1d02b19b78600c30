"""What the Snakemake workflow expands over, computed from the validated config.

``rules/common.smk`` builds one :class:`Plan` and asks it for primary datasets, years,
subsystems, histogram slugs, algorithm tags and, once discovery has run, the fetch batches. Keeping
this here (not in ``.smk`` files) makes it unit-testable without Snakemake.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dqmflow.algorithms.base import Algorithm, AlgorithmConfig, ConfigError, load_config
from dqmflow.discover import DqmFile, Selection, batch_of, read_catalog, select
from dqmflow.manifest import manifest_is_complete
from dqmflow.metadata import Datasets, load_contents, load_datasets
from dqmflow.names import HistogramName
from dqmflow.params import digest
from dqmflow.runtable import assign_split, reference_mask, runs_to_flag
from dqmflow.training import candidates_digest, training_key

__all__ = [
    "DEMO_DIR",
    "SELECTION_RECORD",
    "Chunk",
    "Plan",
    "check_grid_proxy",
    "describe_selection",
    "export_source_path",
    "load_algorithms",
    "mark_stale_merge",
    "selection_change",
]

DEMO_DIR = "results/demo"
# Written by the merge beside a primary dataset's results: what selected them (see Plan.selection_identity).
SELECTION_RECORD = "selection.json"


def _file_identity(path: str) -> dict[str, str]:
    """A selection file's name, absolute path and SHA-256 of its bytes (empty if unreadable)."""
    file = Path(path).expanduser()
    try:
        sha = hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError:
        sha = ""
    return {"name": file.name, "file": str(file.resolve()), "sha256": sha}


def describe_selection(identity: Mapping[str, Any], other: Mapping[str, Any] | None = None) -> str:
    """``contents + datasets`` file names of a selection identity; full paths, "(edited since)" or
    the source are added where they are what differs from ``other``."""
    parts = []
    for key in ("contents", "datasets"):
        mine, theirs = dict(identity.get(key, {})), dict((other or {}).get(key, {}))
        text = str(mine.get("name", "?"))
        if theirs and theirs.get("name") == mine.get("name") and theirs.get("file") != mine.get("file"):
            text = str(mine.get("file"))
        parts.append(text)
    text = " + ".join(parts)
    if other is not None and other.get("source") != identity.get("source"):
        text += f" (source {identity.get('source')})"
    return text


def selection_change(record: str | Path, identity: Mapping[str, Any]) -> str | None:
    """The line to print when the results next to ``record`` (a primary dataset's
    ``selection.json``) were made from another selection than ``identity``; None if the same, or if
    there are no results yet."""
    record = Path(record)
    pd_dir = record.parent
    if not record.exists():
        if (pd_dir / "histograms.parquet").exists():
            return (
                f"{pd_dir} has no record of the contents and datasets files it was made from; this run uses "
                f"{describe_selection(identity)}: its outputs are remade"
            )
        return None
    try:
        old = dict(json.loads(record.read_text(encoding="utf-8")).get("identity", {}))
    except (OSError, ValueError):
        old = {}
    keys = ("source", "contents", "datasets")
    if all(old.get(k) == identity.get(k) for k in keys):
        return None
    before, now = describe_selection(old, identity), describe_selection(identity, old)
    if before == now:  # same names and paths: a file was edited
        edited = [k for k in ("contents", "datasets") if old.get(k) != identity.get(k)]
        return (
            f"{pd_dir} was made from {before}; this run uses {now} with the {' and '.join(edited)} file edited "
            "since: its outputs are updated"
        )
    return f"{pd_dir} was made from {before}; this run uses {now}: its outputs are replaced"


def export_source_path(src: str | Path) -> None:
    """Put ``src`` (the folder holding ``dqmflow``) first on ``PYTHONPATH`` for the jobs Snakemake
    starts, so they import this code also from per-rule conda environments or on batch nodes."""
    current = os.environ.get("PYTHONPATH", "")
    parts = [str(src), *(p for p in current.split(os.pathsep) if p and p != str(src))]
    os.environ["PYTHONPATH"] = os.pathsep.join(parts)


#: Executors whose jobs run on other machines: a root:// source needs a grid proxy file they can read.
BATCH_EXECUTORS = ("htcondor", "slurm", "lsf")


def check_grid_proxy(source: str, executor: str, environ: Mapping[str, str]) -> None:
    """Refuse to submit batch jobs that read ``root://`` without a grid proxy they can find.

    Local runs are not checked (a local XRootD server needs no proxy; the client finds the
    default one). On a batch system, ``X509_USER_PROXY`` must name a proxy file on a shared file
    system (AFS), which the job environment passes on (README: Running on lxplus)."""
    if not source.startswith("root://") or executor not in BATCH_EXECUTORS:
        return
    proxy = environ.get("X509_USER_PROXY", "")
    if not proxy or not Path(proxy).is_file():
        where = f"X509_USER_PROXY={proxy} is not a file" if proxy else "X509_USER_PROXY is not set"
        raise ValueError(
            f"the source {source} is read over XRootD by {executor} jobs on other machines, but {where}. "
            "Create a proxy on AFS and export it: voms-proxy-init --voms cms --valid 168:00 "
            "--out ~/private/x509up && export X509_USER_PROXY=~/private/x509up"
        )


def load_algorithms(paths: Sequence[str]) -> dict[str, AlgorithmConfig]:
    """Load and fully check the algorithm config files at startup.

    Every error names the file: unknown algorithms and keys, bad values, and the checks an
    algorithm makes when it is built (e.g. ``reference: fixed_run`` without ``reference_run``),
    which would otherwise only fail at training time.
    """
    configs: dict[str, AlgorithmConfig] = {}
    for path in paths:
        try:
            cfg = load_config(path)
        except ConfigError as err:
            raise ConfigError(str(err) if str(path) in str(err) else f"{path}: {err}") from None
        try:
            cfg.build()
            if issubclass(cfg.cls, Algorithm):  # per-histogram models are made at fit time: make one now
                cfg.cls(cfg.params)
        except Exception as err:
            raise ConfigError(f"{path}: {cfg.algorithm}: {err}") from None
        if cfg.tag in configs:
            raise ConfigError(f"tag {cfg.tag!r} is used by both {configs[cfg.tag].path} and {path}")
        configs[cfg.tag] = cfg
    return configs


def mark_stale_merge(table: str | Path, manifests: Sequence[str | Path], guard: str | Path) -> list[str]:
    """Keep ``guard`` (an input of the merge, beside its manifests) newer than the merged ``table``
    while a manifest is missing or incomplete, and return those manifests.

    Snakemake does not rebuild a missing intermediate file when the files made from it exist, so a
    manifest deleted or lost after the merge would otherwise never be fetched again. Rewriting the
    guard (its content names the manifests and the time) makes the merge rerun, and with it the
    fetch jobs of the missing manifests. The guard is created on first use.
    """
    guard, table = Path(guard), Path(table)
    broken = [str(m) for m in manifests if not manifest_is_complete(m)]
    stale = bool(broken) and table.exists() and (not guard.exists() or guard.stat().st_mtime <= table.stat().st_mtime)
    if stale or not guard.exists():
        guard.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{time.strftime('%Y-%m-%d %H:%M:%S')} fetch manifests missing or incomplete after a merge:"]
        guard.write_text("\n".join(lines + broken if stale else ["fetch state guard of the merge"]) + "\n")
    return broken


@functools.lru_cache(maxsize=256)
def _catalog(path: str, mtime: float) -> tuple[DqmFile, ...]:
    return tuple(read_catalog(path))


@dataclass(frozen=True)
class Chunk:
    """The histograms one model job handles: up to ``histograms_per_job`` of one subsystem."""

    id: str  # e.g. "CSC-1": names logs, benchmarks and the training record
    subsystem: str
    histograms: tuple[HistogramName, ...]

    @property
    def rule_suffix(self) -> str:
        """``id`` as a Snakemake rule name suffix (letters, digits, ``_``)."""
        return re.sub(r"\W", "_", self.id)

    @property
    def columns(self) -> list[str]:
        return [h.column for h in self.histograms]

    @property
    def slugs(self) -> list[str]:
        return [h.slug for h in self.histograms]


@dataclass(frozen=True)
class Plan:
    source: str
    histograms: tuple[HistogramName, ...]
    datasets: Datasets
    algorithms: Mapping[str, AlgorithmConfig]
    runs_per_batch: int
    histograms_per_job: int = 200
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    retrain: bool = False
    contents_file: str = ""
    datasets_file: str = ""
    _memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Plan:
        prep = config.get("preprocessing", {})
        return cls(
            source=config["source"],
            histograms=tuple(load_contents(config["contents"])),
            datasets=load_datasets(config["datasets"]),
            algorithms=load_algorithms(list(config["algorithms"])),
            runs_per_batch=int(config["fetch"]["runs_per_batch"]),
            histograms_per_job=int(config.get("histograms_per_job", 200)),
            preprocessing=dict(prep),
            retrain=bool(config.get("retrain", False)),
            contents_file=str(config["contents"]),
            datasets_file=str(config["datasets"]),
        )

    @functools.cached_property
    def selection_identity(self) -> dict[str, Any]:
        """What selects the data of every primary dataset: the source and the contents and
        datasets files (name, absolute path, SHA-256). Recorded by the merge in
        ``results/<PD>/selection.json``; a run with another identity replaces those results."""
        return {
            "source": self.source_location,
            "contents": _file_identity(self.contents_file),
            "datasets": _file_identity(self.datasets_file),
        }

    @functools.cached_property
    def selection_keys(self) -> dict[str, str]:
        """Digests of the selection: ``files`` (source and the two files' paths: a fetch job reruns
        when it changes) and ``all`` (also their contents: the merge reruns when it changes)."""
        ident = self.selection_identity
        files = {"source": ident["source"], **{k: ident[k]["file"] for k in ("contents", "datasets")}}
        return {"files": digest(files), "all": digest(ident)}

    def selection_marker(self, primary_dataset: str, kind: str) -> str:
        """``results/<PD>/selection/<kind>-<key>.json``: made by a job when the selection's
        ``kind`` key is new (see :attr:`selection_keys`), so that the jobs taking it as input rerun;
        the merge deletes the markers of other selections, so that returning to one reruns too."""
        return f"results/{primary_dataset}/selection/{kind}-{self.selection_keys[kind]}.json"

    def announce_selection_change(self, primary_dataset: str) -> str | None:
        """:func:`selection_change` for ``results/<PD>/``, only the first time it is asked for."""
        key = ("announced", primary_dataset)
        if key in self._memo:
            return None
        self._memo[key] = True
        return selection_change(Path("results", primary_dataset, SELECTION_RECORD), self.selection_identity)

    @functools.cached_property
    def chunks(self) -> tuple[Chunk, ...]:
        """Each subsystem's histograms, in contents order, cut into jobs of ``histograms_per_job``."""
        out: list[Chunk] = []
        for subsystem in self.subsystems:
            names = [h for h in self.histograms if h.subsystem == subsystem]
            for k, start in enumerate(range(0, len(names), self.histograms_per_job), start=1):
                out.append(Chunk(f"{subsystem}-{k}", subsystem, tuple(names[start : start + self.histograms_per_job])))
        suffixes = [c.rule_suffix for c in out]
        if len(set(suffixes)) != len(suffixes):
            raise ValueError(f"subsystem names collide once '-' is read as '_': {sorted(self.subsystems)}")
        return tuple(out)

    def training_key(self, selection: Selection, tag: str, chunk: Chunk, pool: Sequence[int] | None) -> str:
        """The training key (:mod:`dqmflow.training`) of ``chunk`` for algorithm config ``tag``.

        ``pool`` is the run list of the chunk's training record, or ``None`` if it was never
        trained; with ``retrain`` the pool is every selected run, so models whose training set
        would grow are retrained.
        """
        runs = tuple(sorted(selection.files)) if pool is None or self.retrain else tuple(pool)
        memo = ("candidates", id(selection), hash(runs))
        if memo not in self._memo:  # the same for every chunk trained at the same time
            signatures, labels = self.signatures(selection), self.labels(selection)
            self._memo[memo] = (selection, candidates_digest(runs, signatures, labels, self.preprocessing))
        return training_key(
            runs,
            {},
            {},
            algorithm=self.algorithms[tag].as_dict(),
            preprocessing=self.preprocessing,
            columns=chunk.columns,
            code=self._code_digest(tag),
            candidates=self._memo[memo][1],
        )

    def _code_digest(self, tag: str) -> str:
        memo = ("code", tag)
        if memo not in self._memo:
            self._memo[memo] = self.algorithms[tag].code_digest()
        return str(self._memo[memo])

    @property
    def is_demo(self) -> bool:
        return self.source == "demo"

    @property
    def source_location(self) -> str:
        """The folder or URL files are discovered in (absolute for local folders)."""
        if self.is_demo:
            return str(Path(DEMO_DIR, "DQMGUI_data").resolve())
        if self.source.startswith("root://"):
            return self.source
        return str(Path(os.path.expanduser(self.source)).resolve())

    @property
    def primary_datasets(self) -> tuple[str, ...]:
        return self.datasets.primary_datasets

    @property
    def years(self) -> tuple[int, ...]:
        return tuple(sel.year for sel in self.datasets.years)

    @property
    def subsystems(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.subsystem for h in self.histograms))

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(h.slug for h in self.histograms)

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(self.algorithms)

    def columns(self, subsystem: str) -> list[str]:
        return [h.column for h in self.histograms if h.subsystem == subsystem]

    def selection(self, catalogs: Sequence[str]) -> Selection:
        """Apply the datasets file to discovery catalogs (memoised per catalog version)."""
        key = tuple((str(p), os.path.getmtime(p)) for p in catalogs)
        if key not in self._memo:
            files: list[DqmFile] = []
            for path, mtime in key:
                files.extend(_catalog(path, mtime))
            self._memo[key] = select(files, self.datasets)
        return self._memo[key]

    def batches(self, selection: Selection) -> dict[str, list[DqmFile]]:
        """Selected files grouped by fetch batch (run range), memoised per selection."""
        key = ("batches", id(selection))
        if key not in self._memo:
            out: dict[str, list[DqmFile]] = {}
            for run, item in sorted(selection.files.items()):
                out.setdefault(batch_of(run, self.runs_per_batch), []).append(item)
            self._memo[key] = (selection, out)  # keep the selection alive so its id stays unique
        return self._memo[key][1]

    def batch_files(self, selection: Selection, batch: str) -> list[dict[str, Any]]:
        return [asdict(f) for f in self.batches(selection).get(batch, [])]

    def calibration_warning(
        self, primary_dataset: str, selection: Selection, false_alarm_rate: float, reference: str = "auto"
    ) -> str:
        """A warning, the first time it is asked for, when too few of the selected runs can be
        reference runs (``reference``, resolved as :func:`dqmflow.verdicts.reference_mode` does)
        to flag any run at ``false_alarm_rate`` (said before any training; the verdicts' problems
        say it again at the end); "" otherwise. An upper bound: runs below ``min_entries`` are
        known only after the merge."""
        key = ("calibration", primary_dataset)
        if key in self._memo:
            return ""
        self._memo[key] = True
        prep = self.preprocessing
        seed, train, calibration = int(prep["seed"]), float(prep["train_fraction"]), float(prep["calibration_fraction"])
        labels = self.labels(selection)
        split = np.array([assign_split(run, seed, train, calibration) for run in labels], dtype=object)
        label = np.array(list(labels.values()))
        if reference == "auto":
            # the split here is the hash's alone: a bad run it puts in calibration goes to test in the run table
            calibrated, good = (reference_mask(split, label, mode).any() for mode in ("calibration", "good"))
            reference = "calibration" if calibrated else "good" if good else "all"
        n = int(reference_mask(split, label, reference).sum())
        need = runs_to_flag(false_alarm_rate)
        if not labels or n >= need:
            return ""
        what = (
            "calibration runs" if reference == "calibration" else f"reference runs (assessment.reference {reference})"
        )
        return (
            f"WARNING: {primary_dataset}: at most {n} of its {len(labels)} runs are {what} "
            f"(preprocessing.calibration_fraction {calibration:g}), and flagging a run at a false-alarm rate of "
            f"{false_alarm_rate:g} needs {need}: no run will be flagged. Add runs, raise "
            "preprocessing.calibration_fraction (models retrain), or raise assessment.false_alarm_rate"
        )

    def labels(self, selection: Selection) -> dict[int, int]:
        return self.datasets.labels(selection.files)

    @staticmethod
    def signatures(selection: Selection) -> dict[int, str]:
        """Each selected run's file signature (path, size, mtime)."""
        return {run: item.signature for run, item in selection.files.items()}

    def empty_message(self, primary_dataset: str) -> str:
        """The one line said when no file of ``primary_dataset`` was found or selected."""
        years = ", ".join(str(y) for y in self.years)
        return (
            f"no DQM file of {primary_dataset} {years} under {self.source_location} matches the datasets file "
            f"(expected <source>/Run<YEAR>/{primary_dataset}/R000NNNNxx/DQM_V<VVVV>_R000<run>__{primary_dataset}__"
            "Run<YEAR><ERA>-<processing>__DQMIO.root, with a production of the datasets file in the name)"
            + self._folders_present(primary_dataset)
        )

    def demo_label_warning(self, runs_per_year: int, seed: int) -> str:
        """With the demo as source: a warning when the datasets file lists fewer than half of the
        demo's anomalous runs as bad (written for other ``demo:`` settings, its labels would
        measure every figure of merit against the wrong runs); "" otherwise."""
        if not self.is_demo:
            return ""
        from dqmflow.demo import DemoSpec, plan_runs

        anomalous = {p.run for p in plan_runs(DemoSpec(runs_per_year=runs_per_year, seed=seed)) if p.anomaly}
        listed = len(anomalous & self.datasets.bad_runs)
        if not anomalous or 2 * listed >= len(anomalous):
            return ""
        return (
            f"WARNING: {self.datasets_file} lists {listed} of the demo's {len(anomalous)} anomalous runs as bad "
            f"(demo: runs_per_year {runs_per_year}, seed {seed}): it was written for other demo settings, and "
            "the figures of merit and verdicts would be measured against wrong labels. Write a matching one with "
            f"python -m dqmflow.demo /tmp/dqmflow-demo --runs-per-year {runs_per_year} --seed {seed} "
            "--config-dir DIR, and set datasets: DIR/datasets.json"
        )

    def _folders_present(self, primary_dataset: str) -> str:
        """For a local source (a folder, EOS through its mount) without a ``Run<YEAR>/<PD>``
        folder: the primary datasets that year has (a typo in the name is then plain to see)."""
        if self.source.startswith("root://") or self.is_demo:
            return ""
        if not Path(self.source_location).is_dir():
            return f"; the source folder {self.source_location} does not exist"
        said = []
        for year in self.years:
            folder = Path(self.source_location) / f"Run{year}"
            if (folder / primary_dataset).is_dir():
                continue
            try:
                present = sorted(p.name for p in folder.iterdir() if p.is_dir())
            except OSError:
                said.append(f"{folder} does not exist")
                continue
            shown = ", ".join(present[:12]) + (f" and {len(present) - 12} more" if len(present) > 12 else "")
            said.append(f"{folder} has no {primary_dataset} folder (it has: {shown or 'nothing'})")
        return ("; " + "; ".join(said)) if said else ""

    def empty_year_message(self, primary_dataset: str, selection: Selection) -> str:
        """The error when a year has files of which none passes its productions and eras (a typo
        there), naming what was found; "" when there is none. A year without any file (not on
        the source yet, or not of this primary dataset) is not one: its listed runs are reported."""
        lines = []
        for sel in self.datasets.years:
            if sel.year not in selection.empty_years:
                continue
            found = selection.empty_years[sel.year]
            what = f"productions {list(sel.productions)}" + (f", eras {list(sel.eras)}" if sel.eras else "")
            shown = ", ".join(f"{name} ({n} files)" for name, n in list(found.items())[:5])
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            seen = f"the {sum(found.values())} files of {sel.year} are <era>-<processing>: {shown}{more}"
            lines.append(f"{primary_dataset} {sel.year}: no file matches {what} ({seen})")
        if not lines:
            return ""
        return "; ".join(lines) + ": fix the year in the datasets file, or remove it"

    def unmatched_labels(self, selection: Selection) -> list[dict[str, Any]]:
        """Fetch-report rows for runs listed in ``bad_runs`` or ``good_runs`` that no selected file
        has (not for runs of the year's ``runs``: :meth:`selection_problems` reports those)."""
        rows = []
        reported = {run for _, run in selection.missing_runs}
        for sel in self.datasets.years:
            for kind, runs in (("bad_runs", sel.bad_runs), ("good_runs", sel.good_runs)):
                rows += [
                    {
                        "run_number": run,
                        "file": "",
                        "histogram": "",
                        "status": "label_no_file",
                        "problem": (
                            f"run {run} is listed in {kind} of year {sel.year} but not in the year's runs, "
                            "so its file is not selected"
                            if sel.runs and run not in sel.run_set
                            else f"run {run} is listed in {kind} of year {sel.year} but no selected file has it"
                        ),
                    }
                    for run in sorted(set(runs) - set(selection.files) - reported)
                ]
        return rows

    @staticmethod
    def selection_problems(selection: Selection) -> list[dict[str, Any]]:
        """Fetch-report rows for runs without a file and duplicate files that were not used."""
        rows: list[dict[str, Any]] = [
            {
                "run_number": run,
                "file": "",
                "histogram": "",
                "status": "no_file",
                "problem": (
                    f"run {run} of year {year} is listed in the datasets file, but its files "
                    f"({', '.join(selection.rejected[run])}) do not match the year's productions and eras"
                    if run in selection.rejected
                    else f"run {run} of year {year} is listed in the datasets file but no matching file is in the "
                    "discovery catalog: if its file appeared since, refresh it with snakemake --forcerun discover"
                ),
            }
            for year, run in selection.missing_runs
        ]
        rows += [
            {
                "run_number": dropped.run,
                "file": dropped.path,
                "histogram": "",
                "status": "duplicate_dropped",
                "problem": f"another file of run {dropped.run} was used: {kept.name}",
            }
            for dropped, kept in selection.duplicates
        ]
        return rows
