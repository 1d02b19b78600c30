import sys
from pathlib import Path

from snakemake.utils import validate

# The package lives in src/: make it importable here and in every job, also in per-rule conda
# environments (which hold only the dependencies) and on batch nodes.
sys.path.insert(0, str(Path(workflow.basedir).parent / "src"))
from dqmflow.plan import export_source_path

export_source_path(Path(workflow.basedir).parent / "src")

from dqmflow.names import SLUG_PATTERN, HistogramName
from dqmflow.plan import DEMO_DIR, Plan
from dqmflow.training import read_training_record


validate(config, "../schemas/config.schema.yaml")

PLAN = Plan.from_config(config)
ENV = "../envs/dqmflow.yaml"
# What score jobs store for the figures: only these assessment settings reach them, so that
# changing how runs are assessed never reruns scoring.
RECONSTRUCTIONS = {
    "n_reconstructed": max(config["assessment"]["n_reconstructed"], config["assessment"]["n_example_runs"]),
    "reco_runs": config["assessment"]["reco_runs"],
}


wildcard_constraints:
    pd=r"[A-Za-z0-9_-]+",
    year=r"\d{4}",
    subsystem=r"[A-Za-z0-9_-]+",
    batch=r"R\d+x+",
    algo=r"[A-Za-z0-9_-]+",
    hist=SLUG_PATTERN,
    chunk=r"[A-Za-z0-9_-]+-\d+",


def discover_input(wildcards):
    return {"demo": f"{DEMO_DIR}/DQMGUI_data"} if PLAN.is_demo else {}


def selection(pd):
    catalogs = [checkpoints.discover.get(pd=pd, year=year).output.catalog for year in PLAN.years]
    return PLAN.selection(catalogs)


def fetch_checkpoints(wildcards):
    """The catalogs a fetch job selects its files from: ancient, so that a catalog rewritten with
    the same files refetches nothing (batch_files, a param, says which files a job reads), while
    the DAG (and the report) shows discovery upstream of fetching."""
    selection(wildcards.pd)
    return [ancient(f"results/{wildcards.pd}/catalog/{year}.tsv") for year in PLAN.years]


def batch_files(wildcards):
    return PLAN.batch_files(selection(wildcards.pd), wildcards.batch)


def manifests(wildcards):
    batches = PLAN.batches(selection(wildcards.pd))
    return [
        f"results/{wildcards.pd}/shards/{subsystem}/{batch}.tsv"
        for subsystem in PLAN.subsystems
        for batch in batches
    ]


def labels(wildcards):
    return PLAN.labels(selection(wildcards.pd))


def signatures(wildcards):
    return PLAN.signatures(selection(wildcards.pd))


def selection_problems(wildcards):
    return PLAN.selection_problems(selection(wildcards.pd))


def algorithm_file(wildcards):
    """The algorithm config file: ancient, so that editing its description or comments reruns
    nothing; what matters to a job is its validated params (``algorithm_params``)."""
    return ancient(PLAN.algorithms[wildcards.algo].path)


def algorithm_params(wildcards):
    return PLAN.algorithms[wildcards.algo].as_dict()


def model_dirs(chunk):
    return [f"results/{{pd}}/models/{{algo}}/{slug}" for slug in chunk.slugs]


def chunk_state(chunk, suffix):
    """A file a model job keeps across reruns (not a declared output: Snakemake would delete it
    before the job runs): results/PD/training/ALGO/CHUNK.json is the training record,
    CHUNK.scores.parquet the score cache."""

    def inner(wildcards):
        return f"results/{wildcards.pd}/training/{wildcards.algo}/{chunk.id}{suffix}"

    return inner


def current_key(chunk, wildcards):
    """(the chunk's training key now, the key its models were trained with; "" if never)."""
    pool, trained_with = read_training_record(chunk_state(chunk, ".json")(wildcards))
    return PLAN.training_key(selection(wildcards.pd), wildcards.algo, chunk, pool), trained_with


def training_key(chunk):
    """Changes (and retrains the chunk) with its params, preprocessing, histograms, or its
    training runs' files or labels; not when runs are added (see dqmflow.training)."""

    def inner(wildcards):
        return current_key(chunk, wildcards)[0]

    return inner


def training_inputs(chunk):
    """The run table and storage of a train job: ancient while the training key is unchanged, so
    that adding runs (which rewrites both) retrains nothing; plain when it changed, so that the
    job reruns even when merge or run_table rerun too (Snakemake does not look at the params of
    jobs downstream of a job that reruns)."""

    def inner(wildcards):
        paths = {
            "runs": f"results/{wildcards.pd}/runs.parquet",
            "storage": f"results/{wildcards.pd}/data/{chunk.subsystem}.parquet",
        }
        now, trained_with = current_key(chunk, wildcards)
        return {key: ancient(path) for key, path in paths.items()} if now == trained_with else paths

    return inner


def score_files(wildcards):
    return [f"results/{wildcards.pd}/scores/{tag}/{slug}.parquet" for tag in PLAN.tags for slug in PLAN.slugs]


CHUNKS = {chunk.id: chunk for chunk in PLAN.chunks}


def chunk_score_files(wildcards):
    """Score files of a chunk's histograms, every algorithm config."""
    slugs = CHUNKS[wildcards.chunk].slugs
    return [f"results/{wildcards.pd}/scores/{tag}/{slug}.parquet" for tag in PLAN.tags for slug in slugs]


def chunk_reco_files(wildcards):
    slugs = CHUNKS[wildcards.chunk].slugs
    return [f"results/{wildcards.pd}/reco/{tag}/{slug}.parquet" for tag in PLAN.tags for slug in slugs]


def chunk_reco_keys(wildcards):
    """(histogram, algorithm config) of each of chunk_reco_files, in the same order."""
    return [[column, tag] for tag in PLAN.tags for column in CHUNKS[wildcards.chunk].columns]


def algorithm_files(wildcards):
    return [ancient(PLAN.algorithms[tag].path) for tag in PLAN.tags]


CHUNK_TABLES = {
    "metrics": "metrics.csv",
    "false_alarm": "false_alarm.csv",
    "confusion": "confusion.csv",
    "top_runs": "top_runs.csv",
    "figures": "figures.csv",
    "pvalues": "pvalues.parquet",
}


def chunk_tables(wildcards):
    """Every assessment chunk's tables, by name (lists in chunk order)."""
    return {
        name: [f"results/{wildcards.pd}/assessment/chunks/{chunk}/{file}" for chunk in CHUNKS]
        for name, file in CHUNK_TABLES.items()
    }


def figure_cache(wildcards):
    """Figures an assessment job keeps across reruns (not an output: Snakemake would delete it)."""
    return f"results/{wildcards.pd}/assessment/cache/{wildcards.chunk}"


def chunk_plot_dirs(wildcards):
    return [f"results/{wildcards.pd}/assessment/chunks/{chunk}/plots" for chunk in CHUNKS]


def all_outputs():
    outputs = []
    for pd in PLAN.primary_datasets:
        outputs += [
            f"results/{pd}/histograms.parquet",
            f"results/{pd}/scores.parquet",
            f"results/{pd}/verdicts.csv",
            f"results/{pd}/site",
        ]
    return outputs
