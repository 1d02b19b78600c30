"""The marker of a run selection (rule selection_marker): what the key in its name stands for.

A script, not a ``run:`` block: Snakemake runs those in a second Snakemake process (1 s of CPU)."""

import json
from pathlib import Path

Path(snakemake.output.marker).write_text(json.dumps(snakemake.params.identity.value, indent=1) + "\n", encoding="utf-8")
