# Downloads of a region whose source is 'download': one job per source and day (SRTM: one per
# region) fetching the provider files into resources/{region}/raw/{source}/ and leaving a
# manifest. The jobs run where the network is (localrule: on a cluster, the login node), retry
# twice, and each holds one unit of its API's resource (limits in the profiles) so rate-limited
# services see few simultaneous clients. A missing credential fails the job before any request.


rule download_ecostress:
    output:
        manifest=download_day("ecostress"),
    params:
        source="ecostress",
        region_cfg=region_config,
        settings=download_settings("ecostress"),
        raw_dir=RAW_DIR,
    log:
        log_path("download_ecostress", "{region}/{day}"),
    benchmark:
        benchmark_path("download_ecostress", "{region}/{day}")
    localrule: True
    retries: 2
    threads: 1
    resources:
        earthdata_api=1,
        mem_mb=1000,
        runtime=60,
    conda:
        "../envs/acquire.yaml"
    script:
        "../workflow_scripts/download.py"


use rule download_ecostress as download_modis with:
    output:
        manifest=download_day("modis"),
    params:
        source="modis",
        region_cfg=region_config,
        settings=download_settings("modis"),
        raw_dir=RAW_DIR,
    log:
        log_path("download_modis", "{region}/{day}"),
    benchmark:
        benchmark_path("download_modis", "{region}/{day}")


use rule download_ecostress as download_srtm with:
    output:
        manifest=DOWNLOAD_SRTM,
    params:
        source="srtm",
        region_cfg=region_config,
        settings=download_settings("srtm"),
        raw_dir=RAW_DIR,
    log:
        log_path("download_srtm", "{region}"),
    benchmark:
        benchmark_path("download_srtm", "{region}")


use rule download_ecostress as download_sentinel2 with:
    output:
        manifest=download_day("sentinel2"),
    params:
        source="sentinel2",
        region_cfg=region_config,
        settings=download_settings("sentinel2"),
        raw_dir=RAW_DIR,
    log:
        log_path("download_sentinel2", "{region}/{day}"),
    benchmark:
        benchmark_path("download_sentinel2", "{region}/{day}")
    resources:
        sentinelhub_api=1,
        mem_mb=4000,
        runtime=60,


use rule download_ecostress as download_sentinel3 with:
    output:
        manifest=download_day("sentinel3"),
    params:
        source="sentinel3",
        region_cfg=region_config,
        settings=download_settings("sentinel3"),
        raw_dir=RAW_DIR,
    log:
        log_path("download_sentinel3", "{region}/{day}"),
    benchmark:
        benchmark_path("download_sentinel3", "{region}/{day}")
    resources:
        sentinelhub_api=1,
        mem_mb=2000,
        runtime=60,


use rule download_ecostress as download_inca with:
    output:
        manifest=download_day("inca"),
    params:
        source="inca",
        region_cfg=region_config,
        settings=download_settings("inca"),
        raw_dir=RAW_DIR,
    log:
        log_path("download_inca", "{region}/{day}"),
    benchmark:
        benchmark_path("download_inca", "{region}/{day}")
    resources:
        geosphere_api=1,
        mem_mb=1000,
        runtime=60,
