"""Load and validate the workflow config against `config/schema.yaml`, filling defaults.

The schema is the single description of every key; validation errors name the offending key as
a dotted path (``regions.demo.grid.bounds``) so a user knows exactly what to fix.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from lstfill.errors import ConfigError, InputError
from lstfill.variables import S2_BANDS, STATIC, feature_names

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"
# libyaml's loader where PyYAML was built with it: the schema is read by every job that builds a
# TrainConfig, and the pure-Python loader takes ~0.1 s for it.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    with open(path) as f:
        return yaml.load(f, Loader=_Loader)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        return node
    return schema


def fill_defaults(instance: Any, schema: dict[str, Any], root: dict[str, Any]) -> None:
    """Insert schema defaults for missing object properties, recursively, in place."""
    schema = _resolve(schema, root)
    if not isinstance(instance, dict):
        return
    for name, raw in schema.get("properties", {}).items():
        sub = _resolve(raw, root)
        # a default beside a $ref (a job's own training defaults) overrides the ref's
        source = raw if "default" in raw else sub
        if name not in instance and "default" in source:
            instance[name] = copy.deepcopy(source["default"])
        elif source is raw and isinstance(instance.get(name), dict) and "$ref" in raw:
            # a partly given section keeps the job's own defaults for the keys it leaves out
            for key, value in raw.get("default", {}).items():
                instance[name].setdefault(key, copy.deepcopy(value))
        if name in instance:
            fill_defaults(instance[name], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for name, value in instance.items():
            if name not in schema.get("properties", {}):
                fill_defaults(value, extra, root)


def _dotted(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _error_key(err: jsonschema.ValidationError) -> str:
    key = _dotted(err.absolute_path)
    if err.validator == "additionalProperties":
        unexpected = re.findall(r"'([^']+)' (?:was|were) unexpected", err.message)
        names = (
            re.findall(r"'([^']+)'", err.message.split("(")[-1]) if not unexpected else unexpected
        )
        if names:
            prefix = "" if key == "<top level>" else key + "."
            return prefix + names[0]
    if err.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", err.message)
        if missing:
            prefix = "" if key == "<top level>" else key + "."
            return prefix + missing[0]
    return key


def validate_config(
    config: dict[str, Any], schema: dict[str, Any] | None = None, *, plan: bool = False
) -> dict[str, Any]:
    """Return a validated copy of `config` with defaults filled; ConfigError names the bad key.

    With `plan`, also what a run of the workflow needs (:func:`check_plan`): the Snakefile and
    `lstfill check-config` ask for it; a unit test's fragment of a config need not hold it."""
    schema = schema if schema is not None else load_schema()
    cfg = copy.deepcopy(config)
    fill_defaults(cfg, schema, schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), str(e.path)))
    if errors:
        err = errors[0]
        if err.validator == "additionalProperties":
            problem = "unknown key (not in config/schema.yaml)"
        elif err.validator == "required":
            problem = "required key is missing"
        elif err.validator == "oneOf" and "mgrs_tile" in str(err.schema):
            problem = "give either 'mgrs_tile' or both 'crs' and 'bounds', not both"
        else:
            problem = err.message
        raise ConfigError(_error_key(err), problem)
    for name, region in cfg["regions"].items():
        start, end = (
            _date(region["start"], f"regions.{name}.start"),
            _date(region["end"], f"regions.{name}.end"),
        )
        if end < start:
            raise ConfigError(f"regions.{name}.end", f"end {end} is before start {start}")
    _check_downscale(cfg)
    _check_gapfill(cfg)
    if plan:
        check_plan(cfg)
    return cfg


def check_plan(cfg: dict[str, Any]) -> None:
    """What a run needs of a valid config, checked before any job runs: every feature is one
    the cubes will have, and each region's period can give the day splits and has data."""
    _check_features(cfg)
    _check_periods(cfg)


