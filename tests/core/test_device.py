"""The torch device of the training, prediction and evaluation jobs: each resolves its job's
`training.device` through `lstfill.device.job_device`, logs where it runs ("auto" without CUDA
says it fell back to the CPU), and a `cuda` setting on a machine without CUDA stops the job
before any work with an error naming the config key.

The prediction checks reuse the small trained fixtures of the jobs' own test files."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from lstfill.config import validate_config
from lstfill.device import job_device, resolve_device
from lstfill.downscale import steps as ds_steps
from lstfill.errors import ConfigError
from lstfill.gapfill import steps as gf_steps
from lstfill.superres import steps as sr_steps


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without CUDA, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def device_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("device: ")]


# ------------------------------------------------------------------------------ job_device


def test_cpu_is_logged_with_the_key(caplog):
    caplog.set_level(logging.INFO)
    assert job_device("cpu", "gapfill.training.device") == torch.device("cpu")
    assert device_lines(caplog) == ["device: cpu (gapfill.training.device is cpu)"]


def test_auto_without_cuda_falls_back_to_the_cpu_and_says_so(no_cuda, caplog):
    caplog.set_level(logging.INFO)
    assert job_device("auto", "superres.training.device") == torch.device("cpu")
    assert device_lines(caplog) == [
        "device: cpu (CUDA not available; superres.training.device is auto, so falling back "
        "to the CPU)"
    ]


def test_cuda_without_cuda_is_an_error_naming_the_key(no_cuda, caplog):
    caplog.set_level(logging.INFO)
    with pytest.raises(ConfigError) as err:
        job_device("cuda", "gapfill.training.device")
    assert str(err.value) == (
        "config key 'gapfill.training.device': cuda requested but no CUDA GPU is available"
    )
    assert device_lines(caplog) == []


def test_an_unknown_device_names_the_key():
    with pytest.raises(ConfigError, match="'downscale.training.device': must be one of"):
        job_device("tpu", "downscale.training.device")


def test_resolve_device_keeps_a_resolved_device():
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["auto", "cuda"])
def test_a_gpu_is_logged_with_its_index_and_name(name, caplog):
    caplog.set_level(logging.INFO)
    device = job_device(name, "gapfill.training.device")
    assert device.type == "cuda" and device.index is not None
    gpu = torch.cuda.get_device_name(device.index)
    assert device_lines(caplog) == [
        f"device: cuda:{device.index} ({gpu}; gapfill.training.device is {name})"
    ]


# ------------------------------------------------------------------ cuda stops every job first


def _cuda_section(section: str) -> dict[str, Any]:
    """A validated config section whose training.device is cuda."""
    raw: dict[str, Any] = {"downscale": {"regions": {"x": {"source": "demo"}}}}
    raw.setdefault(section, {})["training"] = {"device": "cuda"}
    return validate_config(raw)[section]


def _gapfill(kind: str, missing: Path, out: Path) -> Callable[[], Any]:
    cfg = _cuda_section("gapfill")
    return {
        "train": lambda: gf_steps.train(missing, [missing], missing, cfg, out, out, out),
        "predict": lambda: gf_steps.predict(missing, missing, out, device="cuda"),
        "evaluate": lambda: gf_steps.evaluate([missing], missing, missing, cfg, out, out),
    }[kind]


def _superres(kind: str, missing: Path, out: Path) -> Callable[[], Any]:
    cfg = _cuda_section("superres")
    return {
        "train": lambda: sr_steps.train(missing, cfg, "sifnn1", out, out, out),
        "predict": lambda: sr_steps.predict(missing, missing, "cuda", out),
        "evaluate": lambda: sr_steps.evaluate(
            [missing], [missing], missing, {"sifnn1": missing}, cfg, out, out
        ),
    }[kind]


def _downscale(kind: str, missing: Path, out: Path) -> Callable[[], Any]:
    cfg = _cuda_section("downscale")
    return {
        "train": lambda: ds_steps.train(missing, cfg, "space", out, out, out, out, "run"),
        "predict": lambda: ds_steps.predict(
            [missing], missing, missing, "20200105", False, out, device="cuda"
        ),
        "evaluate": lambda: ds_steps.evaluate(missing, {"space": missing}, cfg, out, out),
    }[kind]


@pytest.mark.parametrize("kind", ["train", "predict", "evaluate"])
@pytest.mark.parametrize(
    ("section", "job"), [("gapfill", _gapfill), ("superres", _superres), ("downscale", _downscale)]
)
def test_cuda_without_cuda_stops_the_job_before_it_reads_anything(
    no_cuda, tmp_path, section, job, kind
):
    """The inputs do not exist: a job that did any work first would fail on them instead."""
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as err:
        job(kind, tmp_path / "missing", out)()
    assert err.value.key == f"{section}.training.device"
    assert "cuda requested but no CUDA GPU is available" in str(err.value)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------- predictions log their device


# ------------------------------------------------------------------------- the workflow


def test_every_model_job_of_the_workflow_logs_its_device(tiny_run):
    """The tiny run's train, predict and evaluate logs each name the device they ran on."""
    rules = [
        f"{job}_{step}"
        for job in ("gapfill", "superres", "downscale")
        for step in ("train", "predict", "evaluate")
    ]
    for rule in rules:
        logs = sorted((tiny_run / "logs" / rule).rglob("*.log"))
        assert logs, rule
        for log in logs:
            text = log.read_text()
            assert "lstfill.device: device: " in text, log
            assert f"{rule.split('_')[0]}.training.device is" in text, log
