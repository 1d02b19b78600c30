# Assessment: one job per chunk of histograms (all algorithm configs: figures of merit, p-values
# against the reference runs, and the plan of the figures of the histograms that matter), one job
# per chunk that draws those figures, and one verdicts job per primary dataset (run verdicts,
# summary tables and figures), which needs only the tables and so runs beside the drawing; then
# the web page.


rule assess_histograms:
    input:
        scores=chunk_score_files,
        reco=chunk_reco_files,
    output:
        metrics="results/{pd}/assessment/chunks/{chunk}/metrics.csv",
        false_alarm="results/{pd}/assessment/chunks/{chunk}/false_alarm.csv",
        confusion="results/{pd}/assessment/chunks/{chunk}/confusion.csv",
        top_runs="results/{pd}/assessment/chunks/{chunk}/top_runs.csv",
        figures="results/{pd}/assessment/chunks/{chunk}/figures.csv",
        pvalues="results/{pd}/assessment/chunks/{chunk}/pvalues.parquet",
        figure_plan="results/{pd}/assessment/chunks/{chunk}/figures.pkl",
    params:
        settings=config["assessment"],
        reco_keys=chunk_reco_keys,
        reco_labels=RECO_LABELS,
        n_histograms=len(PLAN.histograms),
    log:
        "logs/{pd}/assess/{chunk}.log",
    benchmark:
        "benchmarks/{pd}/assess/{chunk}.tsv"
    priority: 2  # the start of the longest chain (tables, figures, web page): before collect_scores
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        ENV
    script:
        "../scripts/assess_histograms.py"


rule draw_figures:
    input:
        plan="results/{pd}/assessment/chunks/{chunk}/figures.pkl",
    output:
        plots=directory("results/{pd}/assessment/chunks/{chunk}/plots"),
    params:
        figure_cache=figure_cache,
    log:
        "logs/{pd}/figures/{chunk}.log",
    benchmark:
        "benchmarks/{pd}/figures/{chunk}.tsv"
    priority: 1  # longer than the verdicts, which can wait for a free core
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        ENV
    script:
        "../scripts/draw_figures.py"


rule verdicts:
    input:
        unpack(chunk_tables),
    output:
        verdicts=report(
            "results/{pd}/verdicts.csv",
            caption="../report/verdicts.rst",
            category="1. Run verdicts",
            labels={"dataset": "{pd}", "table": "verdicts (all runs, ranked)"},
        ),
        summary_html=report(
            "results/{pd}/summary/summary.html",
            caption="../report/summary.rst",
            category="1. Run verdicts",
            labels={"dataset": "{pd}", "table": "flagged runs, run-level AUC, AUC and false alarms per histogram"},
        ),
        run_scores="results/{pd}/summary/run_scores.csv",
        problems="results/{pd}/summary/problems.txt",
        run_level=report(
            "results/{pd}/summary/run_level_auc.csv",
            caption="../report/run_level.rst",
            category="1. Run verdicts",
            labels={"dataset": "{pd}", "table": "run-level AUC per combiner and algorithm"},
        ),
        metrics=report(
            "results/{pd}/summary/metrics.csv",
            caption="../report/metrics.rst",
            category="2. Histograms",
            labels={"dataset": "{pd}", "table": "metrics per histogram and algorithm"},
        ),
        auc=report(
            "results/{pd}/summary/auc_by_histogram.csv",
            caption="../report/auc_summary.rst",
            category="2. Histograms",
            labels={"dataset": "{pd}", "table": "AUC per histogram and algorithm"},
        ),
        false_alarm="results/{pd}/summary/false_alarm.csv",
        false_alarm_tex="results/{pd}/summary/false_alarm.tex",
        false_alarm_html=report(
            "results/{pd}/summary/false_alarm.html",
            caption="../report/false_alarm.rst",
            category="2. Histograms",
            labels={"dataset": "{pd}", "table": "false-alarm rate at fixed efficiency"},
        ),
        confusion="results/{pd}/summary/confusion.csv",
        top_runs=report(
            "results/{pd}/summary/top_runs.csv",
            caption="../report/top_runs.rst",
            category="2. Histograms",
            labels={"dataset": "{pd}", "table": "most anomalous runs per histogram"},
        ),
        run_level_plot=report(
            "results/{pd}/summary/run_level.png",
            caption="../report/run_level_plot.rst",
            category="1. Run verdicts",
            labels={"dataset": "{pd}", "figure": "run-level ROC"},
        ),
        flags_plot=report(
            "results/{pd}/summary/flags.png",
            caption="../report/flags.rst",
            category="1. Run verdicts",
            labels={"dataset": "{pd}", "figure": "histograms flagged per run"},
        ),
        pvalues_plot=report(
            "results/{pd}/summary/pvalues.png",
            caption="../report/pvalues.rst",
            category="1. Run verdicts",
            labels={"dataset": "{pd}", "figure": "p-value calibration"},
        ),
    params:
        settings=config["assessment"],
    log:
        "logs/{pd}/verdicts.log",
    benchmark:
        "benchmarks/{pd}/verdicts.tsv"
    resources:
        mem_mb=4000,
    conda:
        ENV
    script:
        "../scripts/verdicts.py"


rule site:
    input:
        unpack(chunk_tables),
        plots=chunk_plot_dirs,
        verdicts="results/{pd}/verdicts.csv",
        summary_metrics="results/{pd}/summary/metrics.csv",
        summary_false_alarm="results/{pd}/summary/false_alarm.tex",
        summary_top_runs="results/{pd}/summary/top_runs.csv",
        summary_run_level="results/{pd}/summary/run_level_auc.csv",
        run_level_plot="results/{pd}/summary/run_level.png",
        flags_plot="results/{pd}/summary/flags.png",
        pvalues_plot="results/{pd}/summary/pvalues.png",
        problems="results/{pd}/summary/problems.txt",
        fetch_report="results/{pd}/fetch_report.tsv",
    output:
        site=report(
            directory("results/{pd}/site"),
            htmlindex="index.html",
            caption="../report/site.rst",
            category="0. Web page",
            labels={"dataset": "{pd}", "page": "verdicts, search, runs, histograms"},
        ),
    log:
        "logs/{pd}/site.log",
    benchmark:
        "benchmarks/{pd}/site.tsv"
    conda:
        ENV
    script:
        "../scripts/site.py"
