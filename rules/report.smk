# Report: quicklooks of every cube and a per-region summary, for `snakemake --report`.


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
