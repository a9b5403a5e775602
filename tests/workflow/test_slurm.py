"""The SLURM path as a user follows it, on a real single-node cluster (slurm_cluster.py).

The tiny region runs through the README's command, `snakemake --profile profiles/slurm`, after
the three EDIT lines of the profile are changed as a user would (account, CPU partition, GPU
partition), plus a CI overlay that only fits the profile to this 2-core machine and polls
often. One training job is killed with scancel while it runs. Then:

- every job ran inside a SLURM allocation (the SLURM job id is in its rule log);
- the outputs are those of the same region run locally: the same files, identical arrays for
  the deterministic products, metrics within a tolerance where training is not bit-identical;
- every *_train, *_predict and *_evaluate sbatch call of a model job asked for a GPU on the GPU
  partition, every other one the CPU partition, all with the account, and --cpus-per-task
  equal to the job's threads;
- the killed job was retried and its outputs are complete.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import slurm_cluster
import xarray as xr
from conftest import ROOT, tiny_workdir

REASON = slurm_cluster.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no local SLURM: {REASON}")

# the model rules (gapfill_train, superres_predict, ...) and their groups; the fusion rules
# (fusion_predict, fusion_evaluate: NumPy, no model) stay on the CPU partition
GPU_JOB = re.compile(r"(^|_)(gapfill|superres|downscale)_(train|select|predict|evaluate)(_|$)")


def edited_profile(dest: Path, cluster: slurm_cluster.SlurmCluster) -> Path:
    """profiles/slurm with its EDIT lines set to the cluster's account and partitions."""
    shutil.copytree(ROOT / "profiles/slurm", dest)
    path = dest / "profile.yaml"
    text = path.read_text()
    for old, new in (
        ('slurm_account: "your_account"', f'slurm_account: "{cluster.account}"'),
        ('slurm_partition: "cpu"', f'slurm_partition: "{cluster.cpu_partition}"'),
        ('slurm_partition: "gpu"', f'slurm_partition: "{cluster.gpu_partition}"'),
    ):
        assert text.count(old) == 1, f"profiles/slurm/profile.yaml: one EDIT line {old!r}"
        text = text.replace(old, new)
    path.write_text(text)
    return dest


def ci_overlay(dest: Path) -> Path:
    """What only this machine needs: its 2 cores (which cap every job's threads, and so the GPU
    rules' 4 at 2), frequent status checks, SLURM logs kept and the executor's sbatch calls in
    the log."""
    dest.mkdir(parents=True)
    (dest / "profile.yaml").write_text(
        "cores: 2\n"
        "verbose: true\n"
        "slurm-init-seconds-before-status-checks: 2\n"
        "slurm-keep-successful-logs: true\n"
    )
    return dest


