"""Find DQM GUI ROOT files under a source (local folder, EOS FUSE mount or ``root://`` URL).

The DQM GUI stores one file per run and processing at::

    <source>/Run<YEAR>/<PD>/R000NNNNxx/DQM_V<VVVV>_R000<run>__<PD>__Run<YEAR><ERA>-<processing>__DQMIO.root

Discovery writes a *catalog* (every file found for a primary dataset and year, independent of
the run selection) and *selection* applies the datasets file to it. When one run has several
files that pass the selection, the one kept is, in order: the file of the production listed
first in the year's ``productions`` (so ``["UL2017", "17Nov2017"]`` prefers the UL reprocessing
where a run has both), then the highest ``DQM_V`` version, then the greatest processing string in
natural order (runs of digits compare as integers, so ``-v10`` beats ``-v2`` and ``-v2`` beats
``-v1``), then the greatest path; the others are reported as dropped duplicates.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from dqmflow.metadata import Datasets

__all__ = [
    "CATALOG_COLUMNS",
    "DiscoveryError",
    "DqmFile",
    "Selection",
    "batch_of",
    "list_source",
    "natural_key",
    "parse_file_name",
    "read_catalog",
    "select",
    "write_catalog",
]

#: XRootD client settings dqmflow uses unless the environment sets them: fail a dead server within
#: about a minute instead of XRootD's default of ten, and let dqmflow's own retries (with backoff)
#: take over; after a stream error the client refuses the host for XRD_STREAMERRORWINDOW seconds
#: (default 1800), which would make any retry fail at once.
XROOTD_DEFAULTS = {
    "XRD_CONNECTIONWINDOW": "30",
    "XRD_CONNECTIONRETRY": "2",
    "XRD_REQUESTTIMEOUT": "300",
    "XRD_STREAMERRORWINDOW": "5",
}
for _key, _value in XROOTD_DEFAULTS.items():
    os.environ.setdefault(_key, _value)

progress_log = logging.getLogger("dqmflow.progress")

FILE_NAME = re.compile(
    r"^DQM_V(?P<version>\d+)_R(?P<run>\d+)__(?P<pd>.+?)__Run(?P<year>\d{4})(?P<era>[A-Za-z]*)-"
    r"(?P<processing>.+)__DQMIO\.root$"
)


@dataclass(frozen=True, order=True)
class DqmFile:
    """One DQM GUI file, as found on the source."""

    run: int
    year: int
    era: str
    processing: str
    version: int
    primary_dataset: str
    path: str
    size: int = -1
    mtime: float = -1.0

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def signature(self) -> str:
        """What identifies this file's content for incremental fetching."""
        return f"{self.path}|{self.size}|{self.mtime:.0f}"


CATALOG_COLUMNS = [f.name for f in fields(DqmFile)]


def parse_file_name(path: str, size: int = -1, mtime: float = -1.0) -> DqmFile | None:
    """Parse a DQM GUI file path; ``None`` if the name does not follow the convention."""
    match = FILE_NAME.match(path.rsplit("/", 1)[-1])
    if match is None:
        return None
    return DqmFile(
        run=int(match["run"]),
        year=int(match["year"]),
        era=match["era"],
        processing=match["processing"],
        version=int(match["version"]),
        primary_dataset=match["pd"],
        path=path,
        size=size,
        mtime=mtime,
    )


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[str | int, ...]:
    """Sort key comparing runs of digits in ``text`` as integers (``"v2" < "v10"``).

    ``re.split`` with a capturing group always alternates text and digit parts, starting with a
    (possibly empty) text part: two keys hold the same type at each position, so comparing them never
    raises ``TypeError``.
    """
    return tuple(int(part) if i % 2 else part for i, part in enumerate(_DIGITS.split(text)))


def is_remote(source: str) -> bool:
    return source.startswith("root://")


