# Config validation, wildcard constraints, and every path of the workflow: rules build paths
# only through the names and helpers defined here.

# Parse-time helpers only: these modules import the standard library (plus yaml and jsonschema),
# so a dry run or --lint on a login node needs no PyTorch, GDAL or NetCDF stack.
from lstfill.config import validate_config
from lstfill.layout import (
    pick,
    downscale_samples_key,
    downscale_files as layout_downscale_files,
    REGION_DIR,
    RAW_DIR,
    TRUTH_DIR,
    DOWNLOAD_DAY,
    DOWNLOAD_SRTM,
    INVENTORY,
    STATIC,
    S2_GRID,
    CUBE,
    QUICKLOOK,
    CUBE_TABLE,
    CUBE_FIGURE,
    REPORT_METRICS,
    REPORT_METRICS_CSV,
    REPORT_RUNS,
    REPORT_PRODUCT,
    VIEWER,
    VIEWER_DIR,
    GAPFILL_DATASET,
    GAPFILL_SPLIT,
    GAPFILL_MODEL,
    GAPFILL_CURVE,
    GAPFILL_WORKDIR,
    GAPFILL_SELECTION,
    GAPFILL_PRODUCT,
    GAPFILL_METRICS,
    GAPFILL_FIGURE,
    SR_SCENE,
    SR_DATASET,
    SR_SPLIT,
    SR_MODEL,
    SR_CURVE,
    SR_WORKDIR,
    SR_PRODUCT,
    SR_METRICS,
    SR_FIGURE,
    SR_TRUTH,
    FUSION_COARSE,
    FUSION_PRODUCT,
    FUSION_METRICS,
    FUSION_FIGURE,
    FUSION_TRUTH,
    DS_DEMO_LST,
    DS_DEMO_DEM,
    DS_DEM,
    DS_SAMPLES,
    DS_SAMPLES_INFO,
    DS_MODEL,
    DS_CURVE,
    DS_WORKDIR,
    DS_RUN,
    DS_RUNS,
    DS_PRODUCT,
    DS_METRICS,
    DS_FIGURE,
)
from lstfill.downscale import targets as downscale_targets
from lstfill.fusion import targets as fusion_targets
from lstfill.report_tables import evaluated_jobs, region_jobs as planned_jobs
from lstfill.download import targets as download_targets
from lstfill.inventory import (
    acquisition_entry,
    inca_files_for,
    modis_days,
    parse_acquisition_id,
    read_inventory,
    s2_scenes_near,
)

config.update(validate_config(config, plan=True))


wildcard_constraints:
    region=r"[A-Za-z0-9_-]+",
    acquisition=r"\d{8}T\d{6}",
    day=r"\d{8}",
    variant=r"sifnn[12]",
    method=r"patch_cnn|context",
    split=r"space|day",
    job=r"gapfill|superres|fusion|downscale",
    key=r"[0-9a-f]{12}",
    scene=r"S2[ABCD]_MSIL2A_[0-9T]+_N[0-9]{4}_R[0-9]{3}_T[0-9A-Z]{5}_[0-9T]+",




def log_path(rule_name, pattern=""):
    """Log file of a rule, one per wildcard combination."""
    return f"logs/{rule_name}/{pattern}.log" if pattern else f"logs/{rule_name}.log"


def model_threads(share=0.5):
    """Threads of a training or evaluation job: by default half the cores, so two small models
    train side by side (a second thread speeds the downscaling MLP up only 1.26x). The
    cluster profile sets these rules' threads itself (set-threads). Commands that run no job
    (--report, --lint) give no --cores: then 1."""
    return max(1, int((workflow.resource_settings.cores or 1) * share))


def benchmark_path(rule_name, pattern=""):
    """Benchmark (time, memory) file of a rule, under logs/benchmark/."""
    return f"logs/benchmark/{rule_name}/{pattern}.tsv"


def region_block(region):
    """The validated config block of a region named in a target path (one clear error line for
    a region the config lacks)."""
    return pick("region", region, config["regions"], "the config's regions")


def region_inventory(wildcards):
    """The region's inventory, once the acquisition checkpoint has written it."""
    return read_inventory(inventory_of(wildcards.region))


def inventory_of(region):
    """The inventory path of a region, once the acquisition checkpoint has written it."""
    region_block(region)
    return checkpoints.acquire_raw.get(region=region).output.inventory


