# Model jobs: one job trains (or scores) every histogram of a chunk (up to histograms_per_job of
# one subsystem) for one algorithm config. Rules are made per chunk so that every histogram keeps
# its own outputs (models/ALGO/HIST/, scores/ALGO/HIST.parquet) that can be asked for alone.
# A model reruns when its training key changes (params, code, preprocessing, histograms, the files
# and labels of its training runs: training_key and training_inputs in common.smk), not when runs
# are added. The chunk's training record (results/PD/training/ALGO/CHUNK.json) is kept by the train
# job across reruns, so it is not a declared output. The chunk's histograms and the model folders
# of a training are named in files (results/PD/chunks/CHUNK.json, training/ALGO/CHUNK.models.json),
# not in params or inputs, which Snakemake would record with each of the job's hundreds of outputs
# (dqmflow.chunks).


rule chunk_histograms:
    output:
        histograms="results/{pd}/chunks/{chunk}.json",
    params:
        histograms=chunk_columns,
    log:
        "logs/{pd}/chunks/{chunk}.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/chunk_histograms.py"


for chunk in PLAN.chunks:

    rule:
        name:
            f"train_{chunk.rule_suffix}"
        input:
            unpack(training_inputs(chunk)),
            config=algorithm_file,
        output:
            models=[directory(path) for path in model_dirs(chunk)],
            manifest=model_manifest(chunk),
        params:
            algorithm=algorithm_params,
            preprocessing=config["preprocessing"],
            training=training_key(chunk),
            record=chunk_state(chunk, ".json"),
        log:
            f"logs/{{pd}}/train/{{algo}}/{chunk.id}.log",
        benchmark:
            f"benchmarks/{{pd}}/train/{{algo}}/{chunk.id}.tsv"
        group:
            model_group(chunk, "train")
        threads: 1
        resources:
            mem_mb=4000,
        conda:
            ENV
        script:
            "../scripts/train.py"

    rule:
        name:
            f"score_{chunk.rule_suffix}"
        input:
            runs="results/{pd}/runs.parquet",
            storage=f"results/{{pd}}/data/{chunk.subsystem}.parquet",
            models=model_manifest(chunk),
            config=algorithm_file,
        output:
            scores=[f"results/{{pd}}/scores/{{algo}}/{slug}.parquet" for slug in chunk.slugs],
            reco=[f"results/{{pd}}/reco/{{algo}}/{slug}.parquet" for slug in chunk.slugs],
        params:
            algorithm=algorithm_params,
            preprocessing=config["preprocessing"],
            reconstructions=RECONSTRUCTIONS,
            record=chunk_state(chunk, ".json"),
            cache=chunk_state(chunk, ".scores.parquet"),
        log:
            f"logs/{{pd}}/score/{{algo}}/{chunk.id}.log",
        benchmark:
            f"benchmarks/{{pd}}/score/{{algo}}/{chunk.id}.tsv"
        group:
            model_group(chunk, "score")
        threads: 1
        resources:
            mem_mb=4000,
        conda:
            ENV
        script:
            "../scripts/score.py"


rule collect_scores:
    input:
        scores=score_files,
    output:
        scores="results/{pd}/scores.parquet",
    log:
        "logs/{pd}/collect_scores.log",
    benchmark:
        "benchmarks/{pd}/collect_scores.tsv"
    conda:
        ENV
    script:
        "../scripts/collect_scores.py"
