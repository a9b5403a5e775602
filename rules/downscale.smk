# Downscaling (the 9x9 topography MLP of the Israel LST project): yearly Israel-format LST and a
# DEM -> the DEM on the LST grid -> samples cached by their parameters -> one MLP per split
# (space, day) -> a map per sampled day, and the evaluation against predict-0 with permutation
# importance. Each training run writes its row (parameters and metrics), and downscale_runs
# collects the rows into results/{region}/downscale/runs.csv.


rule downscale_dem:
    input:
        lst=lambda wildcards: downscale_files(wildcards.region)["lst"],
        dem=lambda wildcards: downscale_files(wildcards.region)["dem"],
    output:
        dem=DS_DEM,
    log:
        log_path("downscale_dem", "{region}"),
    benchmark:
        benchmark_path("downscale_dem", "{region}")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../envs/downscale.yaml"
    script:
        "../workflow_scripts/downscale_dem.py"


checkpoint downscale_samples:
    input:
        lst=lambda wildcards: downscale_files(wildcards.region)["lst"],
        dem=DS_DEM,
    output:
        samples=DS_SAMPLES,
        info=DS_SAMPLES_INFO,
    params:
        downscale=subconfig("downscale", *downscale_targets.SAMPLE_KEYS),
    log:
        log_path("downscale_samples", "{region}/{key}"),
    benchmark:
        benchmark_path("downscale_samples", "{region}/{key}")
    threads: 1
    resources:
        mem_mb=16000,
        runtime=60,
    conda:
        "../envs/downscale.yaml"
    script:
        "../workflow_scripts/downscale_samples.py"


rule downscale_train:
    input:
        unpack(downscale_samples),
    output:
        model=DS_MODEL,
        run=DS_RUN,
        curve=report(
            DS_CURVE,
            caption="captions/downscale_curve.rst",
            category="Downscaling",
            subcategory="{region}",
            labels={"region": "{region}", "figure": "training curve {split}"},
        ),
    params:
        downscale=subconfig(
            "downscale",
            "bands",
            "scaling",
            "model",
            "training",
            "mlflow",
            "split.ratios",
            "split.block_size",
            "split.seed",
            "split.day_run_gap",
        ),
        workdir=DS_WORKDIR,
    log:
        log_path("downscale_train", "{region}/{split}"),
    benchmark:
        benchmark_path("downscale_train", "{region}/{split}")
    threads: model_threads()
    resources:
        mem_mb=16000,
        runtime=240,
    conda:
        "../envs/downscale.yaml"
    script:
        "../workflow_scripts/downscale_train.py"


rule downscale_predict:
    input:
        lst=lambda wildcards: downscale_files(wildcards.region)["lst"],
        dem=DS_DEM,
        model=lambda wildcards: DS_MODEL.format(
            region=wildcards.region, split=config["downscale"]["predict_split"]
        ),
    output:
        product=DS_PRODUCT,
    params:
        qa_strict=config["downscale"]["qa_strict"],
        device=config["downscale"]["training"]["device"],
    log:
        log_path("downscale_predict", "{region}/{day}"),
    benchmark:
        benchmark_path("downscale_predict", "{region}/{day}")
    threads: 1
    group:
        "downscale_predict"
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../envs/downscale.yaml"
    script:
        "../workflow_scripts/downscale_predict.py"


rule downscale_evaluate:
    input:
        unpack(downscale_samples),
        models=lambda wildcards: list(downscale_models(wildcards).values()),
    output:
        metrics=DS_METRICS,
        figure=report(
            DS_FIGURE,
            caption="captions/downscale_evaluation.rst",
            category="Downscaling",
            subcategory="{region}",
            labels={"region": "{region}", "figure": "evaluation"},
        ),
    params:
        downscale=subconfig("downscale", "split", "importance", "training.device"),
        kinds=config["downscale"]["split"]["kinds"],
    log:
        log_path("downscale_evaluate", "{region}"),
    benchmark:
        benchmark_path("downscale_evaluate", "{region}")
    threads: model_threads()
    resources:
        mem_mb=16000,
        runtime=60,
    conda:
        "../envs/downscale.yaml"
    script:
        "../workflow_scripts/downscale_evaluate.py"


rule downscale_runs:
    input:
        runs=lambda wildcards: expand(
            DS_RUN, region=wildcards.region, split=config["downscale"]["split"]["kinds"]
        ),
    output:
        runs=DS_RUNS,
    log:
        log_path("downscale_runs", "{region}"),
    benchmark:
        benchmark_path("downscale_runs", "{region}")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/downscale.yaml"
    script:
        "../workflow_scripts/downscale_runs.py"
