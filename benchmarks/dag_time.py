"""Benchmark: how long Snakemake takes to parse the workflow and build the DAG (a dry run), the
cost a user pays on a login node before anything is submitted, and which heavy modules that
imports (none should be: the DAG-time helpers use the standard library only).

    python benchmarks/dag_time.py            # the demo config and config/examples/vienna.yaml
    python benchmarks/dag_time.py --repeat 5

Each case runs in a fresh process and a fresh working directory; the table gives the median
wall time over the repeats. Measured on the 2-core development machine (median of 3):

| config | before (15d0d11) | after |
|---|---|---|
| demo | 3.87 s, imports torch, matplotlib, scipy, xarray, rasterio, netCDF4, pyhdf | 1.24 s, none |
| vienna (310 jobs) | 4.11 s, the same | 1.63 s, none |
| innsbruck_bbox | 3.62 s, the same | 1.19 s, none |
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "matplotlib", "scipy", "xarray", "rasterio", "netCDF4", "pyhdf", "sklearn")
CASES = {
    "demo (config/config.yaml)": None,
    "vienna (download region)": ROOT / "config/examples/vienna.yaml",
    "innsbruck_bbox": ROOT / "config/examples/innsbruck_bbox.yaml",
}


def dry_run(configfile: Path | None) -> tuple[float, list[str], int]:
    """(seconds, heavy modules imported, jobs listed) of one dry run in a fresh folder."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "config", work / "config")
        probe = (
            "import runpy, sys; sys.argv = ['snakemake'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('snakemake', run_name='__main__')\n"
            "finally:\n"
            f"    print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules),"
            " file=sys.stderr)\n"
        )
        cmd = [sys.executable, "-c", probe, "-s", str(ROOT / "Snakefile"), "-d", str(work)]
        cmd += ["-n", "--workflow-profile", "none", "--cores", "1"]
        if configfile is not None:
            cmd += ["--configfile", str(configfile)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
    heavy = proc.stderr.rpartition("HEAVY:")[2].strip()
    total = [line for line in proc.stdout.splitlines() if line.startswith("total")]
    return seconds, [m for m in heavy.split(",") if m], int(total[-1].split()[1]) if total else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"| config | dry run (s, median of {args.repeat}) | jobs | heavy modules imported |")
    print("|---|---|---|---|")
    for name, configfile in CASES.items():
        runs = [dry_run(configfile) for _ in range(args.repeat)]
        seconds = statistics.median(r[0] for r in runs)
        heavy = ", ".join(runs[-1][1]) or "none"
        print(f"| {name} | {seconds:.2f} | {runs[-1][2]} | {heavy} |")


if __name__ == "__main__":
    main()
