"""The two profiles agree with the workflow: the file names current Snakemake reads, every rule
the cluster profile names exists, every model rule gets a GPU and the same threads, every job
group has its size in both profiles, and the workflow profile (loaded on top of the cluster
profile) overrides none of the cluster's settings."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = "\n".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
RULE_NAMES = set(re.findall(r"^(?:rule|checkpoint) (\w+):", RULES, re.M))
RULE_NAMES |= set(re.findall(r"^use rule \w+ as (\w+)", RULES, re.M))
GROUPS = set(re.findall(r'^    group:\n        "(\w+)"', RULES, re.M))


def profile(name: str) -> dict:
    return yaml.safe_load((ROOT / "profiles" / name / "profile.yaml").read_text())


def group_sizes(p: dict) -> dict[str, int]:
    return {k: int(v) for k, v in (item.split("=") for item in p["group-components"])}


def test_profiles_use_the_current_file_name():
    assert sorted(p.name for p in (ROOT / "profiles").rglob("*.yaml")) == [
        "profile.yaml",
        "profile.yaml",
    ]


def test_model_rules_get_a_gpu_and_the_same_threads():
    slurm = profile("slurm")
    model_rules = {
        r
        for r in RULE_NAMES
        if re.match(r"(gapfill|superres|downscale)_(train|select|predict|evaluate)$", r)
    }
    assert {
        "gapfill_train",
        "gapfill_select",
        "superres_predict",
        "downscale_evaluate",
    } <= model_rules
    assert set(slurm["set-resources"]) == model_rules
    assert set(slurm["set-threads"]) == model_rules
    for rule in model_rules:
        resources = slurm["set-resources"][rule]
        assert resources["gpu"] == 1 and resources["slurm_partition"] != "cpu"
        # a group of GPU jobs is as wide as `cores` allows: threads = cores keeps it at one GPU
        assert slurm["set-threads"][rule] == slurm["cores"]
    assert {"slurm_account", "slurm_partition"} <= set(slurm["default-resources"])
    assert "cpus_per_task" not in str(slurm) and "cpus_per_gpu" not in str(slurm)


def test_every_group_has_a_size_and_the_profiles_agree():
    assert GROUPS == {
        "s2_grids",
        "cubes",
        "superres_scenes",
        "superres_predict",
        "gapfill_predict",
        "downscale_predict",
        "fusion_predict",
    }
    default, slurm = group_sizes(profile("default")), group_sizes(profile("slurm"))
    assert set(default) == GROUPS and default == slurm


def test_workflow_profile_overrides_nothing_the_cluster_sets():
    """profiles/default is loaded on top of a --profile, key by key: it may only repeat what
    the cluster profile says (group-components, API limits), never replace it."""
    default, slurm = profile("default"), profile("slurm")
    for key in set(default) & set(slurm):
        assert default[key] == slurm[key], key
    assert not {"default-resources", "cores", "set-resources", "set-threads"} & set(default)
