"""`lstfill <job> <step>` covers every rule, and every user error is one line with exit code 2,
in the command line, in `check-config` and in the workflow's input functions."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, SNAKEMAKE, tiny_workdir

from lstfill.cli import build_parser, main
from lstfill.commands import STEPS, snakemake_command, step_targets
from lstfill.config import load_config

TINY = ROOT / "config/test/tiny.yaml"


def _rules() -> set[str]:
    text = "".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    return set(re.findall(r"^(?:rule|checkpoint) (\w+):", text, re.M))


def test_every_rule_is_a_step_of_the_command_line():
    """download_* are driven by `lstfill download` (a date range of several sources at once)."""
    steps = {spec.rule for steps in STEPS.values() for spec in steps.values()}
    assert steps == {r for r in _rules() if not r.startswith("download_")}
    assert len(steps) == 31


def test_every_step_takes_the_same_flags():
    parser = build_parser()
    for job, steps in STEPS.items():
        for step in steps:
            args = parser.parse_args([job, step, "--config", "c.yaml", "--region", "r"])
            assert (args.config, args.region, args.job, args.step) == (
                Path("c.yaml"),
                "r",
                job,
                step,
            )


def _user_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lstfill: error: ") and not any("Traceback" in e for e in err)
    return err[-1]


def _config(tmp_path: Path, **changes) -> str:
    cfg = yaml.safe_load(TINY.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = cfg
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_unknown_region_and_dates(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = _user_error(capsys, ["--config", str(TINY), "gapfill", "train", "--region", "nope"])
    assert line.endswith("region 'nope' is not in the config's regions (have: tiny)")
    line = _user_error(
        capsys, ["--config", str(TINY), "superres", "predict", "--date", "2023-13-01"]
    )
    assert "--date '2023-13-01': a day is YYYYMMDD or YYYY-MM-DD" in line
    line = _user_error(capsys, ["--config", str(TINY), "prepare", "cube", "--date", "20230701"])
    assert "an acquisition is YYYYMMDDTHHMMSS" in line
    line = _user_error(capsys, ["--config", str(TINY), "fusion", "predict", "--date", "20240101"])
    assert "outside region tiny's period 2023-07-01..2023-07-08" in line


def test_missing_inventory_names_the_file_and_the_step_to_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = _user_error(capsys, ["--config", str(TINY), "gapfill", "predict"])
    assert "resources/tiny/inventory.json: no inventory yet" in line
    assert "lstfill acquire raw" in line


def test_a_date_that_is_not_an_acquisition(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inv = tmp_path / "resources/tiny/inventory.json"
    inv.parent.mkdir(parents=True)
    inv.write_text('{"acquisitions": {"20230702T101500": {}}, "sentinel2": {}}')
    line = _user_error(
        capsys, ["--config", str(TINY), "gapfill", "predict", "--date", "20230703T101500"]
    )
    assert "acquisition '20230703T101500' is not in region tiny (have: 20230702T101500)" in line


def test_targets_and_the_snakemake_command_of_a_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inv = tmp_path / "resources/tiny/inventory.json"
    inv.parent.mkdir(parents=True)
    inv.write_text('{"acquisitions": {"20230702T101500": {}, "20230705T093000": {}}}')
    cfg = load_config(TINY)
    args = build_parser().parse_args(["gapfill", "predict"])
    assert step_targets(cfg, "gapfill", "predict", args) == [
        "results/tiny/gapfill/filled/20230702T101500.tif",
        "results/tiny/gapfill/filled/20230705T093000.tif",
    ]
    args = build_parser().parse_args(["gapfill", "train", "--method", "context", "--force"])
    targets = step_targets(cfg, "gapfill", "train", args)
    assert targets == ["results/tiny/gapfill/model/context.pt"]
    cmd = snakemake_command(args, "gapfill_train", targets)
    assert cmd[1:3] == ["-m", "snakemake"]
    assert "--dry-run" not in cmd and "--dry-run" in snakemake_command(args, "x", [], True)
    assert cmd[cmd.index("--forcerun") + 1] == "gapfill_train" and cmd[-1] == targets[0]
    args = build_parser().parse_args(["downscale", "train", "--split", "day"])
    assert step_targets(cfg, "downscale", "train", args) == [
        "results/tiny_il/downscale/model/mlp_day.pt"
    ]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"gapfill__features__numeric": ["b04", "ndvvi"]},
            "config key 'gapfill.features.numeric': unknown feature 'ndvvi'",
        ),
        (
            {"gapfill__features__numeric": ["b05"]},
            "unknown feature 'b05'; add B05 to prepare.sentinel2.bands",
        ),
        (
            {"regions__tiny__end": "2023-07-02"},
            "config key 'regions.tiny.end': the period 2023-07-01..2023-07-02 has 2 days; "
            "gapfill.split needs at least 3 (1 test, 1 validation, 1 training)",
        ),
        ({"regions__tiny__start": "2023-07-09"}, "end 2023-07-08 is before start 2023-07-09"),
        ({"gapfill__patch_sise": 5}, "config key 'gapfill.patch_sise': unknown key"),
    ],
)
def test_check_config_catches_it_before_any_job_runs(capsys, tmp_path, changes, expected):
    line = _user_error(capsys, ["check-config", "--config", _config(tmp_path, **changes)])
    assert expected in line


def test_a_period_before_the_mission_is_refused(capsys, tmp_path):
    cfg = yaml.safe_load((ROOT / "config/examples/vienna.yaml").read_text())
    region = next(iter(cfg["regions"].values()))
    region["start"], region["end"] = "2017-06-01", "2017-08-31"
    region["download"]["sources"] = ["ecostress"]
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(cfg))
    line = _user_error(capsys, ["check-config", "--config", str(path)])
    assert "ends before ecostress has data (from 2018-07-09)" in line


def test_broken_and_missing_config_files(capsys, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("regions:\n  tiny: [a\n  b: 1\n")
    line = _user_error(capsys, ["check-config", "--config", str(broken)])
    assert line == f"lstfill: error: {broken}: not valid YAML at line 3, column 4: " + (
        "expected ',' or ']', but got ':'"
    )
    line = _user_error(capsys, ["check-config", "--config", str(tmp_path / "none.yaml")])
    assert line.endswith("none.yaml: config file does not exist")


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lstfill.cli", "--debug", "check-config", "--config", "none.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    assert "none.yaml: config file does not exist" in proc.stderr


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("results/nope/gapfill/metrics.json", "region 'nope' is not in the config's regions"),
        (
            "results/nowhere/downscale/dem.tif",
            "downscaling region 'nowhere' is not in the config's downscale.regions",
        ),
    ],
)
def test_an_unknown_region_in_a_target_path_is_one_clear_line(tmp_path, target, expected):
    workdir = tiny_workdir(tmp_path)
    proc = subprocess.run(
        [*SNAKEMAKE, "-d", str(workdir), "-n", "--workflow-profile", "none", target],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert f"LstfillError: {expected}" in proc.stdout + proc.stderr
    assert "KeyError" not in proc.stdout + proc.stderr


def test_a_step_runs_its_rule_and_nothing_else(tmp_path, capsys, monkeypatch):
    """`lstfill demo region` runs rule demo_region; the next step without its inputs is refused
    in one line."""
    workdir = tiny_workdir(tmp_path / "project")
    monkeypatch.chdir(tmp_path)
    config = str(workdir / "config/config.yaml")
    assert main(["demo", "region", "--config", config, "--out", str(workdir), "--cores", "1"]) == 0
    assert (workdir / "resources/tiny/raw/ecostress").is_dir()
    assert not (workdir / "resources/tiny/inventory.json").exists()  # the next rule did not run
    assert (workdir / "logs/demo_region/tiny.log").is_file()
    capsys.readouterr()
    line = _user_error(capsys, ["gapfill", "dataset"])
    assert "no inventory yet" in line
    line = _user_error(capsys, ["downscale", "dem", "--dry-run"])
    assert "`downscale dem` needs other steps to run first: demo_israel (1 job)" in line
    assert not (tmp_path / "resources").exists()  # --out: nothing outside the project folder


def test_a_split_the_data_cannot_give_is_a_user_error():
    import numpy as np

    from lstfill.errors import LstfillError
    from lstfill.splits import split_dates

    times = np.array(["2023-07-01T10", "2023-07-02T10"], dtype="datetime64[ns]")
    with pytest.raises(LstfillError, match="lower gapfill.split.test_days or min_valid_test"):
        split_dates(times, np.array([0.9, 0.1]), n_test=2, n_val=1)