def acquisitions(region):
    return list(read_inventory(inventory_of(region))["acquisitions"])


def s2_scene_folder(wildcards):
    inv = region_inventory(wildcards)
    where = f"the Sentinel-2 scenes of region {wildcards.region}'s inventory"
    return pick("scene", wildcards.scene, inv["sentinel2"], where)["folder"]


def ecostress_files(wildcards):
    """The LST layer files of the acquisition's granules (the other layers sit beside them);
    an acquisition the inventory left out (no overlap, no valid LST) is an error saying why."""
    inv = region_inventory(wildcards)
    granules = acquisition_entry(inv, wildcards.acquisition)["granules"]
    return [f"{inv['ecostress_dir']}/{gid}_LST.tif" for gid in granules]


def cube_s2_grids(wildcards):
    """The S2 grids within window_days of the acquisition, or with prepare.sentinel2.source
    'fused' the fusion product of its day."""
    inv = region_inventory(wildcards)
    time = parse_acquisition_id(wildcards.acquisition)
    if config["prepare"]["sentinel2"]["source"] == "fused":
        return [FUSION_PRODUCT.format(region=wildcards.region, day=f"{time:%Y%m%d}")]
    window = config["prepare"]["sentinel2"]["window_days"]
    return expand(S2_GRID, region=wildcards.region, scene=s2_scenes_near(inv, time, window))


def cube_inca_files(wildcards):
    inv = region_inventory(wildcards)
    time = parse_acquisition_id(wildcards.acquisition)
    return inca_files_for(inv, time, config["prepare"]["inca"]["cumulative_hours"])


def region_cubes(wildcards):
    return expand(CUBE, region=wildcards.region, acquisition=acquisitions(wildcards.region))


def gapfill_models(wildcards):
    """The checkpoints of every gap-fill method the config trains (gapfill.methods)."""
    return expand(GAPFILL_MODEL, region=wildcards.region, method=config["gapfill"]["methods"])


GAPFILL_TRAIN_KEYS = {
    "patch_cnn": (
        "features",
        "patch_size",
        "model",
        "training",
        "max_patches_per_acquisition",
        "mc_passes",
        "residual_correction",
        "chunk_rows",
    ),
    "context": ("features", "context", "training.device"),
}


def gapfill_train_inputs(wildcards):
    """What one method's training reads: the patch CNN its patch dataset, both the split and
    the cubes."""
    inputs = {"split": GAPFILL_SPLIT, "cubes": region_cubes(wildcards)}
    if wildcards.method == "patch_cnn":
        inputs["dataset"] = GAPFILL_DATASET
    return inputs


def gapfill_train_settings(wildcards):
    """The gapfill keys one method's training reads (a change to another method's keys does
    not retrain it)."""
    return subconfig("gapfill", *GAPFILL_TRAIN_KEYS[wildcards.method])


def gapfill_history(wildcards):
    """The region's cubes where the context model may fill an acquisition (it reads the other
    acquisitions' LST); nothing when only the patch CNN is trained."""
    return region_cubes(wildcards) if "context" in config["gapfill"]["methods"] else []


def region_modis_days(region):
    """Days with both MODIS products in the region's inventory (YYYYMMDD)."""
    return list(modis_days(read_inventory(inventory_of(region))))


def modis_granules(wildcards):
    """The MOD11A1 and MOD09GQ granules of the {day} wildcard."""
    where = f"the MODIS days of region {wildcards.region}'s inventory"
    return pick("day", wildcards.day, modis_days(region_inventory(wildcards)), where)


def region_sr_scenes(wildcards):
    return expand(SR_SCENE, region=wildcards.region, day=region_modis_days(wildcards.region))


def region_sr_truth(wildcards):
    """The demo's fine truth of every MODIS day (only the demo source has one)."""
    return expand(SR_TRUTH, region=wildcards.region, day=region_modis_days(wildcards.region))


def demo_truth(wildcards):
    """The demo region's truth folder (rule demo_region), where the region is a demo."""
    if region_block(wildcards.region)["source"] != "demo":
        return []
    return TRUTH_DIR.format(region=wildcards.region)


def fusion_coarse_files(wildcards):
    """The raw files of the region's coarse series (fusion.coarse)."""
    return fusion_targets.coarse_files(region_inventory(wildcards), config["fusion"]["coarse"])


