"""Rerun triggers: a rule's params carry only the config keys its step reads, so editing one key
reruns the step that reads it and what depends on that step's outputs, nothing upstream.

Each case edits one key of a copy of the tiny run's config, dry-runs the workflow, compares the
jobs per rule with what must rerun, and restores the config.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import copy_run, job_counts, run_snakemake


@pytest.fixture(scope="module")
def run(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny run (dry runs only; the config is restored after each case)."""
    return copy_run(tiny_run, tmp_path_factory.mktemp("rerun") / "run")


@contextmanager
def edited(workdir: Path, key: str, value: Any) -> Iterator[None]:
    """The workdir's config with the dotted `key` set to `value`, restored afterwards."""
    path = workdir / "config" / "config.yaml"
    original = path.read_text()
    cfg = yaml.safe_load(original)
    *parents, last = key.split(".")
    node = cfg
    for part in parents:
        node = node.setdefault(part, {})
    assert node.get(last) != value, f"{key} is already {value!r}"
    node[last] = value
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        yield
    finally:
        path.write_text(original)


def scheduled(workdir: Path) -> dict[str, int]:
    """Jobs per rule of a dry run of the default target (without the `all` rule)."""
    out = run_snakemake(workdir, "--dry-run")
    if "Nothing to be done" in out:
        return {}
    counts = job_counts(out)
    counts.pop("all", None)
    return counts


def test_the_copied_run_is_up_to_date(run):
    assert scheduled(run) == {}


def _acquisitions(run: Path) -> int:
    return len(json.loads((run / "resources/tiny/inventory.json").read_text())["acquisitions"])


def _modis_days(run: Path) -> int:
    return len(list((run / "results/tiny/superres/scenes").glob("*.nc")))


def _downscale_days(run: Path) -> int:
    (info,) = (run / "results/tiny_il/downscale/samples").glob("*.json")
    return len(json.loads(info.read_text())["days"])


# What a new metrics.json reruns downstream: the job's metric tables, the runs table (which
# holds test scores) and the viewer; new products also rerun the job's product quicklook.
NEW_METRICS = {"report_metrics": 1, "report_runs": 1, "report_viewer": 1}
NEW_PRODUCTS = {**NEW_METRICS, "report_product": 1}

# (key, new value, expected jobs per rule: a function of the run)
CASES = {
    "gapfill evaluation key: evaluation only": (
        "gapfill.evaluation.max_pairs",
        5,
        lambda run: {"gapfill_evaluate": 1, **NEW_METRICS},
    ),
    "gapfill training key: training, products, evaluation": (
        "gapfill.training.epochs",
        3,
        lambda run: {
            "gapfill_train": 1,  # the patch CNN only: the context model has its own settings
            "gapfill_select": 1,
            "gapfill_predict": _acquisitions(run),
            "gapfill_evaluate": 1,
            **NEW_PRODUCTS,
        },
    ),
    "gapfill context key: its training, selection, products, evaluation": (
        "gapfill.context.training.epochs",
        3,
        lambda run: {
            "gapfill_train": 1,
            "gapfill_select": 1,
            "gapfill_predict": _acquisitions(run),
            "gapfill_evaluate": 1,
            **NEW_PRODUCTS,
        },
    ),
    "gapfill product method: selection, products, evaluation": (
        "gapfill.method",
        "patch_cnn",
        lambda run: {
            "gapfill_select": 1,
            "gapfill_predict": _acquisitions(run),
            "gapfill_evaluate": 1,
            **NEW_PRODUCTS,
        },
    ),
    "superres baseline key: evaluation only": (
        "superres.baselines.dms_estimators",
        3,
        lambda run: {"superres_evaluate": 1, **NEW_METRICS},
    ),
    "superres training key: training, products, evaluation": (
        "superres.training.epochs",
        2,
        lambda run: {
            "superres_train": 1,  # the tiny config's one variant
            "superres_predict": _modis_days(run),
            "superres_evaluate": 1,
            **NEW_PRODUCTS,
        },
    ),
    "downscale importance key: evaluation only": (
        "downscale.importance.n_repeats",
        2,
        lambda run: {"downscale_evaluate": 1, **NEW_METRICS},
    ),
    "downscale training key: training, maps, evaluation, runs table": (
        "downscale.training.epochs",
        3,
        lambda run: {
            "downscale_train": 2,  # one per split kind
            "downscale_predict": _downscale_days(run),
            "downscale_evaluate": 1,
            "downscale_runs": 1,  # the run rows changed
            **NEW_PRODUCTS,
        },
    ),
    "download settings of a demo region: nothing": (
        "regions.tiny.download.sources",
        ["ecostress"],
        lambda run: {},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_key_reruns_only_what_reads_it(run, case):
    key, value, expected = CASES[case]
    with edited(run, key, value):
        assert scheduled(run) == expected(run)


def test_a_demo_key_resynthesises_only_that_demo_world(run):
    """A main demo region's key reruns rule demo_region, the acquisition and what reads the
    cubes; the downscaling region's Israel-format world (rule demo_israel) is left alone."""
    with edited(run, "regions.tiny.demo.seed", 8):
        jobs = scheduled(run)
    assert jobs["demo_region"] == 1
    assert jobs["acquire_raw"] == 1
    assert not {"demo_israel", "downscale_dem", "downscale_train"} & set(jobs)


def test_an_israel_demo_key_resynthesises_only_the_downscaling_world(run):
    with edited(run, "downscale.regions.tiny_il.demo.seed", 8):
        jobs = scheduled(run)
    assert jobs["demo_israel"] == 1
    assert jobs["downscale_dem"] == 1
    assert not {"demo_region", "acquire_raw", "prepare_cube"} & set(jobs)
