# Config validation, wildcard constraints, and every path of the workflow: rules build paths
# only through the names and helpers defined here.

# Parse-time helpers only: these modules import the standard library (plus yaml and jsonschema),
# so a dry run or --lint on a login node needs no PyTorch, GDAL or NetCDF stack.
from lstfill.config import validate_config
from lstfill.downscale import targets as downscale_targets
from lstfill.fusion import targets as fusion_targets
from lstfill.download import targets as download_targets
from lstfill.inventory import (
    inca_files_for,
    modis_days,
    parse_acquisition_id,
    read_inventory,
    s2_scenes_near,
)

config.update(validate_config(config))


wildcard_constraints:
    region=r"[A-Za-z0-9_-]+",
    acquisition=r"\d{8}T\d{6}",
    day=r"\d{8}",
    variant=r"sifnn[12]",
    method=r"patch_cnn|context",
    split=r"space|day",
    key=r"[0-9a-f]{12}",
    scene=r"S2[ABCD]_MSIL2A_[0-9T]+_N[0-9]{4}_R[0-9]{3}_T[0-9A-Z]{5}_[0-9T]+",


REGION_DIR = "resources/{region}"
RAW_DIR = "resources/{region}/raw"
TRUTH_DIR = "resources/{region}/truth"
DOWNLOAD_DAY = "resources/{region}/downloads/{source}/{day}.json"
DOWNLOAD_SRTM = "resources/{region}/downloads/srtm.json"
INVENTORY = "resources/{region}/inventory.json"
STATIC = "results/{region}/cubes/static.nc"
S2_GRID = "results/{region}/cubes/sentinel2/{scene}.nc"
CUBE = "results/{region}/cubes/{acquisition}.nc"
QUICKLOOK = "results/{region}/report/quicklooks/{acquisition}.png"
CUBE_TABLE = "results/{region}/report/cubes.csv"
CUBE_FIGURE = "results/{region}/report/cubes.png"
GAPFILL_DATASET = "results/{region}/gapfill/dataset/patches.nc"
GAPFILL_SPLIT = "results/{region}/gapfill/dataset/split.json"
GAPFILL_MODEL = "results/{region}/gapfill/model/{method}.pt"
GAPFILL_CURVE = "results/{region}/gapfill/model/{method}_training_curve.png"
GAPFILL_WORKDIR = "results/{region}/gapfill/model/{method}_training"
GAPFILL_SELECTION = "results/{region}/gapfill/model/selection.json"
GAPFILL_PRODUCT = "results/{region}/gapfill/filled/{acquisition}.tif"
GAPFILL_METRICS = "results/{region}/gapfill/metrics.json"
GAPFILL_FIGURE = "results/{region}/gapfill/evaluation.png"
SR_SCENE = "results/{region}/superres/scenes/{day}.nc"
SR_DATASET = "results/{region}/superres/dataset/patches.nc"
SR_SPLIT = "results/{region}/superres/dataset/split.json"
SR_MODEL = "results/{region}/superres/model/{variant}.pt"
SR_CURVE = "results/{region}/superres/model/{variant}_training_curve.png"
SR_WORKDIR = "results/{region}/superres/model/{variant}_training"
SR_PRODUCT = "results/{region}/superres/sharpened/{variant}/{day}.tif"
SR_METRICS = "results/{region}/superres/metrics.json"
SR_FIGURE = "results/{region}/superres/evaluation.png"
SR_TRUTH = "resources/{region}/truth/modis/{day}_LST_250m_truth.tif"
FUSION_COARSE = "results/{region}/fusion/coarse.nc"
FUSION_PRODUCT = "results/{region}/fusion/daily/{day}.tif"
FUSION_METRICS = "results/{region}/fusion/metrics.json"
FUSION_FIGURE = "results/{region}/fusion/evaluation.png"
FUSION_TRUTH = "resources/{region}/truth/sentinel2/{day}_NDVI_truth.tif"
DS_DEMO_LST = f"resources/{{region}}/raw/israel/{downscale_targets.DEMO_LST_NAME}"
DS_DEMO_DEM = "resources/{region}/raw/israel/srtm_dem.tif"
DS_DEM = "results/{region}/downscale/dem.tif"
DS_SAMPLES = "results/{region}/downscale/samples/{key}.nc"
DS_SAMPLES_INFO = "results/{region}/downscale/samples/{key}.json"
DS_MODEL = "results/{region}/downscale/model/mlp_{split}.pt"
DS_CURVE = "results/{region}/downscale/model/mlp_{split}_training_curve.png"
DS_WORKDIR = "results/{region}/downscale/model/mlp_{split}_training"
DS_RUN = "results/{region}/downscale/runs/{split}.json"
DS_RUNS = "results/{region}/downscale/runs.csv"
DS_PRODUCT = "results/{region}/downscale/maps/{day}.tif"
DS_METRICS = "results/{region}/downscale/metrics.json"
DS_FIGURE = "results/{region}/downscale/evaluation.png"


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