def fusion_day_s2_grids(wildcards):
    """The S2 grids of the scenes within fusion.max_days of the {day} wildcard."""
    inv = region_inventory(wildcards)
    scenes = fusion_targets.scenes_for_day(inv, wildcards.day, config["fusion"]["max_days"])
    return expand(S2_GRID, region=wildcards.region, scene=scenes)


def region_s2_grids(wildcards):
    """Every S2 grid of the region."""
    inv = region_inventory(wildcards)
    return expand(S2_GRID, region=wildcards.region, scene=list(inv["sentinel2"]))


def fusion_truth(wildcards):
    """The demo's daily NDVI truth (none for other sources), inside rule demo_region's truth
    folder."""
    region = region_block(wildcards.region)
    if region["source"] != "demo":
        return []
    days = fusion_targets.fusion_days(region)
    return expand(FUSION_TRUTH, region=wildcards.region, day=days)


def fusion_period(wildcards):
    region = region_block(wildcards.region)
    return [region["start"], region["end"]]


def sr_models(wildcards):
    return expand(SR_MODEL, region=wildcards.region, variant=list(config["superres"]["variants"]))


def downscale_region(wildcards):
    """The validated downscale.regions block of the {region} wildcard."""
    return downscale_block(wildcards.region)


def downscale_block(region):
    """A downscaling region's config block (one clear error line for one the config lacks)."""
    regions = config["downscale"]["regions"]
    return pick("downscaling region", region, regions, "the config's downscale.regions")


def downscale_files(region):
    """{"lst": yearly LST files, "dem": DEM files} of a downscaling region."""
    downscale_block(region)
    return layout_downscale_files(config, region)


def samples_key(region):
    """The samples of a region are named by the hash of what they depend on (a cache per
    setting)."""
    downscale_block(region)
    return downscale_samples_key(config, region)


def downscale_samples(wildcards):
    key = samples_key(wildcards.region)
    return {
        "samples": DS_SAMPLES.format(region=wildcards.region, key=key),
        "info": DS_SAMPLES_INFO.format(region=wildcards.region, key=key),
    }


def downscale_days(region):
    """The days (YYYYMMDD) of a region's samples, once the samples checkpoint has run."""
    key = samples_key(region)
    info = checkpoints.downscale_samples.get(region=region, key=key).output.info
    return downscale_targets.days_of(info)


def downscale_models(wildcards):
    kinds = config["downscale"]["split"]["kinds"]
    return {kind: DS_MODEL.format(region=wildcards.region, split=kind) for kind in kinds}


def metric_jobs(region):
    """The jobs with metrics in a region of `regions` (as all_targets plans them)."""
    inv = read_inventory(inventory_of(region))
    return evaluated_jobs(config["regions"][region], inv, config["fusion"]["coarse"])


METRICS_BY_JOB = {
    "gapfill": GAPFILL_METRICS,
    "superres": SR_METRICS,
    "fusion": FUSION_METRICS,
    "downscale": DS_METRICS,
}


def report_metrics_input(wildcards):
    """The metrics.json of the {job} wildcard in the {region} wildcard (a downscaling region's
    for job downscale; one clear error line for a region or job the plan lacks)."""
    if wildcards.job == "downscale":
        downscale_block(wildcards.region)
    else:
        region_block(wildcards.region)
        pick("job", wildcards.job, metric_jobs(wildcards.region), "the region's evaluated jobs")
    return METRICS_BY_JOB[wildcards.job].format(region=wildcards.region)


def report_runs_inputs(wildcards):
    """What the runs table of the {region} wildcard reads, where the plan makes it: gap-fill
    checkpoints, selection and metrics; super-resolution checkpoints (where MODIS days exist) and
    metrics (where a fine truth does); a downscaling region's checkpoints and metrics."""
    region = wildcards.region
    if region not in config["regions"]:
        downscale_block(region)
    inputs = {}
    if region in config["regions"]:
        methods = config["gapfill"]["methods"]
        inputs["gapfill_models"] = expand(GAPFILL_MODEL, region=region, method=methods)
        inputs["gapfill_selection"] = GAPFILL_SELECTION.format(region=region)
        inputs["gapfill_metrics"] = GAPFILL_METRICS.format(region=region)
        if region_modis_days(region):
            variants = list(config["superres"]["variants"])
            inputs["superres_models"] = expand(SR_MODEL, region=region, variant=variants)
            if "superres" in metric_jobs(region):
                inputs["superres_metrics"] = SR_METRICS.format(region=region)
    if region in config["downscale"]["regions"]:
        kinds = config["downscale"]["split"]["kinds"]
        inputs["downscale_models"] = expand(DS_MODEL, region=region, split=kinds)
        inputs["downscale_metrics"] = DS_METRICS.format(region=region)
    return inputs


