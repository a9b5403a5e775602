"""The per-rule conda envs (envs/*.yaml) deploy and pin the tested stack.

No conda channel is reachable in CI, so no env is built here. These tests check what breaks an
env without building one: the post-deploy script, run through Snakemake's own deployment code
from where Snakemake copies it, and the versions, which must equal envs/pins.txt and the test
environment that `make test` installs from it.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from snakemake.common import copy_permission_safe
from snakemake.deployment.conda import Conda, Env

REPO = Path(__file__).resolve().parents[2]
ENVS = REPO / "envs"
ENV_FILES = sorted(ENVS.glob("*.yaml"))
ENV_NAMES = [path.stem for path in ENV_FILES]
PINS_FILE = ENVS / "pins.txt"
WORKFLOW_DIR_VAR = "LSTFILL_WORKFLOW_DIR"
# conda-forge names whose pip distribution is named differently
CONDA_TO_PIP = {
    "pytorch": "torch",
    "matplotlib-base": "matplotlib",
    "netcdf4": "netCDF4",
    "pyyaml": "PyYAML",
}
# conda-forge packages the test stack does not hold, with the reason
NOT_IN_TEST_STACK = {
    "gdal": "the venv's GDAL bindings are the system's libgdal (gdal-config); the acquire env's "
    "conda gdal is a separate build, pinned in envs/acquire.yaml alone",
    "mlflow-skinny": "optional run tracking in the downscale env, not installed in the test stack",
}
TORCH_ENVS = {"gapfill", "superres", "downscale"}
# name=version or name=version=build, the conda env file match-spec form the yamls use
CONDA_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)=(?P<version>[^=\s]+)(?:=(?P<build>\S+))?$")
PIP_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)==(?P<version>\S+)$")


def canonical(name: str) -> str:
    """A distribution name in PEP 503 form, so PyYAML and pyyaml compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins() -> dict[str, str]:
    """envs/pins.txt as {canonical name: version}; fails on a line that is no `name==version`."""
    pins = {}
    for line in PINS_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIP_SPEC.match(line)
        assert match, f"envs/pins.txt: {line!r} is not name==version"
        pins[canonical(match["name"])] = match["version"]
    return pins


def installed_version(dist: str) -> str:
    """The running environment's version of `dist`, without a local label such as +cpu."""
    return importlib.metadata.version(dist).split("+", 1)[0]


def conda_pin_matches(conda_version: str, pip_version: str) -> bool:
    """Whether conda's `name=conda_version` pins `pip_version`.

    Equal, or the pip version is a post-release of it: PyPI post-releases (netCDF4's
    1.7.5.1.post1) are often wheel-only rebuilds conda-forge does not repackage, and conda's
    `=1.7.5.1` matches 1.7.5.1 and its .postN alike.
    """
    return conda_version == re.sub(r"\.post\d+$", "", pip_version) or conda_version == pip_version


def env_specs(path: Path) -> list[tuple[str, str, str | None, bool]]:
    """(name, version, build, from_pip_section) for every dependency of one env yaml."""
    specs = []
    for dep in yaml.safe_load(path.read_text())["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                match = PIP_SPEC.match(line)
                assert match, f"{path.name}: pip entry {line!r} is not name==version"
                specs.append((match["name"], match["version"], None, True))
            continue
        match = CONDA_SPEC.match(dep)
        assert match, f"{path.name}: {dep!r} is not pinned as name=version[=build]"
        specs.append((match["name"], match["version"], match["build"], False))
    return specs


def all_pins() -> list[tuple[str, str, str, bool]]:
    """(env, name, version, from_pip_section) over all envs, python excluded."""
    return [
        (path.stem, name, version, pip)
        for path in ENV_FILES
        for name, version, _, pip in env_specs(path)
        if name != "python"
    ]


def conda_directives() -> list[tuple[Path, str]]:
    """(rule file, env path as written) for every `conda:` directive in the workflow."""
    found = []
    for smk in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        text = smk.read_text()
        literals = re.findall(r"^\s*conda:\s*\n?\s*[\"']([^\"']+)[\"']", text, re.MULTILINE)
        directives = re.findall(r"^\s*conda:", text, re.MULTILINE)
        assert len(literals) == len(directives), f"{smk.name}: a conda: directive is no literal"
        found += [(smk, literal) for literal in literals]
    return found


# --- the post-deploy script, run the way Snakemake runs it ---------------------------------------


def fake_conda(workdir: Path) -> Path:
    """A conda installation whose bin/activate does what activation needs here: the env's bin
    first on PATH, CONDA_PREFIX set."""
    bin_dir = workdir / "miniforge" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "activate").write_text(
        'CONDA_PREFIX="$1"; PATH="$1/bin:$PATH"; export CONDA_PREFIX PATH\n'
    )
    return bin_dir


def fake_env(workdir: Path, log: Path) -> Path:
    """An env prefix at .snakemake/conda/<hash> whose `python` only records its arguments."""
    prefix = workdir / ".snakemake" / "conda" / "0123abcd"
    (prefix / "bin").mkdir(parents=True)
    stub = prefix / "bin" / "python"
    stub.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{log}'\n")
    stub.chmod(0o755)
    return prefix