def _check_features(cfg: dict[str, Any]) -> None:
    """Every gap-fill feature is a variable the cubes will hold (with this `prepare` section) or
    a derived feature; a misspelt name would otherwise fail hours later, in training."""
    known = feature_names(cfg["prepare"])
    features = cfg["gapfill"]["features"]
    for branch, allowed in (("numeric", known), ("categorical", set(STATIC))):
        for name in features.get(branch, []):
            if name in allowed:
                continue
            hint = ""
            if name.upper() in S2_BANDS:
                hint = f"; add {name.upper()} to prepare.sentinel2.bands"
            raise ConfigError(
                f"gapfill.features.{branch}",
                f"unknown feature {name!r}{hint} (known: {', '.join(sorted(allowed))})",
            )


# First day with data of each downloadable source: a period wholly before it finds nothing.
MISSION_START = {
    "ecostress": dt.date(2018, 7, 9),
    "modis": dt.date(2000, 2, 24),
    "sentinel2": dt.date(2015, 6, 27),
    "sentinel3": dt.date(2016, 2, 16),
}


def _check_periods(cfg: dict[str, Any]) -> None:
    """Each region's period holds enough calendar days for the gap-fill (and, with MODIS, the
    super-resolution) day split, and a downloaded source has data in it."""
    for name, region in cfg["regions"].items():
        start, end = region_dates(region)
        days = (end - start).days + 1
        needs = {"gapfill.split": cfg["gapfill"]["split"]}
        sources = region.get("download", {}).get("sources", [])
        if region["source"] == "demo" or "modis" in sources:
            needs["superres.split"] = cfg["superres"]["split"]
        for key, split in needs.items():
            need = split["test_days"] + split["val_days"] + 1
            if days < need:
                raise ConfigError(
                    f"regions.{name}.end",
                    f"the period {start}..{end} has {days} days; {key} needs at least {need} "
                    f"({split['test_days']} test, {split['val_days']} validation, 1 training)",
                )
        if region["source"] != "download":
            continue
        for source in sources:
            first = MISSION_START.get(source)
            if first is not None and end < first:
                raise ConfigError(
                    f"regions.{name}.start",
                    f"the period {start}..{end} ends before {source} has data (from {first})",
                )
        if start > dt.datetime.now(dt.UTC).date():
            raise ConfigError(f"regions.{name}.start", f"{start} is in the future")


def _check_gapfill(cfg: dict[str, Any]) -> None:
    """The product's gap-fill method must be one of the methods trained."""
    gf = cfg["gapfill"]
    if gf["method"] != "auto" and gf["method"] not in gf["methods"]:
        raise ConfigError(
            "gapfill.method", f"{gf['method']!r} is not in gapfill.methods {gf['methods']}"
        )


def _check_downscale(cfg: dict[str, Any]) -> None:
    """Cross-key checks of the downscaling job that the schema cannot express."""
    ds = cfg["downscale"]
    if not cfg["regions"] and not ds["regions"]:
        raise ConfigError("regions", "no region (regions and downscale.regions are both empty)")
    for name in ds["regions"]:
        if name in cfg["regions"]:
            raise ConfigError(
                f"downscale.regions.{name}", "name already used in regions (they share results/)"
            )
    if ds["predict_split"] not in ds["split"]["kinds"]:
        raise ConfigError(
            "downscale.predict_split", f"{ds['predict_split']!r} is not in downscale.split.kinds"
        )
    if sum(ds["split"]["ratios"]) <= 0 or min(ds["split"]["ratios"][1:]) <= 0:
        raise ConfigError(
            "downscale.split.ratios", "validation and test shares must be > 0 (train, val, test)"
        )


def _date(value: Any, key: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigError(key, f"not a date (YYYY-MM-DD): {value!r}") from exc


def load_config(path: str | Path, *, plan: bool = False) -> dict[str, Any]:
    """Read a YAML config file and validate it; InputError naming the file when it is missing
    or not YAML (with the line of the first problem)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "config file does not exist")
    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(path, f"not valid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError("<top level>", f"{path} does not hold a mapping of keys")
    return validate_config(raw, plan=plan)


def region_dates(region: dict[str, Any]) -> tuple[dt.date, dt.date]:
    return dt.date.fromisoformat(str(region["start"])), dt.date.fromisoformat(str(region["end"]))
