rule demo_data:
    output:
        tree=directory(f"{DEMO_DIR}/DQMGUI_data"),
        truth=f"{DEMO_DIR}/truth.csv",
    params:
        demo=config["demo"],
    log:
        "logs/demo_data.log",
    benchmark:
        "benchmarks/demo_data.tsv"
    conda:
        ENV
    script:
        "../scripts/demo_data.py"


checkpoint discover:
    input:
        unpack(discover_input),
    output:
        catalog="results/{pd}/catalog/{year}.tsv",
        source="results/{pd}/catalog/{year}.source.txt",
    params:
        source=PLAN.source_location,
        retries=config["fetch"]["retries"],
    log:
        "logs/{pd}/discover/{year}.log",
    benchmark:
        "benchmarks/{pd}/discover/{year}.tsv"
    conda:
        ENV
    script:
        "../scripts/discover.py"


rule selection_marker:
    output:
        marker="results/{pd}/selection/{kind}-{key}.json",
    params:
        # Not recorded: the key in the file name is what the marker stands for.
        identity=Untracked(PLAN.selection_identity),
    wildcard_constraints:
        kind="files|all",
        key="[0-9a-f]+",
    log:
        "logs/{pd}/selection_marker/{kind}-{key}.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/selection_marker.py"


rule fetch:
    input:
        fetch_checkpoints,
        selection=lambda wildcards: PLAN.selection_marker(wildcards.pd, "files"),
    output:
        manifest="results/{pd}/shards/{subsystem}/{batch}.tsv",
    params:
        files=batch_files,
        files_key=batch_key,
        histograms=lambda wildcards: PLAN.columns(wildcards.subsystem),
        settings=config["fetch"],
    log:
        "logs/{pd}/fetch/{subsystem}/{batch}.log",
    benchmark:
        "benchmarks/{pd}/fetch/{subsystem}/{batch}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        ENV
    script:
        "../scripts/fetch.py"


rule merge:
    input:
        unpack(merge_inputs),
    output:
        table="results/{pd}/histograms.parquet",
        report=report(
            "results/{pd}/fetch_report.tsv",
            caption="../report/fetch_report.rst",
            category="Data",
            labels={"dataset": "{pd}", "table": "fetch report"},
        ),
        entries="results/{pd}/entries.parquet",
        storage=expand("results/{{pd}}/data/{subsystem}.parquet", subsystem=PLAN.subsystems),
        record="results/{pd}/selection.json",
    params:
        histograms=[h.column for h in PLAN.histograms],
        subsystems=PLAN.subsystems,
        identity=PLAN.selection_identity,
        markers=lambda wildcards: [PLAN.selection_marker(wildcards.pd, kind) for kind in ("files", "all")],
        selection=merge_selection,
        selection_key=selection_key,
    log:
        "logs/{pd}/merge.log",
    benchmark:
        "benchmarks/{pd}/merge.tsv"
    resources:
        mem_mb=2000,
    conda:
        ENV
    script:
        "../scripts/merge.py"


rule run_table:
    input:
        entries="results/{pd}/entries.parquet",
    output:
        runs="results/{pd}/runs.parquet",
    params:
        preprocessing=config["preprocessing"],
    log:
        "logs/{pd}/run_table.log",
    benchmark:
        "benchmarks/{pd}/run_table.tsv"
    conda:
        ENV
    script:
        "../scripts/run_table.py"
