# Prepare: aligned CF NetCDF datacubes on the region grid, one per acquisition.


rule prepare_static:
    input:
        inventory=INVENTORY,
    output:
        static=STATIC,
    params:
        tolerance=config["prepare"]["out_of_range_tolerance"],
    log:
        log_path("prepare_static", "{region}"),
    benchmark:
        benchmark_path("prepare_static", "{region}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../envs/prepare.yaml"
    script:
        "../workflow_scripts/prepare_static.py"


rule prepare_s2_grid:
    input:
        inventory=INVENTORY,
        scene=s2_scene_folder,
    output:
        grid=S2_GRID,
    params:
        sentinel2=subconfig("prepare", "sentinel2.bands", "sentinel2.scl_invalid")["sentinel2"],
        tolerance=config["prepare"]["out_of_range_tolerance"],
    log:
        log_path("prepare_s2_grid", "{region}/{scene}"),
    benchmark:
        benchmark_path("prepare_s2_grid", "{region}/{scene}")
    threads: 1
    group:
        "s2_grids"
    resources:
        mem_mb=3000,
        runtime=20,
    conda:
        "../envs/prepare.yaml"
    script:
        "../workflow_scripts/prepare_s2_grid.py"


rule prepare_cube:
    input:
        inventory=INVENTORY,
        static=STATIC,
        ecostress=ecostress_files,
        s2=cube_s2_grids,
        inca=cube_inca_files,
    output:
        cube=CUBE,
    params:
        prepare=subconfig(
            "prepare",
            "ecostress",
            "inca",
            "sentinel2.bands",
            "sentinel2.window_days",
            "sentinel2.min_clear_subpixels",
            "sentinel2.source",
            "out_of_range_tolerance",
        ),
    log:
        log_path("prepare_cube", "{region}/{acquisition}"),
    benchmark:
        benchmark_path("prepare_cube", "{region}/{acquisition}")
    threads: 1
    group:
        "cubes"
    resources:
        mem_mb=3000,
        runtime=20,
    conda:
        "../envs/prepare.yaml"
    script:
        "../workflow_scripts/prepare_cube.py"
