"""Write the embedded demo data set (rule demo_data)."""

from pathlib import Path

from dqmflow.demo import DemoSpec, write_demo
from dqmflow.scriptlog import setup

log = setup(snakemake)
demo = snakemake.params.demo
spec = DemoSpec(runs_per_year=demo["runs_per_year"], seed=demo["seed"])
plans = write_demo(Path(snakemake.output.tree).parent, spec, entries_scale=demo["entries_scale"])
log.info("wrote %d demo runs below %s", len(plans), snakemake.output.tree)
