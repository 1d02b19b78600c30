"""AutoDQM_ML's two JSON inputs: the *contents* (histograms) and the *datasets* (runs, labels).

Both formats are accepted exactly as AutoDQM_ML's ``metadata/`` folder writes them:

* contents: ``{"<Subsystem>": ["/Run summary/<path>", ...], ...}`` (leading ``/`` optional);
* datasets: ``{"primary_datasets": [...], "years": {"<YEAR>": {"productions": [...],
  "eras": [...], "runs": [...], "bad_runs": [...], "good_runs": [...], "comments": ...}}}``.

Labels follow AutoDQM_ML: ``bad_runs``/``good_runs`` are collected over all years; a listed bad
run gets 1 and a listed good run 0; if only bad runs are listed every other run is good (0), if
only good runs are listed every other run is bad (1), if both are listed the unlisted runs get -1.
With no list at all every run gets -1 (unknown): dqmflow always writes the ``label`` column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from dqmflow.names import HistogramName

__all__ = [
    "BAD",
    "GOOD",
    "UNKNOWN",
    "Datasets",
    "MetadataError",
    "YearSelection",
    "load_contents",
    "load_datasets",
    "parse_contents",
    "parse_datasets",
]

BAD, GOOD, UNKNOWN = 1, 0, -1
#: What a subsystem may be called: it names folders, jobs and Snakemake rules (DQM's are ASCII).
SUBSYSTEM = re.compile(r"[A-Za-z0-9_-]+")


class MetadataError(ValueError):
    """A contents or datasets file does not follow AutoDQM_ML's format."""


