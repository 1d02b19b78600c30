"""Logging for the workflow's scripts: everything goes to the rule's ``log:`` file.

Messages of the ``dqmflow.progress`` logger (files done / total, rate, failures) also go to the
terminal Snakemake runs in, so long fetches show how far they are.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PROGRESS = "dqmflow.progress"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(snakemake: Any) -> logging.Logger:
    """Send logging, warnings and stderr (also of C libraries) of a ``script:`` job to its log file."""
    path = snakemake.log[0] if len(snakemake.log) else None
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        terminal = os.fdopen(os.dup(2), "w", buffering=1)
        stream = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the job
        os.dup2(stream.fileno(), 2)  # C libraries (TensorFlow, XRootD) write to fd 2 directly
        sys.stderr = stream
        handlers = [logging.StreamHandler(stream)]
        progress = logging.StreamHandler(terminal)
        progress.setFormatter(logging.Formatter(f"[{snakemake.rule} %(asctime)s] %(message)s", "%H:%M:%S"))
        logging.getLogger(PROGRESS).addHandler(progress)
    logging.basicConfig(level=logging.INFO, format=FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
    return logging.getLogger(f"dqmflow.{snakemake.rule}")


@contextmanager
def timed(log: logging.Logger, what: str = "work") -> Iterator[None]:
    """Log the wall and CPU time of a job's own work (benchmarks subtract it from the job's total
    to get its start-up: interpreter, imports, Snakemake's script preamble)."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    log.info("%s: wall %.3f s, cpu %.3f s", what, time.perf_counter() - wall, time.process_time() - cpu)
