# Gap-fill: patch dataset and split -> one checkpoint per method (the patch CNN of Kustura et
# al. 2025, the context U-Net) -> the method chosen on the validation days -> filled COG per
# acquisition, and the artificial-gap evaluation of every method against the baselines.


rule gapfill_dataset:
    input:
        cubes=region_cubes,
    output:
        dataset=GAPFILL_DATASET,
        split=GAPFILL_SPLIT,
    params:
        gapfill=subconfig(
            "gapfill", "features", "patch_size", "split", "max_patches_per_acquisition"
        ),
    log:
        log_path("gapfill_dataset", "{region}"),
    benchmark:
        benchmark_path("gapfill_dataset", "{region}")
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    conda:
        "../envs/gapfill.yaml"
    script:
        "../workflow_scripts/gapfill_dataset.py"


rule gapfill_train:
    input:
        unpack(gapfill_train_inputs),
    output:
        model=GAPFILL_MODEL,
        curve=report(
            GAPFILL_CURVE,
            caption="captions/gapfill_curve.rst",
            category="Gap-fill",
            subcategory="{region}",
            labels={"region": "{region}", "figure": "training curve {method}"},
        ),
    params:
        gapfill=gapfill_train_settings,
        workdir=GAPFILL_WORKDIR,
    log:
        log_path("gapfill_train", "{region}/{method}"),
    benchmark:
        benchmark_path("gapfill_train", "{region}/{method}")
    threads: model_threads(1.0)  # all cores: the largest model, scored on 2 threads in README
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/gapfill.yaml"
    script:
        "../workflow_scripts/gapfill_train.py"


rule gapfill_select:
    input:
        cubes=region_cubes,
        models=gapfill_models,
        split=GAPFILL_SPLIT,
    output:
        selection=GAPFILL_SELECTION,
    params:
        gapfill=subconfig(
            "gapfill",
            "method",
            "selection_pairs",
            "evaluation.donor_min_valid",
            "evaluation.donor_max_valid",
            "evaluation.seed",
            "residual_correction",
            "training.device",
        ),
    log:
        log_path("gapfill_select", "{region}"),
    benchmark:
        benchmark_path("gapfill_select", "{region}")
    threads: model_threads(1.0)
    resources:
        mem_mb=6000,
        runtime=60,
    conda:
        "../envs/gapfill.yaml"
    script:
        "../workflow_scripts/gapfill_select.py"


rule gapfill_predict:
    input:
        cube=CUBE,
        models=gapfill_models,
        selection=GAPFILL_SELECTION,
        history=gapfill_history,
    output:
        product=GAPFILL_PRODUCT,
    params:
        chunk_rows=config["gapfill"]["chunk_rows"],
        device=config["gapfill"]["training"]["device"],
    log:
        log_path("gapfill_predict", "{region}/{acquisition}"),
    benchmark:
        benchmark_path("gapfill_predict", "{region}/{acquisition}")
    threads: 1
    group:
        "gapfill_predict"
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/gapfill.yaml"
    script:
        "../workflow_scripts/gapfill_predict.py"


rule gapfill_evaluate:
    input:
        cubes=region_cubes,
        models=gapfill_models,
        split=GAPFILL_SPLIT,
        selection=GAPFILL_SELECTION,
    output:
        metrics=GAPFILL_METRICS,
        figure=report(
            GAPFILL_FIGURE,
            caption="captions/gapfill_evaluation.rst",
            category="Gap-fill",
            subcategory="{region}",
            labels={"region": "{region}", "figure": "evaluation"},
        ),
    params:
        gapfill=subconfig(
            "gapfill",
            "features",
            "evaluation",
            "residual_correction",
            "training.seed",
            "training.device",
        ),
    log:
        log_path("gapfill_evaluate", "{region}"),
    benchmark:
        benchmark_path("gapfill_evaluate", "{region}")
    threads: model_threads(1.0)  # all cores: the largest model, scored on 2 threads in README
    resources:
        mem_mb=6000,
        runtime=60,
    conda:
        "../envs/gapfill.yaml"
    script:
        "../workflow_scripts/gapfill_evaluate.py"
