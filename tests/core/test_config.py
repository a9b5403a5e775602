"""Config validation: defaults filled, and every error names the key at fault."""

import copy
from pathlib import Path

import pytest
import yaml

from lstfill.config import load_config, validate_config
from lstfill.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_default_config_is_valid_and_defaults_are_filled():
    cfg = load_config(ROOT / "config" / "config.yaml")
    assert cfg["prepare"]["inca"]["cumulative_hours"] == 6
    minimal = {
        "regions": {
            "r": {
                "source": "local",
                "start": "2023-06-01",
                "end": "2023-06-02",
                "grid": {"mgrs_tile": "33UXP"},
            }
        }
    }
    cfg = validate_config(minimal)
    assert cfg["regions"]["r"]["grid"]["resolution"] == 70
    assert cfg["prepare"]["sentinel2"]["window_days"] == 20
    assert cfg["prepare"]["ecostress"]["max_mandatory_qa"] == 1


def test_example_configs_are_valid():
    for path in sorted((ROOT / "config" / "examples").glob("*.yaml")):
        load_config(path)


def _mutated(fn):
    cfg = copy.deepcopy(RAW)
    fn(cfg)
    return cfg


@pytest.mark.parametrize(
    ("mutate", "key", "words"),
    [
        (lambda c: c.update(colour="red"), "colour", "unknown key"),
        (
            lambda c: c["regions"]["demo"]["grid"].update(pixel=3),
            "regions.demo.grid.pixel",
            "unknown",
        ),
        (lambda c: c["regions"]["demo"].update(source="ftp"), "regions.demo.source", "not one of"),
        (lambda c: c["regions"]["demo"].pop("grid"), "regions.demo.grid", "missing"),
        (
            lambda c: c.update(prepare={"sentinel2": {"window_days": 0}}),
            "prepare.sentinel2.window_days",
            "",
        ),
        (
            lambda c: c.update(prepare={"inca": {"parameters": ["T2M", "RR"]}}),
            "prepare.inca.parameters.1",
            "",
        ),
        (
            lambda c: c["regions"]["demo"].update(end="2023-05-01"),
            "regions.demo.end",
            "before start",
        ),
        (lambda c: c["regions"]["demo"].update(start="2023-13-01"), "regions.demo.start", "date"),
        (
            lambda c: c["regions"]["demo"]["grid"].update(mgrs_tile="32TPT"),
            "regions.demo.grid",
            "either",
        ),
        (
            lambda c: c["regions"]["demo"]["demo"].update(n_overpasses="many"),
            "regions.demo.demo.n_overpasses",
            "",
        ),
        (
            lambda c: c["downscale"]["regions"].update(demo={"source": "demo"}),
            "downscale.regions.demo",
            "already used",
        ),
        (
            lambda c: c["downscale"]["regions"].update(il={"source": "local"}),
            "downscale.regions.il.lst_files",
            "missing",
        ),
        (
            lambda c: c["downscale"].update(scaling={"long": "log"}),
            "downscale.scaling.long",
            "",
        ),
        (
            lambda c: c["downscale"].update(split={"kinds": ["day"]}),
            "downscale.predict_split",
            "not in downscale.split.kinds",
        ),
        (
            lambda c: c["downscale"].update(split={"ratios": [1, 0, 0]}),
            "downscale.split.ratios",
            "must be > 0",
        ),
        (lambda c: c.update(regions={}, downscale={}), "regions", "no region"),
        (
            lambda c: c.update(gapfill={"methods": ["patch_cnn"], "method": "context"}),
            "gapfill.method",
            "not in gapfill.methods",
        ),
        (lambda c: c.update(gapfill={"methods": ["kriging"]}), "gapfill.methods.0", ""),
    ],
)
def test_errors_name_the_key(mutate, key, words):
    with pytest.raises(ConfigError) as info:
        validate_config(_mutated(mutate))
    assert info.value.key == key
    assert words in str(info.value)
    assert f"'{key}'" in str(info.value)


def test_every_schema_property_has_a_description():
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())

    def walk(node, path):
        for name, sub in node.get("properties", {}).items():
            assert "description" in sub, f"{path}.{name} has no description"
            walk(sub, f"{path}.{name}")

    walk(schema, "")
    walk(schema["$defs"]["region"], "regions.*")
    walk(schema["$defs"]["downscale_region"], "downscale.regions.*")


def test_a_partly_given_training_section_keeps_the_jobs_own_defaults():
    cfg = validate_config(
        {"downscale": {"regions": {"x": {"source": "demo"}}, "training": {"epochs": 3}}}
    )
    training = cfg["downscale"]["training"]
    assert training["epochs"] == 3
    # the downscaling job's own defaults (the seed's schedule), not the shared loop's
    assert training["lr_schedule"] == "step"
    assert training["learning_rate"] == 0.001
    assert training["batch_size"] == 128
    assert cfg["regions"] == {}


def test_check_config_lists_both_kinds_of_region(capsys):
    from lstfill.cli import main

    assert (
        main(["--config", str(ROOT / "config" / "examples" / "israel.yaml"), "check-config"]) == 0
    )
    out = capsys.readouterr().out
    assert "israel: downscaling, source=local" in out and "LST_2020_NetCDF.nc" in out
    assert out.rstrip().endswith("config OK")
