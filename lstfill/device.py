"""The torch device of a job: its `training.device` setting ("auto", "cpu" or "cuda")
resolved, and logged with the threads it runs on, so every training, prediction and evaluation
log says where it ran. A `cuda` setting without CUDA is an error naming the config key, never a
silent fall-back."""

from __future__ import annotations

import logging

import torch

from lstfill.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device, key: str = "training.device") -> torch.device:
    """The torch device for "auto" (cuda if available, else cpu), "cpu" or "cuda"; a
    torch.device is returned as it is (already resolved). ConfigError naming `key` (the config
    key the setting came from) for cuda without a CUDA GPU or an unknown name."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(key, "cuda requested but no CUDA GPU is available")
        return torch.device("cuda")
    raise ConfigError(key, f"must be one of {DEVICES}, got {name!r}")


def job_device(name: str, key: str) -> torch.device:
    """Resolve a job's configured device (`key` names its config key, e.g.
    'gapfill.training.device') and log which one the job runs on, so every training and
    prediction log says where it ran; "auto" without CUDA says that it fell back to the CPU.

    Jobs call this first, so a `cuda` setting on a machine without CUDA stops them before any
    work with a ConfigError naming `key`.
    """
    device = resolve_device(name, key)
    log = logging.getLogger(__name__)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        device = torch.device("cuda", index)
        log.info("device: %s (%s; %s is %s)", device, torch.cuda.get_device_name(index), key, name)
    elif name == "auto":
        log.info("device: cpu (CUDA not available; %s is auto, so falling back to the CPU)", key)
    else:
        log.info("device: cpu (%s is %s)", key, name)
    log.info("threads: %d", torch.get_num_threads())  # = the CPUs the job was given
    return device