def running_job(prefix: str) -> str | None:
    """The id of a running SLURM job whose comment starts with `prefix`."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        job, _, comment = line.partition(" ")
        if comment.startswith(prefix):
            return job
    return None


def sacct_jobs() -> dict[str, tuple[str, str]]:
    """{job id: (comment name, state)} of every job the cluster ran."""
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "JobID,Comment,State", "-S", "now-2hours"],
        capture_output=True,
        text=True,
    ).stdout
    jobs = {}
    for line in out.splitlines():
        job, comment, state = line.split("|")[:3]
        jobs[job] = (comment, state.split()[0])
    return jobs


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = slurm_cluster.SlurmCluster(tmp_path_factory.mktemp("slurm"))
    c.start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """The tiny region run on the cluster, one gapfill_train job cancelled mid-run."""
    base = tmp_path_factory.mktemp("slurm_run")
    workdir = tiny_workdir(base / "run")
    profile = edited_profile(base / "profiles/slurm", cluster)
    overlay = ci_overlay(base / "profiles/ci")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir)]
    cmd += ["--profile", str(profile), "--profile", str(overlay)]
    log = base / "snakemake.log"
    cancelled = None
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 1500
            while proc.poll() is None and time.monotonic() < deadline:
                if cancelled is None and (job := running_job("rule_gapfill_train")):
                    time.sleep(1.0)  # well inside its start-up: it cannot finish this soon
                    subprocess.run(["scancel", job], check=True)
                    cancelled = job
                time.sleep(0.5)
            if proc.poll() is None:
                proc.kill()
        finally:
            proc.wait()
    text = log.read_text()
    assert proc.returncode == 0, text[-6000:]
    return {"workdir": workdir, "log": text, "cancelled": cancelled, "jobs": sacct_jobs()}


def products(workdir: Path) -> set[str]:
    """Every file the workflow made, but its training work folders and logs."""
    return {
        str(p.relative_to(workdir))
        for top in ("resources", "results")
        for p in (workdir / top).rglob("*")
        if p.is_file() and not re.search(r"_training/|/runs\.csv$", str(p))
    }


def test_model_jobs_use_the_cpus_they_were_given(slurm_run):
    """Every train/predict/evaluate log says it ran on 2 threads: its sbatch --cpus-per-task."""
    logs = [
        p
        for p in (slurm_run["workdir"] / "logs").rglob("*.log")
        if GPU_JOB.search(p.relative_to(slurm_run["workdir"] / "logs").parts[0])
    ]
    assert len(logs) > 10
    for path in logs:
        assert "lstfill.device: threads: 2\n" in path.read_text(), path


# Rules that run where Snakemake runs (`localrule: True`), not in an allocation: the viewer,
# which fetches its JavaScript libraries where the user cache lacks them.
LOCAL_RULES = {"report_viewer"}


def test_every_job_ran_in_a_slurm_allocation(slurm_run):
    ids = set(slurm_run["jobs"])
    folder = slurm_run["workdir"] / "logs"
    logs = [p for p in folder.rglob("*.log") if p.relative_to(folder).parts[0] not in LOCAL_RULES]
    assert len(logs) > 20
    for path in logs:
        found = re.findall(r"in SLURM job (\d+)", path.read_text())
        assert found, f"{path} ran outside SLURM"
        assert set(found) <= ids, f"{path}: {found} not in sacct"


def test_outputs_equal_the_local_run(slurm_run, tiny_run):
    workdir = slurm_run["workdir"]
    assert products(workdir) == products(tiny_run)
    for rel in sorted(products(tiny_run)):
        if re.search(r"cubes/.*\.nc$|superres/scenes/.*\.nc$|inventory\.json$", rel):
            same_file(tiny_run / rel, workdir / rel)
        elif re.search(r"(resources/.*|downscale/dem)\.tif$", rel):
            same_raster(tiny_run / rel, workdir / rel)
    for job in ("gapfill", "superres", "downscale"):
        for rel in (workdir / "results").rglob(f"{job}/metrics.json"):
            local = tiny_run / rel.relative_to(workdir)
            close_metrics(json.loads(local.read_text()), json.loads(rel.read_text()), str(rel))


def same_file(a: Path, b: Path) -> None:
    if a.suffix == ".nc":
        with xr.open_dataset(a) as da, xr.open_dataset(b) as db:
            xr.testing.assert_equal(da.load(), db.load())
            for ds_a, ds_b in ((da, db), *((da[v], db[v]) for v in da.data_vars)):
                attrs_a = {k: v for k, v in ds_a.attrs.items() if k != "history"}
                attrs_b = {k: v for k, v in ds_b.attrs.items() if k != "history"}
                assert str(attrs_a) == str(attrs_b), a
    else:
        ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
        assert ja["acquisitions"] == jb["acquisitions"], a.name


def same_raster(a: Path, b: Path) -> None:
    with rasterio.open(a) as ra, rasterio.open(b) as rb:
        np.testing.assert_array_equal(ra.read(), rb.read(), err_msg=str(a))


def close_metrics(local: dict, slurm: dict, name: str) -> None:
    """Baselines within 1e-3 K (the gradient-boosting one sums its histograms over threads, and
    the model rules have 2 threads on the cluster, 1 locally); models within 0.1 K or 10 % of the
    local run's RMSE (a different thread count changes the training's rounding)."""
    flat_l, flat_s = _rmse(local), _rmse(slurm)
    assert flat_l.keys() == flat_s.keys(), name
    for key, value in flat_l.items():
        tol = 1e-3 if "baseline_" in key else max(0.1, 0.1 * abs(value))
        assert abs(flat_s[key] - value) <= tol, f"{name} {key}: {flat_s[key]} vs {value}"


def _rmse(metrics: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(_rmse(value, f"{prefix}{key}/"))
        elif key == "rmse" and isinstance(value, float):
            out[prefix + key] = value
    return out


def test_sbatch_calls_ask_for_account_partition_gpu_and_threads(slurm_run, cluster):
    calls = re.findall(r"sbatch call: (sbatch .*)", slurm_run["log"])
    assert calls, "no sbatch call in the executor's verbose log"
    names = set()
    for call in calls:
        comment = re.search(r"--comment (\S+)", call)
        assert comment, call
        name = comment[1].strip("'").removeprefix("rule_").split("_wildcards_")[0]
        names.add(name)
        assert f"-A {cluster.account}" in call, call
        if GPU_JOB.search(name):
            assert "--gpus=1" in call and f"-p {cluster.gpu_partition}" in call, call
        else:
            assert "--gpus" not in call and f"-p {cluster.cpu_partition}" in call, call
        # --cpus-per-task is the job's threads: the model rules' GPU_THREADS capped at 2 cores
        cpus = "2" if GPU_JOB.search(name) else "[12]"
        assert re.search(rf"--cpus-per-task={cpus}\b", call), call
    assert {"gapfill_train", "superres_train", "downscale_train"} <= names
    for group in ("gapfill_predict", "superres_predict", "cubes"):  # job groups: group_rules
        assert any(name.startswith(f"{group}_") for name in names), (group, names)


def test_a_cancelled_job_is_retried_and_its_outputs_are_complete(slurm_run):
    cancelled = slurm_run["cancelled"]
    assert cancelled, "no gapfill_train job was seen running"
    jobs = slurm_run["jobs"]
    assert jobs[cancelled][1] == "CANCELLED"
    retried = [j for j, (c, s) in jobs.items() if c.startswith("rule_gapfill_train")]
    assert any(jobs[j][1] == "COMPLETED" and int(j) > int(cancelled) for j in retried)
    workdir = slurm_run["workdir"]
    assert (workdir / "results/tiny/gapfill/model/patch_cnn.pt").stat().st_size > 1000
    assert (workdir / "results/tiny/gapfill/metrics.json").exists()
