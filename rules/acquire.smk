# Acquisition: the inventory of the raw provider files under resources/{region}/raw/
# (synthesised by rules/demo.smk, placed by hand, or fetched by rules/download.smk).
# A checkpoint, because which acquisitions exist is only known once the files are there.


checkpoint acquire_raw:
    input:
        raw_files,
    output:
        inventory=INVENTORY,
    params:
        region_cfg=acquire_settings,
        region_dir=REGION_DIR,
    log:
        log_path("acquire_raw", "{region}"),
    benchmark:
        benchmark_path("acquire_raw", "{region}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/acquire.yaml"
    script:
        "../workflow_scripts/acquire_raw.py"