def check_xrootd_allowed() -> None:
    """Refuse to load the XRootD client next to TensorFlow (their native libraries clash)."""
    if "tensorflow" in sys.modules and "XRootD.client" not in sys.modules:
        raise RuntimeError(
            "the XRootD client cannot be loaded into a process that already uses TensorFlow (their native "
            "libraries clash and crash the interpreter); read root:// files in a separate process, as the "
            "workflow's fetch jobs do"
        )


def _walk_local(top: Path) -> Iterator[tuple[str, int, float]]:
    if not top.is_dir():
        return
    stack = [top]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(Path(entry.path))
                elif entry.name.endswith(".root"):
                    stat = entry.stat()
                    yield str(Path(entry.path).resolve()), stat.st_size, stat.st_mtime


def _walk_remote(url: str) -> Iterator[tuple[str, int, float]]:
    check_xrootd_allowed()
    try:
        import fsspec
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError("reading root:// sources needs fsspec-xrootd: pip install fsspec-xrootd") from err
    fs, path = fsspec.core.url_to_fs(url)
    prefix = url[: len(url) - len(url.split("//", 2)[-1])]  # root://host:port//
    if not fs.exists(path):
        parent = path.rstrip("/").rsplit("/", 1)[0]
        try:
            present = ", ".join(sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(parent, detail=False)))
            where = f"{prefix}{parent.lstrip('/')} has: {present or 'nothing'}"
        except Exception:  # only for the message
            where = f"nor does {prefix}{parent.lstrip('/')}"
        logging.getLogger("dqmflow.progress").warning("discover: %s does not exist (%s)", url, where)
        return
    for name, info in fs.find(path, detail=True).items():
        if name.endswith(".root"):
            full = name if name.startswith("root://") else prefix + name.lstrip("/")
            yield full, int(info.get("size", -1)), float(info.get("mtime", -1) or -1)


class DiscoveryError(OSError):
    """A ``root://`` source could not be listed after retries (the message names the URL)."""


def _list_remote(url: str, retries: int, backoff: float) -> list[tuple[str, int, float]]:
    """Every ``.root`` file below ``url``, retried with exponential backoff like fetching."""
    attempt = 0
    while True:
        try:
            return list(_walk_remote(url))
        except (OSError, TimeoutError) as err:
            if attempt >= retries:
                raise DiscoveryError(
                    f"cannot list {url} after {attempt + 1} attempt(s): {type(err).__name__}: {err}"
                ) from err
            wait = backoff * 2**attempt
            progress_log.warning("discover: %s listing %s; retry %d/%d in %.1f s", err, url, attempt + 1, retries, wait)
            time.sleep(wait)
            attempt += 1


def list_source(
    source: str, primary_dataset: str, year: int, *, retries: int = 3, backoff: float = 2.0
) -> list[DqmFile]:
    """All DQM files of ``primary_dataset`` and ``year`` below ``source`` (sorted by run, path).

    Listing a ``root://`` source is retried ``retries`` times with exponential backoff; then
    :class:`DiscoveryError` names the URL.
    """
    found: Iterable[tuple[str, int, float]]
    if is_remote(source):
        top = f"{source.rstrip('/')}/Run{year}/{primary_dataset}"
        found = _list_remote(top, retries, backoff)
    else:
        found = _walk_local(Path(source) / f"Run{year}" / primary_dataset)
    files = []
    start = time.monotonic()
    seen = 0
    for seen, (path, size, mtime) in enumerate(found, start=1):
        parsed = parse_file_name(path, size, mtime)
        if parsed and parsed.primary_dataset == primary_dataset and parsed.year == year:
            files.append(parsed)
        if seen % 5000 == 0:
            progress_log.info("discover %s %d: %d files listed (%.0f/s)", primary_dataset, year, seen,
                              seen / max(time.monotonic() - start, 1e-9))  # fmt: skip
    progress_log.info("discover %s %d: %d DQM files of %d listed in %.1f s", primary_dataset, year, len(files), seen,
                      time.monotonic() - start)  # fmt: skip
    return sorted(files)


