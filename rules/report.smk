# Report: quicklooks of every cube, a per-region summary, every job's metric tables and the
# training runs table, for `snakemake --report`.


rule report_quicklook:
    input:
        cube=CUBE,
    output:
        png=report(
            QUICKLOOK,
            caption="captions/quicklook.rst",
            category="Datacubes",
            subcategory="{region}",
            labels={"region": "{region}", "acquisition": "{acquisition}"},
        ),
    log:
        log_path("report_quicklook", "{region}/{acquisition}"),
    benchmark:
        benchmark_path("report_quicklook", "{region}/{acquisition}")
    threads: 1
    group:
        "cubes"
    resources:
        mem_mb=1500,
        runtime=10,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report_quicklook.py"


rule report_cubes:
    input:
        cubes=region_cubes,
    output:
        table=report(
            CUBE_TABLE,
            caption="captions/cube_table.rst",
            category="Datacubes",
            subcategory="{region}",
            labels={"region": "{region}", "figure": "table"},
        ),
        figure=report(
            CUBE_FIGURE,
            caption="captions/cube_figure.rst",
            category="Datacubes",
            subcategory="{region}",
            labels={"region": "{region}", "figure": "clear-sky share"},
        ),
    log:
        log_path("report_cubes", "{region}"),
    benchmark:
        benchmark_path("report_cubes", "{region}")
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report_cubes.py"


rule report_metrics:
    input:
        metrics=report_metrics_input,
    output:
        html=report(
            REPORT_METRICS,
            caption="captions/metrics.rst",
            category="Metrics",
            subcategory="{region}",
            labels={"job": "{job}", "region": "{region}", "format": "tables"},
        ),
        csv=report(
            REPORT_METRICS_CSV,
            caption="captions/metrics.rst",
            category="Metrics",
            subcategory="{region}",
            labels={"job": "{job}", "region": "{region}", "format": "csv"},
        ),
    log:
        log_path("report_metrics", "{region}/{job}"),
    benchmark:
        benchmark_path("report_metrics", "{region}/{job}")
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report_metrics.py"


rule report_runs:
    input:
        unpack(report_runs_inputs),
    output:
        runs=report(
            REPORT_RUNS,
            caption="captions/runs.rst",
            category="Training runs",
            subcategory="{region}",
            labels={"region": "{region}", "table": "runs"},
        ),
    log:
        log_path("report_runs", "{region}"),
    benchmark:
        benchmark_path("report_runs", "{region}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    # Checkpoints load with torch (lstfill.training.checkpoint): of the envs that have torch,
    # downscale.yaml is the lightest (no pandas, rioxarray, scikit-learn or pyhdf).
    conda:
        "../envs/downscale.yaml"
    script:
        "../workflow_scripts/report_runs.py"


rule report_viewer:
    input:
        unpack(viewer_inputs),
    output:
        html=VIEWER,
        script=f"{VIEWER_DIR}/viewer.js",
        style=f"{VIEWER_DIR}/viewer.css",
        data=directory(f"{VIEWER_DIR}/data"),
        vendor=directory(f"{VIEWER_DIR}/vendor"),
    params:
        settings=viewer_settings,
    log:
        log_path("report_viewer", "{region}"),
    benchmark:
        benchmark_path("report_viewer", "{region}")
    # The pinned JavaScript libraries come from the user cache, or from the npm registry where
    # the cache lacks them: on a cluster, that is the login node.
    localrule: True
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report_viewer.py"


rule report_product:
    input:
        unpack(product_inputs),
    output:
        png=report(
            REPORT_PRODUCT,
            caption="captions/product.rst",
            category="Products",
            subcategory="{region}",
            labels={"region": "{region}", "job": "{job}"},
        ),
    params:
        settings=viewer_settings,
    log:
        log_path("report_product", "{region}/{job}"),
    benchmark:
        benchmark_path("report_product", "{region}/{job}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report_product.py"
