"""Benchmark: `make demo` from a clean clone, the first thing a new user runs. Prints the wall
time of the venv and of the workflow, the jobs per rule with the sum of their wall and CPU
seconds (from each job's `benchmark:` file), and the headline metrics of the three jobs, so a
speed change can be checked not to have moved any number.

    python benchmarks/demo_time.py                     # clone HEAD, reuse this .venv
    python benchmarks/demo_time.py --rev 15d0d11       # the same for an older commit
    python benchmarks/demo_time.py --fresh-venv        # `make demo` as it is, venv included
    python benchmarks/demo_time.py --summarise DIR     # only summarise a finished run in DIR

Measured on the 2-core development machine, venv ready (`--rev 15d0d11` is main before the
cluster issue; HEAD after it: evaluation-only imports out of the prediction jobs, the MODIS
scene step without PyTorch, the small models' training and evaluation on half the cores;
super-resolution and downscaling now seed their initial weights, so their numbers repeat):

| | before (15d0d11) | after |
|---|---|---|
| workflow wall time | 15.4 min | 8.7 min |
| gapfill_predict, 36 jobs (wall s / CPU s) | 225 / 180 | 140 / 126 |
| superres_predict, 62 jobs | 313 / 236 | 164 / 131 |
| superres_scene, 31 jobs | 212 / 116 | 26 / 15 |
| downscale_train, 2 jobs | 145 / 203 | 96 / 59 |
| superres_train, 2 jobs | 92 / 101 | 114 / 86 |
| gap-fill model_cnn RMSE (K) | 2.194 | 2.194 |
| super-resolution model_sifnn1 / sifnn2 RMSE (K) | 2.060 / 2.157 | 2.070 / 2.155 |
| downscaling model_mlp RMSE, space / day (K) | 0.922 / 0.904 | 0.924 / 0.904 |

Baselines are unchanged to the last digit. A fresh venv adds 1.6 min.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_demo(rev: str, fresh_venv: bool, dest: Path) -> dict[str, float]:
    """Clone `rev` into `dest` and run the demo there; wall seconds of venv and workflow."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
    subprocess.run(["git", "-C", str(dest), "checkout", "-q", rev], check=True)
    times = {}
    start = time.perf_counter()
    if fresh_venv:
        subprocess.run(["make", "-C", str(dest), ".venv/.lstfill-installed"], check=True)
    else:
        (dest / ".venv").symlink_to(ROOT / ".venv")
    times["venv"] = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run(
        [str(dest / ".venv/bin/snakemake"), "--cores", "all"],
        cwd=dest,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    times["workflow"] = time.perf_counter() - start
    return times


def rule_table(run: Path) -> dict[str, dict[str, float]]:
    """{rule: {"jobs", "wall_s", "cpu_s"}} from the run's logs/benchmark/ files."""
    table: dict[str, dict[str, float]] = defaultdict(lambda: {"jobs": 0, "wall_s": 0, "cpu_s": 0})
    for tsv in (run / "logs/benchmark").rglob("*.tsv"):
        rule = tsv.relative_to(run / "logs/benchmark").parts[0]
        with open(tsv) as f:
            row = list(csv.DictReader(f, delimiter="\t"))[-1]
        table[rule]["jobs"] += 1
        table[rule]["wall_s"] += float(row["s"])
        table[rule]["cpu_s"] += float(row["cpu_time"])
    return dict(sorted(table.items()))


def headline_metrics(run: Path) -> dict[str, float]:
    """RMSE of every model and baseline of the three jobs' metrics.json."""
    out = {}
    for path in sorted((run / "results").glob("*/*/metrics.json")):
        job = f"{path.parent.parent.name}/{path.parent.name}"
        metrics = json.loads(path.read_text())
        blocks = metrics.get("splits", {"": metrics})
        for split, block in blocks.items():
            for method, values in block.get("methods", {}).items():
                values = values.get("overall", values)  # gap-fill nests its pooled scores
                if isinstance(values, dict) and "rmse" in values:
                    out[f"{job} {split} {method}".replace("  ", " ")] = values["rmse"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--fresh-venv", action="store_true")
    parser.add_argument("--summarise", type=Path, help="a finished demo run to summarise")
    args = parser.parse_args()
    if args.summarise:
        run, times = args.summarise, {}
    else:
        run = Path(tempfile.mkdtemp(prefix="lstfill-demo-")) / "lstfill"
        times = run_demo(args.rev, args.fresh_venv, run)
    rules = rule_table(run)
    print(f"# demo run in {run}")
    for key, seconds in times.items():
        print(f"{key}: {seconds / 60:.1f} min")
    print(f"jobs: {sum(int(r['jobs']) for r in rules.values())}")
    print("\n| rule | jobs | wall (s) | CPU (s) |\n|---|---|---|---|")
    for rule, r in rules.items():
        print(f"| {rule} | {int(r['jobs'])} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} |")
    print("\n| metric | RMSE (K) |\n|---|---|")
    for name, value in headline_metrics(run).items():
        print(f"| {name} | {value:.3f} |")


if __name__ == "__main__":
    main()