def deploy_like_snakemake(script: Path, workdir: Path, log: Path) -> None:
    """Copy `script` to <env>.post-deploy.sh and run it with Snakemake's Env.create steps.

    Snakemake (deployment/conda.py) copies the post-deploy file next to the env prefix, reads
    the interpreter from its shebang and runs `source <conda>/bin/activate <env>; <interpreter>
    <copy>` through its shell: bash, in Snakemake's working directory, with Snakemake's own
    environment. Its real code runs here, on a fake conda and env.
    """
    conda_bin = str(fake_conda(workdir))
    conda = SimpleNamespace(bin_path=lambda: conda_bin)
    conda.shellcmd = functools.partial(Conda.shellcmd, conda)
    env = SimpleNamespace(conda=conda, address=str(fake_env(workdir, log)))
    target = env.address + ".post-deploy.sh"
    copy_permission_safe(str(script), target)
    env_file = script.parent / script.name.replace(".post-deploy.sh", ".yaml")
    Env.execute_deployment_script(env, str(env_file), target)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Snakemake's working directory: the cwd its post-deploy subprocess inherits."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_one_post_deploy_script_for_all_envs() -> None:
    """Every env has its <env>.post-deploy.sh twin, all identical (one script, six copies)."""
    scripts = {name: ENVS / f"{name}.post-deploy.sh" for name in ENV_NAMES}
    missing = [str(path) for path in scripts.values() if not path.is_file()]
    assert not missing, f"post-deploy twin missing: {missing}"
    contents = {path.read_bytes() for path in scripts.values()}
    assert len(contents) == 1, "the envs/*.post-deploy.sh copies differ"
    assert contents.pop().startswith(b"#!/usr/bin/env bash\n")


@pytest.mark.parametrize("name", ENV_NAMES)
def test_post_deploy_installs_the_workflow_dir(
    name: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from Snakemake's copy, the script installs lstfill from LSTFILL_WORKFLOW_DIR."""
    monkeypatch.setenv(WORKFLOW_DIR_VAR, str(REPO))  # what the Snakefile does at parse time
    log = workdir / "python-args.txt"
    deploy_like_snakemake(ENVS / f"{name}.post-deploy.sh", workdir, log)
    args = log.read_text().splitlines()
    assert args[:-1] == ["-m", "pip", "install", "--no-deps", "--no-build-isolation", "-e"]
    assert Path(args[-1]).resolve() == REPO


@pytest.mark.parametrize("case", ["unset", "empty dir", "other project"])
def test_post_deploy_refuses_a_missing_workflow_dir(
    case: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without LSTFILL_WORKFLOW_DIR naming lstfill's repository, the script fails, saying so,
    and installs nothing (Snakemake then deletes the env and shows the message)."""
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    if case == "unset":
        monkeypatch.delenv(WORKFLOW_DIR_VAR, raising=False)
    else:
        monkeypatch.setenv(WORKFLOW_DIR_VAR, str(elsewhere))
    if case == "other project":
        (elsewhere / "pyproject.toml").write_text('[project]\nname = "lstfill-fork"\n')
    log = workdir / "python-args.txt"
    with pytest.raises(subprocess.CalledProcessError) as failed:
        deploy_like_snakemake(ENVS / "gapfill.post-deploy.sh", workdir, log)
    assert WORKFLOW_DIR_VAR in failed.value.output
    assert not log.exists()


def test_editable_install_builds_without_isolation(tmp_path: Path) -> None:
    """The post-deploy's pip command works with only the pinned setuptools (no build isolation)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps",
         "--no-build-isolation", "-e", str(REPO)],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Would install lstfill" in done.stdout


# --- the pins ------------------------------------------------------------------------------------


def test_pins_txt_is_the_test_stack() -> None:
    """Every envs/pins.txt version is the one installed in the running test environment."""
    wrong = {
        name: (version, installed_version(name))
        for name, version in read_pins().items()
        if installed_version(name) != version
    }
    assert not wrong, f"envs/pins.txt vs installed: {wrong}"


@pytest.mark.parametrize(("env", "name", "version", "pip"), all_pins())
def test_env_pin_is_pins_txt_and_installed(env: str, name: str, version: str, pip: bool) -> None:
    """Each env pins a package at the envs/pins.txt version, which is the installed one."""
    if name in NOT_IN_TEST_STACK:
        pytest.skip(NOT_IN_TEST_STACK[name])
    dist = canonical(name if pip else CONDA_TO_PIP.get(name, name))
    pins = read_pins()
    assert dist in pins, f"{env}.yaml pins {name}, envs/pins.txt does not"
    matches = version == pins[dist] if pip else conda_pin_matches(version, pins[dist])
    assert matches, f"{env}.yaml: {name} {version}, envs/pins.txt: {pins[dist]}"
    assert conda_pin_matches(version, installed_version(dist)), f"{dist} installed differs"


@pytest.mark.parametrize("path", ENV_FILES, ids=ENV_NAMES)
def test_env_has_setuptools_and_the_test_python(path: Path) -> None:
    """setuptools (the editable install builds without isolation) and the test env's Python."""
    specs = {name: version for name, version, _, pip in env_specs(path) if not pip}
    assert "setuptools" in specs, f"{path.name} lacks setuptools"
    assert specs.get("python") == f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.mark.parametrize("name", sorted(TORCH_ENVS))
def test_torch_envs_ask_for_a_cuda_build(name: str) -> None:
    """The PyTorch envs require conda-forge's cuda* build and say how to get one without a GPU."""
    path = ENVS / f"{name}.yaml"
    builds = {spec[0]: spec[2] for spec in env_specs(path)}
    assert builds["pytorch"] == "cuda*"
    assert "CONDA_OVERRIDE_CUDA=" in path.read_text()


def test_rule_envs_exist_with_post_deploy() -> None:
    """Every env a `conda:` directive names exists, with its post-deploy twin beside it."""
    directives = conda_directives()
    assert directives, "no conda: directive found in the workflow"
    for smk, written in directives:
        env = (smk.parent / written).resolve()
        assert env.is_file(), f"{smk.name}: conda env {written} does not exist"
        assert env.with_suffix(".post-deploy.sh").is_file(), f"{written} has no post-deploy twin"
