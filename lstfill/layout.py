"""Every path of the workflow, as Snakemake patterns: the rules (through rules/common.smk) and the
`lstfill` command build paths from these names only.

Standard library only, so that a dry run or --lint needs no scientific stack.
"""

from collections.abc import Mapping, Sequence
from typing import TypeVar

from lstfill.downscale import targets as downscale_targets
from lstfill.downscale.targets import DEMO_LST_NAME
from lstfill.errors import LstfillError

T = TypeVar("T")

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
REPORT_METRICS = "results/{region}/report/metrics_{job}.html"
REPORT_METRICS_CSV = "results/{region}/report/metrics_{job}.csv"
REPORT_RUNS = "results/{region}/report/runs.csv"
REPORT_PRODUCT = "results/{region}/report/product_{job}.png"
VIEWER_DIR = "results/{region}/viewer"
VIEWER = "results/{region}/viewer/index.html"
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
DS_DEMO_LST = f"resources/{{region}}/raw/israel/{DEMO_LST_NAME}"
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


def pick(kind: str, name: str, have: Mapping[str, T] | Sequence[str], where: str) -> T | str:
    """`have[name]` (or `name` itself from a list), or one LstfillError line naming the unknown
    `kind` and value, where it was looked for, and what there is (a target path with a misspelt
    region or a date outside the period ends here instead of in a bare KeyError)."""
    if name in have:
        return have[name] if isinstance(have, Mapping) else name
    names = sorted(have)
    shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
    raise LstfillError(f"{kind} {name!r} is not in {where} (have: {shown or 'none'})")


def downscale_files(cfg: dict, region: str) -> dict[str, list[str]]:
    """{"lst": yearly LST files, "dem": DEM files} of downscaling region `region` (a demo
    region's: the files rule demo_israel writes)."""
    demo = (DS_DEMO_LST.format(region=region), DS_DEMO_DEM.format(region=region))
    return downscale_targets.region_files(cfg, region, *demo)


def downscale_samples_key(cfg: dict, region: str) -> str:
    """The {key} of a downscaling region's samples: the hash of what they depend on."""
    params = downscale_targets.sample_params(cfg, downscale_files(cfg, region))
    return downscale_targets.samples_key(params)
