"""Fetch manifests' completeness, without the fetch layer: the workflow checks it when it plans a
run (:func:`dqmflow.plan.mark_stale_merge`), where importing :mod:`dqmflow.fetch` (uproot, pandas)
would cost every Snakemake start 0.4 s.

A manifest (one per fetch job, a TSV of the files read and the shards written) ends with the
footer line :data:`MANIFEST_FOOTER`; a manifest torn by a kill lacks it or disagrees with it.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["MANIFEST_FOOTER", "footer_rows", "manifest_is_complete"]

MANIFEST_FOOTER = "# dqmflow manifest complete: {n} rows"
_FOOTER = re.compile(r"^# dqmflow manifest complete: (\d+) rows$")


def footer_rows(path: str | Path) -> tuple[int | None, int]:
    """(row count in the footer or None, data rows found) of a manifest file."""
    with open(path, "rb") as handle:
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    match = _FOOTER.match(lines[-1]) if lines else None
    data = len(lines) - 1 - (1 if match else 0)  # minus the header (and the footer)
    return (int(match[1]) if match else None), max(data, 0)


def manifest_is_complete(path: str | Path) -> bool:
    """Does ``path`` exist and end with a footer matching its number of rows?"""
    try:
        expected, found = footer_rows(path)
    except OSError:
        return False
    return expected is not None and expected == found
