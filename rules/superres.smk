# Super-resolution (SIF-NN-SR, Ait-Bachir et al. 2025): MODIS day scenes -> patch pairs -> one
# U-Net per loss variant -> sharpened 250 m COG per variant and day, and the evaluation of the
# variants against bicubic, TsHARP and DMS on the demo's fine truth.


rule superres_scene:
    input:
        unpack(modis_granules),
    output:
        scene=SR_SCENE,
    params:
        superres=subconfig("superres", "max_lst_error_k", "max_modland_qa"),
    log:
        log_path("superres_scene", "{region}/{day}"),
    benchmark:
        benchmark_path("superres_scene", "{region}/{day}")
    threads: 1
    group:
        "superres_scenes"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/superres.yaml"
    script:
        "../workflow_scripts/superres_scene.py"


rule superres_dataset:
    input:
        scenes=region_sr_scenes,
    output:
        dataset=SR_DATASET,
        split=SR_SPLIT,
    params:
        superres=subconfig(
            "superres",
            "patch_size",
            "stride",
            "max_invalid_lst",
            "max_invalid_ndvi",
            "split",
        ),
    log:
        log_path("superres_dataset", "{region}"),
    benchmark:
        benchmark_path("superres_dataset", "{region}")
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    conda:
        "../envs/superres.yaml"
    script:
        "../workflow_scripts/superres_dataset.py"


rule superres_train:
    input:
        dataset=SR_DATASET,
    output:
        model=SR_MODEL,
        curve=report(
            SR_CURVE,
            caption="captions/superres_curve.rst",
            category="Super-resolution",
            subcategory="{region}",
            labels={"region": "{region}", "figure": "training curve {variant}"},
        ),
    params:
        superres=lambda wildcards: subconfig(
            "superres",
            "psf_mtf",
            "model",
            "tiles",
            "crop",
            "training",
            f"variants.{wildcards.variant}",
        ),
        workdir=SR_WORKDIR,
    log:
        log_path("superres_train", "{region}/{variant}"),
    benchmark:
        benchmark_path("superres_train", "{region}/{variant}")
    threads: model_threads()
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/superres.yaml"
    script:
        "../workflow_scripts/superres_train.py"


rule superres_predict:
    input:
        scene=SR_SCENE,
        model=SR_MODEL,
    output:
        product=SR_PRODUCT,
    params:
        device=config["superres"]["training"]["device"],
    log:
        log_path("superres_predict", "{region}/{variant}/{day}"),
    benchmark:
        benchmark_path("superres_predict", "{region}/{variant}/{day}")
    threads: 1
    group:
        "superres_predict"
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/superres.yaml"
    script:
        "../workflow_scripts/superres_predict.py"


rule superres_evaluate:
    input:
        scenes=region_sr_scenes,
        truth=region_sr_truth,
        truth_dir=demo_truth,
        split=SR_SPLIT,
        models=sr_models,
    output:
        metrics=SR_METRICS,
        figure=report(
            SR_FIGURE,
            caption="captions/superres_evaluation.rst",
            category="Super-resolution",
            subcategory="{region}",
            labels={"region": "{region}", "figure": "evaluation"},
        ),
    params:
        superres=subconfig("superres", "psf_mtf", "baselines", "training.device"),
        variants=list(config["superres"]["variants"]),
    log:
        log_path("superres_evaluate", "{region}"),
    benchmark:
        benchmark_path("superres_evaluate", "{region}")
    threads: model_threads()
    resources:
        mem_mb=6000,
        runtime=60,
    conda:
        "../envs/superres.yaml"
    script:
        "../workflow_scripts/superres_evaluate.py"
