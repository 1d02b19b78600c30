"""Job parameters that Snakemake should track by a digest rather than record and print in full.

Snakemake records every parameter of a job and, when one changes, prints both values: for a fetch
batch of 10,000 files that is megabytes per line. An :class:`Untracked` value is not a builtin
type, so Snakemake neither records nor prints it; a :func:`digest` parameter beside it makes a
change of the value rerun the job, with a one-line message.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["Untracked", "digest"]


class Untracked:
    """A job parameter that Snakemake neither records nor prints (read it as ``.value``)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<{type(self.value).__name__} of {len(self.value)}>"


def digest(value: Any) -> str:
    """A short, stable hash of a JSON-serialisable value (mapping keys in any order)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