def write_catalog(files: Iterable[DqmFile], path: str | Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, CATALOG_COLUMNS, delimiter="\t")
        writer.writeheader()
        for item in files:
            writer.writerow(asdict(item))


def read_catalog(path: str | Path) -> list[DqmFile]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        DqmFile(
            run=int(r["run"]),
            year=int(r["year"]),
            era=r["era"],
            processing=r["processing"],
            version=int(r["version"]),
            primary_dataset=r["primary_dataset"],
            path=r["path"],
            size=int(r["size"]),
            mtime=float(r["mtime"]),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Selection:
    """Result of applying a datasets file to catalogs: one file per run plus what was left out."""

    files: dict[int, DqmFile]
    duplicates: list[tuple[DqmFile, DqmFile]]  # (dropped, kept)
    missing_runs: list[tuple[int, int]]  # (year, run) listed in datasets with no file
    # years of the datasets file with files of which none passes the productions and eras (a typo
    # there): year -> processings (era and processing, e.g. "C-09Aug2019_UL2017-v1") found, counted
    empty_years: dict[int, dict[str, int]] = field(default_factory=dict)
    # runs of the datasets file whose files all fail the year's productions or eras: run -> their
    # era and processing (e.g. "C-PromptReco-v1")
    rejected: dict[int, tuple[str, ...]] = field(default_factory=dict)


def select(catalog: Iterable[DqmFile], datasets: Datasets) -> Selection:
    """Apply the datasets selection to ``catalog`` (see the module docstring for duplicates)."""
    by_run: dict[int, list[DqmFile]] = {}
    years = {sel.year: sel for sel in datasets.years}
    found: dict[int, Counter[str]] = {year: Counter() for year in years}
    matching: set[int] = set()  # years with a file that passes the productions and eras
    rejected: dict[int, list[str]] = {}
    for item in catalog:
        sel = years.get(item.year)
        if sel is None:
            continue
        found[item.year][f"{item.era}-{item.processing}"] += 1
        if sel.matches_file(item.era, item.name):  # what accepts() checks, the runs apart
            matching.add(item.year)
            if sel.lists_run(item.run):
                by_run.setdefault(item.run, []).append(item)
        elif sel.lists_run(item.run):
            rejected.setdefault(item.run, []).append(f"{item.era}-{item.processing}")
    chosen: dict[int, DqmFile] = {}
    duplicates: list[tuple[DqmFile, DqmFile]] = []
    for run, candidates in sorted(by_run.items()):
        ranked = sorted(
            candidates,
            key=lambda f: (-years[f.year].preference(f.name), f.version, natural_key(f.processing), f.path),
            reverse=True,
        )
        chosen[run] = ranked[0]
        duplicates.extend((other, ranked[0]) for other in ranked[1:])
    missing = [(sel.year, run) for sel in datasets.years for run in sel.runs if run not in chosen]
    empty = {year: dict(found[year].most_common()) for year in years if found[year] and year not in matching}
    left_out = {run: tuple(sorted(set(names))) for run, names in rejected.items() if run not in chosen}
    return Selection(chosen, duplicates, sorted(set(missing)), empty, left_out)


def batch_of(run: int, runs_per_batch: int) -> str:
    """Name of the fetch batch holding ``run``: a run range in the DQM GUI's ``R000NNNNxx`` style.

    ``runs_per_batch`` must be a power of ten >= 10; 100 gives the DQM GUI's own folders.
    """
    digits = len(str(runs_per_batch)) - 1
    if runs_per_batch < 10 or runs_per_batch != 10**digits:
        raise ValueError(f"runs_per_batch must be a power of ten >= 10, not {runs_per_batch}")
    text = f"{run:09d}"
    return "R" + text[: 9 - digits] + "x" * digits
