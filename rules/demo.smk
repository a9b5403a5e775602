# The synthetic demo worlds: deterministic raw files in the providers' own formats, plus the
# truth that only a synthetic world has. One rule per demo world, each declaring everything it
# writes; the rules that read a demo region take these outputs as inputs (acquire_raw the raw
# folder, the super-resolution and fusion evaluations the truth, downscale_dem and
# downscale_samples the Israel-format files). A real region never asks for them.


rule demo_region:
    output:
        raw=directory(RAW_DIR),
        truth=directory(TRUTH_DIR),
    params:
        region_cfg=demo_settings,
    log:
        log_path("demo_region", "{region}"),
    benchmark:
        benchmark_path("demo_region", "{region}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/acquire.yaml"
    script:
        "../workflow_scripts/demo_region.py"


rule demo_israel:
    output:
        lst=DS_DEMO_LST,
        dem=DS_DEMO_DEM,
    params:
        demo=lambda wildcards: downscale_region(wildcards)["demo"],
    log:
        log_path("demo_israel", "{region}"),
    benchmark:
        benchmark_path("demo_israel", "{region}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/downscale.yaml"
    script:
        "../workflow_scripts/demo_israel.py"