def region_inventory(wildcards):
    """The region's inventory, once the acquisition checkpoint has written it."""
    path = checkpoints.acquire_raw.get(region=wildcards.region).output.inventory
    return read_inventory(path)


def inventory_of(region):
    """The inventory path of a region, once the acquisition checkpoint has written it."""
    return checkpoints.acquire_raw.get(region=region).output.inventory


def acquisitions(region):
    return list(read_inventory(inventory_of(region))["acquisitions"])


def s2_scene_folder(wildcards):
    inv = region_inventory(wildcards)
    return inv["sentinel2"][wildcards.scene]["folder"]


def ecostress_files(wildcards):
    """The LST layer files of the acquisition's granules (the other layers sit beside them)."""
    inv = region_inventory(wildcards)
    granules = inv["acquisitions"][wildcards.acquisition]["granules"]
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
    path = checkpoints.acquire_raw.get(region=region).output.inventory
    return list(modis_days(read_inventory(path)))


def modis_granules(wildcards):
    """The MOD11A1 and MOD09GQ granules of the {day} wildcard."""
    return modis_days(region_inventory(wildcards))[wildcards.day]


def region_sr_scenes(wildcards):
    return expand(SR_SCENE, region=wildcards.region, day=region_modis_days(wildcards.region))


def region_sr_truth(wildcards):
    """The demo's fine truth of every MODIS day (only the demo source has one)."""
    return expand(SR_TRUTH, region=wildcards.region, day=region_modis_days(wildcards.region))


def demo_truth(wildcards):
    """The demo region's truth folder (rule demo_region), where the region is a demo."""
    if config["regions"][wildcards.region]["source"] != "demo":
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
    region = config["regions"][wildcards.region]
    if region["source"] != "demo":
        return []
    days = fusion_targets.fusion_days(region)
    return expand(FUSION_TRUTH, region=wildcards.region, day=days)


def fusion_period(wildcards):
    region = config["regions"][wildcards.region]
    return [region["start"], region["end"]]


def sr_models(wildcards):
    return expand(SR_MODEL, region=wildcards.region, variant=list(config["superres"]["variants"]))


def downscale_region(wildcards):
    """The validated downscale.regions block of the {region} wildcard."""
    return config["downscale"]["regions"][wildcards.region]


def downscale_files(region):
    """{"lst": yearly LST files, "dem": DEM files} of a downscaling region."""
    block = config["downscale"]["regions"][region]
    if block["source"] == "demo":
        return {
            "lst": [DS_DEMO_LST.format(region=region)],
            "dem": [DS_DEMO_DEM.format(region=region)],
        }
    key = f"downscale.regions.{region}"
    return {
        "lst": downscale_targets.resolve_files(block["lst_files"], f"{key}.lst_files"),
        "dem": downscale_targets.resolve_files(block["dem_files"], f"{key}.dem_files"),
    }