def _read_json(path: str | Path, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise MetadataError(f"{what} file {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise MetadataError(f"{what} file {path} is not valid JSON: {err}") from None


def parse_contents(data: Any, source: str = "<contents>") -> list[HistogramName]:
    """Histograms named by a contents mapping, in file order, without duplicates."""
    if not isinstance(data, Mapping) or not data:
        raise MetadataError(f"{source}: expected a non-empty object {{subsystem: [paths]}}")
    names: list[HistogramName] = []
    seen: set[HistogramName] = set()
    for subsystem, paths in data.items():
        if not SUBSYSTEM.fullmatch(str(subsystem)):
            raise MetadataError(
                f"{source}: subsystem {subsystem!r} may contain only ASCII letters, digits, '_' and '-' "
                "(it names the DQM folder, the fetch jobs, the shard folders and the model rules)"
            )
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise MetadataError(f"{source}: subsystem {subsystem!r} must map to a list of paths")
        for path in paths:
            try:
                name = HistogramName(subsystem, path)
            except ValueError as err:
                raise MetadataError(f"{source}: {err}") from None
            if name not in seen:
                seen.add(name)
                names.append(name)
    if not names:
        raise MetadataError(f"{source}: names no histogram")
    return names


def load_contents(path: str | Path) -> list[HistogramName]:
    return parse_contents(_read_json(path, "contents"), str(path))


def _run_list(value: Any, where: str) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MetadataError(f"{where} must be a list of run numbers")
    runs = []
    for item in value:
        try:
            runs.append(int(str(item).strip()))
        except ValueError:
            raise MetadataError(f"{where}: {item!r} is not a run number") from None
    return tuple(runs)


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MetadataError(f"{where} must be a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class YearSelection:
    """What one ``years`` entry selects. Empty ``eras``/``runs`` mean 'all'.

    ``runs`` keeps the file's order; membership tests use the set ``run_set``, computed once
    (``functools.cached_property`` stores it in the instance ``__dict__``, which a frozen
    dataclass allows).
    """

    year: int
    productions: tuple[str, ...]
    eras: tuple[str, ...] = ()
    runs: tuple[int, ...] = ()
    bad_runs: tuple[int, ...] = ()
    good_runs: tuple[int, ...] = ()

    def accepts(self, run: int, era: str, file_name: str) -> bool:
        """Does the DQM file ``file_name`` (of ``run``, era ``era``) match this selection?

        AutoDQM_ML's rules: a production matches when it is a substring of the file name
        (``""`` matches everything); an era matches exactly; runs match exactly.
        """
        return self.matches_file(era, file_name) and self.lists_run(run)

    def matches_file(self, era: str, file_name: str) -> bool:
        """Do the productions and eras (not the runs) accept the file ``file_name`` of era ``era``?"""
        return any(prod in file_name for prod in self.productions) and (not self.eras or era in self.eras)

    def lists_run(self, run: int) -> bool:
        """Does the selection take ``run`` (every run when no ``runs`` are listed)?"""
        return not self.runs or run in self.run_set

    def preference(self, file_name: str) -> int:
        """Position in ``productions`` of the first production that ``file_name`` matches (the
        order of the list is the order of preference; ``len(productions)`` when none matches)."""
        return next((i for i, prod in enumerate(self.productions) if prod in file_name), len(self.productions))

    @cached_property
    def run_set(self) -> frozenset[int]:
        """``runs`` as a set, for constant-time membership tests."""
        return frozenset(self.runs)


@dataclass(frozen=True)
class Datasets:
    """A parsed datasets file."""

    primary_datasets: tuple[str, ...]
    years: tuple[YearSelection, ...]
    comments: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    # Computed once per instance: ``label`` runs for every run of a data set.
    @cached_property
    def bad_runs(self) -> frozenset[int]:
        return frozenset(r for y in self.years for r in y.bad_runs)

    @cached_property
    def good_runs(self) -> frozenset[int]:
        return frozenset(r for y in self.years for r in y.good_runs)

    def year(self, year: int) -> YearSelection:
        for sel in self.years:
            if sel.year == year:
                return sel
        raise KeyError(f"year {year} is not in the datasets file")

    def label(self, run: int) -> int:
        """Label of ``run``: 1 bad, 0 good, -1 unknown (rules in the module docstring)."""
        bad, good = self.bad_runs, self.good_runs
        if run in bad:
            return BAD
        if run in good:
            return GOOD
        if bad and not good:
            return GOOD
        if good and not bad:
            return BAD
        return UNKNOWN

    def labels(self, runs: Iterable[int]) -> dict[int, int]:
        return {run: self.label(run) for run in runs}


def parse_datasets(data: Any, source: str = "<datasets>") -> Datasets:
    """Validate and parse a datasets mapping (see module docstring)."""
    if not isinstance(data, Mapping):
        raise MetadataError(f"{source}: expected a JSON object")
    for key in ("primary_datasets", "years"):
        if key not in data:
            raise MetadataError(f"{source}: the {key!r} field is missing")
    pds = _str_list(data["primary_datasets"], f"{source}: primary_datasets")
    if not pds:
        raise MetadataError(f"{source}: primary_datasets is empty")
    if not isinstance(data["years"], Mapping) or not data["years"]:
        raise MetadataError(f"{source}: years must be a non-empty object")
    years = []
    comments: dict[int, tuple[str, ...]] = {}
    for year_key, info in data["years"].items():
        where = f"{source}: year {year_key}"
        try:
            year = int(year_key)
        except ValueError:
            raise MetadataError(f"{where}: {year_key!r} is not a year") from None
        if not isinstance(info, Mapping):
            raise MetadataError(f"{where} must be an object")
        if "productions" not in info:
            raise MetadataError(f"{where}: the 'productions' field is missing")
        unknown = set(info) - {"productions", "eras", "runs", "bad_runs", "good_runs", "comments"}
        if unknown:
            raise MetadataError(f"{where}: unknown field(s) {sorted(unknown)}")
        note = info.get("comments")
        comments[year] = (note,) if isinstance(note, str) else _str_list(note, f"{where}: comments")
        years.append(
            YearSelection(
                year=year,
                productions=_str_list(info["productions"], f"{where}: productions"),
                eras=_str_list(info.get("eras"), f"{where}: eras"),
                runs=_run_list(info.get("runs"), f"{where}: runs"),
                bad_runs=_run_list(info.get("bad_runs"), f"{where}: bad_runs"),
                good_runs=_run_list(info.get("good_runs"), f"{where}: good_runs"),
            )
        )
        if not years[-1].productions:
            raise MetadataError(f'{where}: productions is empty (use [""] to match every file)')
    return Datasets(primary_datasets=pds, years=tuple(years), comments=comments)


def load_datasets(path: str | Path) -> Datasets:
    return parse_datasets(_read_json(path, "datasets"), str(path))
