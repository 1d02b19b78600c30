"""Logging for the workflow's scripts: everything goes to the rule's ``log:`` file."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any


def setup(snakemake: Any) -> logging.Logger:
    """Send logging, warnings and stderr (also of C libraries) of a ``script:`` job to its log file."""
    path = snakemake.log[0] if len(snakemake.log) else None
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        stream = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the job
        os.dup2(stream.fileno(), 2)  # C libraries (TensorFlow, XRootD) write to fd 2 directly
        sys.stderr = stream
        handlers = [logging.StreamHandler(stream)]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    logging.captureWarnings(True)
    return logging.getLogger(f"dqmflow.{snakemake.rule}")