def all_targets(wildcards):
    """Every region's cube table and figure, one quicklook and one gap-filled product per
    acquisition, the gap-fill evaluation, and, where MODIS is available, one sharpened product
    per variant and day (plus the super-resolution evaluation where a fine truth exists), one
    fused product per day and the fusion evaluation where S2 scenes and a coarse series exist (the
    jobs of `region_jobs` and `metric_jobs`); every downscaling region's evaluation, training
    curves and one map per sampled day; per region its metric and runs tables, product
    quicklooks and viewer."""
    targets = []
    for region in config["regions"]:
        dates = acquisitions(region)
        jobs, evaluated = region_jobs(region), metric_jobs(region)
        targets += expand([CUBE_TABLE, CUBE_FIGURE], region=region)
        targets += expand(QUICKLOOK, region=region, acquisition=dates)
        targets += expand([GAPFILL_METRICS, GAPFILL_FIGURE], region=region)
        targets += expand(GAPFILL_CURVE, region=region, method=config["gapfill"]["methods"])
        targets += expand(GAPFILL_PRODUCT, region=region, acquisition=dates)
        targets += expand(REPORT_METRICS, region=region, job=evaluated)
        targets += expand(REPORT_RUNS, region=region)
        if "superres" in jobs:
            days = region_modis_days(region)
            variants = list(config["superres"]["variants"])
            targets += expand(SR_CURVE, region=region, variant=variants)
            targets += expand(SR_PRODUCT, region=region, variant=variants, day=days)
            if "superres" in evaluated:
                targets += expand([SR_METRICS, SR_FIGURE], region=region)
        if "fusion" in jobs:
            fusion_days = fusion_targets.fusion_days(config["regions"][region])
            targets += expand([FUSION_METRICS, FUSION_FIGURE], region=region)
            targets += expand(FUSION_PRODUCT, region=region, day=fusion_days)
    for region in config["downscale"]["regions"]:
        kinds = config["downscale"]["split"]["kinds"]
        targets += expand([DS_METRICS, DS_FIGURE, DS_RUNS], region=region)
        targets += expand([REPORT_METRICS, REPORT_RUNS], region=region, job="downscale")
        targets += expand(DS_CURVE, region=region, split=kinds)
        targets += expand(DS_PRODUCT, region=region, day=downscale_days(region))
    for region in dict.fromkeys([*config["regions"], *config["downscale"]["regions"]]):
        targets += expand(REPORT_PRODUCT, region=region, job=region_jobs(region))
        targets += expand(VIEWER, region=region)
    return targets


def subconfig(section, *keys):
    """The named keys of a config section, a dotted key ("training.seed") taking one key of a
    nested block: a rule's params hold only what its step reads, so changing another key of the
    section does not rerun it."""
    picked = {}
    for key in keys:
        *parents, last = key.split(".")
        src, dst = config[section], picked
        for part in parents:
            src, dst = src[part], dst.setdefault(part, {})
        dst[last] = src[last]
    return picked


def region_config(wildcards):
    """The validated config block of the {region} wildcard."""
    return region_block(wildcards.region)


def acquire_settings(wildcards):
    """The keys of the {region} block that the acquisition step reads (the inventory's period
    and grid), so editing another region setting does not rerun it."""
    keys = ("source", "start", "end", "grid")
    return {k: v for k, v in region_config(wildcards).items() if k in keys}


def demo_settings(wildcards):
    """The keys of a demo {region} block that the demo_region rule reads (its period, grid, demo
    block), so editing another region setting does not resynthesise the raw files."""
    return {
        k: v for k, v in region_config(wildcards).items() if k in ("start", "end", "grid", "demo")
    }


def raw_files(wildcards):
    """What the acquisition waits for: a demo region's synthesised raw folder, a 'download'
    region's manifests (one per source and day; SRTM: one), nothing for a 'local' region."""
    region = region_block(wildcards.region)
    if region["source"] == "demo":
        return RAW_DIR.format(region=wildcards.region)
    return download_manifests(wildcards)


