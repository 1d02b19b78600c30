rule assess:
    input:
        scores=algorithm_score_files,
        reco=reco_files,
        config=algorithm_file,
    output:
        metrics=report(
            "results/{pd}/assessment/{algo}/metrics.csv",
            caption="../report/metrics.rst",
            category="Assessment",
            subcategory="{algo}",
            labels={"dataset": "{pd}", "algorithm": "{algo}", "table": "metrics per histogram"},
        ),
        false_alarm="results/{pd}/assessment/{algo}/false_alarm.csv",
        latex="results/{pd}/assessment/{algo}/false_alarm.tex",
        top_runs="results/{pd}/assessment/{algo}/top_runs.csv",
        ranking="results/{pd}/assessment/{algo}/run_ranking.csv",
        run_level="results/{pd}/assessment/{algo}/run_level.csv",
        plots=report(
            directory("results/{pd}/assessment/{algo}/plots"),
            patterns=["{kind}/{name}.png"],
            caption="../report/plots.rst",
            category="Assessment",
            subcategory="{algo}",
            labels={"dataset": "{pd}", "algorithm": "{algo}", "figure": "{kind}", "histogram": "{name}"},
        ),
    params:
        algorithm=algorithm_params,
        settings=config["assessment"],
    log:
        "logs/{pd}/assess/{algo}.log",
    benchmark:
        "benchmarks/{pd}/assess/{algo}.tsv"
    resources:
        mem_mb=2000,
    conda:
        ENV
    script:
        "../scripts/assess.py"


rule summary:
    input:
        metrics=assessment_files("metrics.csv"),
        run_level=assessment_files("run_level.csv"),
        ranking=assessment_files("run_ranking.csv"),
    output:
        auc=report(
            "results/{pd}/summary/auc_by_histogram.csv",
            caption="../report/auc_summary.rst",
            category="Summary",
            labels={"dataset": "{pd}", "table": "AUC per histogram and algorithm"},
        ),
        run_level=report(
            "results/{pd}/summary/run_level_auc.csv",
            caption="../report/run_level.rst",
            category="Summary",
            labels={"dataset": "{pd}", "table": "run-level AUC"},
        ),
        ranking=report(
            "results/{pd}/summary/run_ranking.csv",
            caption="../report/run_ranking.rst",
            category="Summary",
            labels={"dataset": "{pd}", "table": "run ranking"},
        ),
    log:
        "logs/{pd}/summary.log",
    benchmark:
        "benchmarks/{pd}/summary.tsv"
    conda:
        ENV
    script:
        "../scripts/summary.py"
