# lstfill: gap-free, high-resolution land surface temperature.
# Phases: demo (synthetic raw files) or download, acquire (inventory of the raw files) -> prepare (aligned NetCDF datacubes) -> gapfill
# (patch CNN, filled COGs, evaluation), superres (MODIS 1 km -> 250 m) -> report; downscale
# (Israel-format 1 km LST + DEM -> 9x9 topography MLP, maps and evaluation) and fusion (EFAST:
# Sentinel-2 + daily Sentinel-3 or MODIS -> daily fine NDVI) run beside them.
# Run `snakemake --cores all`; ask for one file by its path to rebuild only what it needs.

import sys

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, workflow.basedir)  # the lstfill package beside this Snakefile

from lstfill.deploy import prepare_deployment

# --sdm conda without conda stops here with what to do; the conda envs' post-deploy scripts
# learn where lstfill is (LSTFILL_WORKFLOW_DIR).
prepare_deployment(workflow.basedir, workflow.deployment_settings)


# The demo config is the default; a --configfile on the command line replaces it (rather than
# being merged into it, which would add the demo region to every real run).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "rules/captions/workflow.rst"


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/download.smk"
include: "rules/acquire.smk"
include: "rules/prepare.smk"
include: "rules/gapfill.smk"
include: "rules/superres.smk"
include: "rules/downscale.smk"
include: "rules/fusion.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets,