def download_day(source):
    """Manifest pattern of one source's download job per {region} and {day}."""
    return DOWNLOAD_DAY.replace("{source}", source)


def download_settings(source):
    """Input function: the provider settings of `source` for the {region} wildcard."""

    def settings(wildcards):
        region = region_block(wildcards.region)
        return download_targets.provider_settings(source, region, config)

    return settings


def download_manifests(wildcards):
    """A 'download' region's manifests: one per source and day (SRTM: one); none otherwise."""
    region = region_block(wildcards.region)
    if region["source"] != "download":
        return []
    manifests = []
    for source in region["download"]["sources"]:
        if source == "srtm":
            manifests.append(DOWNLOAD_SRTM.format(region=wildcards.region))
            continue
        days = download_targets.source_days(source, region, config)
        manifests += expand(
            download_day(source),
            region=wildcards.region,
            day=[d.strftime("%Y%m%d") for d in days],
        )
    return manifests


def region_jobs(region):
    """The jobs that run for `region`: those of a region of `regions` (gap-fill,
    super-resolution where it has MODIS days, fusion where it has S2 scenes and a coarse
    series), downscaling for a region of `downscale.regions`."""
    jobs = []
    if region in config["regions"]:
        inv = read_inventory(inventory_of(region))
        jobs += planned_jobs(inv, config["fusion"]["coarse"])
    if region in config["downscale"]["regions"]:
        jobs.append("downscale")
    if not jobs:
        where = "the config's regions or downscale.regions"
        pick("region", region, [*config["regions"], *config["downscale"]["regions"]], where)
    return jobs


def job_files(wildcards, job):
    """The files the viewer and the product quicklook read of `job` in the {region} wildcard:
    its inputs and products."""
    region = wildcards.region
    if job == "gapfill":
        return {
            "cubes": region_cubes(wildcards),
            "gapfill": expand(GAPFILL_PRODUCT, region=region, acquisition=acquisitions(region)),
        }
    if job == "superres":
        variants = list(config["superres"]["variants"])
        days = region_modis_days(region)
        return {
            "sr_scenes": region_sr_scenes(wildcards),
            "superres": expand(SR_PRODUCT, region=region, variant=variants, day=days),
        }
    if job == "fusion":
        days = fusion_targets.fusion_days(config["regions"][region])
        return {
            "coarse": FUSION_COARSE.format(region=region),
            "s2": region_s2_grids(wildcards),
            "fusion": expand(FUSION_PRODUCT, region=region, day=days),
        }
    return {
        "lst": downscale_files(region)["lst"],
        "downscale": expand(DS_PRODUCT, region=region, day=downscale_days(region)),
    }


def viewer_inputs(wildcards):
    """Every file the region's viewer shows: each job's inputs and products, its metrics, and
    the region's runs table."""
    region = wildcards.region
    jobs = region_jobs(region)
    evaluated = metric_jobs(region) if region in config["regions"] else []
    evaluated += ["downscale"] if "downscale" in jobs else []
    files = {
        "runs": REPORT_RUNS.format(region=region),
        "metrics": [METRICS_BY_JOB[j].format(region=region) for j in evaluated],
    }
    for job in jobs:
        files.update(job_files(wildcards, job))
    return files


def product_inputs(wildcards):
    """The inputs and products of the {job} wildcard in the {region} wildcard."""
    jobs = region_jobs(wildcards.region)
    pick("job", wildcards.job, jobs, f"the jobs of region {wildcards.region}")
    return job_files(wildcards, wildcards.job)


def viewer_settings(wildcards):
    """What the viewer's readers need of the config: the jobs (all of the region's, or the
    {job} wildcard), every region (the viewer links to their viewers), the S2 clear-share threshold (prepare.sentinel2.min_clear_subpixels) and
    the downscaling QA choice."""
    job = getattr(wildcards, "job", None)
    return {
        "jobs": [job] if job else region_jobs(wildcards.region),
        "regions": list(dict.fromkeys([*config["regions"], *config["downscale"]["regions"]])),
        "fusion_min_clear": config["prepare"]["sentinel2"]["min_clear_subpixels"],
        "downscale_qa_strict": config["downscale"]["qa_strict"],
    }