def downscale_sample_params(region):
    """What a region's samples depend on; their file is named by its hash (a cache per setting)."""
    params = {k: config["downscale"][k] for k in downscale_targets.SAMPLE_KEYS}
    return {**params, "files": downscale_files(region)}


def downscale_samples(wildcards):
    key = downscale_targets.samples_key(downscale_sample_params(wildcards.region))
    return {
        "samples": DS_SAMPLES.format(region=wildcards.region, key=key),
        "info": DS_SAMPLES_INFO.format(region=wildcards.region, key=key),
    }


def downscale_days(region):
    """The days (YYYYMMDD) of a region's samples, once the samples checkpoint has run."""
    key = downscale_targets.samples_key(downscale_sample_params(region))
    info = checkpoints.downscale_samples.get(region=region, key=key).output.info
    return downscale_targets.days_of(info)


def downscale_models(wildcards):
    kinds = config["downscale"]["split"]["kinds"]
    return {kind: DS_MODEL.format(region=wildcards.region, split=kind) for kind in kinds}


def all_targets(wildcards):
    """Every region's cube table and figure, one quicklook and one gap-filled product per
    acquisition, the gap-fill evaluation, and, where MODIS is available, one sharpened product
    per variant and day (plus the super-resolution evaluation where a fine truth exists), one
    fused product per day and the fusion evaluation where S2 scenes and a coarse series exist; every
    downscaling region's evaluation, training curves and one map per sampled day."""
    targets = []
    for region in config["regions"]:
        dates = acquisitions(region)
        targets += expand([CUBE_TABLE, CUBE_FIGURE], region=region)
        targets += expand(QUICKLOOK, region=region, acquisition=dates)
        targets += expand([GAPFILL_METRICS, GAPFILL_FIGURE], region=region)
        targets += expand(GAPFILL_CURVE, region=region, method=config["gapfill"]["methods"])
        targets += expand(GAPFILL_PRODUCT, region=region, acquisition=dates)
        days = region_modis_days(region)
        if days:
            variants = list(config["superres"]["variants"])
            targets += expand(SR_CURVE, region=region, variant=variants)
            targets += expand(SR_PRODUCT, region=region, variant=variants, day=days)
            if config["regions"][region]["source"] == "demo":
                targets += expand([SR_METRICS, SR_FIGURE], region=region)
        inv = read_inventory(inventory_of(region))
        if inv["sentinel2"] and fusion_targets.coarse_files(inv, config["fusion"]["coarse"]):
            fusion_days = fusion_targets.fusion_days(config["regions"][region])
            targets += expand([FUSION_METRICS, FUSION_FIGURE], region=region)
            targets += expand(FUSION_PRODUCT, region=region, day=fusion_days)
    for region in config["downscale"]["regions"]:
        kinds = config["downscale"]["split"]["kinds"]
        targets += expand([DS_METRICS, DS_FIGURE, DS_RUNS], region=region)
        targets += expand(DS_CURVE, region=region, split=kinds)
        targets += expand(DS_PRODUCT, region=region, day=downscale_days(region))
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
    return config["regions"][wildcards.region]


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
    region = config["regions"][wildcards.region]
    if region["source"] == "demo":
        return RAW_DIR.format(region=wildcards.region)
    return download_manifests(wildcards)


def download_day(source):
    """Manifest pattern of one source's download job per {region} and {day}."""
    return DOWNLOAD_DAY.replace("{source}", source)


def download_settings(source):
    """Input function: the provider settings of `source` for the {region} wildcard."""

    def settings(wildcards):
        region = config["regions"][wildcards.region]
        return download_targets.provider_settings(source, region, config)

    return settings


def download_manifests(wildcards):
    """A 'download' region's manifests: one per source and day (SRTM: one); none otherwise."""
    region = config["regions"][wildcards.region]
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
