"""Fixtures shared by the tests: credential isolation and recorded responses for the downloaders,
and the tiny demo region run once per session for the workflow tests."""

import importlib.util
import logging
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import responses

CREDENTIAL_VARS = (
    "EARTHDATA_TOKEN",
    "EARTHDATA_USERNAME",
    "EARTHDATA_PASSWORD",
    "SH_CLIENT_ID",
    "SH_CLIENT_SECRET",
    "CDSE_S3_ACCESS_KEY",
    "CDSE_S3_SECRET_KEY",
    "LSTFILL_SECRETS",
    "NETRC",
)


@pytest.fixture(autouse=True)
def _keep_signal_handlers():
    """Tests that call `lstfill.cli.main` or `setup_logging` install lstfill's stop handlers,
    excepthook and log handlers; pytest's own (Ctrl-C ends the session cleanly) come back after
    each test, and a log handler a test added is closed (a later test would otherwise log into
    its closed file, and Python print "--- Logging error ---" to stderr)."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    hook = sys.excepthook
    root = logging.getLogger()
    log_handlers, log_level = list(root.handlers), root.level
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    sys.excepthook = hook
    for handler in root.handlers:
        if handler not in log_handlers:
            handler.close()
    root.handlers[:] = log_handlers
    root.setLevel(log_level)


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credential of the machine running the tests can leak in: the credential variables are
    unset, HOME is the empty ``tmp_path/home`` (no ~/.netrc) and the working directory is
    `tmp_path` (no config/secrets.ini). Returns the working directory."""
    for name in CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def rsps():
    """`responses` for the catalogue and login calls; local test servers pass through."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://localhost")
        mock.add_passthru("http://127.0.0.1")
        yield mock


# --- the tiny demo region, run once per test session -------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / "config/test/tiny.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]


def load_benchmark(name: str) -> ModuleType:
    """A script of benchmarks/ imported as a module, so a test can call its functions."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_snakemake(workdir: Path, *args: str, timeout: int = 900) -> str:
    """Run the workflow locally in `workdir` (2 cores, no workflow profile); its stdout and
    stderr, after asserting that it succeeded."""
    cmd = [*SNAKEMAKE, "-d", str(workdir), "--cores", "2", "--workflow-profile", "none", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake run or dry run: jobs per rule."""
    table = output.split("Job stats:")[-1]
    return {
        m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"
    }


def tiny_workdir(path: Path) -> Path:
    """A fresh working directory whose config/config.yaml is the tiny region."""
    (path / "config").mkdir(parents=True)
    shutil.copy(TINY_CONFIG, path / "config" / "config.yaml")
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny region run once locally to completion. Read-only: tests that change files work
    on a copy (`copy_run`)."""
    workdir = tiny_workdir(tmp_path_factory.mktemp("tiny_run"))
    run_snakemake(workdir)
    return workdir


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of a finished run, Snakemake's metadata and file times included."""
    shutil.copytree(src, dst, symlinks=True)
    return dst
