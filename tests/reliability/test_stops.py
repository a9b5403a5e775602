"""SIGTERM (SLURM's time limit, scancel) and SIGINT stop a step cleanly: its temporary files go,
the process ends by the signal, and a rerun completes."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SLOW_WRITE = """
import sys, time
from pathlib import Path
from lstfill.io import atomic_output
from lstfill.logs import setup_logging
setup_logging(sys.argv[2])
with atomic_output(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a file")
    print("writing", flush=True)
    time.sleep(float(sys.argv[3]))
    tmp.write_bytes(b"the whole file")
"""

DEMO_REGION = """
import sys
from lstfill.config import load_config
from lstfill.demo.region import write_region
from lstfill.logs import setup_logging
setup_logging(sys.argv[2])
region = load_config(sys.argv[3])["regions"]["tiny"]
write_region(region, sys.argv[1] + "/raw", sys.argv[1] + "/truth")
"""


def _start(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _hidden(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.name != ".gitignore"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_removes_the_temporary_file_and_ends_by_the_signal(tmp_path, sig):
    out, log = tmp_path / "out" / "product.bin", tmp_path / "step.log"
    proc = _start(SLOW_WRITE, out, log, 60)
    assert proc.stdout.readline().strip() == "writing"
    assert len(_hidden(out.parent)) == 1  # the temporary file is there while it writes
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode == -sig  # killed by the signal, as the caller expects
    assert not out.exists() and _hidden(out.parent) == []
    assert f"stopped by {signal.Signals(sig).name}" in log.read_text()
    rerun = _start(SLOW_WRITE, out, log, 0)
    rerun.communicate(timeout=60)
    assert rerun.returncode == 0 and out.read_bytes() == b"the whole file"
    assert _hidden(out.parent) == []


def test_sigterm_during_a_real_step_leaves_no_scratch_and_a_rerun_completes(tmp_path):
    """Rule demo_region's step, stopped while it synthesises the tiny region's raw files."""
    out, log, cfg = tmp_path / "region", tmp_path / "demo.log", ROOT / "config/test/tiny.yaml"
    out.mkdir()
    proc = _start(DEMO_REGION, out, log, cfg)
    deadline = time.monotonic() + 60
    while not _hidden(out) and time.monotonic() < deadline:  # its scratch folder appears
        time.sleep(0.05)
    assert _hidden(out), "the step never started writing"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGTERM
    assert _hidden(out) == [] and not (out / "raw").exists()
    rerun = _start(DEMO_REGION, out, log, cfg)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert (out / "raw" / "ecostress").is_dir() and _hidden(out) == []
