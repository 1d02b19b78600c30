import os
import sys
import time
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The package lives in src/: make it importable here and in every job, also in per-rule conda
# environments (which hold only the dependencies) and on batch nodes.
sys.path.insert(0, str(Path(workflow.basedir).parent / "src"))
from dqmflow.plan import export_source_path

export_source_path(Path(workflow.basedir).parent / "src")

from dqmflow.configcheck import check_config
from dqmflow.names import SLUG_PATTERN, HistogramName
from dqmflow.params import Untracked, digest
from dqmflow.plan import DEMO_DIR, Plan, check_grid_proxy, mark_stale_merge
from dqmflow.training import read_training_record

# Every check that can be made on the config runs here, at startup: the schema (with nested
# command-line overrides converted), the contents and datasets files, every algorithm config.
try:
    check_config(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
    PLAN = Plan.from_config(config)
except ValueError as err:  # ConfigError, MetadataError: one short message, no schema dump
    raise WorkflowError(str(err)) from None
if DEMO_WARNING := PLAN.demo_label_warning(int(config["demo"]["runs_per_year"]), int(config["demo"]["seed"])):
    logger.warning(DEMO_WARNING)
# Primary datasets without any selected file (found after discovery): left out, said at the end.
EMPTY = set()
# When this run started: a failed run's summary marks the outputs it did not update.
STARTED = time.time()
ENV = "../envs/dqmflow.yaml"
# How each algorithm config names its reconstruction in the figures (read here, where the configs
# are loaded anyway, so that the assessment jobs do not import every algorithm's module).
RECO_LABELS = {tag: cfg.cls.reconstruction_label for tag, cfg in PLAN.algorithms.items()}
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


def check_start():
    """Checks that need the executor (known only when jobs start): a grid proxy for batch jobs
    that read root://."""
    try:
        check_grid_proxy(PLAN.source_location, getattr(workflow.executor_plugin, "name", "") or "", os.environ)
    except ValueError as err:
        raise WorkflowError(str(err)) from None


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
    """The files a fetch job reads: not recorded by Snakemake (see batch_key)."""
    return Untracked(PLAN.batch_files(selection(wildcards.pd), wildcards.batch))


def batch_key(wildcards):
    """A digest of batch_files: reruns the fetch job when its files change, in one short line."""
    return digest(PLAN.batch_files(selection(wildcards.pd), wildcards.batch))


def manifest_files(wildcards):
    chosen = selection(wildcards.pd)
    empty_years = PLAN.empty_year_message(wildcards.pd, chosen)  # first: it names what the files are
    if empty_years:
        raise WorkflowError(empty_years)
    if not chosen.files:
        raise WorkflowError(PLAN.empty_message(wildcards.pd))
    batches = PLAN.batches(chosen)
    return [
        f"results/{wildcards.pd}/shards/{subsystem}/{batch}.tsv"
        for subsystem in PLAN.subsystems
        for batch in batches
    ]


def merge_inputs(wildcards):
    """The manifests, a guard rewritten while one of them is missing or incomplete after a merge
    (dqmflow.plan.mark_stale_merge), so that the merge and those fetch jobs rerun, and the marker
    of the selection (Plan.selection_marker), new when the contents, datasets or source changed.
    Results made from another selection are said to be replaced, on the terminal, before any job."""
    change = PLAN.announce_selection_change(wildcards.pd)
    if change:
        logger.warning(change)
    paths = manifest_files(wildcards)
    assessment = config["assessment"]
    small = PLAN.calibration_warning(
        wildcards.pd, selection(wildcards.pd), assessment["false_alarm_rate"], assessment["reference"]
    )
    if small:
        logger.warning(small)
    guard = f"results/{wildcards.pd}/shards/fetch_state.txt"
    mark_stale_merge(f"results/{wildcards.pd}/histograms.parquet", paths, guard)
    return {"manifests": paths, "guard": guard, "selection": PLAN.selection_marker(wildcards.pd, "all")}


def merge_selection(wildcards):
    """Labels, file signatures and selection problems of the merge: not recorded (see selection_key)."""
    chosen = selection(wildcards.pd)
    return Untracked(
        {
            "labels": PLAN.labels(chosen),
            "signatures": PLAN.signatures(chosen),
            "problems": PLAN.selection_problems(chosen) + PLAN.unmatched_labels(chosen),
        }
    )


def selection_key(wildcards):
    return digest(merge_selection(wildcards).value)


def algorithm_file(wildcards):
    """The algorithm config file: ancient, so that editing its description or comments reruns
    nothing; what matters to a job is its validated params (``algorithm_params``)."""
    return ancient(PLAN.algorithms[wildcards.algo].path)


def algorithm_params(wildcards):
    return PLAN.algorithms[wildcards.algo].as_dict()


def model_dirs(chunk):
    return [f"results/{{pd}}/models/{{algo}}/{slug}" for slug in chunk.slugs]


def model_manifest(chunk):
    """The models a chunk's training wrote (dqmflow.chunks): the score jobs' model input."""
    return f"results/{{pd}}/training/{{algo}}/{chunk.id}.models.json"


def chunk_columns(wildcards):
    return CHUNKS[wildcards.chunk].columns


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
    """The run table, storage and histograms (the chunk file) of a train job: ancient while the
    training key is unchanged, so that adding runs (which rewrites the first two) retrains
    nothing; plain when it changed, so that the job reruns even when merge or run_table rerun too
    (Snakemake does not look at the params of jobs downstream of a job that reruns)."""

    def inner(wildcards):
        paths = {
            "runs": f"results/{wildcards.pd}/runs.parquet",
            "storage": f"results/{wildcards.pd}/data/{chunk.subsystem}.parquet",
            "histograms": f"results/{wildcards.pd}/chunks/{chunk.id}.json",
        }
        now, trained_with = current_key(chunk, wildcards)
        return {key: ancient(path) for key, path in paths.items()} if now == trained_with else paths

    return inner


def model_group(chunk, step):
    """The group of a model job on a cluster (local runs ignore groups): "models_<chunk>" for the
    score jobs of every algorithm config, none for training (re-created by Snakemake when
    discovery ends, which a group does not survive: a grouped train job was submitted twice).
    The chunk's assess_histograms joins the group in the lxplus profile and connects it."""

    def inner(wildcards):
        return f"models_{chunk.id}" if step == "score" else None

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
    """Figures a draw_figures job keeps across reruns (not an output: Snakemake would delete it)."""
    return f"results/{wildcards.pd}/assessment/cache/{wildcards.chunk}"


def chunk_plot_dirs(wildcards):
    return [f"results/{wildcards.pd}/assessment/chunks/{chunk}/plots" for chunk in CHUNKS]


def all_outputs():
    """Every primary dataset's table, scores, verdicts and web page. A primary dataset whose
    catalogs are known and select no file is left out (and named at the end); on the run that
    discovers it, the merge's input function stops the run right after discovery."""
    outputs = []
    for pd in PLAN.primary_datasets:
        # What source the catalogs come from (discovery reruns when one is missing, in a workdir
        # made before catalogs recorded it, or when the source changed).
        outputs += [f"results/{pd}/catalog/{year}.source.txt" for year in PLAN.years]
        catalogs = [f"results/{pd}/catalog/{year}.tsv" for year in PLAN.years]
        if all(Path(c).exists() for c in catalogs) and catalogs_of_source(pd) and not PLAN.selection(catalogs).files:
            EMPTY.add(pd)
            continue
        outputs += [
            f"results/{pd}/histograms.parquet",
            f"results/{pd}/scores.parquet",
            f"results/{pd}/verdicts.csv",
            f"results/{pd}/site",
        ]
    return outputs


def catalogs_of_source(pd):
    """Whether every catalog of ``pd`` was made from the current source (its .source.txt): an
    empty catalog of another source (a typo since fixed) is discovered again, not taken as empty."""
    for year in PLAN.years:
        recorded = Path(f"results/{pd}/catalog/{year}.source.txt")
        if not recorded.exists() or recorded.read_text(encoding="utf-8").strip() != PLAN.source_location:
            return False
    return True


def finish(ok):
    """The end-of-run summary (onsuccess/onerror); exits non-zero when a primary dataset had no file."""
    from dqmflow.runsummary import summarize

    for line in summarize(".", PLAN.primary_datasets, EMPTY, failed_since=None if ok else STARTED):
        logger.warning(line)
    if ok and EMPTY:
        for pd in sorted(EMPTY):
            again = " ".join(f"results/{pd}/catalog/{year}.tsv" for year in PLAN.years)
            logger.error(
                f"ERROR: {PLAN.empty_message(pd)}. If its files have appeared since, discover them again: "
                f"snakemake --forcerun discover -- {again}"
            )
        raise SystemExit(1)
