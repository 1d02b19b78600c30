"""dqmflow: find anomalies in CMS DQM histograms (library behind the Snakemake workflow)."""

from __future__ import annotations

__version__ = "0.1.0"
