"""The variables a region's cubes hold and the model features derived from them, by name.

Standard library only: the config check (`lstfill check-config`, the Snakefile at parse time)
reads these names to refuse an unknown feature before any job runs.
"""

from __future__ import annotations

from typing import Any

# name -> (units, long_name, CF standard_name or None)
VARIABLES: dict[str, tuple[str, str, str | None]] = {
    "lst": ("K", "land surface temperature (QC applied)", "surface_temperature"),
    "lst_err": ("K", "LST uncertainty", None),
    "lst_valid": ("1", "1 where the LST observation passed QC", None),
    "cloud": ("1", "1 where the ECOSTRESS cloud mask flags cloud", None),
    "view_zenith": ("degree", "ECOSTRESS view zenith angle", "sensor_zenith_angle"),
    "s2_age_days": ("day", "LST time minus the time of the S2 scene used (signed)", None),
    "s2_weight": ("1", "sum of the fine weights behind the fused S2 value (fusion product)", None),
    "t2m": ("K", "INCA 2 m air temperature at overpass hour", "air_temperature"),
    "gl": (
        "W m-2",
        "INCA global radiation at overpass hour",
        "surface_downwelling_shortwave_flux_in_air",
    ),
    "rh2m": ("%", "INCA 2 m relative humidity at overpass hour", "relative_humidity"),
    "uu": ("m s-1", "INCA 10 m eastward wind at overpass hour", "eastward_wind"),
    "vv": ("m s-1", "INCA 10 m northward wind at overpass hour", "northward_wind"),
    "elevation": ("m", "surface elevation (DEM)", "surface_altitude"),
    "slope": ("degree", "terrain slope", None),
    "aspect": ("degree", "terrain aspect, clockwise from north (downslope)", None),
    "tree_cover": ("%", "tree cover density", None),
    "imperviousness": ("%", "imperviousness density", None),
    "water": ("1", "1 where land cover is permanent or temporary water", None),
}
S2_BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
INDICES = ("ndvi", "ndwi", "ndmi", "ndbi")
for _b in S2_BANDS:
    VARIABLES[_b.lower()] = ("1", f"Sentinel-2 L2A surface reflectance {_b}", None)
for _i in INDICES:
    VARIABLES[_i] = ("1", f"{_i.upper()} from the nearest clear Sentinel-2 observation", None)

STATIC = ("elevation", "slope", "aspect", "tree_cover", "imperviousness", "water")
TIME_FEATURES = ("doy_sin", "doy_cos", "tod_sin", "tod_cos")
HISTORY_FEATURES = ("lst_pattern",)


def cube_variables(prepare: dict[str, Any]) -> set[str]:
    """The input variables a cube built with the `prepare` config section holds."""
    inca = prepare["inca"]
    return (
        {b.lower() for b in prepare["sentinel2"]["bands"]}
        | set(INDICES)
        | {"s2_age_days", "view_zenith"}
        | {p.lower() for p in inca["parameters"]}
        | {f"{p.lower()}_{inca['cumulative_hours']}h" for p in inca["cumulative"]}
        | set(STATIC)
    )


def feature_names(prepare: dict[str, Any]) -> set[str]:
    """Every name a gap-fill feature list may use with this `prepare` section."""
    return cube_variables(prepare) | set(TIME_FEATURES) | set(HISTORY_FEATURES)
