# Fusion (EFAST, Senty et al. 2024): the region's Sentinel-2 grids and a daily coarse series
# (Sentinel-3 or MODIS MOD09GQ) -> one fused COG per day of the period (NDVI, reflectances,
# weight, days_to_fine, flag), and the withheld-scene evaluation against four baselines.

FUSION_METHOD_KEYS = (
    "method",
    "ratio",
    "sigma",
    "D",
    "max_days",
    "tolerance",
    "min_importance",
    "composite_days",
    "composite_D",
    "smooth_px",
)


rule fusion_coarse:
    input:
        inventory=INVENTORY,
        files=fusion_coarse_files,
    output:
        coarse=FUSION_COARSE,
    log:
        log_path("fusion_coarse", "{region}"),
    benchmark:
        benchmark_path("fusion_coarse", "{region}")
    conda:
        "../envs/fusion.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        fusion=subconfig("fusion", "coarse", "ratio"),
        bands=config["prepare"]["sentinel2"]["bands"],
    script:
        "../workflow_scripts/fusion_coarse.py"


rule fusion_predict:
    input:
        inventory=INVENTORY,
        coarse=FUSION_COARSE,
        s2=fusion_day_s2_grids,
    output:
        product=FUSION_PRODUCT,
    log:
        log_path("fusion_predict", "{region}/{day}"),
    benchmark:
        benchmark_path("fusion_predict", "{region}/{day}")
    group:
        "fusion_predict"
    conda:
        "../envs/fusion.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        fusion=subconfig("fusion", *FUSION_METHOD_KEYS),
        sentinel2=subconfig("prepare", "sentinel2.bands", "sentinel2.min_clear_subpixels")[
            "sentinel2"
        ],
    script:
        "../workflow_scripts/fusion_predict.py"


rule fusion_evaluate:
    input:
        inventory=INVENTORY,
        coarse=FUSION_COARSE,
        s2=region_s2_grids,
        truth=fusion_truth,
        truth_dir=demo_truth,
    output:
        metrics=FUSION_METRICS,
        figure=report(
            FUSION_FIGURE,
            caption="captions/fusion_evaluation.rst",
            category="Fusion",
            subcategory="{region}",
            labels={"region": "{region}", "figure": "evaluation"},
        ),
    log:
        log_path("fusion_evaluate", "{region}"),
    benchmark:
        benchmark_path("fusion_evaluate", "{region}")
    conda:
        "../envs/fusion.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        fusion=subconfig("fusion", *FUSION_METHOD_KEYS, "evaluation"),
        sentinel2=subconfig("prepare", "sentinel2.bands", "sentinel2.min_clear_subpixels")[
            "sentinel2"
        ],
        period=fusion_period,
    script:
        "../workflow_scripts/fusion_evaluate.py"
