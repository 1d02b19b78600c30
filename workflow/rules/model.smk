rule train:
    input:
        table="results/{pd}/histograms.parquet",
        config=algorithm_file,
    output:
        model=directory("results/{pd}/models/{algo}/{hist}"),
    params:
        histogram=histogram,
        algorithm=algorithm_params,
        preprocessing=config["preprocessing"],
    log:
        "logs/{pd}/train/{algo}/{hist}.log",
    benchmark:
        "benchmarks/{pd}/train/{algo}/{hist}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        ENV
    script:
        "../scripts/train.py"


rule score:
    input:
        table="results/{pd}/histograms.parquet",
        model="results/{pd}/models/{algo}/{hist}",
        config=algorithm_file,
    output:
        scores="results/{pd}/scores/{algo}/{hist}.parquet",
    params:
        histogram=histogram,
        algorithm=algorithm_params,
        preprocessing=config["preprocessing"],
    log:
        "logs/{pd}/score/{algo}/{hist}.log",
    benchmark:
        "benchmarks/{pd}/score/{algo}/{hist}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
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
    conda:
        ENV
    script:
        "../scripts/collect_scores.py"
