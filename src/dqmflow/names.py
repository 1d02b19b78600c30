"""Histogram names: AutoDQM_ML column names, in-file paths and reversible file-name slugs.

A DQM histogram is named by its subsystem and its path below the subsystem folder, e.g.
``L1T`` and ``/Run summary/L1TStage2EMTF/emtfTrackPhi``. AutoDQM_ML's contents files write
the path with or without the leading ``/``; dqmflow normalises it to the leading-``/`` form, so
the column name is always ``<Subsystem>/<path>``, e.g. ``L1T//Run summary/L1TStage2EMTF/emtfTrackPhi``
(the spelling AutoDQM_ML's merged tables use).

Paths contain ``/``, spaces and characters such as ``+`` or ``#``; :func:`slugify` turns a column
name into a file-name- and wildcard-safe slug and :func:`unslugify` turns it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "SLUG_PATTERN",
    "HistogramName",
    "slugify",
    "unslugify",
]

#: Characters that stand for themselves in a slug.
_LITERAL = re.compile(r"[A-Za-z0-9_-]")
#: Regular expression every slug matches (used as a Snakemake wildcard constraint).
SLUG_PATTERN = r"[A-Za-z0-9_.+~-]+"
_ESCAPE = re.compile(r"~([0-9A-F]{2})")


def slugify(name: str) -> str:
    """Encode ``name`` into a slug made of ``[A-Za-z0-9_.+~-]`` only; reversible by :func:`unslugify`.

    ``/`` becomes ``.``, a space becomes ``+``, ``A-Z a-z 0-9 _ -`` stay, and every other byte of
    the UTF-8 encoding becomes ``~XX`` (upper-case hex), so
    ``L1T//Run summary/EMTF/emtfTrackPhi`` -> ``L1T..Run+summary.EMTF.emtfTrackPhi``.
    """
    out: list[str] = []
    for char in name:
        if char == "/":
            out.append(".")
        elif char == " ":
            out.append("+")
        elif _LITERAL.fullmatch(char):
            out.append(char)
        else:
            out.extend(f"~{byte:02X}" for byte in char.encode("utf-8"))
    if not out:
        raise ValueError("cannot slugify an empty name")
    return "".join(out)


def unslugify(slug: str) -> str:
    """Invert :func:`slugify`; raises ``ValueError`` for text that no name encodes to."""
    if not re.fullmatch(SLUG_PATTERN, slug):
        raise ValueError(f"not a dqmflow slug: {slug!r}")
    raw = bytearray()
    pos = 0
    while pos < len(slug):
        char = slug[pos]
        if char == "~":
            match = _ESCAPE.match(slug, pos)
            if match is None:
                raise ValueError(f"bad escape at position {pos} of slug {slug!r}")
            raw.append(int(match.group(1), 16))
            pos = match.end()
            continue
        raw.extend(b"/" if char == "." else b" " if char == "+" else char.encode("ascii"))
        pos += 1
    name = raw.decode("utf-8")
    if slugify(name) != slug:
        raise ValueError(f"slug {slug!r} is not in canonical form")
    return name


@dataclass(frozen=True, order=True)
class HistogramName:
    """One requested histogram: ``subsystem`` plus ``path`` (normalised to start with ``/``)."""

    subsystem: str
    path: str

    def __post_init__(self) -> None:
        if not self.subsystem or "/" in self.subsystem:
            raise ValueError(f"invalid subsystem name {self.subsystem!r}")
        stripped = self.path.strip()
        if not stripped.strip("/"):
            raise ValueError(f"empty histogram path in subsystem {self.subsystem!r}")
        object.__setattr__(self, "path", "/" + stripped.lstrip("/"))

    @classmethod
    def from_column(cls, column: str) -> HistogramName:
        """Parse an AutoDQM_ML column name ``<Subsystem>/<path>``."""
        subsystem, sep, path = column.partition("/")
        if not sep:
            raise ValueError(f"column {column!r} is not of the form '<Subsystem>/<path>'")
        return cls(subsystem, path)

    @classmethod
    def from_slug(cls, slug: str) -> HistogramName:
        return cls.from_column(unslugify(slug))

    @property
    def column(self) -> str:
        """AutoDQM_ML column name, e.g. ``L1T//Run summary/L1TStage2EMTF/emtfTrackPhi``."""
        return f"{self.subsystem}/{self.path}"

    @property
    def slug(self) -> str:
        return slugify(self.column)

    @property
    def short(self) -> str:
        """The histogram's own name (last path element), for plot titles."""
        return self.path.rsplit("/", 1)[-1]

    def in_file(self, run: int) -> str:
        """Key of this histogram inside a DQM GUI ROOT file for ``run``."""
        return f"DQMData/Run {run}/{self.subsystem}{self.path}"
